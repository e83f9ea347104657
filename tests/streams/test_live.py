"""Live-camera logic (src/streams/live.py): smoothing, timeline, alert, drawing and thread safety.

Frames are real ``av.VideoFrame`` objects built from numpy; the clock is injected so
the per-second timeline and the alert are tested without sleeping.
"""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from live_support import FACE_BOX, LABELS, FakeDetector, FakeRecognizer, fake_session, feed, onehot

from src import config
from src.engine.tracking import FaceSmoother, iou
from src.streams import live
from src.streams.live import LiveSession, negative_alert, rtc_configuration


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    """The astronaut photo's face, centred on a 640x480 grey canvas (a webcam-sized frame)."""
    skdata = pytest.importorskip("skimage.data")
    photo = skdata.astronaut()
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 64:576] = photo[:480]
    return canvas


def video_frame(rgb: np.ndarray, pts: int = 0) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts, frame.time_base = pts, Fraction(1, 90_000)  # what aiortc delivers
    return frame


# --- configuration -------------------------------------------------------------------


def test_rtc_configuration_uses_configured_ice_servers(monkeypatch):
    assert rtc_configuration() == {"iceServers": list(config.ICE_SERVERS)}
    servers = [{"urls": ["stun:stun.example.org:3478"]}]
    monkeypatch.setattr(config, "ICE_SERVERS", servers)
    assert rtc_configuration() == {"iceServers": servers}


def test_ice_servers_from_environment(monkeypatch):
    import importlib

    monkeypatch.setenv("FER_ICE_SERVERS", '[{"urls": "turn:t.example.org", "username": "u", "credential": "c"}]')
    monkeypatch.setenv("FER_ALERT_SECONDS", "4")
    try:
        reloaded = importlib.reload(config)
        assert reloaded.ICE_SERVERS[0]["urls"] == "turn:t.example.org"
        assert reloaded.ALERT_SECONDS == 4.0
    finally:
        monkeypatch.delenv("FER_ICE_SERVERS")
        monkeypatch.delenv("FER_ALERT_SECONDS")
        importlib.reload(config)


# --- smoothing -----------------------------------------------------------------------


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_single_noisy_frame_does_not_flip_the_label():
    smoother = FaceSmoother(alpha=0.35)
    box = (100, 100, 80, 80)
    for t in range(10):
        (track,) = smoother.update([box], onehot("happy")[None], now=t * 0.1)
    assert LABELS[track.top] == "happy"
    # One confident "angry" frame with a slightly moved box: still happy.
    (track,) = smoother.update([(104, 98, 80, 80)], onehot("angry", 0.99)[None], now=1.0)
    assert LABELS[track.top] == "happy"
    # A lasting change does get through within a few frames.
    for t in range(4):
        (track,) = smoother.update([box], onehot("angry")[None], now=1.1 + t * 0.1)
    assert LABELS[track.top] == "angry"
    assert len(smoother.tracks) == 1


def test_two_faces_keep_their_own_averages():
    smoother = FaceSmoother(alpha=0.35)
    left, right = (50, 100, 80, 80), (400, 100, 80, 80)
    for t in range(5):
        smoother.update([left, right], np.stack([onehot("happy"), onehot("sad")]), now=t * 0.1)
    # Detector order swaps and one frame has the emotions crossed: no label flips.
    a, b = smoother.update([right, left], np.stack([onehot("happy"), onehot("sad")]), now=0.5)
    assert (LABELS[a.top], LABELS[b.top]) == ("sad", "happy")
    assert len({a.id, b.id}) == 2 and len(smoother.tracks) == 2


