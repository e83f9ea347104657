"""Live-camera emotion recognition for streamlit-webrtc (no Streamlit import here).

One ``LiveSession`` per browser session. Its ``video_frame_callback`` runs in the
WebRTC worker thread: it detects faces (on a downscaled frame, every Nth frame,
reusing the boxes in between), classifies them, smooths each face's probabilities
over time, draws the boxes and pushes per-second counts into a lock-protected ring
buffer. The Streamlit script reads everything through ``snapshot()``, never the
other way round, so no ``st.*`` call ever happens in the worker thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import cv2
import numpy as np
import pandas as pd

from src import config
from src.preprocessing import crop_face

LOGGER = logging.getLogger(__name__)

Clock = Callable[[], float]
BoxT = tuple[int, int, int, int]  # x, y, w, h in frame pixels


class _Classifier(Protocol):
    """What the session needs from ``inference.EmotionRecognizer``."""

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def size(self) -> int: ...

    def classify(self, faces: np.ndarray) -> np.ndarray: ...


def rtc_configuration() -> dict:
    """The RTC configuration for ``webrtc_streamer`` (browser and server side).

    An explicit (possibly empty) ``iceServers`` list stops streamlit-webrtc from
    fetching STUN/TURN servers from the internet on its own.
    """
    return {"iceServers": [dict(server) for server in config.ICE_SERVERS]}


# ---------------------------------------------------------------------------
# Temporal smoothing
# ---------------------------------------------------------------------------


def iou(a: BoxT, b: BoxT) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _centre_distance(a: BoxT, b: BoxT) -> float:
    """Centre distance relative to the larger box side (0 = same centre)."""
    ca = (a[0] + a[2] / 2, a[1] + a[3] / 2)
    cb = (b[0] + b[2] / 2, b[1] + b[3] / 2)
    return float(np.hypot(ca[0] - cb[0], ca[1] - cb[1]) / max(a[2], a[3], b[2], b[3], 1))


@dataclass
class Track:
    """One face followed across frames; ``probs`` is its moving average."""

    id: int
    box: BoxT
    probs: np.ndarray
    last_seen: float
    hits: int = 1

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))


class FaceSmoother:
    """Exponential moving average of class probabilities per tracked face.

    Detections are matched to tracks greedily by IoU (or by centre distance when a
    fast move leaves no overlap), so one face keeps one average and its label only
    changes when the new emotion persists for a few frames.
    """

    def __init__(
        self,
        alpha: float = config.LIVE_SMOOTHING,
        min_iou: float = 0.3,
        max_centre_distance: float = 0.5,
        max_age: float = 1.0,
    ):
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.min_iou = min_iou
        self.max_centre_distance = max_centre_distance
        self.max_age = max_age
        self.tracks: list[Track] = []
        self._next_id = 0

    def _match(self, boxes: Sequence[BoxT]) -> dict[int, Track]:
        pairs = []
        for i, box in enumerate(boxes):
            for track in self.tracks:
                overlap = iou(box, track.box)
                distance = _centre_distance(box, track.box)
                if overlap >= self.min_iou or distance <= self.max_centre_distance:
                    # Sort key: best overlap first, then nearest centre.
                    pairs.append((-overlap, distance, i, track))
        pairs.sort(key=lambda p: (p[0], p[1]))
        matched: dict[int, Track] = {}
        used: set[int] = set()
        for _, _, i, track in pairs:
            if i not in matched and track.id not in used:
                matched[i] = track
                used.add(track.id)
        return matched

    def update(self, boxes: Sequence[BoxT], probs: np.ndarray, now: float) -> list[Track]:
        """Feed one frame's detections; returns the tracks seen in this frame, in box order."""
        probs = np.asarray(probs, dtype=np.float32).reshape(len(boxes), -1) if len(boxes) else probs
        matched = self._match(boxes)
        current: list[Track] = []
        for i, box in enumerate(boxes):
            track = matched.get(i)
            if track is None:
                track = Track(self._next_id, tuple(box), probs[i].copy(), now)
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.probs = (1.0 - self.alpha) * track.probs + self.alpha * probs[i]
                track.box, track.last_seen, track.hits = tuple(box), now, track.hits + 1
            current.append(track)
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_age]
        return current

    def reset(self) -> None:
        self.tracks.clear()


