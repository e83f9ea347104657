"""Following faces from frame to frame: a track id per person and a smoothed emotion.

Used by the live camera (every detection, a few times a second) and by video files
(every sampled frame, by default every 0.5 s), so each person keeps one id across
frames and per-person emotion over time can be read from the results.

Each track carries a constant-velocity Kalman filter of its face centre
(``cv2.KalmanFilter``), advanced by the seconds elapsed since the last frame, since
video samples and live frames come at different rates. Its noise is scaled by the
face's size, so the same settings hold for a small face far away and a large one close
by. Detections are assigned to tracks with the Hungarian method
(``scipy.optimize.linear_sum_assignment``) on a cost that works when boxes no longer
overlap between frames: the distance from the predicted centre in standard deviations
of the prediction (gated), plus one minus the IoU of the predicted box. Tracks seen in
the last frame choose first, then the ones hidden for a while; a face that turned
sharply, and so missed its prediction, is then looked for around its last place with
its speed unknown again (OC-SORT's recovery step). A track ends when its face has been
unseen for ``max_age`` seconds beyond the usual gap between its detections.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from src import config
from src.engine.faces import iou

BoxT = tuple[int, int, int, int]  # x, y, w, h in frame pixels

# Detector jitter of a face centre, in face sizes (YuNet boxes move by a few percent).
MEASUREMENT_NOISE = 0.08
# How fast a face's velocity may change, in face sizes per second squared: a person
# turning round or stopping.
ACCELERATION = 3.0
# A detection more than this many times larger or smaller than the track's face is
# someone else (faces change size slowly, even walking towards the camera).
MAX_SIZE_RATIO = 2.0
# Weight of a new box in a track's face size (width and height are not in the filter).
SIZE_SMOOTHING = 0.5
_GATED = 1e6  # the cost of a pair outside the gate, for linear_sum_assignment


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return box[0] + box[2] / 2.0, box[1] + box[3] / 2.0


class CentreFilter:
    """Constant-velocity Kalman filter of one face's centre, in frame pixels and seconds.

    State (cx, cy, vx, vy). A new face's velocity is unknown: its spread is ``speed``
    face sizes per second, which is what lets the first match reach a face that moved
    well beyond its own size between two sparse samples.
    """

    def __init__(self, box: BoxT, now: float, speed: float):
        self.w, self.h = float(box[2]), float(box[3])
        self.time = now
        kf = cv2.KalmanFilter(4, 2, 0, cv2.CV_64F)
        kf.measurementMatrix = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float64)
        cx, cy = _centre(box)
        kf.statePost = np.array([[cx], [cy], [0.0], [0.0]])
        s = self.size
        kf.errorCovPost = np.diag([(MEASUREMENT_NOISE * s) ** 2] * 2 + [(speed * s) ** 2] * 2).astype(np.float64)
        self._kf = kf

    @property
    def size(self) -> float:
        return max(1.0, float(np.sqrt(self.w * self.h)))

    @property
    def centre(self) -> tuple[float, float]:
        state = self._kf.statePost
        return float(state[0, 0]), float(state[1, 0])

    @property
    def velocity(self) -> tuple[float, float]:
        """Pixels per second."""
        state = self._kf.statePost
        return float(state[2, 0]), float(state[3, 0])

    def predict(self, now: float) -> None:
        """Advance to ``now`` (kept as the estimate until a detection corrects it)."""
        dt = max(0.0, now - self.time)
        transition = np.eye(4)
        transition[0, 2] = transition[1, 3] = dt
        # White-noise acceleration: the position spread grows with dt^3, the velocity's with dt.
        q = (ACCELERATION * self.size) ** 2
        block = np.array([[dt**3 / 3.0, dt**2 / 2.0], [dt**2 / 2.0, dt]]) * q
        noise = np.zeros((4, 4))
        noise[np.ix_([0, 2], [0, 2])] = block
        noise[np.ix_([1, 3], [1, 3])] = block
        self._kf.transitionMatrix = transition
        self._kf.processNoiseCov = noise
        # OpenCV copies the prediction into the posterior too, so a frame without this
        # face leaves the filter at its predicted place, ready for the next frame.
        self._kf.predict()
        self.time = max(self.time, now)

    def box(self) -> tuple[float, float, float, float]:
        """The predicted (or last corrected) box, x, y, w, h."""
        cx, cy = self.centre
        return cx - self.w / 2.0, cy - self.h / 2.0, self.w, self.h

    def innovation(self) -> np.ndarray:
        """Covariance of a detected centre around the prediction (2x2, pixels squared)."""
        return self._kf.errorCovPre[:2, :2] + np.eye(2) * (MEASUREMENT_NOISE * self.size) ** 2

    def distance(self, box: BoxT) -> float:
        """Mahalanobis distance of ``box``'s centre from the predicted one, in standard deviations."""
        cx, cy = self.centre
        bx, by = _centre(box)
        delta = np.array([bx - cx, by - cy])
        return float(np.sqrt(delta @ np.linalg.solve(self.innovation(), delta)))

    def correct(self, box: BoxT) -> None:
        """Fold a detection in (call ``predict(now)`` first)."""
        self._kf.measurementNoiseCov = np.eye(2) * (MEASUREMENT_NOISE * self.size) ** 2
        self._kf.correct(np.array([[_centre(box)[0]], [_centre(box)[1]]], np.float64))
        self.w += SIZE_SMOOTHING * (box[2] - self.w)
        self.h += SIZE_SMOOTHING * (box[3] - self.h)


@dataclass
class Track:
    """One face followed across frames; ``probs`` is its moving average, ``box`` its last detection."""

    id: int
    box: BoxT
    probs: np.ndarray
    last_seen: float
    hits: int = 1
    first_seen: float | None = None
    motion: CentreFilter | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.first_seen is None:
            self.first_seen = self.last_seen

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))


