"""Live-camera emotion recognition for streamlit-webrtc (no Streamlit import here).

One ``LiveSession`` per browser session, made of two halves:

* ``FramePipeline`` (scheduling and classification): every Nth frame detects faces on
  a downscaled copy, aligns and classifies them and smooths each face's probabilities
  over time (``FaceSmoother``, which also gives each face a track id); the frames in
  between reuse those faces and labels. It draws the boxes on every frame.
* ``LiveStats`` (recording and statistics): per-second label counts in a ring buffer,
  frame counters, the alert, and each track's tally (``people.TrackTally``: its detections'
  mean probabilities, first and last seen), behind one short-held lock. The alert watches one
  emotion group (``src.analytics.groups``; ``FER_ALERT_GROUP``, by default sentiment's *negative*).
  Tracks that end (their face gone for ``FER_TRACK_MAX_AGE``) are handed out as people
  summaries (``finished_tracks``), each with a sequence number, for the recorder to store once.

When a webhook is configured (``FER_ALERT_WEBHOOK``, or a ``notifier`` passed in), the
session also checks the alert after every processed frame and, each time it turns on (not
while it stays on), hands an event to ``src.analytics.alerts``, whose own thread POSTs it: the video
thread never waits on the network. Without one nothing of this runs.

``LiveSession.video_frame_callback`` runs in the WebRTC worker thread and passes one
frame at a time from the first to the second. The Streamlit script reads everything
through ``snapshot()``, never the other way round, so no ``st.*`` call ever happens in
the worker thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import cv2
import numpy as np
import pandas as pd

from src import config
from src.analytics import groups
from src.analytics.alerts import AlertNotifier, live_alert_event, shared_notifier
from src.analytics.people import Person, TrackTally
from src.engine import doubt
from src.engine.preprocessing import extract_face
from src.engine.tracking import BoxT, FaceSmoother, Track

LOGGER = logging.getLogger(__name__)
FINISHED_KEPT = 4096  # finished tracks kept for the recorder (it takes them within seconds)

Clock = Callable[[], float]


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


# ---------------------------------------------------------------------------
# Recording and statistics: per-second timeline, counters, alert
# ---------------------------------------------------------------------------


@dataclass
class SecondCounts:
    """Counts for one wall-clock second: processed frames, face observations, top labels, and
    ``watched``: the face observations in the alert's group (its confidence threshold applied)."""

    second: int
    frames: int
    faces: int
    counts: np.ndarray
    watched: int = 0


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
    alert_group: str = "negative"  # the group the alert watches (a user's name: plain text)
    people: int = 0  # people seen since the start (or reset): tracks with enough detections


@dataclass(frozen=True)
class FinishedTrack:
    """A track that ended, summed up as a person (``people.is_person`` says whether it counts);
    ``seq`` numbers finished tracks from 1 in the order they ended, over the session's life."""

    seq: int
    person: Person


def timeline_frame(seconds: Sequence[SecondCounts], labels: Sequence[str]) -> pd.DataFrame:
    """Emotion mix per second: ``time`` + one column per label (share of the faces seen)."""
    rows = []
    for bucket in seconds:
        shares = bucket.counts / bucket.faces if bucket.faces else np.zeros(len(labels))
        rows.append([datetime.fromtimestamp(bucket.second), *map(float, shares)])
    df = pd.DataFrame(rows, columns=["time", *labels])
    df["time"] = pd.to_datetime(df["time"])
    return df


@dataclass(frozen=True)
class AlertState:
    """The alert at one moment, with the figures of the run of seconds behind it."""

    active: bool
    reason: str = ""
    group: str = "negative"
    share: float = 0.0  # of the run's face observations, those in the group
    duration: float = 0.0  # seconds since the run started
    counts: dict[str, int] = field(default_factory=dict)  # face observations per top label over the run
    faces: int = 0


