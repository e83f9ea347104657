"""Face detection: YuNet (boxes + five landmarks) by default, OpenCV Haar as an option.

``get_detector().detect_faces(image)`` returns the faces of a grayscale or RGB
uint8 image as ``Face(box, landmarks, score)`` in that image's own pixels, sorted
left to right; ``detect(gray)`` returns just the boxes. YuNet comes from the
``yuface`` wheel (libfacedetection with its weights compiled in, so nothing is
downloaded); the backend is ``config.DETECTOR`` (``FER_DETECTOR``). Neither
OpenCV cascades nor the YuNet wrapper are documented as thread-safe (the
dashboard's video callback and its upload page run in different threads), so
``get_detector`` keeps one detector per thread.

The settings (backend, working size, scores, cascades, NMS overlap) live in
``src/config.py``; ``bench/bench_detect.py`` measures speed and recall.
"""

from __future__ import annotations

import os
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


class Face(NamedTuple):
    """A detected face: its box, five landmarks when the detector gives them, a score.

    ``landmarks`` is a (5, 2) float32 array in image pixels: the two eyes, the nose
    tip and the two mouth corners, each pair ordered left to right in the image.
    """

    box: Box
    landmarks: np.ndarray | None
    score: float


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


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


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

    def detect_faces(self, image: np.ndarray) -> list[Face]:
        """Faces of a grayscale or RGB uint8 image (Haar gives no landmarks)."""
        return [Face(box, None, 1.0) for box in self.detect(_gray(image))]

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Faces in a 2-D uint8 image, in its pixels, sorted left to right; [] if none."""
        _check_gray(gray)
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


def _check_gray(gray) -> None:
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(
            "detect() expects a 2-D uint8 grayscale array, got "
            f"{type(gray).__name__} {getattr(gray, 'shape', '')} {getattr(gray, 'dtype', '')}"
        )


def _gray(image: np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.dtype == np.uint8 and image.shape[2] in (3, 4):
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return image


def _yuface():
    """Import yuface with OpenMP kept to one thread.

    Its libgomp otherwise spins a thread per core: on 2 busy cores one 320 px frame
    went from 32 ms to 250 ms. The variable is read when the library loads.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import yuface
    except ImportError as exc:  # pragma: no cover - the wheel is a declared dependency
        raise FaceDetectorError(
            f"the YuNet detector needs the yuface package ({exc}); or set FER_DETECTOR=haar"
        ) from exc
    return yuface


class _ReusedBufferDetect:
    """``yuface.detect`` without its leak: libfacedetection's own entry point, called with a
    result buffer this object keeps.

    yuface's compiled ``detect`` allocates the 0x9000-byte buffer libfacedetection writes its
    results into on every call and never frees it: 36 KB per call, 100-200 MB an hour for a
    live camera. Same results (confidence, box, five landmarks per face) as ``yuface.detect``.
    """

    BUFFER_BYTES = 0x9000  # what libfacedetection's API asks the caller to provide

    def __init__(self, yuface) -> None:
        import ctypes

        library = ctypes.CDLL(str(Path(yuface.__file__).with_name("libfacedetection.so")))
        function = library._Z14facedetect_cnnPhS_iii  # int* facedetect_cnn(uchar*, uchar*, int, int, int)
        function.restype = ctypes.POINTER(ctypes.c_int)
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._function = function
        self._buffer = np.zeros(self.BUFFER_BYTES, np.uint8)

    def __call__(self, bgr: np.ndarray, conf: float = 0.5):
        image = np.ascontiguousarray(bgr)
        height, width = image.shape[:2]
        count = self._function(self._buffer.ctypes.data, image.ctypes.data, width, height, image.strides[0])[0]
        rows = np.frombuffer(self._buffer, np.int16, count=16 * count, offset=4).reshape(count, 16).astype(np.int32)
        rows = rows[rows[:, 0] > conf * 100]
        return rows[:, 0], rows[:, 1:5], rows[:, 5:15]


def _yunet_detect():
    """The leak-free ``detect`` when this yuface build exposes libfacedetection, else yuface's own."""
    yuface = _yuface()
    try:
        return _ReusedBufferDetect(yuface)
    except (OSError, AttributeError):
        return yuface.detect


