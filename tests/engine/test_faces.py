"""Face detection on real offline photos (scikit-image's astronaut, cameraman) and composites."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from skimage import data

from src.engine.faces import (
    Box,
    Face,
    FaceDetector,
    FaceDetectorError,
    YuNetDetector,
    get_detector,
    non_max_suppression,
)

# The astronaut's face in the 512x512 photo, measured once by eye and by the cascade.
FACE_REGION = (170, 20, 290, 180)  # x0, y0, x1, y1


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def _face_crop(astronaut: np.ndarray) -> np.ndarray:
    """The face with some hair and neck around it, as a photo crop would have."""
    return astronaut[40:190, 150:300]


def _overlap(box: Box, region: tuple[int, int, int, int]) -> float:
    """Share of ``box`` inside ``region``."""
    x0, y0, x1, y1 = region
    iw = max(0, min(box.x + box.w, x1) - max(box.x, x0))
    ih = max(0, min(box.y + box.h, y1) - max(box.y, y0))
    return iw * ih / (box.w * box.h)


def test_astronaut_face_found_once(astronaut: np.ndarray) -> None:
    boxes = get_detector().detect(astronaut)
    assert len(boxes) == 1
    box = boxes[0]
    assert isinstance(box, Box) and all(type(v) is int for v in box)
    assert _overlap(box, FACE_REGION) > 0.8
    assert 70 <= box.w <= 140 and 70 <= box.h <= 140


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_gives_empty_list(kind: str) -> None:
    rng = np.random.default_rng(0)
    image = np.full((240, 320), 128, np.uint8) if kind == "blank" else rng.integers(0, 256, (240, 320), dtype=np.uint8)
    assert get_detector().detect(image) == []


def test_image_smaller_than_a_face_gives_empty_list() -> None:
    assert get_detector().detect(np.zeros((10, 10), np.uint8)) == []


def test_three_faces_sorted_left_to_right(astronaut: np.ndarray) -> None:
    canvas = np.full((500, 1200), 128, np.uint8)
    crop = _face_crop(astronaut)
    placed = []  # (x, y, size) of each pasted crop, deliberately not in x order
    for x, y, size in [(820, 150, 300), (60, 200, 160), (430, 80, 230)]:
        canvas[y : y + size, x : x + size] = cv2.resize(
            crop, (size, size), interpolation=cv2.INTER_AREA if size < crop.shape[0] else cv2.INTER_CUBIC
        )
        placed.append((x, y, size))
    boxes = get_detector().detect(canvas)
    assert len(boxes) == 3
    assert [b.x for b in boxes] == sorted(b.x for b in boxes)
    for box, (x, y, size) in zip(boxes, sorted(placed)):
        # The face fills the middle ~65% of each pasted crop.
        assert _overlap(box, (x, y, x + size, y + size)) > 0.9
        assert 0.4 * size <= box.w <= 0.9 * size


def test_large_image_boxes_in_original_pixels(astronaut: np.ndarray) -> None:
    scale = 2000 / astronaut.shape[1]
    big = cv2.resize(astronaut, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    boxes = get_detector().detect(big)
    assert len(boxes) == 1
    x0, y0, x1, y1 = (round(v * scale) for v in FACE_REGION)
    assert _overlap(boxes[0], (x0, y0, x1, y1)) > 0.8
    assert boxes[0].w > 250  # in 2000-px pixels, not the downscaled copy's


def test_profile_fallback_finds_the_cameraman() -> None:
    camera = data.camera()  # a man seen from the side, looking through a camera
    assert FaceDetector(profile_cascade="").detect(camera) == []
    boxes = get_detector().detect(camera)
    assert len(boxes) == 1
    assert _overlap(boxes[0], (160, 70, 300, 220)) > 0.8  # his head, left of the camera


def test_face_at_the_border_is_clipped_to_the_image(astronaut: np.ndarray) -> None:
    image = np.ascontiguousarray(astronaut[60:300, 172:420])  # face touches the left and top edges
    boxes = get_detector().detect(image)
    assert len(boxes) == 1
    box = boxes[0]
    assert box.x >= 0 and box.y >= 0
    assert box.x + box.w <= image.shape[1] and box.y + box.h <= image.shape[0]


def test_non_max_suppression_merges_duplicates() -> None:
    face, nested, shifted, other = (
        Box(100, 100, 80, 80),
        Box(120, 120, 30, 30),
        Box(105, 102, 80, 80),
        Box(300, 100, 80, 80),
    )
    kept = non_max_suppression([nested, face, shifted, other], [2, 9, 4, 5], overlap=0.3)
    assert sorted(kept) == [face, other]
    assert non_max_suppression([], [], overlap=0.3) == []


def test_bad_input_and_missing_cascade_raise_clearly(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        get_detector().detect(np.dstack([astronaut] * 3))
    with pytest.raises(ValueError, match="2-D uint8"):
        get_detector().detect(astronaut.astype(np.float32))
    with pytest.raises(FaceDetectorError, match="not found"):
        FaceDetector(cascade="haarcascade_no_such_face.xml")


def test_detector_is_thread_local() -> None:
    assert get_detector() is get_detector()
    seen: list[FaceDetector] = []

    def grab() -> None:
        seen.extend([get_detector(), get_detector()])

    worker = threading.Thread(target=grab)
    worker.start()
    worker.join()
    assert seen[0] is seen[1]
    assert seen[0] is not get_detector()


def test_concurrent_detection_in_four_threads(astronaut: np.ndarray) -> None:
    small = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    start = threading.Barrier(4, timeout=30)  # all four detect at the same time, each in its own thread

    def run(_: int) -> tuple[FaceDetector, list[Box]]:
        start.wait()
        boxes = [get_detector().detect(small) for _ in range(2)]
        assert boxes[0] == boxes[1]
        return get_detector(), boxes[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(4)))
    assert len({id(detector) for detector, _ in results}) == 4
    assert all(boxes == results[0][1] and len(boxes) == 1 for _, boxes in results)


@pytest.mark.parametrize("size", [60, 300])
def test_camera_frame_small_and_large_face(astronaut: np.ndarray, size: int) -> None:
    """In fast mode 640x480 frames take the coarse pass; a face too small for it is found by the full pass."""
    frame = np.full((480, 640), 128, np.uint8)
    crop = _face_crop(astronaut)
    frame[100 : 100 + size, 200 : 200 + size] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    for fast in (False, True):
        boxes = get_detector(fast, backend="haar").detect(frame)
        assert len(boxes) == 1
        assert _overlap(boxes[0], (200, 100, 200 + size, 100 + size)) > 0.9


@pytest.mark.parametrize("size", [60, 300])
def test_yunet_thorough_mode_finds_small_faces_that_fast_mode_may_miss(astronaut: np.ndarray, size: int) -> None:
    frame = np.full((480, 640), 128, np.uint8)
    frame[100 : 100 + size, 200 : 200 + size] = cv2.resize(
        _face_crop(astronaut), (size, size), interpolation=cv2.INTER_AREA
    )
    boxes = get_detector().detect(frame)
    assert len(boxes) == 1 and _overlap(boxes[0], (200, 100, 200 + size, 100 + size)) > 0.9
    if size == 300:
        assert len(get_detector(fast=True).detect(frame)) == 1


def test_haar_fast_mode_is_its_own_thread_local_detector() -> None:
    assert get_detector(True, backend="haar") is get_detector(True, backend="haar")
    assert get_detector(True, backend="haar") is not get_detector(False, backend="haar")
    assert get_detector(True, backend="haar").fast_side > 0 and get_detector(False, backend="haar").fast_side == 0


def test_default_backend_is_yunet_and_unknown_backend_is_refused() -> None:
    assert isinstance(get_detector(), YuNetDetector)
    with pytest.raises(FaceDetectorError, match="unknown face detector"):
        get_detector(backend="mtcnn")


def test_yunet_landmarks_on_the_astronaut() -> None:
    """Five landmarks inside the face box, in anatomical order: eyes above nose above mouth."""
    faces = get_detector().detect_faces(data.astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and 0.6 <= face.score <= 1.0
    assert _overlap(face.box, FACE_REGION) > 0.8
    marks = face.landmarks
    assert marks.shape == (5, 2)
    x0, y0 = face.box.x, face.box.y
    assert np.all((marks[:, 0] > x0) & (marks[:, 0] < x0 + face.box.w))
    assert np.all((marks[:, 1] > y0) & (marks[:, 1] < y0 + face.box.h))
    eyes, nose, mouth = marks[:2], marks[2], marks[3:]
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    # Grayscale input finds the same face.
    gray_faces = get_detector().detect_faces(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY))
    assert len(gray_faces) == 1 and _overlap(gray_faces[0].box, FACE_REGION) > 0.8


def test_yunet_finds_a_face_that_fills_a_tiny_image(astronaut: np.ndarray) -> None:
    """A 48x48 FER-style crop (the face fills the frame) is enlarged and bordered before detection."""
    crop = cv2.resize(astronaut[20:200, 150:310], (48, 48), interpolation=cv2.INTER_AREA)
    faces = get_detector().detect_faces(crop)
    assert len(faces) == 1
    box = faces[0].box
    assert 0 <= box.x and box.x + box.w <= 48 and box.w >= 20


def test_yunet_boxes_are_in_original_pixels_on_a_large_photo(astronaut: np.ndarray) -> None:
    """A 2048 px photo is searched on a smaller copy; boxes and landmarks come back in photo pixels."""
    big = cv2.resize(data.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = get_detector().detect_faces(big)
    assert len(faces) == 1
    assert _overlap(faces[0].box, tuple(v * 4 for v in FACE_REGION)) > 0.8
    assert faces[0].box.w > 250


def _counting(detector: YuNetDetector) -> list[tuple[int, int]]:
    """Record the size of every copy the real YuNet runs on."""
    calls: list[tuple[int, int]] = []
    real = detector._detect

    def detect(image, conf):
        calls.append(image.shape[:2])
        return real(image, conf=conf)

    detector._detect = detect
    return calls


def test_yunet_portrait_stops_at_the_coarse_pass(astronaut: np.ndarray) -> None:
    """Without the glance, a large face is found on the 320 px copy alone, at the box the full pass gives."""
    frame = np.full((480, 640), 128, np.uint8)
    frame[100:400, 200:500] = cv2.resize(_face_crop(astronaut), (300, 300), interpolation=cv2.INTER_AREA)
    coarse, single = YuNetDetector(glance_side=0), YuNetDetector(coarse_side=0)
    calls, single_calls = _counting(coarse), _counting(single)
    (fast_box,), (full_box,) = coarse.detect(frame), single.detect(frame)
    assert calls == [(240, 320)] and single_calls == [(480, 640)]
    assert _overlap(fast_box, (full_box.x, full_box.y, full_box.x + full_box.w, full_box.y + full_box.h)) > 0.85


def test_yunet_small_faces_or_none_get_the_full_pass(astronaut: np.ndarray) -> None:
    """Faces under the glance and coarse thresholds (and frames without a face) are searched at full size."""
    crop = _face_crop(astronaut)
    frame = np.full((480, 640), 128, np.uint8)
    for x in (60, 260, 460):  # a row of 70 px faces: 35 px on the coarse copy
        frame[200:270, x : x + 70] = cv2.resize(crop, (70, 70), interpolation=cv2.INTER_AREA)
    detector = YuNetDetector()
    calls = _counting(detector)
    boxes = detector.detect(frame)
    assert calls == [(120, 160), (240, 320), (480, 640)]
    assert len(boxes) == 3 and [b.x // 100 for b in boxes] == [0, 2, 4]
    calls.clear()
    assert detector.detect(np.full((480, 640), 128, np.uint8)) == []
    assert calls == [(120, 160), (240, 320), (480, 640)]


def test_yunet_passes_share_the_pyramid_halvings(astronaut: np.ndarray, monkeypatch) -> None:
    """The glance (1/4) and the coarse copy (1/2) of a 640 px frame cost two halvings, not three."""
    import src.engine.faces as faces

    crop = _face_crop(astronaut)
    frame = np.full((480, 640, 3), 128, np.uint8)
    for x in (60, 260, 460):
        frame[200:270, x : x + 70] = cv2.resize(crop, (70, 70), interpolation=cv2.INTER_AREA)[..., None]
    expected = YuNetDetector().detect_faces(frame)
    halvings = []
    real = cv2.pyrDown

    def counted(image):
        halvings.append(image.shape[:2])
        return real(image)

    monkeypatch.setattr(faces.cv2, "pyrDown", counted)
    found = YuNetDetector().detect_faces(frame)
    assert halvings == [(480, 640), (240, 320)]
    assert [f.box for f in found] == [f.box for f in expected] and len(found) == 3
    levels = [frame]
    assert faces._halve(levels, 0.25).shape[:2] == (120, 160) and len(levels) == 3
    assert faces._halve(levels, 0.5) is levels[1] and faces._halve(levels, 0.8) is frame


def _portrait() -> np.ndarray:
    """The astronaut photo cut to a 400x520 RGB head-and-shoulders portrait (face box ~45% of the width)."""
    return cv2.resize(data.astronaut()[20:280, 130:330], (400, 520), interpolation=cv2.INTER_CUBIC)


def _box_region(box: Box) -> tuple[int, int, int, int]:
    return box.x, box.y, box.x + box.w, box.y + box.h


def test_yunet_large_face_in_a_mid_size_image_stops_at_the_glance() -> None:
    """A portrait's face is found on the 160 px glance alone, close to where the full-size pass puts it."""
    portrait = _portrait()
    detector, single = YuNetDetector(), YuNetDetector(coarse_side=0)
    calls, single_calls = _counting(detector), _counting(single)
    (face,), (full,) = detector.detect_faces(portrait), single.detect_faces(portrait)
    assert calls == [(160, 123)] and single_calls == [(520, 400)]
    assert _overlap(face.box, _box_region(full.box)) > 0.85 and _overlap(full.box, _box_region(face.box)) > 0.85
    # Landmarks from a 3.25x smaller copy: within a tenth of the face's width of the full pass's.
    assert np.abs(face.landmarks - full.landmarks).max() < 0.1 * full.box.w
    assert face.score >= 0.6