def group_alert(
    seconds: Sequence[SecondCounts],
    labels: Sequence[str],
    now: float,
    min_seconds: float,
    threshold: float,
    group: groups.Group,
) -> AlertState:
    """Alert when faces in ``group`` are at least ``threshold`` of the faces in every second
    of an unbroken run (ending now) that has lasted ``min_seconds``.

    A second without faces, or more than one missing second, ends the run: an empty
    room or a stopped camera never raises an alert. A group with ``min_confidence`` is
    counted from ``SecondCounts.watched``, which ``LiveStats`` records for its own alert
    group; a group without one from the per-label counts.
    """
    members = set(group.emotions)
    idx = [i for i, name in enumerate(labels) if name in members]
    if not seconds or not idx:
        return AlertState(False, group=group.name)
    if group.min_confidence is None:
        hits = [int(b.counts[idx].sum()) for b in seconds]
    else:
        hits = [b.watched for b in seconds]
    return _alert_state(
        [b.second for b in seconds],
        [b.faces for b in seconds],
        hits,
        [b.counts for b in seconds],
        labels,
        now,
        min_seconds,
        threshold,
        group,
    )


def _run_start(second: list[int], faces: list[int], hits: list[int], now: float, threshold: float) -> int | None:
    """Index of the first second of the run ending now in which hits are >= threshold of faces."""
    first: int | None = None
    for i in range(len(second) - 1, -1, -1):
        if first is None and now - second[i] > 2.0:
            break  # the newest data is stale
        if first is not None and second[first] - second[i] > 2:
            break
        if faces[i] == 0 or hits[i] / faces[i] < threshold:
            break
        first = i
    return first


def _alert_state(
    second: list[int],
    faces: list[int],
    hits: list[int],
    counts: Sequence[np.ndarray],
    labels: Sequence[str],
    now: float,
    min_seconds: float,
    threshold: float,
    group: groups.Group,
) -> AlertState:
    members = set(group.emotions)
    first = _run_start(second, faces, hits, now, threshold)
    if first is None or now - second[first] < min_seconds or members.isdisjoint(labels):
        return AlertState(False, group=group.name)
    duration = now - second[first]
    totals = np.sum(counts[first:], axis=0)
    total_faces = sum(faces[first:])
    mix = sorted(((totals[i] / total_faces, name) for i, name in enumerate(labels) if name in members), reverse=True)
    detail = ", ".join(f"{name} {share:.0%}" for share, name in mix if share > 0)
    share = sum(hits[first:]) / total_faces
    head = "Negative emotions" if group.name == "negative" else f'Group "{group.name}"'
    sure = f" at {group.min_confidence:.0%} confidence or more" if group.min_confidence is not None else ""
    reason = (
        f"{head} on {share:.0%} of faces{sure} for the last {duration:.0f} s "
        f"({detail}; alert at {threshold:.0%} for {min_seconds:g} s)"
    )
    per_label = {name: int(n) for name, n in zip(labels, totals)}
    return AlertState(True, reason, group.name, float(share), float(duration), per_label, int(total_faces))


def negative_alert(
    seconds: Sequence[SecondCounts],
    labels: Sequence[str],
    now: float,
    min_seconds: float,
    threshold: float,
    negative: Sequence[str] = config.NEGATIVE_EMOTIONS,
) -> tuple[bool, str]:
    """``group_alert`` for a group named negative of these emotions, as (alert, reason)."""
    state = group_alert(seconds, labels, now, min_seconds, threshold, groups.Group("negative", tuple(negative)))
    return state.active, state.reason


def _fps(processed: Sequence[float], started: float | None, now: float, window: float = 2.0) -> float:
    """Processed frames per second over the last ``window`` seconds (0 once frames stop)."""
    if not processed or started is None:
        return 0.0
    # At least half a second, so the first frames don't read as hundreds of fps.
    span = max(0.5, min(window, now - started))
    recent = sum(1 for t in processed if now - t <= window)
    return recent / span