# ---------------------------------------------------------------------------
# Per-second timeline and alert
# ---------------------------------------------------------------------------


@dataclass
class _Second:
    """Counts for one wall-clock second: processed frames, face observations, labels."""

    second: int
    frames: int
    faces: int
    counts: np.ndarray


@dataclass
class LiveSnapshot:
    """What the dashboard shows; built under the lock, safe to keep and render."""

    timeline: pd.DataFrame
    current: dict[str, float]
    alert: bool
    alert_reason: str
    fps: float
    frames: int
    faces: int = 0
    received: int = 0
    dropped: int = 0
    process_ms: float = 0.0
    ready: bool = True
    error: str = ""
    labels: tuple[str, ...] = field(default_factory=lambda: tuple(config.EMOTIONS))


def timeline_frame(seconds: Sequence[_Second], labels: Sequence[str]) -> pd.DataFrame:
    """Emotion mix per second: ``time`` + one column per label (share of the faces seen)."""
    rows = []
    for bucket in seconds:
        shares = bucket.counts / bucket.faces if bucket.faces else np.zeros(len(labels))
        rows.append([datetime.fromtimestamp(bucket.second), *map(float, shares)])
    df = pd.DataFrame(rows, columns=["time", *labels])
    df["time"] = pd.to_datetime(df["time"])
    return df


def negative_alert(
    seconds: Sequence[_Second],
    labels: Sequence[str],
    now: float,
    min_seconds: float = config.ALERT_SECONDS,
    threshold: float = config.ALERT_THRESHOLD,
    negative: Sequence[str] = config.NEGATIVE_EMOTIONS,
) -> tuple[bool, str]:
    """Alert when negative labels are at least ``threshold`` of the faces in every second
    of an unbroken run (ending now) that has lasted ``min_seconds``.

    A second without faces, or more than one missing second, ends the run: an empty
    room or a stopped camera never raises an alert.
    """
    neg_idx = [i for i, name in enumerate(labels) if name in set(negative)]
    if not seconds or not neg_idx:
        return False, ""
    start: int | None = None
    totals = np.zeros(len(labels))
    faces = 0
    previous: int | None = None
    for bucket in reversed(seconds):
        if previous is None and now - bucket.second > 2.0:
            break  # the newest data is stale
        if previous is not None and previous - bucket.second > 2:
            break
        if bucket.faces == 0 or bucket.counts[neg_idx].sum() / bucket.faces < threshold:
            break
        start, previous = bucket.second, bucket.second
        totals += bucket.counts
        faces += bucket.faces
    if start is None:
        return False, ""
    duration = now - start
    if duration < min_seconds:
        return False, ""
    mix = sorted(((totals[i] / faces, labels[i]) for i in neg_idx), reverse=True)
    detail = ", ".join(f"{name} {share:.0%}" for share, name in mix if share > 0)
    share = totals[neg_idx].sum() / faces
    return True, (
        f"Negative emotions on {share:.0%} of faces for the last {duration:.0f} s "
        f"({detail}; alert at {threshold:.0%} for {min_seconds:g} s)"
    )


# ---------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------


def tune_switch_interval(interval: float | None = None) -> None:
    """Lower the GIL switch interval (never raise it) for the frame worker's sake.

    Measured in the dashboard on 2 busy cores: detection 300 -> 100 ms and classification
    ~200 -> ~50 ms per frame at 1 ms instead of Python's default 5 ms.
    """
    interval = config.LIVE_SWITCH_INTERVAL if interval is None else interval
    if 0 < interval < sys.getswitchinterval():
        sys.setswitchinterval(interval)


@dataclass(frozen=True)
class _Face:
    """Duck-typed like ``FaceResult`` for ``draw.annotate``."""

    box: BoxT
    emotion: str
    confidence: float


