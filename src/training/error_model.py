"""The model's error model: how often it reads each true expression as each label, on real photos.

Shares of a selection are corrected for the model's systematic mix-ups
(``src.analytics.quantify``); that needs ``P(predicted | true)``, measured here on faces the
model never trained on: ExpW's held-back photos (20% of source photos, by
``src.training.data.expw_split``), run through the product's whole pipeline
(``src.engine.inference.EmotionRecognizer``: detection, alignment, classifier, test-time
views, temperature), as ``bench/score_wild.py`` scores them. Each labelled face is matched to the
detected face of highest IoU (at least 0.3).

A labelled face the detector misses is *left out* of the confusion counts: a missed face never
reaches any share, so what a correction needs is ``P(predicted | true, face found)``. The
misses are kept apart, per true class (``missed``), so a reader can see whether some
expressions are found less often.

The counts go to a small JSON file beside the model (``models/fer_cnn.error_model.json``) with
what they were estimated on: dataset and labels file sha256, split rule, photos and faces,
the model's sha256, runtime and test-time views, and the date. ``load_error_model`` reads it back
(``strict=False`` gives None, with the reason logged, when the file is missing or unreadable).

Build it with ``python -m src.cli error-model --expw PATH/TO/expw [--model FILE]``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from src import config
from src.engine.faces import iou
from src.engine.manifest import sha256_file

LOGGER = logging.getLogger(__name__)

SUFFIX = ".error_model.json"
FORMAT = 1
MATCH_IOU = 0.3  # the same matching rule as bench/score_wild.py
SPLIT_RULE = "ExpW held-back photos: 20% of source photos by sha1 of the photo's name (src.training.data.expw_split)"
MISSED_RULE = (
    "faces the detector missed are left out of counts (a missed face never reaches a share); "
    "they are listed per true class in missed"
)


# Keys ``to_dict`` writes itself; any other key of a file is kept in ``extra``.
_WRITTEN = frozenset(
    "kind format class_names counts rows columns missed missed_rule faces labelled_faces accuracy_on_found "
    "data model created".split()
)
_MODEL_SUFFIXES = (".int8.onnx", ".onnx", ".keras")


class ErrorModelError(ValueError):
    """An error model file that is missing, unreadable or malformed; str(err) says which file and why."""


@dataclass(frozen=True, eq=False)  # numpy fields: compare counts with np.array_equal
class ErrorModel:
    """Confusion counts of one model on labelled real faces: ``counts[true, predicted]``.

    ``class_names`` orders both axes; ``missed[true]`` counts the labelled faces the detector
    did not find (not in ``counts``). The other fields say what the counts were estimated on.
    """

    class_names: tuple[str, ...]
    counts: np.ndarray
    missed: np.ndarray
    dataset: str = ""
    split: str = ""
    photos: int = 0
    model_file: str = ""
    model_sha256: str = ""
    runtime: str = ""
    views: str = ""  # the test-time views the model was served with ("" in files from before they were recorded)
    created: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        counts = np.asarray(self.counts, dtype=np.int64)
        k = len(self.class_names)
        if counts.shape != (k, k):
            raise ErrorModelError(f"confusion counts must be {k}x{k} for {k} classes, not {counts.shape}")
        if (counts < 0).any():
            raise ErrorModelError("confusion counts cannot be negative")
        missed = np.zeros(k, np.int64) if self.missed is None else np.asarray(self.missed, dtype=np.int64)
        if missed.shape != (k,):
            raise ErrorModelError(f"missed must hold one count per class ({k}), not {missed.shape}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "missed", missed)

    @property
    def faces(self) -> int:
        """Faces behind the confusion counts (found and matched)."""
        return int(self.counts.sum())

    @property
    def labelled_faces(self) -> int:
        """Labelled faces run through the pipeline, missed ones included."""
        return self.faces + int(self.missed.sum())

    def confusion(self) -> np.ndarray:
        """``P(predicted | true)``: each row of ``counts`` over its total (a row without faces stays 0)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def accuracy(self) -> float:
        """Share of the found faces read as their label."""
        return float(np.trace(self.counts) / self.faces) if self.faces else float("nan")

    def matches(self, model_file: str | Path) -> bool:
        """Whether these counts were estimated with this model file (same sha256)."""
        return Path(model_file).is_file() and sha256_file(model_file) == self.model_sha256

    def describe(self) -> str:
        """One plain line on what the counts hold for."""
        day = self.created[:10] or "an unknown date"
        return (
            f"measured on {self.faces:,} faces of {self.photos:,} held-back {self.dataset or 'labelled'} photos "
            f"the model never trained on ({day})"
        )

    def to_dict(self) -> dict:
        return {
            "kind": "error model",
            "format": FORMAT,
            "class_names": list(self.class_names),
            "counts": self.counts.tolist(),
            "rows": "true label",
            "columns": "predicted label",
            "missed": self.missed.tolist(),
            "missed_rule": MISSED_RULE,
            "faces": self.faces,
            "labelled_faces": self.labelled_faces,
            "accuracy_on_found": round(self.accuracy(), 4) if self.faces else None,
            "data": {"dataset": self.dataset, "split": self.split, "photos": self.photos},
            "model": {
                "file": self.model_file,
                "sha256": self.model_sha256,
                "runtime": self.runtime,
                "test_time_views": self.views,
            },
            "created": self.created,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, payload: dict) -> ErrorModel:
        """The inverse of ``to_dict``; raises ``ErrorModelError`` naming what is wrong."""
        if not isinstance(payload, dict):
            raise ErrorModelError(f"an error model is a JSON object, not a {type(payload).__name__}")
        missing = [key for key in ("class_names", "counts") if key not in payload]
        if missing:
            raise ErrorModelError(f"an error model needs {' and '.join(missing)}")
        data, model = payload.get("data") or {}, payload.get("model") or {}
        try:
            return cls(
                class_names=tuple(str(c) for c in payload["class_names"]),
                counts=np.asarray(payload["counts"], dtype=np.int64),
                missed=np.asarray(payload.get("missed") or [0] * len(payload["class_names"]), dtype=np.int64),
                dataset=str(data.get("dataset", "")),
                split=str(data.get("split", "")),
                photos=int(data.get("photos", 0)),
                model_file=str(model.get("file", "")),
                model_sha256=str(model.get("sha256", "")),
                runtime=str(model.get("runtime", "")),
                views=str(model.get("test_time_views", "")),
                created=str(payload.get("created", "")),
                extra={k: v for k, v in payload.items() if k not in _WRITTEN},
            )
        except ErrorModelError:
            raise
        except (TypeError, ValueError) as exc:
            raise ErrorModelError(f"malformed error model: {exc}") from exc