class LiveStats:
    """What one live session has seen: the per-second label counts, frame counters and the alert.

    The frame worker writes (``frame_received``, ``frame_dropped``, ``record``,
    ``processing_took``, ``failed``); the Streamlit script reads (``seconds``, ``alert``,
    ``snapshot``). One lock, only ever held for microseconds, makes each read a
    consistent copy. The alert settings are fixed at construction: the alert watches
    ``alert_group``, by default a group named negative of the ``negative`` emotions.
    """

    def __init__(
        self,
        window_seconds: int = config.LIVE_WINDOW_SECONDS,
        alert_seconds: float = config.ALERT_SECONDS,
        alert_threshold: float = config.ALERT_THRESHOLD,
        negative: Sequence[str] = config.NEGATIVE_EMOTIONS,
        alert_group: groups.Group | None = None,
    ):
        self.window_seconds = window_seconds
        self.alert_seconds = alert_seconds
        self.alert_threshold = alert_threshold
        self.alert_group = alert_group or groups.Group("negative", tuple(negative))
        self.negative = self.alert_group.emotions
        self._lock = threading.Lock()
        self._seconds: deque[SecondCounts] = deque(maxlen=window_seconds + 1)
        self._processed_at: deque[float] = deque(maxlen=256)
        self._process_ms: deque[float] = deque(maxlen=64)
        self._current: dict[str, float] = {}
        self._counts = {"received": 0, "dropped": 0, "frames": 0, "faces": 0}
        self._error = ""
        self._started: float | None = None
        self._open: dict[int, TrackTally] = {}  # tracks still followed, by id
        self._ended: deque[FinishedTrack] = deque(maxlen=FINISHED_KEPT)
        self._seq = 0  # never reset: a recorder's "written up to" stays valid across resets
        self._people = 0  # tracks that counted as people, ended or open
        self._labels: tuple[str, ...] = tuple(config.EMOTIONS)

    # -- worker thread ------------------------------------------------------

    def frame_received(self) -> None:
        with self._lock:
            self._counts["received"] += 1

    def frame_dropped(self) -> None:
        """A frame that arrived while another was still being processed."""
        with self._lock:
            self._counts["dropped"] += 1

    def processing_took(self, ms: float) -> None:
        with self._lock:
            self._process_ms.append(ms)

    def failed(self, message: str) -> None:
        with self._lock:
            self._error = message

    def record(
        self,
        now: float,
        tracks: Sequence[Track],
        labels: Sequence[str],
        *,
        observed: Mapping[int, np.ndarray] | None = None,
        ended: Iterable[int] = (),
        doubtful: Mapping[int, bool] | None = None,
    ) -> None:
        """One processed frame: the faces seen in it, each counted under its smoothed top label.

        A track detected anew (its ``last_seen`` moved) adds a sample to its tally, with its
        probabilities in ``observed`` (the detection's own, by track id) or else its smoothed
        ones; the ids in ``ended`` are tracks the tracker let go: their tallies are finished.
        ``doubtful`` says, by track id, whether that detection's label is doubtful
        (``src.engine.doubt``): a person is doubtful when most of their samples are."""
        counts = np.zeros(len(labels), np.int64)
        watched = 0
        for track in tracks:
            counts[track.top] += 1
            watched += self.alert_group.matches(labels[track.top], float(track.probs[track.top]))
        current = (
            {name: float(p) for name, p in zip(labels, np.mean([t.probs for t in tracks], axis=0))} if tracks else {}
        )
        with self._lock:
            if self._started is None:
                self._started = now
            if self._seconds and self._seconds[-1].second == int(now):
                bucket = self._seconds[-1]
                bucket.frames += 1
                bucket.faces += len(tracks)
                bucket.counts += counts
                bucket.watched += watched
            else:
                self._seconds.append(SecondCounts(int(now), 1, len(tracks), counts, watched))
            self._processed_at.append(now)
            self._counts["frames"] += 1
            self._counts["faces"] = len(tracks)
            self._current = current
            self._labels = tuple(labels)
            self._tally(now, tracks, observed or {}, ended, doubtful or {})

    def _tally(
        self,
        now: float,
        tracks: Sequence[Track],
        observed: Mapping[int, np.ndarray],
        ended: Iterable[int],
        doubtful: Mapping[int, bool],
    ) -> None:
        """Add this frame's detections to their tracks' tallies, finish the ended ones (lock held).

        A track unseen for a whole window has ended whoever says so (the tracker lets go within
        seconds): a caller that never passes ``ended`` does not keep tallies forever."""
        becomes_person = max(1, int(config.PERSON_MIN_SAMPLES))  # the sample that makes a track a person
        for track in tracks:
            probs = observed.get(track.id, track.probs)
            uncertain = bool(doubtful.get(track.id, False))
            tally = self._open.get(track.id)
            if tally is None:
                tally = self._open[track.id] = TrackTally.start(track.id, track.last_seen, probs, uncertain)
            elif track.last_seen > tally.last_seen:
                tally.add(track.last_seen, probs, uncertain)
            else:
                continue  # the last detection's faces, reused on this frame: no new sample
            self._people += tally.samples == becomes_person
        for track_id in ended:
            self._finish(track_id)
        for track_id in [i for i, tally in self._open.items() if now - tally.last_seen > self.window_seconds]:
            self._finish(track_id)

    def _finish(self, track_id: int) -> None:
        tally = self._open.pop(track_id, None)
        if tally is not None:
            self._seq += 1
            self._ended.append(FinishedTrack(self._seq, tally.person(self._labels)))

    # -- script thread ------------------------------------------------------

    def finished_tracks(self, after: int = 0, *, final: bool = False) -> list[FinishedTrack]:
        """The tracks that ended after sequence number ``after``, oldest first (the last
        ``FINISHED_KEPT``). ``final``: the session stops, so every open track ends now."""
        with self._lock:
            if final:
                for track_id in list(self._open):
                    self._finish(track_id)
            return [t for t in self._ended if t.seq > after]

    def seconds(self, now: float) -> list[SecondCounts]:
        """Copies of the seconds inside the window ending at ``now``, oldest first."""
        with self._lock:
            seconds = [SecondCounts(b.second, b.frames, b.faces, b.counts.copy(), b.watched) for b in self._seconds]
        return [b for b in seconds if b.second > now - self.window_seconds - 1]

    def alert(self, now: float, labels: Sequence[str]) -> tuple[bool, str]:
        """``group_alert`` over the window with this session's settings, as (alert, reason)."""
        state = self.alert_state(now, labels)
        return state.active, state.reason

    def alert_state(self, now: float, labels: Sequence[str]) -> AlertState:
        """The alert with its figures (share, duration, counts over the run), for events."""
        return self._alert(self.seconds(now), now, labels)

    def alert_on(self, now: float) -> bool:
        """Whether the alert is on: ``alert_state(...).active`` from plain counters, cheap enough
        for every frame (tens of microseconds, where the full state costs hundreds)."""
        oldest = now - self.window_seconds - 1
        with self._lock:
            buckets = [b for b in self._seconds if b.second > oldest]
            second = [b.second for b in buckets]
            faces = [b.faces for b in buckets]
            hits = [b.watched for b in buckets]
        first = _run_start(second, faces, hits, now, self.alert_threshold)
        return first is not None and now - second[first] >= self.alert_seconds

    def _alert(self, seconds: Sequence[SecondCounts], now: float, labels: Sequence[str]) -> AlertState:
        # ``watched`` counts this session's alert group in every second, threshold or not.
        return _alert_state(
            [b.second for b in seconds],
            [b.faces for b in seconds],
            [b.watched for b in seconds],
            [b.counts for b in seconds],
            labels,
            now,
            self.alert_seconds,
            self.alert_threshold,
            self.alert_group,
        )

    def snapshot(self, now: float, labels: Sequence[str], ready: bool = True, error: str = "") -> LiveSnapshot:
        """A consistent copy of the results so far; ``error`` is shown when no frame failed."""
        seconds = self.seconds(now)
        with self._lock:
            processed = list(self._processed_at)
            current = dict(self._current)
            counts = dict(self._counts)
            started = self._started
            process_ms = float(np.mean(self._process_ms)) if self._process_ms else 0.0
            error = self._error or error
            people = self._people
        alert = self._alert(seconds, now, labels)
        return LiveSnapshot(
            timeline=timeline_frame(seconds, labels),
            current=current if processed and now - processed[-1] <= 2.0 else {},
            alert=alert.active,
            alert_reason=alert.reason,
            alert_group=self.alert_group.name,
            fps=_fps(processed, started, now),
            process_ms=process_ms,
            ready=ready,
            error=error,
            labels=tuple(labels),
            people=people,
            **counts,
        )

    def reset(self) -> None:
        with self._lock:
            self._seconds.clear()
            self._processed_at.clear()
            self._process_ms.clear()
            self._current = {}
            self._counts = dict.fromkeys(self._counts, 0)
            self._error = ""
            self._started = None
            self._open.clear()
            self._ended.clear()
            self._people = 0