class YuNetDetector:
    """libfacedetection's YuNet CNN: boxes, five landmarks and a score per face.

    Coarse to fine: a ``glance_side`` copy first, then a ``coarse_side`` one, then one
    whose long side is at most ``max_side``; an early pass's answer stands when every
    face it finds is at least ``glance_min_face`` / ``coarse_min_face`` px in its copy
    (where smaller faces could sit unseen beside a small one). ``coarse_side=0`` turns
    both early passes off. Tiny images (a face crop, a thumbnail) are enlarged and framed
    with a border first, since YuNet needs the face to be smaller than the frame. Not
    thread-safe: use ``get_detector()``.
    """

    # Below this long side an image is enlarged (FER2013's 48 px faces: 98.5% found at 4x
    # with a border, few without).
    SMALL_SIDE = 160
    # The glance runs only when the full pass's copy is at least this many times its side
    # (else it saves little and, when it falls through, adds nearly a whole pass: native
    # ~190 px ExpW crops went from 4 to 7 ms).
    GLANCE_GAIN = 1.5

    def __init__(
        self,
        min_score: float = config.YUNET_MIN_SCORE,
        max_side: int = config.YUNET_MAX_SIDE,
        min_face_size: int = config.MIN_FACE_SIZE,
        nms_overlap: float = config.NMS_OVERLAP,
        coarse_side: int = config.YUNET_COARSE_SIDE,
        coarse_min_face: int = config.YUNET_COARSE_MIN_FACE,
        glance_side: int = config.YUNET_GLANCE_SIDE,
        glance_min_face: int = config.YUNET_GLANCE_MIN_FACE,
        glance_doubt: float = config.YUNET_GLANCE_DOUBT,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self._detect = _yunet_detect()
        self.min_score = min_score
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.nms_overlap = nms_overlap
        self.coarse_side = coarse_side
        self.coarse_min_face = coarse_min_face
        self.glance_side = glance_side
        self.glance_min_face = glance_min_face
        self.glance_doubt = glance_doubt

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Boxes only, like the Haar detector's ``detect``."""
        _check_gray(gray)
        return [face.box for face in self.detect_faces(gray)]

    def detect_faces(self, image: np.ndarray) -> list[Face]:
        """Faces of a grayscale (H, W) or RGB(A) (H, W, 3|4) uint8 image, sorted left to right."""
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (3, 4))
        ):
            raise ValueError(
                "detect_faces() expects a 2-D grayscale or (H, W, 3|4) RGB(A) uint8 array, got "
                f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
            )
        height, width = image.shape[:2]
        if min(height, width) < 8:
            return []
        long_side = max(height, width)
        full_side = long_side if self.max_side <= 0 else min(long_side, self.max_side)
        # The image's pyramid halvings, shared by the passes (the glance and the coarse copy
        # of a 600-800 px photo both start from its first halving).
        levels = [image]
        if long_side >= self.SMALL_SIDE and self.coarse_side > 0:
            # Coarse to fine: a portrait's face is found on a small copy at a fraction of
            # the cost; the next pass runs only when that copy shows no face or a small one
            # (where smaller faces may sit beside it).
            if 0 < self.glance_side and self.glance_side * self.GLANCE_GAIN <= full_side:
                scale = self.glance_side / long_side
                found = self._pass(levels, scale, self.glance_doubt)
                faces = [f for f in found if f.score >= self.min_score]
                # Any weaker candidate left beside the faces may be a small face seen too
                # coarsely: it sends the image on to the next pass.
                if faces and len(faces) == len(found) and _min_side(faces) * scale >= self.glance_min_face:
                    return faces
            if 0 < self.coarse_side < full_side:
                scale = self.coarse_side / long_side
                faces = self._pass(levels, scale)
                if faces and _min_side(faces) * scale >= self.coarse_min_face:
                    return faces
        return self._pass(levels, full_side / long_side)

    def _pass(self, levels: list[np.ndarray], scale: float, floor: float | None = None) -> list[Face]:
        """One YuNet run on a copy scaled by ``scale`` (tiny images: enlarged and framed).

        ``levels``: the image, then its pyramid halvings as far as an earlier pass made them
        (``_halve`` extends the list). Faces scored at least ``floor`` (default ``min_score``)
        after overlap suppression.
        """
        image = levels[0]
        height, width = image.shape[:2]
        long_side = max(height, width)
        pad = 0
        if long_side < self.SMALL_SIDE:
            scale = self.SMALL_SIDE / long_side
            interp = cv2.INTER_CUBIC
        elif scale < 1.0:
            interp = cv2.INTER_LINEAR
        else:
            scale, interp = 1.0, None
        work = image
        if interp is not None:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = cv2.resize(_halve(levels, scale), size, interpolation=interp)
        # YuNet reads BGR: converted after the shrink, on the small copy (flipping the full
        # image's channels first took ~0.7 of a 600 px photo's ~13 ms of detection).
        work = cv2.cvtColor(work, _TO_BGR[work.shape[2] if work.ndim == 3 else 1])
        if long_side < self.SMALL_SIDE:
            pad = self.SMALL_SIDE // 2
            work = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        floor = self.min_score if floor is None else min(floor, self.min_score)
        scores, rects, points = self._detect(work, conf=floor)
        sx = width / (work.shape[1] - 2 * pad)
        sy = height / (work.shape[0] - 2 * pad)
        faces: list[Face] = []
        for score, rect, pts in zip(scores, rects, points):
            x, y, w, h = (float(v) for v in rect)
            box = _clip(round((x - pad) * sx), round((y - pad) * sy), round(w * sx), round(h * sy), width, height)
            if box is None or min(box.w, box.h) < self.min_face_size * min(1.0, long_side / self.SMALL_SIDE):
                continue
            marks = (np.asarray(pts, np.float32).reshape(5, 2) - pad) * np.float32([sx, sy])
            # Eyes and mouth corners ordered left to right in the image, whatever the model's order.
            for a, b in ((0, 1), (3, 4)):
                if marks[a, 0] > marks[b, 0]:
                    marks[[a, b]] = marks[[b, a]]
            faces.append(Face(box, marks, float(score) / 100.0))
        if len(faces) > 1:
            kept = set(non_max_suppression([f.box for f in faces], [f.score for f in faces], self.nms_overlap))
            faces = [f for f in faces if f.box in kept]
        return sorted(faces, key=lambda f: (f.box.x, f.box.y))