def error_model_path(model_file: str | Path | None = None) -> Path:
    """``models/fer_cnn.keras`` -> ``models/fer_cnn.error_model.json`` (also for its ``.onnx`` twins)."""
    model_file = Path(model_file or config.MODEL_FILE)
    name = model_file.name
    for suffix in _MODEL_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return model_file.with_name(name + SUFFIX)


def load_error_model(model_file: str | Path | None = None, strict: bool = True) -> ErrorModel | None:
    """The error model beside ``model_file`` (the deployed model by default), or a ``.json`` path.

    ``strict`` raises ``ErrorModelError`` with the file and the reason when it is missing or
    malformed; otherwise those cases log the reason and give None (shares then stay uncorrected).
    """
    model_file = Path(model_file or config.MODEL_FILE)
    path = model_file if model_file.name.endswith(".json") else error_model_path(model_file)
    try:
        return ErrorModel.from_dict(json.loads(path.read_text()))
    except OSError as exc:
        problem = ErrorModelError(
            f"no error model at {path} ({exc.strerror or exc}): shares cannot be corrected for the model's "
            "mistakes; build it with `python -m src.cli error-model --expw PATH/TO/expw`"
        )
    except ValueError as exc:  # bad JSON or bad content (ErrorModelError is a ValueError)
        problem = ErrorModelError(f"the error model {path} is unusable: {exc}")
    if strict:
        raise problem
    LOGGER.warning("%s", problem)
    return None


# --- estimating it ----------------------------------------------------------------------------


def held_back_labels(expw: str | Path) -> pd.DataFrame:
    """ExpW's labelled faces on the held-back side of the split (the ones training never saw)."""
    from src.training.data import expw_split

    labels = pd.read_csv(Path(expw) / "labels.csv")
    held = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]]
    return held.reset_index(drop=True)


