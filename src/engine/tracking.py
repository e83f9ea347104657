"""Following faces from frame to frame: a track id per person and a smoothed emotion.

Used by the live camera (every frame) and by video files (every sampled frame), so
each face keeps one id across frames and per-person emotion over time can be read
from the results. Detections are matched to tracks greedily by IoU, or by centre
distance when a fast move (or a sparse sampling) leaves no overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src import config
from src.engine.faces import iou

BoxT = tuple[int, int, int, int]  # x, y, w, h in frame pixels


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
