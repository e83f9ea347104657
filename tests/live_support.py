"""A live session with a fake detector and recogniser, and a clock the test drives: shared by
the live-camera tests (tests/streams/test_live.py) and the alert tests (tests/analytics/test_alerts.py)."""

from __future__ import annotations

import numpy as np

from src import config
from src.engine.faces import Box, Face
from src.streams.live import LiveSession

LABELS = tuple(config.EMOTIONS)


def onehot(label: str, p: float = 0.9) -> np.ndarray:
    probs = np.full(len(LABELS), (1.0 - p) / (len(LABELS) - 1), np.float32)
    probs[LABELS.index(label)] = p
    return probs


class FakeRecognizer:
    """Returns whatever ``probs`` is set to for every face."""

    class_names = LABELS
    size = config.IMAGE_SIZE

    def __init__(self, label: str = "happy"):
        self.probs = onehot(label)
        self.calls = 0

    def classify(self, faces: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.tile(self.probs, (len(faces), 1))


class FakeDetector:
    def __init__(self, boxes):
        self.boxes = list(boxes)
        self.calls = 0

    def detect_faces(self, rgb):
        self.calls += 1
        return [Face(Box(*box), None, 1.0) for box in self.boxes]


FACE_BOX = (240, 66, 96, 96)


def fake_session(label: str = "happy", boxes=(FACE_BOX,), **kwargs) -> tuple[LiveSession, FakeRecognizer, FakeDetector]:
    recognizer, detector = FakeRecognizer(label), FakeDetector(boxes)
    kwargs.setdefault("detect_width", 0)
    kwargs.setdefault("clock", lambda: 1_000.0)
    session = LiveSession(recognizer=recognizer, detector_factory=lambda: detector, **kwargs)
    return session, recognizer, detector


def feed(
    session: LiveSession,
    recognizer: FakeRecognizer,
    label: str,
    start: float,
    seconds: float,
    fps: float = 5.0,
    frame: np.ndarray | None = None,
) -> float:
    """Process ``seconds`` worth of frames classified as ``label``; returns the end time."""
    frame = np.zeros((480, 640, 3), np.uint8) if frame is None else frame
    recognizer.probs = onehot(label)
    n = int(round(seconds * fps))
    for i in range(n):
        session.process(frame, now=start + i / fps)
    return start + n / fps