def predict_faces(
    expw: str | Path,
    labels: pd.DataFrame,
    recognizer=None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Each labelled face of ``labels`` through the whole pipeline, matched to its detection.

    One row per labelled face: its ``labels`` columns plus ``found`` (a detection overlaps its
    box by IoU >= 0.3), ``predicted`` (the top label, "" when missed) and one probability
    column per class (NaN when missed), prefixed ``p_``.
    """
    from src.engine.inference import get_recognizer

    recognizer = recognizer or get_recognizer()
    names = list(recognizer.class_names)
    files = list(dict.fromkeys(labels["file"]))
    paths = [str(Path(expw) / "faces" / f) for f in files]
    results = dict(zip(files, recognizer.analyze_batch(paths, names=files, progress=progress)))
    rows = []
    for row in labels.itertuples(index=False):
        box = (row.x, row.y, row.w, row.h)
        best, best_iou = None, MATCH_IOU
        for face in results[row.file].faces:
            overlap = iou(box, tuple(face.box))
            if overlap >= best_iou:
                best, best_iou = face, overlap
        probs = [best.emotions[n] if best else np.nan for n in names]
        rows.append([best is not None, best.emotion if best else "", *probs])
    found = pd.DataFrame(rows, columns=["found", "predicted", *(f"p_{n}" for n in names)], index=labels.index)
    return pd.concat([labels, found], axis=1)


def count_confusions(faces: pd.DataFrame, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(counts[true, predicted], missed[true])`` from ``predict_faces`` rows (``emotion`` = true label)."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(faces["emotion"]) - set(index))
    if unknown:
        raise ErrorModelError(f"labels {unknown} are not classes of the model ({', '.join(class_names)})")
    k = len(class_names)
    counts = np.zeros((k, k), np.int64)
    missed = np.zeros(k, np.int64)
    for true, found, predicted in zip(faces["emotion"], faces["found"], faces["predicted"]):
        if found:
            counts[index[true], index[predicted]] += 1
        else:
            missed[index[true]] += 1
    return counts, missed


def estimate(
    faces: pd.DataFrame,
    class_names: Sequence[str],
    model_file: str | Path,
    runtime: str = "",
    views: str = "",
    **extra,
) -> ErrorModel:
    """The ``ErrorModel`` of ``predict_faces`` rows, stamped with the model and today's date."""
    counts, missed = count_confusions(faces, class_names)
    return ErrorModel(
        class_names=tuple(class_names),
        counts=counts,
        missed=missed,
        dataset="ExpW",
        split=SPLIT_RULE,
        photos=int(faces["source_image"].nunique()),
        model_file=Path(model_file).name,
        model_sha256=sha256_file(model_file),
        runtime=runtime,
        views=views,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        extra=extra,
    )


def build(expw: str | Path, model_file: str | Path | None = None, output: str | Path | None = None) -> Path:
    """Run the held-back ExpW photos through ``model_file`` and write its error model; returns the path."""
    from src.engine.inference import EmotionRecognizer

    model_file = Path(model_file or config.MODEL_FILE)
    recognizer = EmotionRecognizer(model_file)
    labels = held_back_labels(expw)
    faces = predict_faces(expw, labels, recognizer)
    model = estimate(
        faces,
        recognizer.class_names,
        model_file,
        runtime=recognizer.info.runtime,
        views=recognizer.info.views,
        labels_sha256=sha256_file(Path(expw) / "labels.csv"),
        protocol="whole pipeline (EmotionRecognizer.analyze_batch on the photo files); labelled box matched "
        f"to the detected face of highest IoU >= {MATCH_IOU}",
    )
    path = Path(output) if output else error_model_path(model_file)
    path.write_text(to_json(model))
    return path


def to_json(model: ErrorModel) -> str:
    """The file's text: indented, with each row of numbers on one line so the table reads as one."""
    text = json.dumps(model.to_dict(), indent=1)
    return (
        re.sub(r"\[\s*(-?[\d.]+(?:\s*,\s*-?[\d.]+)*)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m[1]) + "]", text)
        + "\n"
    )