def test_fast_move_matches_by_centre_distance_and_old_tracks_expire():
    smoother = FaceSmoother(alpha=0.35, max_age=1.0)
    (first,) = smoother.update([(100, 100, 80, 80)], onehot("happy")[None], now=0.0)
    # No overlap left, but the centre moved less than half a face: same track.
    (moved,) = smoother.update([(135, 100, 60, 60)], onehot("happy")[None], now=0.1)
    assert moved.id == first.id
    smoother.update([], np.zeros((0, len(LABELS))), now=2.0)
    assert smoother.tracks == []
    (new,) = smoother.update([(135, 100, 60, 60)], onehot("sad")[None], now=2.1)
    assert new.id != first.id and LABELS[new.top] == "sad"


# --- timeline and alert --------------------------------------------------------------


def test_timeline_is_the_emotion_mix_per_second():
    session, recognizer, _ = fake_session("happy")
    t = feed(session, recognizer, "happy", 1_000.0, 3)
    snap = session.snapshot(now=t)
    assert list(snap.timeline.columns) == ["time", *LABELS]
    assert len(snap.timeline) == 3
    assert (snap.timeline["happy"] == 1.0).all()
    assert np.allclose(snap.timeline[list(LABELS)].sum(axis=1), 1.0)
    assert snap.frames == 15 and snap.faces == 1
    assert max(snap.current, key=snap.current.get) == "happy"
    assert str(snap.timeline["time"].dtype).startswith("datetime64")


def test_timeline_keeps_only_the_window():
    session, recognizer, _ = fake_session("neutral", window_seconds=60)
    t = feed(session, recognizer, "neutral", 1_000.0, 90, fps=2)
    snap = session.snapshot(now=t)
    assert 59 <= len(snap.timeline) <= 61
    assert snap.timeline["time"].min() >= snap.timeline["time"].max() - np.timedelta64(61, "s")


def test_alert_after_negative_emotions_dominate_for_n_seconds(monkeypatch):
    session, recognizer, _ = fake_session()
    t = feed(session, recognizer, "happy", 1_000.0, 5)
    t = feed(session, recognizer, "sad", t, config.ALERT_SECONDS - 2)
    assert not session.snapshot(now=t).alert  # not long enough yet
    t = feed(session, recognizer, "angry", t, 3)
    snap = session.snapshot(now=t)
    assert snap.alert
    assert "sad" in snap.alert_reason and "angry" in snap.alert_reason
    # A positive spell resets it.
    t = feed(session, recognizer, "happy", t, 2)
    assert not session.snapshot(now=t).alert


def test_alert_seconds_and_threshold_come_from_the_constructor():
    def fearful(seconds: float, threshold: float) -> bool:
        session, recognizer, _ = fake_session(alert_seconds=seconds, alert_threshold=threshold)
        t = feed(session, recognizer, "fear", 1_000.0, 4)
        return session.snapshot(now=t).alert

    assert fearful(3.0, 0.9) and not fearful(5.0, 0.9)

    def half_fearful(threshold: float) -> LiveSession:
        session, recognizer, _ = fake_session(
            boxes=((40, 40, 80, 80), (400, 40, 80, 80)), alert_seconds=3.0, alert_threshold=threshold
        )
        recognizer.classify = lambda faces: np.stack([onehot("fear"), onehot("happy")])
        for i in range(20):
            session.process(np.zeros((480, 640, 3), np.uint8), now=1_000.0 + i / 4)
        return session

    # Half the faces negative is below a 90 % threshold and at a 50 % one.
    strict, lenient = half_fearful(0.9), half_fearful(0.5)
    assert (strict.stats.alert_seconds, strict.stats.alert_threshold) == (3.0, 0.9)
    assert not strict.snapshot(now=1_005.0).alert and lenient.snapshot(now=1_005.0).alert
    reason = lenient.snapshot(now=1_005.0).alert_reason
    assert "fear 50%" in reason and "alert at 50% for 3 s" in reason
    # The stats' own rule is negative_alert's over the recorded seconds.
    seconds = lenient.stats.seconds(1_005.0)
    assert [b.faces for b in seconds] == [8, 8, 8, 8, 8]
    assert lenient.stats.alert(1_005.0, LABELS) == negative_alert(seconds, LABELS, 1_005.0, 3.0, 0.5)