def _min_side(faces: list[Face]) -> int:
    return min(min(f.box.w, f.box.h) for f in faces)


# Channels -> the conversion to YuNet's BGR.
_TO_BGR = {1: cv2.COLOR_GRAY2BGR, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGR}


def _halve(levels: list[np.ndarray], scale: float) -> np.ndarray:
    """Gaussian-pyramid halvings of ``levels[0]`` while ``scale`` <= 0.5, so that a bilinear
    resize can finish without aliasing: INTER_AREA's quality at a third of its cost (~0.6
    against 1.7 ms for 800x600 to 320x240). Halvings already in ``levels`` are reused, new
    ones appended."""
    depth = 0
    while scale <= 0.5 and min(levels[depth].shape[:2]) >= 2:
        depth, scale = depth + 1, scale * 2
        if depth == len(levels):
            levels.append(cv2.pyrDown(levels[depth - 1]))
    return levels[depth]


_local = threading.local()


def get_detector(fast: bool = False, max_side: int | None = None, backend: str | None = None):
    """This thread's detector, built on first use (detectors are not thread-safe).

    ``backend`` is "yunet" or "haar" (default ``config.DETECTOR``). ``max_side``
    overrides the working size (0: full resolution); boxes are always in the given
    image's pixels. ``fast`` trades small faces for speed: YuNet works on a smaller copy
    (``config.YUNET_FAST_SIDE``); Haar adds a coarse first pass
    (``config.DETECT_FAST_SIDE_FAST_MODE``) on camera-sized frames.
    """
    backend = (backend or config.DETECTOR).lower()
    if backend not in ("yunet", "haar"):
        raise FaceDetectorError(f"unknown face detector {backend!r} (FER_DETECTOR): choose yunet or haar")
    detectors = _local.__dict__.setdefault("detectors", {})
    key = (backend, fast, max_side)
    if key not in detectors:
        kwargs = {} if max_side is None else {"max_side": max_side}
        if backend == "yunet":
            if fast and max_side is None:
                kwargs["max_side"] = config.YUNET_FAST_SIDE
            detectors[key] = YuNetDetector(**kwargs)
        else:
            if fast:
                kwargs["fast_side"] = config.DETECT_FAST_SIDE_FAST_MODE
            detectors[key] = FaceDetector(**kwargs)
    return detectors[key]