def test_yunet_small_face_in_a_mid_size_image_is_still_found(astronaut: np.ndarray) -> None:
    """In the same 400x520 frame a 45 px face (14 px on the glance) goes on to the coarse and full passes."""
    frame = np.full((520, 400), 128, np.uint8)
    frame[300:370, 200:270] = cv2.resize(_face_crop(astronaut), (70, 70), interpolation=cv2.INTER_AREA)
    detector = YuNetDetector()
    calls = _counting(detector)
    boxes = detector.detect(frame)
    assert calls == [(160, 123), (320, 246), (520, 400)]
    assert len(boxes) == 1 and _overlap(boxes[0], (200, 300, 270, 370)) > 0.9


def test_yunet_glance_defers_to_a_weak_candidate_beside_a_large_face(astronaut: np.ndarray) -> None:
    """A second face too small for the glance to be sure of sends the frame on to the next passes."""
    crop = _face_crop(astronaut)
    frame = np.full((480, 640), 128, np.uint8)
    frame[20:400, 20:400] = cv2.resize(crop, (380, 380), interpolation=cv2.INTER_AREA)
    frame[300:440, 460:600] = cv2.resize(crop, (140, 140), interpolation=cv2.INTER_AREA)
    sure = YuNetDetector(glance_doubt=1.0)  # no doubt check: the glance's sure faces alone decide
    assert len(sure.detect(frame)) == 1
    detector = YuNetDetector()
    calls = _counting(detector)
    boxes = detector.detect(frame)
    assert calls[0] == (120, 160) and len(calls) > 1
    assert len(boxes) == 2 and _overlap(boxes[1], (460, 300, 600, 440)) > 0.9