class FaceSmoother:
    """Tracks faces across frames and keeps a moving average of each one's class probabilities.

    ``update`` takes one frame's boxes (with their probabilities and the frame's time in
    seconds) and returns their tracks in box order: a face keeps its id, and its label
    only changes when a new emotion persists for a few frames (``alpha`` is the weight of
    the newest frame; 1.0 keeps each frame's own probabilities). ``max_age`` is how long
    a face may stay hidden, ``speed`` the spread of a new face's unknown speed (face sizes
    per second) and ``gate`` the farthest match, in standard deviations of the prediction.
    """

    def __init__(
        self,
        alpha: float = config.LIVE_SMOOTHING,
        max_age: float = config.TRACK_MAX_AGE,
        speed: float = config.TRACK_SPEED,
        gate: float = config.TRACK_GATE,
    ):
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if max_age < 0 or speed <= 0 or gate <= 0:
            raise ValueError("max_age must be >= 0, speed and gate > 0")
        self.alpha = alpha
        self.max_age = max_age
        self.speed = speed
        self.gate = gate
        self.tracks: list[Track] = []
        self._next_id = 0
        self._times: deque[float] = deque(maxlen=9)

    def interval(self) -> float:
        """The usual gap between frames so far (median of the recent ones; 0 before two frames)."""
        times = list(self._times)
        gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
        return statistics.median(gaps) if gaps else 0.0

    def _costs(self, motions: Sequence[CentreFilter], boxes: Sequence[BoxT]) -> np.ndarray:
        """Cost of each (track, box) pair: normalised squared distance plus 1 - IoU; gated pairs cost ``_GATED``."""
        costs = np.full((len(motions), len(boxes)), _GATED)
        for i, motion in enumerate(motions):
            predicted = motion.box()
            for j, box in enumerate(boxes):
                ratio = np.sqrt(max(box[2] * box[3], 1) / (motion.w * motion.h))
                if not 1.0 / MAX_SIZE_RATIO <= ratio <= MAX_SIZE_RATIO:
                    continue
                distance = motion.distance(box)
                if distance <= self.gate:
                    costs[i, j] = (distance / self.gate) ** 2 + 1.0 - iou(predicted, box)
        return costs

    def _assign(self, motions: Sequence[CentreFilter], boxes: Sequence[BoxT], free: Sequence[int]) -> dict[int, int]:
        """Hungarian assignment of the ``free`` box indices to ``motions``; returns box index -> motion index."""
        if not motions or not free:
            return {}
        costs = self._costs(motions, [boxes[j] for j in free])
        rows, cols = linear_sum_assignment(costs)
        return {free[c]: r for r, c in zip(rows, cols) if costs[r, c] < _GATED}

    def _match(self, boxes: Sequence[BoxT], now: float, previous: float | None) -> dict[int, Track]:
        """Box index -> the track it continues, for the boxes that continue one."""
        for track in self.tracks:
            track.motion.predict(now)
        # Faces seen in the previous frame choose first, so a track hidden for a while
        # (whose prediction has grown vague) cannot take a face another track is following.
        recent = [t for t in self.tracks if previous is not None and t.last_seen >= previous]
        hidden = [t for t in self.tracks if not (previous is not None and t.last_seen >= previous)]
        matched: dict[int, Track] = {}
        for tracks in (recent, hidden):
            free = [j for j in range(len(boxes)) if j not in matched]
            pairs = self._assign([t.motion for t in tracks], boxes, free)
            matched.update({j: tracks[i] for j, i in pairs.items()})
        # A face that turned sharply misses its own prediction: try what is left against
        # the last place of the faces seen in the previous frame, as if they were new (their
        # speed unknown again), and restart the filter of those that match.
        taken = {t.id for t in matched.values()}
        lost = [t for t in recent if t.id not in taken]
        restarts = [CentreFilter(t.box, t.last_seen, self.speed) for t in lost]
        for motion in restarts:
            motion.predict(now)
        pairs = self._assign(restarts, boxes, [j for j in range(len(boxes)) if j not in matched])
        for j, i in pairs.items():
            lost[i].motion = restarts[i]
            matched[j] = lost[i]
        return matched

    def update(self, boxes: Sequence[BoxT], probs: np.ndarray, now: float) -> list[Track]:
        """Feed one frame's detections; returns the tracks seen in this frame, in box order."""
        boxes = [tuple(int(v) for v in box) for box in boxes]
        probs = np.asarray(probs, dtype=np.float32).reshape(len(boxes), -1) if boxes else probs
        previous = self._times[-1] if self._times else None
        interval = self.interval()
        if previous is None or now > previous:
            self._times.append(now)
        matched = self._match(boxes, now, previous)
        current: list[Track] = []
        for i, box in enumerate(boxes):
            track = matched.get(i)
            if track is None:
                motion = CentreFilter(box, now, self.speed)
                track = Track(self._next_id, box, probs[i].copy(), now, motion=motion)
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.motion.correct(box)
                track.probs = (1.0 - self.alpha) * track.probs + self.alpha * probs[i]
                track.box, track.last_seen, track.hits = box, now, track.hits + 1
            current.append(track)
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_age + self._gap(t, interval) + 1e-6]
        return current

    @staticmethod
    def _gap(track: Track, interval: float) -> float:
        """The usual gap between ``track``'s detections: a face unseen for ``max_age`` beyond it was hidden that long.

        Its own mean gap, since frames may come faster while no face is in view (the live
        camera then detects on every frame); the gap between frames for a new face.
        """
        if track.hits > 1:
            return (track.last_seen - track.first_seen) / (track.hits - 1)
        return interval

    def reset(self) -> None:
        self.tracks.clear()
        self._times.clear()
