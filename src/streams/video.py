"""Video files: sample frames at a fixed rate and turn them into a per-frame emotion timeline.

Frames are decoded with ``cv2.VideoCapture`` and streamed into the recognizer one
at a time (a long 1080p video never sits in memory). The timeline has one row per
sampled frame: time, number of faces, the mean probability of each emotion over
the faces in that frame, and the top emotion with its sentiment.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from src import config
from src.analytics.groups import sentiment_of
from src.engine.doubt import describe
from src.engine.tracking import FaceSmoother

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_FPS = 25.0  # browsers' webm often report no frame rate
MAX_SAMPLES = 1200


class VideoError(ValueError):
    """A file OpenCV cannot read as a video; str(err) is a one-line reason."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    width: int
    height: int
    fps_known: bool = True

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def _open(path: str | Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise VideoError("file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError("not a video OpenCV can read (try MP4/H.264 or AVI)")
    return cap


def probe(path: str | Path) -> VideoInfo:
    """Frame rate, frame count and size of a video file (raises ``VideoError``)."""
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        known = bool(fps and math.isfinite(fps) and 0 < fps < 1000)
        frames = int(max(0, cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        info = VideoInfo(
            fps=fps if known else DEFAULT_FPS,
            frames=frames,
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps_known=known,
        )
    finally:
        cap.release()
    if info.width <= 0 or info.height <= 0:
        raise VideoError("video has no picture track")
    return info


def expected_samples(info: VideoInfo, every_s: float, max_samples: int = MAX_SAMPLES) -> int:
    return min(max_samples, max(1, math.ceil(info.duration_s / every_s))) if info.frames else max_samples


def sample_frames(
    path: str | Path, every_s: float = 0.5, max_samples: int = MAX_SAMPLES
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, time_s, rgb)`` for one frame every ``every_s`` seconds.

    Skipped frames are only ``grab``bed (not converted), which keeps sampling cheap.
    """
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    info = probe(path)
    cap = _open(path)
    try:
        next_t, index, taken = 0.0, 0, 0
        while taken < max_samples and cap.grab():
            t = index / info.fps
            if t + 1e-9 >= next_t:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yield index, round(t, 3), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    taken += 1
                next_t = (math.floor(t / every_s + 1e-9) + 1) * every_s
            index += 1
    finally:
        cap.release()


def timeline_frame(samples: Sequence[tuple[int, float]], results: Sequence, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per sampled frame: frame, time_s, faces, emotion, confidence, sentiment, mean probabilities."""
    rows = []
    for (frame, t), res in zip(samples, results):
        row: dict[str, object] = {"frame": frame, "time_s": t, "faces": len(res.faces)}
        if res.faces:
            probs = np.mean([[f.emotions[c] for c in class_names] for f in res.faces], axis=0)
            top = int(np.argmax(probs))
            row.update(
                emotion=class_names[top],
                confidence=round(float(probs[top]), 4),
                sentiment=sentiment_of(class_names[top]),
            )
            row.update({c: round(float(p), 4) for c, p in zip(class_names, probs)})
        else:
            row.update(emotion="", confidence=np.nan, sentiment="")
            row.update({c: np.nan for c in class_names})
        rows.append(row)
    columns = ["frame", "time_s", "faces", "emotion", "confidence", "sentiment", *class_names]
    return pd.DataFrame(rows, columns=columns)


def face_tracks_frame(
    samples: Sequence[tuple[int, float]], results: Sequence, class_names: Sequence[str], every_s: float
) -> pd.DataFrame:
    """One row per face per sampled frame, with a ``track_id`` that stays with the person.

    Faces are followed from one sample to the next by their predicted motion
    (``tracking.FaceSmoother``, no smoothing: each row keeps its own probabilities); a
    track ends when its face has been hidden for ``config.TRACK_MAX_AGE`` seconds (at
    least one sample) beyond the gap between samples.
    """
    tracker = FaceSmoother(alpha=1.0, max_age=max(config.TRACK_MAX_AGE, every_s))
    rows = []
    for (frame, t), res in zip(samples, results):
        boxes = [tuple(int(v) for v in f.box) for f in res.faces if f.box is not None]
        faces = [f for f in res.faces if f.box is not None]
        probs = np.array([[f.emotions[c] for c in class_names] for f in faces], np.float32)
        probs = probs.reshape(len(faces), len(class_names))
        for face, box, p, track in zip(faces, boxes, probs, tracker.update(boxes, probs, t)):
            top = class_names[int(np.argmax(p))]
            row = {"frame": frame, "time_s": t, "track_id": track.id, **dict(zip("xywh", box))}
            row.update(emotion=top, confidence=round(float(p.max()), 4), sentiment=sentiment_of(top))
            row.update(uncertain=bool(face.uncertain), doubt=describe(face.doubts))
            row.update({c: round(float(v), 4) for c, v in zip(class_names, p)})
            rows.append(row)
    columns = ["frame", "time_s", "track_id", "x", "y", "w", "h", "emotion", "confidence", "sentiment"]
    columns += ["uncertain", "doubt", *class_names]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class VideoSummary:
    """Headline numbers of a video's timeline; the emotion figures are None without a face."""

    frames: int  # sampled frames
    face_share: float  # of sampled frames, those with at least one face
    top_emotion: str | None  # the most frequent top emotion over frames with a face
    top_share: float | None  # its share of the frames with a face
    negative_share: float | None  # frames with a face whose top emotion is negative

    @property
    def has_faces(self) -> bool:
        return self.top_emotion is not None


def summarize(timeline: pd.DataFrame) -> VideoSummary:
    """The ``VideoSummary`` of a ``timeline_frame``."""
    with_faces = timeline[timeline["faces"] > 0]
    if with_faces.empty:
        return VideoSummary(len(timeline), 0.0, None, None, None)
    top = with_faces["emotion"].value_counts()
    return VideoSummary(
        frames=len(timeline),
        face_share=len(with_faces) / len(timeline),
        top_emotion=str(top.index[0]),
        top_share=float(top.iloc[0] / len(with_faces)),
        negative_share=float(with_faces["sentiment"].eq("negative").mean()),
    )


def smooth(timeline: pd.DataFrame, class_names: Sequence[str], window: int) -> pd.DataFrame:
    """Rolling mean of the probability columns over ``window`` samples (frames without faces skipped)."""
    if window <= 1 or timeline.empty:
        return timeline
    out = timeline.copy()
    out[list(class_names)] = out[list(class_names)].rolling(window, min_periods=1).mean()
    return out


class VideoAnalysis(NamedTuple):
    """A video's results: the per-frame ``timeline`` and the per-face ``faces`` with track ids."""

    timeline: pd.DataFrame
    faces: pd.DataFrame


def analyze_video(
    recognizer,
    path: str | Path,
    every_s: float = 0.5,
    max_samples: int = MAX_SAMPLES,
    progress: Callable[[int], None] | None = None,
) -> VideoAnalysis:
    """The emotion timeline and per-face tracks of a video file (raises ``VideoError`` if unreadable)."""
    samples: list[tuple[int, float]] = []

    def frames() -> Iterator[np.ndarray]:
        for index, t, rgb in sample_frames(path, every_s, max_samples):
            samples.append((index, t))
            yield rgb

    results = recognizer.analyze_batch(frames(), progress=progress, chunk=16)
    if not samples:
        raise VideoError("no frames could be decoded")
    names = recognizer.class_names
    return VideoAnalysis(timeline_frame(samples, results, names), face_tracks_frame(samples, results, names, every_s))


def analyze_video_bytes(
    recognizer,
    data: bytes,
    name: str,
    every_s: float = 0.5,
    max_samples: int = MAX_SAMPLES,
    progress: Callable[[int], None] | None = None,
) -> VideoAnalysis:
    """``analyze_video`` for an upload: OpenCV needs a real file, so the bytes go to a temp file."""
    if not data:
        raise VideoError("empty file")
    suffix = Path(name).suffix.lower() or ".mp4"
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="fer_video_")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return analyze_video(recognizer, tmp, every_s, max_samples, progress)
    finally:
        Path(tmp).unlink(missing_ok=True)


def probe_bytes(data: bytes, name: str) -> VideoInfo:
    """``probe`` for uploaded bytes."""
    suffix = Path(name).suffix.lower() or ".mp4"
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="fer_probe_")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return probe(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