def test_yunet_glance_is_skipped_where_it_would_save_little(astronaut: np.ndarray) -> None:
    """Under 1.5x the glance's side (240 px) an image goes straight to one pass at its own size."""
    image = cv2.resize(_face_crop(astronaut), (220, 220), interpolation=cv2.INTER_CUBIC)
    detector = YuNetDetector()
    calls = _counting(detector)
    assert len(detector.detect(image)) == 1
    assert calls == [(220, 220)]


def test_yunet_rgba_input_gives_the_rgb_faces() -> None:
    portrait = _portrait()
    rgba = np.dstack([portrait, np.full(portrait.shape[:2], 255, np.uint8)])
    detector = get_detector()
    (rgb_face,), (rgba_face,) = detector.detect_faces(portrait), detector.detect_faces(rgba)
    assert rgb_face.box == rgba_face.box and np.array_equal(rgb_face.landmarks, rgba_face.landmarks)
    with pytest.raises(ValueError, match="RGB"):
        detector.detect_faces(portrait[..., :2])


def _rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_yunet_detection_reuses_its_buffer_and_matches_yuface():
    """yuface's own detect leaks 36 KB a call (its result buffer is never freed): the
    detector calls libfacedetection with a buffer it keeps, with the same results."""
    import yuface
    from skimage import data as skdata

    from src.engine.faces import _ReusedBufferDetect

    detect = _ReusedBufferDetect(yuface)
    for rgb in (skdata.astronaut(), np.zeros((120, 160, 3), np.uint8)):
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        ours, theirs = detect(bgr, conf=0.5), yuface.detect(bgr, conf=0.5)
        assert all(np.array_equal(np.asarray(a, np.int64), np.asarray(b, np.int64)) for a, b in zip(ours, theirs))
    small = np.ascontiguousarray(skdata.astronaut()[::4, ::4, ::-1])
    detect(small)
    before = _rss_kb()
    for _ in range(2000):
        detect(small)
    assert _rss_kb() - before < 8_000, "2,000 detections grew the process by 8 MB or more (yuface leaks 72 MB)"