def test_alert_defaults_are_the_configured_ones():
    stats = LiveSession(recognizer=FakeRecognizer()).stats
    assert (stats.alert_seconds, stats.alert_threshold) == (config.ALERT_SECONDS, config.ALERT_THRESHOLD)


def test_no_alert_without_faces_or_when_the_stream_stopped():
    session, recognizer, detector = fake_session()
    t = feed(session, recognizer, "sad", 1_000.0, 15)
    assert session.snapshot(now=t).alert
    assert not session.snapshot(now=t + 30).alert  # camera stopped 30 s ago
    assert session.snapshot(now=t + 30).current == {}
    detector.boxes = []
    t = feed(session, recognizer, "sad", t, 15)
    snap = session.snapshot(now=t)
    assert not snap.alert and snap.faces == 0
    assert (snap.timeline.tail(5)[list(LABELS)] == 0).all().all()


def test_fps_and_detection_every_nth_frame():
    session, recognizer, detector = fake_session(detect_every=3)
    t = feed(session, recognizer, "happy", 1_000.0, 4, fps=10)
    snap = session.snapshot(now=t)
    assert snap.fps == pytest.approx(10, rel=0.1)
    assert detector.calls == pytest.approx(40 / 3, abs=1)
    assert recognizer.calls == detector.calls  # classified when detected; the frames between reuse both
    assert session.snapshot(now=t + 5).fps == 0.0


# --- frames in, frames out -----------------------------------------------------------