# ---------------------------------------------------------------------------
# Scheduling and classification: detection every Nth frame, smoothing, drawing
# ---------------------------------------------------------------------------


def tune_switch_interval(interval: float | None = None) -> None:
    """Lower the GIL switch interval (never raise it) for the frame worker's sake.

    Measured in the dashboard on 2 busy cores: detection 300 -> 100 ms and classification
    ~200 -> ~50 ms per frame at 1 ms instead of Python's default 5 ms.
    """
    interval = config.LIVE_SWITCH_INTERVAL if interval is None else interval
    if 0 < interval < sys.getswitchinterval():
        sys.setswitchinterval(interval)


def _doubtful(recognizer, faces: Sequence, crops: np.ndarray, shape: tuple[int, ...], probs: np.ndarray) -> list[bool]:
    """Whether each detected face's label is doubtful (``src.engine.doubt``), as photos judge it.

    A classifier without a manifest (a stand-in) has no calibration: its probabilities are
    taken as they are."""
    info = getattr(recognizer, "info", None)
    temperature = float(getattr(info, "temperature", 1.0) or 1.0)
    wild = getattr(recognizer, "temperature_wild", None)
    return [
        doubt.assess(f.box, f.landmarks, crop, p, temperature, wild, image_shape=shape).uncertain
        for f, crop, p in zip(faces, crops, probs)
    ]


