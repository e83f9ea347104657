"""Video sampling and the per-frame emotion timeline, on small videos written with cv2.VideoWriter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.engine.results import FaceResult
from src.streams import video

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def write_video(path: Path, fourcc: str, frames: int = 30, fps: float = 10.0, size=(64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {fourcc}"
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8)  # brightness encodes the frame index
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(params=[("clip.avi", "MJPG"), ("clip.mp4", "mp4v")])
def clip(request, tmp_path) -> Path:
    name, fourcc = request.param
    return write_video(tmp_path / name, fourcc)


def test_probe(clip):
    info = video.probe(clip)
    assert info.fps == pytest.approx(10.0) and info.frames == 30
    assert (info.width, info.height) == (64, 48) and info.duration_s == pytest.approx(3.0)
    assert video.expected_samples(info, 0.5) == 6


def test_sample_frames_at_requested_rate(clip):
    samples = list(video.sample_frames(clip, every_s=0.5))
    assert [i for i, _, _ in samples] == [0, 5, 10, 15, 20, 25]
    assert [t for _, t, _ in samples] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    index, _, rgb = samples[2]
    assert rgb.shape == (48, 64, 3) and abs(int(rgb.mean()) - index * 8) <= 6
    assert len(list(video.sample_frames(clip, every_s=0.05))) == 30  # faster than the fps: every frame
    assert len(list(video.sample_frames(clip, every_s=0.5, max_samples=2))) == 2


def test_unreadable_video_raises_video_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(video.VideoError):
        video.probe(bad)
    with pytest.raises(video.VideoError):
        video.probe(tmp_path / "missing.mp4")
    with pytest.raises(video.VideoError):
        video.probe_bytes(b"nope", "x.avi")


def FakeFace(emotions: dict, uncertain: bool = False) -> FaceResult:  # noqa: N802 - reads like the class it was
    """A face result as the recognizer gives it (a fixed box; its top label from ``emotions``)."""
    top = max(emotions, key=emotions.get)
    doubts = ("low_confidence",) if uncertain else ()
    return FaceResult((0, 0, 10, 10), emotions, top, emotions[top], uncertain=uncertain, doubts=doubts)


@dataclass
class FakeResult:
    faces: list = field(default_factory=list)


class FakeRecognizer:
    """Odd sampled frames have no face; even ones a happy face (two faces on the first)."""

    class_names = CLASSES

    def analyze_batch(self, images, progress=None, chunk=64):
        out = []
        for i, _ in enumerate(images):
            happy = {c: (0.7 if c == "happy" else 0.05) for c in CLASSES}
            sad = {c: (0.9 if c == "sad" else 0.1 / 6) for c in CLASSES}
            faces = [] if i % 2 else [FakeFace(happy)]
            if i == 0:
                faces.append(FakeFace(sad, uncertain=True))
            out.append(FakeResult(faces))
            if progress:
                progress(i + 1)
        return out


def test_analyze_video_timeline(clip):
    seen = []
    timeline = video.analyze_video(FakeRecognizer(), clip, every_s=1.0, progress=seen.append).timeline
    assert list(timeline.columns) == ["frame", "time_s", "faces", "emotion", "confidence", "sentiment", *CLASSES]
    assert timeline["time_s"].tolist() == [0.0, 1.0, 2.0]
    assert timeline["faces"].tolist() == [2, 0, 1]
    first = timeline.iloc[0]
    assert first["sad"] == pytest.approx((0.9 + 0.05) / 2) and first["emotion"] == "sad"
    assert first["sentiment"] == "negative"
    assert timeline.iloc[1]["emotion"] == "" and np.isnan(timeline.iloc[1]["happy"])
    assert timeline.iloc[2]["emotion"] == "happy" and timeline.iloc[2]["sentiment"] == "positive"
    assert seen == [1, 2, 3]
    # Each face row keeps its doubt: the first frame's sad face was doubtful, the happy one not.
    rows = video.analyze_video(FakeRecognizer(), clip, every_s=1.0).faces
    first_frame = rows[rows["frame"] == 0].set_index("emotion")
    assert bool(first_frame.loc["sad", "uncertain"]) and first_frame.loc["sad", "doubt"] == "low_confidence"
    assert not bool(first_frame.loc["happy", "uncertain"]) and first_frame.loc["happy", "doubt"] == ""


def test_analyze_video_bytes_cleans_up_and_smooths(clip, tmp_path):
    timeline = video.analyze_video_bytes(FakeRecognizer(), clip.read_bytes(), clip.name, every_s=0.5).timeline
    assert len(timeline) == 6
    smoothed = video.smooth(timeline, CLASSES, 3)
    assert smoothed["happy"].notna().all()  # gaps without faces are filled by the rolling mean
    assert video.smooth(timeline, CLASSES, 1) is timeline
    with pytest.raises(video.VideoError):
        video.analyze_video_bytes(FakeRecognizer(), b"", "empty.mp4")


def test_summary_of_the_timeline(clip):
    timeline = video.analyze_video(FakeRecognizer(), clip, every_s=0.5).timeline  # faces on frames 0, 2, 4 of 6
    summary = video.summarize(timeline)
    assert summary.frames == 6 and summary.face_share == pytest.approx(0.5)
    assert summary.has_faces and summary.top_emotion == "happy"  # frame 0 is sad (two faces), 2 and 4 happy
    assert summary.top_share == pytest.approx(2 / 3) and summary.negative_share == pytest.approx(1 / 3)
    faceless = video.summarize(timeline[timeline["faces"] == 0])
    assert not faceless.has_faces and faceless.face_share == 0.0 and faceless.negative_share is None


def test_two_people_keep_their_track_ids_across_frames(tmp_path):
    """The bundled model on a real video: two faces drifting apart keep one track id each."""
    from skimage import data

    from src.engine.inference import get_recognizer

    face = cv2.resize(cv2.cvtColor(data.astronaut()[0:260, 110:370], cv2.COLOR_RGB2BGR), (160, 160))
    path = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (640, 360))
    for i in range(10):
        frame = np.full((360, 640, 3), 150, np.uint8)
        frame[100 : 100 + 160, 40 + 8 * i : 200 + 8 * i] = face
        frame[100 : 100 + 160, 440 - 8 * i : 600 - 8 * i] = face[:, ::-1]
        writer.write(frame)
    writer.release()
    result = video.analyze_video(get_recognizer(), path, every_s=0.2)
    faces = result.faces
    assert list(faces.columns[:7]) == ["frame", "time_s", "track_id", "x", "y", "w", "h"]
    assert len(result.timeline) == 10 and (result.timeline["faces"] == 2).all()
    assert len(faces) == 20 and faces["track_id"].nunique() == 2
    # The left person stays left: one id for every face whose centre is in the left half.
    left = faces[faces["x"] + faces["w"] / 2 < 320]
    assert left["track_id"].nunique() == 1 and len(left) == 10