def test_callback_draws_boxes_and_keeps_timing():
    session, _, _ = fake_session()
    rgb = np.zeros((480, 640, 3), np.uint8)
    out = session.video_frame_callback(video_frame(rgb, pts=1234))
    assert isinstance(out, av.VideoFrame)
    assert (out.width, out.height, out.pts, out.time_base) == (640, 480, 1234, Fraction(1, 90_000))
    img = out.to_ndarray(format="rgb24")
    x, y, w, h = FACE_BOX
    assert img[y + h // 2, x - 1 : x + 3].any(axis=-1).any()  # the left edge of the box
    assert not img[y + h // 2, x + w // 2].any()  # the face itself is not painted over
    assert not img[470, 10].any()


def test_callback_on_blank_frame_returns_it_unchanged():
    session, _, detector = fake_session(boxes=())
    rgb = np.full((480, 640, 3), 200, np.uint8)
    out = session.video_frame_callback(video_frame(rgb)).to_ndarray(format="rgb24")
    assert np.array_equal(out, rgb)
    snap = session.snapshot(now=1_000.5)
    assert snap.frames == 1 and snap.faces == 0 and snap.current == {}


def test_busy_session_drops_work_instead_of_queueing():
    session, recognizer, _ = fake_session(detect_every=1)  # every frame goes through the classifier
    frame = video_frame(np.zeros((480, 640, 3), np.uint8))
    session.video_frame_callback(frame)
    entered, release = threading.Event(), threading.Event()
    classify = recognizer.classify

    def slow(faces):
        entered.set()
        release.wait(5)
        return classify(faces)

    recognizer.classify = slow
    worker = threading.Thread(target=session.video_frame_callback, args=(frame,))
    worker.start()
    try:
        assert entered.wait(5)
        out = session.video_frame_callback(frame)  # arrives while the worker's frame is in the pipeline
    finally:
        release.set()
        worker.join(5)
    snap = session.snapshot(now=1_000.5)
    assert (snap.frames, snap.received, snap.dropped) == (2, 3, 1)
    assert recognizer.calls == 2
    assert out.to_ndarray(format="rgb24").any()  # the last boxes are still drawn


def test_errors_are_reported_not_raised():
    session, recognizer, _ = fake_session()

    def broken(faces):
        raise RuntimeError("model exploded")

    recognizer.classify = broken
    rgb = np.zeros((480, 640, 3), np.uint8)
    out = session.video_frame_callback(video_frame(rgb))
    assert np.array_equal(out.to_ndarray(format="rgb24"), rgb)
    assert "model exploded" in session.snapshot().error


def test_model_loads_in_the_background_without_stalling_frames(monkeypatch):
    import src.engine.inference

    release = threading.Event()
    recognizer = FakeRecognizer("happy")

    def slow_get_recognizer():
        release.wait(10)
        return recognizer

    monkeypatch.setattr(src.engine.inference, "get_recognizer", slow_get_recognizer)
    detector = FakeDetector([FACE_BOX])
    session = LiveSession(clock=lambda: 1_000.0, detect_width=0, detector_factory=lambda: detector)
    rgb = np.zeros((480, 640, 3), np.uint8)
    start = time.perf_counter()
    out = session.video_frame_callback(video_frame(rgb))
    assert time.perf_counter() - start < 1.0
    assert np.array_equal(out.to_ndarray(format="rgb24"), rgb)  # passed through while loading
    assert not session.snapshot().ready and session.snapshot().frames == 0
    release.set()
    assert session.pipeline.wait_until_ready(5)
    session.video_frame_callback(video_frame(rgb))
    snap = session.snapshot()
    assert snap.ready and snap.frames == 1 and snap.faces == 1


def test_snapshot_is_thread_safe_while_frames_are_processed():
    session, recognizer, _ = fake_session(clock=time.time)
    frame = video_frame(np.zeros((480, 640, 3), np.uint8))
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker():
        try:
            for i in range(300):
                recognizer.probs = onehot(LABELS[i % len(LABELS)])
                session.video_frame_callback(frame)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=worker)
    thread.start()
    seen = []
    while not stop.is_set():
        snap = session.snapshot()
        seen.append(snap.frames)
        shares = snap.timeline[list(LABELS)].to_numpy()
        assert np.all((shares >= 0) & (shares <= 1 + 1e-9))
        if snap.current:
            assert sum(snap.current.values()) == pytest.approx(1.0, abs=1e-3)
    thread.join()
    assert not errors
    assert seen == sorted(seen)  # never goes backwards
    assert session.snapshot().frames == 300 - session.snapshot().dropped


def test_reset_clears_everything():
    session, recognizer, _ = fake_session()
    feed(session, recognizer, "sad", 1_000.0, 3)
    session.reset()
    snap = session.snapshot(now=1_003.0)
    assert snap.frames == 0 and snap.timeline.empty and snap.current == {} and not snap.alert


# --- the real detector and model -----------------------------------------------------


@pytest.fixture(scope="module")
def real_session():
    if not config.MODEL_FILE.exists():
        pytest.skip(f"no model at {config.MODEL_FILE}")
    from src.engine.inference import get_recognizer

    return LiveSession(recognizer=get_recognizer())


def test_real_pipeline_finds_and_labels_the_astronaut(real_session, face_rgb):
    real_session.reset()
    out = real_session.video_frame_callback(video_frame(face_rgb)).to_ndarray(format="rgb24")
    snap = real_session.snapshot()
    assert snap.faces == 1 and snap.frames == 1
    assert set(snap.current) == set(real_session.labels)
    (track,) = real_session.pipeline.smoother.tracks
    x, y, w, h = track.box
    # Detected on the downscaled frame, drawn in full-resolution coordinates.
    assert 200 <= x + w / 2 <= 380 and 40 <= y + h / 2 <= 200 and w >= 60
    assert not np.array_equal(out, face_rgb)
    assert np.array_equal(out[400:, :64], face_rgb[400:, :64])


def test_real_pipeline_blank_frame(real_session):
    real_session.reset()
    blank = np.full((480, 640, 3), 90, np.uint8)
    out = real_session.video_frame_callback(video_frame(blank)).to_ndarray(format="rgb24")
    assert np.array_equal(out, blank)
    assert real_session.snapshot().faces == 0


def test_real_pipeline_keeps_up_with_a_webcam(real_session, face_rgb):
    """Processing time per frame on this machine (reported, loosely bounded)."""
    real_session.reset()
    frame = video_frame(face_rgb)
    real_session.video_frame_callback(frame)
    start = time.perf_counter()
    n = 30
    for _ in range(n):
        real_session.video_frame_callback(frame)
    per_frame = (time.perf_counter() - start) / n
    print(f"live pipeline: {per_frame * 1000:.1f} ms/frame ({1 / per_frame:.1f} fps)")
    assert per_frame < 0.5


def test_switch_interval_is_only_ever_lowered(monkeypatch):
    original = sys.getswitchinterval()
    try:
        live.tune_switch_interval(0.002)
        assert sys.getswitchinterval() == pytest.approx(min(original, 0.002))
        live.tune_switch_interval(0.05)
        assert sys.getswitchinterval() == pytest.approx(min(original, 0.002))
        live.tune_switch_interval(0)
        assert sys.getswitchinterval() == pytest.approx(min(original, 0.002))
    finally:
        sys.setswitchinterval(original)


# --- the alert's group (src/analytics/groups/) -----------------------------------------------


def test_alert_group_comes_from_the_groups_and_an_unknown_one_falls_back_to_negative():
    from src.analytics import groups

    session, _, _ = fake_session(alert_group="custom:frustrated")
    assert session.alert_grouping == "custom" and session.stats.alert_group.emotions == ("angry", "disgust", "sad")
    assert session.alert_problem == ""
    lost, recognizer, _ = fake_session(alert_group="grumpy")
    assert lost.stats.alert_group == groups.builtin_sentiment().group("negative")
    assert lost.alert_problem.startswith('FER_ALERT_GROUP: no group named "grumpy"')
    t = feed(lost, recognizer, "fear", 1_000.0, 12)
    snap = lost.snapshot(now=t)
    assert snap.alert and snap.alert_group == "negative" and snap.alert_reason.startswith("Negative emotions on")


def test_a_custom_alert_group_counts_only_its_emotions():
    from src.analytics import groups

    frustrated = groups.Group("frustrated", ("angry", "sad"))
    session, recognizer, _ = fake_session(alert_group=frustrated, alert_seconds=3.0)
    t = feed(session, recognizer, "fear", 1_000.0, 5)  # negative, but not frustrated
    assert not session.snapshot(now=t).alert
    t = feed(session, recognizer, "angry", t, 5)
    snap = session.snapshot(now=t)
    assert snap.alert and snap.alert_reason.startswith('Group "frustrated" on 100% of faces')
    state = session.stats.alert_state(t, LABELS)
    assert state.active and state.group == "frustrated" and state.share == 1.0 and state.counts["fear"] == 0
    assert session.stats.alert_on(t) and not session.stats.alert_on(t + 30)


def test_a_live_person_is_doubtful_when_most_of_their_detections_are():
    from src.engine.tracking import Track

    stats = live.LiveStats(window_seconds=60)
    probs = onehot("happy")
    for k in range(5):  # track 1: 3 of 5 detections doubtful; track 2: 1 of 5
        t = 100.0 + k / 5
        tracks = [Track(1, (0, 0, 40, 40), probs, t), Track(2, (100, 0, 40, 40), probs, t)]
        stats.record(t, tracks, LABELS, doubtful={1: k < 3, 2: k == 0})
    people = {t.person.track_id: t.person for t in stats.finished_tracks(final=True)}
    assert people[1].uncertain is True and people[2].uncertain is False


def test_the_frame_pipeline_marks_each_detection_doubtful_or_not():
    # A flat grey frame: no detail at all, so the face the detector reports is "blurred"; the
    # stand-in classifier is sure (one-hot), so confidence alone would not flag it.
    pipeline = live.FramePipeline(FakeRecognizer(), detector_factory=lambda: FakeDetector([FACE_BOX]))
    tracks = pipeline.classify(np.full((360, 640, 3), 128, np.uint8), 0.0)
    assert tracks and pipeline.doubtful == {tracks[0].id: True}