@dataclass(frozen=True)
class _Face:
    """Duck-typed like ``FaceResult`` for ``draw.annotate``."""

    box: BoxT
    emotion: str
    confidence: float
    uncertain: bool = False


class FramePipeline:
    """Frames in, smoothed per-face labels out: what happens to one frame.

    Faces are detected and classified every ``detect_every``-th frame (on a
    ``detect_width`` copy) and reused in between; each face's probabilities are smoothed
    over its detections (``FaceSmoother``). Not thread-safe on its own:
    ``LiveSession`` hands it one frame at a time.

    Pass an already loaded ``recognizer``; without one the process-wide one is loaded in
    a background thread on the first frame, and frames are skipped until it is ready.
    """

    def __init__(
        self,
        recognizer: _Classifier | None = None,
        detect_width: int = config.LIVE_DETECT_WIDTH,
        detect_every: int = config.LIVE_DETECT_EVERY,
        smoothing: float = config.LIVE_SMOOTHING,
        detector_factory: Callable[[], object] | None = None,
    ):
        self.detect_width = detect_width
        self.detect_every = max(1, detect_every)
        self.smoother = FaceSmoother(alpha=smoothing)
        self.load_error = ""
        self._recognizer = recognizer
        self._detector_factory = detector_factory
        self._loader: threading.Thread | None = None
        self._faces: list = []  # the last detection (src.engine.faces.Face), reused until the next one
        self._tracks: list[Track] = []  # and its smoothed tracks
        self._since_detect = 0
        self._last_faces: list[_Face] = []
        # What the last ``classify`` call found out about tracks, for ``LiveStats.record``: each
        # detected track's own probabilities (empty between detections) and the ids of the
        # tracks the tracker let go (their faces gone for longer than it waits).
        self.observed: dict[int, np.ndarray] = {}
        self.doubtful: dict[int, bool] = {}  # by track id: whether this detection's label is doubtful
        self.ended: set[int] = set()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._recognizer.class_names) if self._recognizer is not None else tuple(config.EMOTIONS)

    @property
    def ready(self) -> bool:
        """True once frames can be classified (the model is loaded)."""
        return self._recognizer is not None

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait for a background model load, if one is under way; returns ``ready``."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self.ready

    def _classifier(self) -> _Classifier | None:
        """The recognizer, or None while it is still loading in the background.

        Loading TensorFlow and the model takes 5-20 s; doing it inside the callback would
        stall the stream (streamlit-webrtc kills a processing thread after 10 s).
        """
        if self._recognizer is None and self._loader is None:
            self._loader = threading.Thread(target=self._load_recognizer, name="live-model-loader", daemon=True)
            self._loader.start()
        return self._recognizer

    def _load_recognizer(self) -> None:
        try:
            from src.engine.inference import get_recognizer

            self._recognizer = get_recognizer()
        except Exception as exc:
            LOGGER.exception("live model loading failed")
            self.load_error = f"model not available: {type(exc).__name__}: {exc}"

    def _detector(self):
        if self._detector_factory is not None:
            return self._detector_factory()
        from src.engine.faces import get_detector  # thread-local: this runs in the WebRTC worker thread

        return get_detector(max_side=max(self.detect_width, 0))

    def _detect(self, rgb: np.ndarray) -> list:
        # The detector works on a detect_width copy and returns faces in frame pixels.
        return list(self._detector().detect_faces(rgb))

    def classify(self, rgb: np.ndarray, now: float) -> list[Track] | None:
        """The faces of this frame as smoothed tracks (detecting when due); None while the model loads."""
        recognizer = self._classifier()
        if recognizer is None:
            return None
        if self._since_detect != 0 and self._faces:
            # Between detections the faces and their labels stand: at 15 fps and every 3rd
            # frame, labels still change 5 times a second, and a frame costs almost nothing.
            self._since_detect = (self._since_detect + 1) % self.detect_every
            self.observed, self.ended, self.doubtful = {}, set(), {}
            return self._tracks
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        self._faces = self._detect(rgb)
        self._since_detect = 1 % self.detect_every
        boxes = [tuple(int(v) for v in face.box) for face in self._faces]
        if boxes:
            crops = np.stack([extract_face(gray, f.box, f.landmarks, recognizer.size) for f in self._faces])
            probs = recognizer.classify(crops)
            doubts = _doubtful(recognizer, self._faces, crops, rgb.shape, probs)
        else:
            probs = np.zeros((0, len(recognizer.class_names)), np.float32)
            doubts = []
        followed = {t.id for t in self.smoother.tracks}
        tracks = self.smoother.update(boxes, probs, now)
        self.observed = {t.id: np.asarray(p, np.float64) for t, p in zip(tracks, probs)}
        self.doubtful = {t.id: d for t, d in zip(tracks, doubts)}
        self.ended = followed - {t.id for t in self.smoother.tracks}
        labels = self.labels
        self._last_faces = [
            _Face(t.box, labels[t.top], float(t.probs[t.top]), self.doubtful.get(t.id, False)) for t in tracks
        ]
        self._tracks = tracks
        return tracks

    def draw(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` with the latest faces boxed and labelled (safe from any thread: it only reads)."""
        from src.streams.draw import annotate

        faces = self._last_faces
        return annotate(rgb, faces) if faces else rgb

    def reset(self) -> None:
        self._faces, self._tracks, self._since_detect, self._last_faces = [], [], 0, []
        self.observed, self.ended, self.doubtful = {}, set(), {}
        self.smoother.reset()


# ---------------------------------------------------------------------------
# The session: frame scheduling between the WebRTC worker and the two halves
# ---------------------------------------------------------------------------


def resolve_alert_group(spec: str | groups.Group) -> tuple[str, groups.Group, str]:
    """(grouping name, group, problem) for the alert: ``spec`` looked up in the active groups;
    an unknown name gives sentiment's negative group and a message saying so."""
    if isinstance(spec, groups.Group):
        return "", spec, ""
    group_set = groups.active()
    try:
        grouping, group = group_set.find_group(spec)
        return grouping.name, group, ""
    except groups.GroupError as exc:
        problem = f"FER_ALERT_GROUP: {exc}; the live alert watches negative emotions instead"
        LOGGER.warning(problem)
        return groups.SENTIMENT, group_set.sentiment.group("negative"), problem


class LiveSession:
    """One browser session's live camera: a ``FramePipeline`` whose results a ``LiveStats`` records.

    ``video_frame_callback`` runs in the WebRTC worker thread and takes one frame at a
    time: a frame that arrives while another is processed is not queued but shown with
    the last boxes. The Streamlit script reads through ``snapshot()``. ``clock`` returns
    wall-clock seconds (injectable for tests). The alert settings default to config's:
    ``alert_group`` is a ``groups.Group`` or a name for ``GroupSet.find_group`` in the active
    groups (an unknown name falls back to negative, with ``alert_problem`` saying so);
    events go to ``notifier``, or to the shared notifier of ``alert_webhook`` when set.
    """

    def __init__(
        self,
        recognizer: _Classifier | None = None,
        clock: Clock = time.time,
        detect_width: int = config.LIVE_DETECT_WIDTH,
        detect_every: int = config.LIVE_DETECT_EVERY,
        smoothing: float = config.LIVE_SMOOTHING,
        window_seconds: int = config.LIVE_WINDOW_SECONDS,
        alert_seconds: float = config.ALERT_SECONDS,
        alert_threshold: float = config.ALERT_THRESHOLD,
        detector_factory: Callable[[], object] | None = None,
        alert_group: str | groups.Group = config.ALERT_GROUP,
        alert_webhook: str = config.ALERT_WEBHOOK,
        notifier: AlertNotifier | None = None,
    ):
        self.clock = clock
        self.pipeline = FramePipeline(recognizer, detect_width, detect_every, smoothing, detector_factory)
        self.alert_grouping, group, self.alert_problem = resolve_alert_group(alert_group)
        self.stats = LiveStats(window_seconds, alert_seconds, alert_threshold, alert_group=group)
        self.notifier = notifier if notifier is not None else shared_notifier(alert_webhook) if alert_webhook else None
        self._alert_on = False  # the alert as of the last processed frame, for edge detection
        self._busy = threading.Lock()  # one frame in the pipeline at a time
        tune_switch_interval()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.pipeline.labels

    @property
    def ready(self) -> bool:
        return self.pipeline.ready

    # -- worker thread ------------------------------------------------------

    def video_frame_callback(self, frame):
        """streamlit-webrtc callback: annotated copy of ``frame`` (an ``av.VideoFrame``)."""
        import av

        self.stats.frame_received()
        rgb = frame.to_ndarray(format="rgb24")
        if not self._busy.acquire(blocking=False):
            # Another frame is still in the pipeline: don't queue behind it, just redraw
            # the last result on this one so the video stays fluid.
            self.stats.frame_dropped()
            out = self.pipeline.draw(rgb)
        else:
            start = time.perf_counter()
            try:
                out = self._process(rgb, self.clock())
                self.stats.processing_took((time.perf_counter() - start) * 1000.0)
            except Exception as exc:  # a crash here would kill the stream for good
                LOGGER.exception("live frame processing failed")
                self.stats.failed(f"{type(exc).__name__}: {exc}")
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
        with self._busy:
            return self._process(rgb, self.clock() if now is None else now)

    def _process(self, rgb: np.ndarray, now: float) -> np.ndarray:
        tracks = self.pipeline.classify(rgb, now)
        if tracks is None:
            return rgb  # still loading: show the camera as is
        self.stats.record(
            now,
            tracks,
            self.pipeline.labels,
            observed=self.pipeline.observed,
            ended=self.pipeline.ended,
            doubtful=self.pipeline.doubtful,
        )
        if self.notifier is not None:
            self._watch_alert(now)
        return self.pipeline.draw(rgb)

    def _watch_alert(self, now: float) -> None:
        """One event per alert episode: when the alert turns on, not while it stays on."""
        on = self.stats.alert_on(now)
        state = self.stats.alert_state(now, self.labels) if on and not self._alert_on else None
        if state is not None and state.active:
            event = live_alert_event(
                state.reason,
                when=now,
                window_seconds=self.stats.alert_seconds,
                duration_seconds=state.duration,
                share=state.share,
                threshold=self.stats.alert_threshold,
                group=state.group,
                grouping=self.alert_grouping,
                counts=state.counts,
                faces=state.faces,
            )
            self.notifier.notify(event)  # queued; the notifier's own thread does the POST
        self._alert_on = on

    # -- script thread ------------------------------------------------------

    def snapshot(self, now: float | None = None) -> LiveSnapshot:
        """A consistent copy of the results so far (safe while frames are processed)."""
        now = self.clock() if now is None else now
        return self.stats.snapshot(now, self.labels, ready=self.ready, error=self.pipeline.load_error)

    def reset(self) -> None:
        """Forget everything (e.g. when the user presses STOP and START again)."""
        with self._busy:
            self.pipeline.reset()
            self.stats.reset()
            self._alert_on = False


__all__ = [
    "FinishedTrack",
    "FramePipeline",
    "LiveSession",
    "LiveSnapshot",
    "AlertState",
    "LiveStats",
    "SecondCounts",
    "group_alert",
    "negative_alert",
    "resolve_alert_group",
    "rtc_configuration",
    "timeline_frame",
    "tune_switch_interval",
]