class LiveSession:
    """Per-browser-session live processing state, shared by the worker thread and the script.

    ``clock`` returns wall-clock seconds (injectable for tests). Pass the app's already
    loaded ``recognizer``; without one the process-wide one is loaded in a background
    thread on the first frame, and frames pass through unannotated until it is ready.
    """

    def __init__(
        self,
        recognizer: _Classifier | None = None,
        clock: Clock = time.time,
        detect_width: int = config.LIVE_DETECT_WIDTH,
        detect_every: int = config.LIVE_DETECT_EVERY,
        smoothing: float = config.LIVE_SMOOTHING,
        window_seconds: int = config.LIVE_WINDOW_SECONDS,
        detector_factory: Callable[[], object] | None = None,
    ):
        self._recognizer = recognizer
        self.clock = clock
        self.detect_width = detect_width
        self.detect_every = max(1, detect_every)
        self.window_seconds = window_seconds
        self._detector_factory = detector_factory
        self.smoother = FaceSmoother(alpha=smoothing)
        # _busy guards the frame pipeline (one frame at a time); _lock guards the
        # published results and is only ever held for a few microseconds.
        self._busy = threading.Lock()
        self._lock = threading.Lock()
        self._seconds: deque[_Second] = deque(maxlen=window_seconds + 1)
        self._processed_at: deque[float] = deque(maxlen=256)
        self._process_ms: deque[float] = deque(maxlen=64)
        self._current: dict[str, float] = {}
        self._faces = 0
        self._frames = 0
        self._received = 0
        self._dropped = 0
        self._error = ""
        self._boxes: list[BoxT] = []
        self._last_faces: list[_Face] = []
        self._since_detect = 0
        self._started: float | None = None
        self._loader: threading.Thread | None = None
        tune_switch_interval()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._recognizer.class_names) if self._recognizer is not None else tuple(config.EMOTIONS)

    def _classifier(self) -> _Classifier | None:
        """The recognizer, or None while it is still loading in the background.

        Loading TensorFlow and the model takes 5-20 s; doing it inside the callback would
        stall the stream (streamlit-webrtc kills a processing thread after 10 s).
        """
        if self._recognizer is not None:
            return self._recognizer
        with self._lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load_recognizer, name="live-model-loader", daemon=True)
                self._loader.start()
        return None

    def _load_recognizer(self) -> None:
        try:
            from src.inference import get_recognizer

            self._recognizer = get_recognizer()
        except Exception as exc:
            LOGGER.exception("live model loading failed")
            with self._lock:
                self._error = f"model not available: {type(exc).__name__}: {exc}"

    @property
    def ready(self) -> bool:
        """True once frames can be classified (the model is loaded)."""
        return self._recognizer is not None

    def _detector(self):
        if self._detector_factory is not None:
            return self._detector_factory()
        from src.faces import get_detector  # thread-local: this runs in the WebRTC worker thread

        return get_detector(max_side=max(self.detect_width, 0))

    # -- worker thread ------------------------------------------------------

    def video_frame_callback(self, frame):
        """streamlit-webrtc callback: annotated copy of ``frame`` (an ``av.VideoFrame``)."""
        import av

        with self._lock:
            self._received += 1
        rgb = frame.to_ndarray(format="rgb24")
        if not self._busy.acquire(blocking=False):
            # Another frame is still in the pipeline: don't queue behind it, just redraw
            # the last result on this one so the video stays fluid.
            with self._lock:
                self._dropped += 1
            out = self._draw(rgb, self._last_faces)
        else:
            start = time.perf_counter()
            try:
                out = self.process(rgb)
                with self._lock:
                    self._process_ms.append((time.perf_counter() - start) * 1000.0)
            except Exception as exc:  # a crash here would kill the stream for good
                LOGGER.exception("live frame processing failed")
                with self._lock:
                    self._error = f"{type(exc).__name__}: {exc}"
                out = rgb
            finally:
                self._busy.release()
        new = av.VideoFrame.from_ndarray(out, format="rgb24")
        new.pts = frame.pts
        if frame.time_base is not None:
            new.time_base = frame.time_base
        return new

    def process(self, rgb: np.ndarray, now: float | None = None) -> np.ndarray:
        """Detect (when due), classify, smooth, record; returns the annotated RGB frame."""
        now = self.clock() if now is None else now
        recognizer = self._classifier()
        if recognizer is None:
            return rgb  # still loading: show the camera as is
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self._since_detect == 0 or not self._boxes:
            self._boxes = self._detect(gray)
            self._since_detect = 0
        self._since_detect = (self._since_detect + 1) % self.detect_every
        boxes = self._boxes
        if boxes:
            crops = np.stack([crop_face(gray, b, recognizer.size) for b in boxes])
            probs = recognizer.classify(crops)
        else:
            probs = np.zeros((0, len(recognizer.class_names)), np.float32)
        tracks = self.smoother.update(boxes, probs, now)
        labels = tuple(recognizer.class_names)
        faces = [_Face(t.box, labels[t.top], float(t.probs[t.top])) for t in tracks]
        self._last_faces = faces
        self._record(now, tracks, labels)
        return self._draw(rgb, faces)

    def _detect(self, gray: np.ndarray) -> list[BoxT]:
        # The detector works on a detect_width copy and returns boxes in frame pixels.
        return [tuple(int(v) for v in box[:4]) for box in self._detector().detect(gray)]

    @staticmethod
    def _draw(rgb: np.ndarray, faces: Sequence[_Face]) -> np.ndarray:
        from src.draw import annotate

        return annotate(rgb, faces) if faces else rgb

    def _record(self, now: float, tracks: Sequence[Track], labels: Sequence[str]) -> None:
        second = int(now)
        counts = np.zeros(len(labels), np.int64)
        for track in tracks:
            counts[track.top] += 1
        current = (
            {name: float(p) for name, p in zip(labels, np.mean([t.probs for t in tracks], axis=0))} if tracks else {}
        )
        with self._lock:
            if self._started is None:
                self._started = now
            if self._seconds and self._seconds[-1].second == second:
                bucket = self._seconds[-1]
                bucket.frames += 1
                bucket.faces += len(tracks)
                bucket.counts += counts
            else:
                self._seconds.append(_Second(second, 1, len(tracks), counts))
            self._processed_at.append(now)
            self._frames += 1
            self._faces = len(tracks)
            self._current = current

    # -- script thread ------------------------------------------------------

    def snapshot(self, now: float | None = None) -> LiveSnapshot:
        """A consistent copy of the results so far (safe while frames are processed)."""
        now = self.clock() if now is None else now
        labels = self.labels
        with self._lock:
            seconds = [_Second(b.second, b.frames, b.faces, b.counts.copy()) for b in self._seconds]
            processed = list(self._processed_at)
            current = dict(self._current)
            frames, faces, received, dropped, error = (
                self._frames,
                self._faces,
                self._received,
                self._dropped,
                self._error,
            )
            started = self._started
            process_ms = float(np.mean(self._process_ms)) if self._process_ms else 0.0
        seconds = [b for b in seconds if b.second > now - self.window_seconds - 1]
        alert, reason = negative_alert(seconds, labels, now)
        return LiveSnapshot(
            timeline=timeline_frame(seconds, labels),
            current=current if processed and now - processed[-1] <= 2.0 else {},
            alert=alert,
            alert_reason=reason,
            fps=_fps(processed, started, now),
            frames=frames,
            faces=faces,
            received=received,
            dropped=dropped,
            process_ms=process_ms,
            ready=self.ready,
            error=error,
            labels=labels,
        )

    def reset(self) -> None:
        """Forget everything (e.g. when the user presses STOP and START again)."""
        with self._busy, self._lock:
            self._seconds.clear()
            self._processed_at.clear()
            self._process_ms.clear()
            self._current, self._faces, self._frames = {}, 0, 0
            self._received = self._dropped = 0
            self._error = ""
            self._boxes, self._last_faces, self._since_detect = [], [], 0
            self._started = None
            self.smoother.reset()


def _fps(processed: Sequence[float], started: float | None, now: float, window: float = 2.0) -> float:
    """Processed frames per second over the last ``window`` seconds (0 once frames stop)."""
    if not processed or started is None:
        return 0.0
    # At least half a second, so the first frames don't read as hundreds of fps.
    span = max(0.5, min(window, now - started))
    recent = sum(1 for t in processed if now - t <= window)
    return recent / span


__all__ = [
    "FaceSmoother",
    "LiveSession",
    "LiveSnapshot",
    "Track",
    "iou",
    "negative_alert",
    "rtc_configuration",
    "timeline_frame",
    "tune_switch_interval",
]
