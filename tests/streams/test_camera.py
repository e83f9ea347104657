"""The headless camera worker (src/streams/camera.py): sources, back-off, the one-frame slot, and a
real UDP stream from Debian's ffmpeg cut mid-run, read by the real model into a real store."""

from __future__ import annotations

import logging
import random
import threading
import time

import pandas as pd
import pytest
from camera_support import QUICK_PROBE, StreamServer, drift_clip, free_udp_port, require_ffmpeg, wait_for

from src.analytics.store import Store
from src.streams.camera import (
    CAMERA_TAG,
    Backoff,
    CameraRecorder,
    CameraWorker,
    LatestFrame,
    SourceError,
    check_source,
    open_options,
    parse_source,
    printable_url,
)


def test_sources_are_told_apart(tmp_path):
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"x")
    assert parse_source(str(clip)).kind == "file"
    assert parse_source(f"file://{clip}").url == str(clip)
    stream = parse_source("rtsp://admin:secret@10.0.0.5:554/stream1", options={"rtsp_transport": "tcp"})
    assert (stream.kind, stream.scheme) == ("network", "rtsp")
    assert stream.label == "rtsp://admin:***@10.0.0.5:554/stream1"  # logs never show the password
    assert printable_url("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000"
    with pytest.raises(SourceError, match="no such camera device: /dev/video987"):
        parse_source("987")
    with pytest.raises(SourceError, match="no such file: nowhere.mp4"):
        parse_source("nowhere.mp4")
    with pytest.raises(SourceError, match="is a folder"):
        parse_source(str(tmp_path))
    with pytest.raises(SourceError, match="not a video"):
        check_source(parse_source(str(clip)))


def test_every_protocol_gets_a_timeout_the_user_can_override():
    def options(url: str, **extra) -> dict:
        return open_options(parse_source(url, options=extra), timeout=2.5)

    assert options("rtsp://cam/s") == {"timeout": "2500000"}
    assert options("udp://127.0.0.1:5000") == {"timeout": "2500000", "overrun_nonfatal": "1"}
    assert options("http://cam/video.mjpg") == {"rw_timeout": "2500000"}
    assert options("tcp://127.0.0.1:5000", rw_timeout="9") == {"rw_timeout": "9"}


def test_backoff_doubles_up_to_its_cap_with_jitter():
    backoff = Backoff(initial=1.0, cap=8.0, jitter=0.5, rng=random.Random(3))
    waits = [backoff.next() for _ in range(8)]
    for n, wait in enumerate(waits):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= wait <= ceiling
    assert len({round(w, 6) for w in waits[4:]}) > 1  # capped, but not in lockstep
    backoff.reset()
    assert backoff.next() <= 1.0
    with pytest.raises(ValueError):
        Backoff(initial=2.0, cap=1.0)


def test_the_slot_keeps_the_newest_frame_only():
    slot = LatestFrame()
    assert slot.take(timeout=0.01) is None
    for frame in ("a", "b", "c"):
        slot.put(frame)
    assert slot.take(timeout=0) == "c"
    assert (slot.received, slot.dropped) == (3, 2)
    assert slot.take(timeout=0.01) is None
    threading.Timer(0.05, slot.put, ("d",)).start()
    assert slot.take(timeout=2) == "d"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    require_ffmpeg()
    return drift_clip(tmp_path_factory.mktemp("camera") / "drift.avi")


def _seconds(store: Store, run_id: str | None = None):
    frame = store.live_seconds(include_unfinished=True)
    return frame if run_id is None else frame[frame["run_id"] == run_id]


def test_a_udp_stream_cut_mid_run_keeps_its_run_and_comes_back(tmp_path, clip, caplog):
    """Real frames over UDP from ffmpeg; the sender is killed (no end-of-stream: only the read
    timeout tells), the worker keeps its run's lease through an outage longer than the lease,
    and seconds are stored again once ffmpeg sends again; stop() closes the run ok."""
    from src.engine.inference import get_recognizer
    from src.streams.live import LiveSession

    caplog.set_level(logging.INFO, logger="src.streams.camera")
    url = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    store = Store(url, lease_s=2.0)
    port = free_udp_port()
    source = parse_source(f"udp://127.0.0.1:{port}", options=QUICK_PROBE)
    worker = CameraWorker(
        source,
        LiveSession(recognizer=get_recognizer()),
        store,
        CameraRecorder("Lobby test", "Door 1", "test-model", tags=["north"]),
        timeout=1.0,
        backoff=Backoff(initial=0.2, cap=1.0),
    )
    assert worker.renew_every == 0.5  # a quarter of the lease
    reports = []
    thread = threading.Thread(target=lambda: reports.append(worker.run()), daemon=True)
    thread.start()
    server = StreamServer(clip, f"udp://127.0.0.1:{port}?pkt_size=1316")
    try:
        server.start()
        wait_for(lambda: len(_seconds(store)) >= 2, 30, "the first seconds in the store")
        run_id = _seconds(store)["run_id"].iloc[0]
        server.kill()
        wait_for(lambda: any("stream lost (timed out" in m for m in caplog.messages), 10, "the drop to be logged")
        cut = time.time()
        time.sleep(3.0)  # longer than the lease: only the worker's renewals keep the run
        assert Store(url, lease_s=2.0).get_run(run_id)["status"] == "running"
        assert any("attempt 1 failed" in m for m in caplog.messages)
        server.start()
        wait_for(lambda: any("reconnected" in m for m in caplog.messages), 30, "the reconnection")
        back = pd.Timestamp(cut + 1, unit="s", tz="UTC")
        wait_for(lambda: (_seconds(store, run_id)["second"] > back).sum() >= 2, 20, "seconds after the reconnection")
    finally:
        stopped = time.monotonic()
        worker.stop()
        thread.join(10)
        server.kill()
    assert not thread.is_alive() and time.monotonic() - stopped < 5
    report = reports[0]
    assert (report.run_id, report.error, report.reconnects) == (run_id, "", 1)
    run = store.get_run(run_id)
    assert (run["status"], run["source"], run["campaign"], run["location"]) == ("ok", "live", "Lobby test", "Door 1")
    assert run["tags"] == [CAMERA_TAG, "north"]
    seconds = _seconds(store, run_id)
    assert len(seconds) == report.seconds_saved
    assert seconds["faces"].max() == 1  # one person in view, whatever the frame rate
    assert report.frames_dropped > 0 and report.frames_analysed < report.frames_received  # 5 of 10 fps
