"""Face detection: an OpenCV Haar cascade, one per thread, on a downscaled copy.

``get_detector().detect(gray)`` returns the faces of a grayscale image as ``Box``
tuples in that image's own pixels, sorted left to right. OpenCV cascade objects
are not safe to share between threads (the dashboard's video callback and its
upload page run in different threads), so ``get_detector`` keeps one detector
per thread.

The settings (cascades, scale factors, neighbours, working size, NMS overlap)
live in ``src/config.py``; ``bench/bench_detect.py`` measures speed and recall.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from src import config


class FaceDetectorError(RuntimeError):
    """The face detector cannot be built (e.g. the cascade file is missing)."""


class Box(NamedTuple):
    """A face rectangle in original image pixels."""

    x: int
    y: int
    w: int
    h: int


def cascade_path(filename: str = config.HAAR_CASCADE) -> Path:
    """Path of a cascade shipped with the opencv-python wheel."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise FaceDetectorError(
            f"OpenCV {cv2.__version__} ships no Haar cascades (cv2.data.haarcascades is missing); "
            "install an opencv-python(-headless) 4.x wheel as pinned in requirements.txt"
        )
    return Path(folder) / filename


def load_cascade(filename: str = config.HAAR_CASCADE) -> cv2.CascadeClassifier:
    """Load a Haar cascade, failing loudly rather than detecting nothing forever."""
    path = cascade_path(filename)
    if not path.is_file():
        raise FaceDetectorError(
            f"Haar cascade {path} not found: OpenCV {cv2.__version__} does not ship it "
            "(OpenCV 5 wheels dropped the cascades); install opencv-python(-headless) 4.x"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FaceDetectorError(f"OpenCV could not read the Haar cascade {path}")
    return cascade


def non_max_suppression(boxes: Sequence[Box], scores: Sequence[float], overlap: float) -> list[Box]:
    """Keep the best-scored box of each group of overlapping boxes.

    Overlap is the intersection over the *smaller* box, so a small box nested in
    a face (a common Haar duplicate, which plain IoU would keep) is dropped too.
    """
    if not boxes:
        return []
    b = np.asarray(boxes, dtype=np.float64)
    x1, y1 = b[:, 0], b[:, 1]
    x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
    area = b[:, 2] * b[:, 3]
    # Best score first; ties go to the larger box, which holds the whole face.
    order = np.lexsort((-area, -np.asarray(scores, dtype=np.float64)))
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        iw = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        ratio = iw * ih / np.minimum(area[best], area[rest])
        order = rest[ratio <= overlap]
    return [boxes[i] for i in keep]


class FaceDetector:
    """Haar-cascade face detector. Not thread-safe: use ``get_detector()``."""

    def __init__(
        self,
        cascade: str = config.HAAR_CASCADE,
        scale_factor: float = config.HAAR_SCALE_FACTOR,
        min_neighbors: int = config.HAAR_MIN_NEIGHBORS,
        min_face_size: int = config.MIN_FACE_SIZE,
        max_side: int = config.DETECT_MAX_SIDE,
        nms_overlap: float = config.NMS_OVERLAP,
        fast_side: int = config.DETECT_FAST_SIDE,
        fast_scale_factor: float = config.DETECT_FAST_SCALE_FACTOR,
        profile_cascade: str = config.HAAR_PROFILE_CASCADE,
        profile_scale_factor: float = config.HAAR_PROFILE_SCALE_FACTOR,
        profile_min_neighbors: int = config.HAAR_PROFILE_MIN_NEIGHBORS,
    ) -> None:
        if scale_factor <= 1.0 or profile_scale_factor <= 1.0:
            raise ValueError(f"scale factors must be > 1, got {scale_factor} and {profile_scale_factor}")
        self.cascade = load_cascade(cascade)
        self.profile = load_cascade(profile_cascade) if profile_cascade else None
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.profile_scale_factor = profile_scale_factor
        self.profile_min_neighbors = profile_min_neighbors
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.nms_overlap = nms_overlap
        self.fast_side = fast_side
        self.fast_scale_factor = fast_scale_factor

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Faces in a 2-D uint8 image, in its pixels, sorted left to right; [] if none."""
        if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(
                "detect() expects a 2-D uint8 grayscale array, got "
                f"{type(gray).__name__} {getattr(gray, 'shape', '')} {getattr(gray, 'dtype', '')}"
            )
        height, width = gray.shape
        if min(height, width) < self.min_face_size:
            return []
        found: list = []
        if 0 < self.fast_side < max(height, width) <= self.max_side:
            # Camera-sized frames: a coarse pass first, since most hold at least one large
            # face, found here at a fifth of the cost; only a miss pays for the full pass.
            # Larger photos skip it: shrunk that far, group photos lose their small faces.
            small = self._shrink(gray, self.fast_side)
            min_size = max(1, round(self.min_face_size * small.shape[1] / width))
            found = self._run(self.cascade, small, self.fast_scale_factor, self.min_neighbors, min_size)
        if not found:
            # The cascade's cost grows with the pixel count. The price is the faces under
            # its 20 px window once scaled (40 px on a 1280 px frame): on 1280x960 frames
            # a 640 px copy kept 96% of 40-400 px faces, a 320 px one only 80%.
            small = self._shrink(gray, self.max_side)
            min_size = max(1, round(self.min_face_size * small.shape[1] / width))
            found = self._run(self.cascade, small, self.scale_factor, self.min_neighbors, min_size)
        if not found and self.profile is not None:
            # The profile cascade only knows one side of the head: run it mirrored too.
            found = self._run(self.profile, small, self.profile_scale_factor, self.profile_min_neighbors, min_size)
            mirrored = self._run(
                self.profile, cv2.flip(small, 1), self.profile_scale_factor, self.profile_min_neighbors, min_size
            )
            found += [(small.shape[1] - x - w, y, w, h, n) for x, y, w, h, n in mirrored]
        sx, sy = width / small.shape[1], height / small.shape[0]
        boxes: list[Box] = []
        scores: list[float] = []
        for x, y, w, h, n in found:
            box = _clip(round(x * sx), round(y * sy), round(w * sx), round(h * sy), width, height)
            if box is not None:
                boxes.append(box)
                scores.append(n)
        kept = non_max_suppression(boxes, scores, self.nms_overlap)
        return sorted(kept, key=lambda b: (b.x, b.y))

    @staticmethod
    def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
        """A copy whose long side is at most ``side`` (0: unchanged)."""
        height, width = gray.shape
        if side <= 0 or max(height, width) <= side:
            return np.ascontiguousarray(gray)
        scale = side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def _run(
        cascade: cv2.CascadeClassifier, image: np.ndarray, scale_factor: float, min_neighbors: int, min_size: int
    ) -> list[tuple[int, int, int, int, float]]:
        """(x, y, w, h, neighbours) per detection; neighbours ranks duplicates in NMS."""
        rects, neighbours = cascade.detectMultiScale2(
            image, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size)
        )
        return [
            (int(x), int(y), int(w), int(h), float(n))
            for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.ravel(neighbours))
        ]


def _clip(x: int, y: int, w: int, h: int, width: int, height: int) -> Box | None:
    """The part of a rectangle inside the image (OpenCV may return boxes that stick out)."""
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


_local = threading.local()


def get_detector(fast: bool = False, max_side: int | None = None) -> FaceDetector:
    """This thread's detector, built on first use (cascades are not thread-safe).

    ``fast`` adds the coarse first pass (``config.DETECT_FAST_SIDE_FAST_MODE``) on
    camera-sized frames: ~10 ms instead of ~70 ms on a 640x480 photo, but a frame
    with one large face loses its small ones (multi-face recall 0.99 -> 0.71 in
    bench/bench_detect.py), so analytics use the default, thorough mode.
    ``max_side`` overrides the working size (0: full resolution); boxes are always
    in the given image's pixels.
    """
    detectors = _local.__dict__.setdefault("detectors", {})
    key = (fast, max_side)
    if key not in detectors:
        kwargs = {} if max_side is None else {"max_side": max_side}
        if fast:
            kwargs["fast_side"] = config.DETECT_FAST_SIDE_FAST_MODE
        detectors[key] = FaceDetector(**kwargs)
    return detectors[key]
