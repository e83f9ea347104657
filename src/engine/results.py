"""The result schema: typed per-face results and the one-row-per-face table they make.

``FaceResult`` (box, ``emotions {label: probability}``, ``emotion``, ``confidence``, and
``uncertain`` with its ``doubts``: whether the label is unreliable and why, see
``src.engine.doubt``) and ``ImageResult`` (a file's faces, or why there are none) are what the
engine returns; their ``rows`` are the per-face table of the CLI's CSV, the batch table and the
store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from src.engine.doubt import describe
from src.engine.faces import Box

# The per-face table of the CLI's CSV, the batch table and its downloads: these columns,
# one per label of the model, then the file's status and error, then the face's doubt
# (``uncertain`` true/false and the ``doubt`` reasons joined by "; "). The doubt columns come
# last so that scripts reading the older columns by position keep working.
BASE_COLUMNS = ("file", "face", "x", "y", "w", "h", "emotion", "confidence")
TAIL_COLUMNS = ("status", "error")
DOUBT_COLUMNS = ("uncertain", "doubt")
INT_COLUMNS = ("face", "x", "y", "w", "h")


def table_columns(class_names: Sequence[str]) -> tuple[str, ...]:
    """The per-face table's columns for a model with these labels."""
    return (*BASE_COLUMNS, *class_names, *TAIL_COLUMNS, *DOUBT_COLUMNS)


def file_row(file: str, status: str, error: str, class_names: Sequence[str]) -> dict:
    """The single row of a file without faces (no_face or error): blank but for file, status and error."""
    row = dict.fromkeys(table_columns(class_names), "")
    row.update(file=file, status=status, error=error)
    return row


@dataclass
class FailedFile:
    """A file that never reached the model (e.g. a broken archive), shaped like ``ImageResult``."""

    file: str
    error: str
    status: str = "error"
    width: int = 0
    height: int = 0
    faces: list = field(default_factory=list)

    def rows(self, class_names: Sequence[str]) -> list[dict]:
        return [file_row(self.file, self.status, self.error, class_names)]


@dataclass(frozen=True)
class FaceResult:
    """One face: its box, a probability per label, the top label.

    The box is in the input's original pixels (``ImageResult.width`` x ``height``), also
    for files decoded downscaled (larger than ``FER_DECODE_MAX_SIDE``, see ``load_image``).
    ``landmarks`` (eyes, nose tip, mouth corners as five [x, y] pairs) come with the
    YuNet detector and are None for Haar boxes and for whole-image crops.
    ``uncertain`` says the label is unreliable (a small, blurred or turned face, or a low
    confidence on real photos) and ``doubts`` says why, as codes of ``doubt.REASONS``.
    """

    box: Box | None
    emotions: dict[str, float]
    emotion: str
    confidence: float
    landmarks: tuple[tuple[float, float], ...] | None = None
    uncertain: bool = False
    doubts: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "box": None if self.box is None else dict(self.box._asdict()),
            "emotions": dict(self.emotions),
            "emotion": self.emotion,
            "confidence": self.confidence,
            "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks],
            "uncertain": self.uncertain,
            "doubts": list(self.doubts),
        }


@dataclass
class ImageResult:
    """All faces of one input image, or why there are none."""

    file: str
    faces: list[FaceResult] = field(default_factory=list)
    status: str = "ok"  # ok | no_face | error
    error: str = ""
    width: int = 0
    height: int = 0

    def rows(self, class_names: Sequence[str]) -> list[dict]:
        """Rows of the per-face table (``analytics.table_columns``): one per face, or one for no_face/error."""
        if not self.faces:
            return [file_row(self.file, self.status, self.error, class_names)]
        rows = []
        for i, face in enumerate(self.faces):
            box = face.box or Box(0, 0, self.width, self.height)
            row = {
                "file": self.file,
                "face": i,
                **box._asdict(),
                "emotion": face.emotion,
                "confidence": round(face.confidence, 4),
            }
            row.update({k: round(v, 4) for k, v in face.emotions.items()})
            row.update(status=self.status, error="", uncertain=bool(face.uncertain), doubt=describe(face.doubts))
            rows.append(row)
        return rows
