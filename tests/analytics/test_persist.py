"""Saving dashboard results into a real SQLite results store: photos, video tracks, live seconds, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src import config
from src.analytics import persist, trends
from src.analytics.store import Store
from src.engine.faces import Box
from src.engine.results import FaceResult, ImageResult
from src.engine.tracking import Track
from src.streams import video
from src.streams.live import LiveStats

LABELS = config.EMOTIONS


@pytest.fixture
def store(tmp_path):
    opened = Store(f"sqlite:///{(tmp_path / 'results.db').as_posix()}")
    yield opened
    opened.close()


def face(emotion: str, box=(10, 20, 30, 40)) -> FaceResult:
    probs = dict.fromkeys(LABELS, 0.02)
    probs[emotion] = 0.88
    return FaceResult(box=Box(*box), emotions=probs, emotion=emotion, confidence=0.88)


def test_photos_are_saved_as_one_run_with_their_campaign(store):
    results = [
        ImageResult("a.jpg", [face("happy"), face("sad")], width=100, height=100),
        ImageResult("b.jpg", status="no_face", width=50, height=50),
    ]
    saved = persist.save_rows(
        store, "photo", persist.image_rows(results, LABELS), **persist.run_fields("  Ad A ", "", "v2")
    )
    assert saved.ok and saved.rows == 3
    run = store.get_run(saved.run_id)
    assert (run["source"], run["campaign"], run["location"], run["model_version"]) == ("photo", "Ad A", "", "v2")
    rows = store.results(run_id=saved.run_id)
    assert rows["emotion"].tolist() == ["happy", "sad", ""] and rows["status"].tolist() == ["ok", "ok", "no_face"]


def test_a_store_failure_is_a_message_not_an_exception(store):
    rows = persist.image_rows([ImageResult("a.jpg", [face("happy")])], LABELS)
    saved = persist.save_rows(store, "batch", rows, **persist.run_fields("x" * 300, None))
    assert not saved.ok and saved.run_id is None
    assert saved.error == "the campaign is 300 characters long; the limit is 255"
    assert store.runs().empty


def test_video_rows_keep_time_and_track_id(store):
    samples = [(0, 0.0), (5, 0.5), (10, 1.0)]
    frames = [
        ImageResult("f", [face("happy", (10, 10, 40, 40)), face("sad", (200, 10, 40, 40))]),
        ImageResult("f", [face("happy", (12, 10, 40, 40))]),
        ImageResult("f", status="no_face"),
    ]
    tracks = video.face_tracks_frame(samples, frames, LABELS, every_s=0.5)
    rows = persist.video_rows(tracks, "clip.mp4", LABELS)
    assert [(r["time"], r["track_id"], r["face"]) for r in rows] == [(0.0, 0, 0), (0.0, 1, 1), (0.5, 0, 0)]
    saved = persist.save_rows(store, "video", rows, **persist.run_fields("UX test", "Lab"))
    stored = store.results(run_id=saved.run_id)
    assert stored["track_id"].tolist() == [0, 1, 0]
    # Track 0 is a person (two samples); track 1, seen once, stays a sample, here as in the store.
    people = persist.video_people(tracks, "clip.mp4", LABELS)
    assert [(p.track_id, p.samples, p.emotion, p.dwell_s) for p in people] == [(0, 2, "happy", 1.0)]
    assert store.get_run(saved.run_id)["people"] == 1 and store.get_run(saved.run_id)["samples"] == 3
    run_time = stored["run_time"].iloc[0]
    assert (stored["at"] - run_time).dt.total_seconds().tolist() == [0.0, 0.0, 0.5]


def test_faces_in_view_per_second_whatever_the_frame_rate():
    # One person, 10 frames in the second: 7 happy, 3 neutral -> one face, happy.
    counts = np.array([0, 0, 0, 7, 0, 0, 3])
    faces, per_label = persist.faces_in_view(counts, frames=10, faces=10)
    assert faces == 1 and per_label.tolist() == [0, 0, 0, 1, 0, 0, 0]
    # Two people in 4 frames (8 face observations): 5 sad, 3 angry -> one each.
    faces, per_label = persist.faces_in_view(np.array([3, 0, 0, 0, 5, 0, 0]), frames=4, faces=8)
    assert faces == 2 and per_label.tolist() == [1, 0, 0, 0, 1, 0, 0]
    assert persist.faces_in_view(np.zeros(7), frames=3, faces=0)[0] == 0


def record(stats: LiveStats, second: int, emotion: str, frames: int = 5) -> None:
    probs = np.array([0.9 if e == emotion else 0.1 / 6 for e in LABELS])
    for i in range(frames):
        t = second + i / frames
        stats.record(t, [Track(1, (10, 10, 50, 50), probs, t)], LABELS)


def test_live_recorder_saves_each_finished_second_once(store):
    stats = LiveStats(window_seconds=60)
    start = 1_773_000_000  # 2026-03-08
    for k, emotion in enumerate(["happy", "happy", "sad"]):
        record(stats, start + k, emotion)
    recorder = persist.LiveRecorder("Desk", "Lyon", "v2")
    # At start+2.5 the third second is still being counted: only the first two are written.
    assert recorder.flush(store, stats, LABELS, now=start + 2.5) == 2
    assert recorder.flush(store, stats, LABELS, now=start + 2.9) == 0
    record(stats, start + 3, "neutral")
    assert recorder.flush(store, stats, LABELS, now=start + 4.2) == 2
    assert recorder.flush(store, stats, LABELS, now=start + 4.2, final=True) == 0
    recorder.finish(store)
    seconds = store.live_seconds(run_id=recorder.run_id or store.runs()["run_id"].iloc[0])
    assert seconds["faces"].tolist() == [1, 1, 1, 1]
    assert seconds["happy"].tolist() == [1, 1, 0, 0] and seconds["sad"].tolist() == [0, 0, 1, 0]
    run = store.runs().iloc[0]
    assert (run["source"], run["campaign"], run["location"], run["status"]) == ("live", "Desk", "Lyon", "ok")
    samples = store.tallies("sample")  # what History & trends counts: one sample per face-second
    assert trends.label_counts(samples) == {"happy": 2, "sad": 1, "neutral": 1}
    assert samples["hour"].min() == pd.Timestamp(start, unit="s", tz="UTC").floor("h")


def test_live_recorder_retries_after_a_failure_and_starts_a_new_run_on_new_fields(store):
    stats = LiveStats(window_seconds=60)
    start = 1_773_000_000
    record(stats, start, "happy")
    recorder = persist.LiveRecorder("bad\nname")
    assert recorder.flush(store, stats, LABELS, now=start + 1.5) == 0
    assert "control characters" in recorder.error and store.runs().empty
    recorder.set_fields(store, "Desk", None)
    assert recorder.flush(store, stats, LABELS, now=start + 1.5) == 1 and recorder.error == ""
    first = recorder.run_id
    record(stats, start + 1, "sad")
    recorder.set_fields(store, "Desk 2", None)  # closes the first run
    assert store.get_run(first)["status"] == "ok" and recorder.run_id is None
    assert recorder.flush(store, stats, LABELS, now=start + 2.5) == 1
    runs = store.runs()
    assert sorted(runs["campaign"]) == ["Desk", "Desk 2"] and recorder.seconds_saved == 2
    assert trends.label_counts(store.tallies("sample", campaign="Desk 2", include_running=True)) == {"sad": 1}


def test_live_recorder_opens_a_new_run_when_its_run_is_deleted(store):
    stats = LiveStats(window_seconds=60)
    start = 1_773_000_000
    record(stats, start, "happy")
    recorder = persist.LiveRecorder("Desk")
    assert recorder.flush(store, stats, LABELS, now=start + 1.5) == 1
    store.delete_run(recorder.run_id)  # e.g. from History & trends while the camera runs
    record(stats, start + 1, "sad")
    assert recorder.flush(store, stats, LABELS, now=start + 2.5) == 0
    assert "unknown run" in recorder.error and recorder.run_id is None
    assert recorder.flush(store, stats, LABELS, now=start + 2.5) == 1 and recorder.error == ""
    recorder.finish(store)
    assert store.runs()["status"].tolist() == ["ok"]
    assert store.live_seconds()["sad"].tolist() == [1]


def test_live_recorder_stores_people_as_their_tracks_end_and_retries_them(store):
    stats = LiveStats(window_seconds=60)
    start = 1_773_000_000
    probs = np.array([0.9 if e == "sad" else 0.1 / 6 for e in LABELS])
    for k in range(10):  # track 1 for 2 s at 5 detections a second, then a one-detection glitch
        t = start + k / 5
        stats.record(t, [Track(1, (10, 10, 50, 50), probs, t, hits=k + 1, first_seen=start)], LABELS)
    stats.record(start + 2, [Track(2, (300, 10, 50, 50), probs, start + 2)], LABELS, ended=[1])
    stats.record(start + 3.5, [], LABELS, ended=[2])
    assert [(t.seq, t.person.track_id, t.person.samples) for t in stats.finished_tracks()] == [(1, 1, 10), (2, 2, 1)]
    recorder = persist.LiveRecorder("bad\ncampaign")
    assert recorder.flush(store, stats, LABELS, now=start + 4.0) == 0 and recorder.error  # refused: retried later
    recorder.set_fields(store, "Desk", None)
    assert recorder.flush(store, stats, LABELS, now=start + 4.0) == 4  # seconds, with the person
    assert (recorder.people_saved, recorder.tracks_after) == (1, 2)
    assert recorder.flush(store, stats, LABELS, now=start + 4.0, final=True) == 0  # nothing new
    recorder.finish(store)
    person = store.people().iloc[0]
    assert (person["track_id"], person["samples"], person["emotion"]) == (1, 10, "sad")
    assert person["dwell_s"] == pytest.approx(2.0) and person["sad"] == pytest.approx(0.9)
    run = store.runs().iloc[0]
    assert (run["people"], run["samples"]) == (1, 3)  # face-seconds: 2 of the person, 1 of the glitch
    # What Project Summary reads: one person, not a face per second.
    k = trends.kpis(store.tallies("person"), store.tallies("sample"))
    assert (k.busiest_campaign, k.busiest_people, k.busiest_faces, k.people) == ("Desk", 1, 3, 1)


def test_live_tracks_nobody_ended_end_after_a_window_unseen():
    stats = LiveStats(window_seconds=5)
    probs = np.full(len(LABELS), 1 / len(LABELS))
    for t in (100.0, 100.5):
        stats.record(t, [Track(9, (0, 0, 40, 40), probs, t)], LABELS)
    stats.record(105.0, [], LABELS)
    assert stats.finished_tracks() == []
    stats.record(106.0, [], LABELS)  # unseen for more than the window: over, though no tracker said so
    assert [(t.person.track_id, t.person.samples) for t in stats.finished_tracks()] == [(9, 2)]


def test_history_version_moves_with_the_runs(store):
    rows = persist.image_rows([ImageResult("a.jpg", [face("happy")])], LABELS)
    empty = persist.history_version(store.runs(), now=100.0)
    run_id = persist.save_rows(store, "batch", rows, **persist.run_fields("A", None)).run_id
    saved = persist.history_version(store.runs(), now=100.0)
    assert saved != empty and persist.history_version(store.runs(), now=999.0) == saved  # finished: stable
    live = store.start_run("live", campaign="Desk")
    running = persist.history_version(store.runs(), now=100.0)
    assert running != saved
    assert persist.history_version(store.runs(), now=101.0) == running  # same 5-second slot
    assert persist.history_version(store.runs(), now=106.0) != running  # live seconds may have come in
    store.finish_run(live)
    store.delete_run(run_id)
    assert persist.history_version(store.runs(), now=106.0) not in (saved, running)


def test_history_counts_finished_runs_and_the_live_session_in_progress(store):
    """A live session being recorded shows in History & trends as it happens; a failed run's
    partial rows, or those of a run whose process died (lease expired), do not."""
    from datetime import UTC, datetime, timedelta

    from src.analytics.store import RUNS

    photo = persist.save_rows(store, "photo", persist.image_rows([ImageResult("a.jpg", [face("happy")])], LABELS))
    assert photo.ok
    stats = LiveStats(window_seconds=60)
    start = int(datetime.now(UTC).timestamp()) - 10
    record(stats, start, "sad")
    recorder = persist.LiveRecorder("Desk")
    assert recorder.flush(store, stats, LABELS, now=start + 1.5) == 1  # recording: the run is running
    failed = store.start_run("batch")
    store.add_rows(failed, persist.image_rows([ImageResult("b.jpg", [face("angry")])], LABELS))
    store.finish_run(failed, "failed", "camera lost")
    stale = store.start_run("live")
    store.add_live_seconds(stale, persist.live_seconds(stats.seconds(start + 1.5), LABELS))
    with store.engine.begin() as conn:  # its process stopped writing an hour ago
        conn.execute(
            RUNS.update().where(RUNS.c.id == stale).values(heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
        )

    runs = store.runs()
    seen = store.tallies("sample", include_running=True)  # as History & trends reads them
    assert trends.label_counts(seen) == {"happy": 1, "sad": 1} and len(runs) == 4
    everything = store.tallies("sample", include_unfinished=True)
    assert trends.label_counts(everything) == {"sad": 2, "happy": 1, "angry": 1}

    now = datetime.now(UTC).timestamp()
    assert persist.in_progress(runs, now).tolist() == [r == recorder.run_id for r in runs["run_id"]]
    key = persist.history_version(runs, now)
    assert persist.history_version(runs, now + 1000, lease_s=2000) != key  # still in progress: moves
    lapsed = persist.history_version(runs, now + 1000, lease_s=1)  # its lease ran out: it leaves the history
    assert lapsed not in (key, persist.history_version(runs, now + 1000, lease_s=2000))
    assert persist.history_version(runs, now + 5000, lease_s=1) == lapsed  # and nothing is running any more
    live = recorder.run_id
    recorder.finish(store)
    assert store.get_run(live)["status"] == "ok"
    assert trends.label_counts(store.tallies("sample")) == {"happy": 1, "sad": 1}  # both finished now


def test_webhook_alerts_are_recorded_with_their_outcome(store):
    import http.server
    import threading

    from src.analytics.alerts import AlertNotifier, live_alert_event

    bodies = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204 if len(bodies) == 1 else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    done = threading.Semaphore(0)
    record = persist.alert_recorder(store)

    def on_result(event, delivered, error):
        record(event, delivered, error)
        done.release()

    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    notifier = AlertNotifier(url, attempts=1, backoff=0.01, on_result=on_result)
    try:
        for share in (0.6, 0.7):
            event = live_alert_event(
                "Negative emotions on 60% of faces",
                when=1_700_000_000.0,
                window_seconds=10,
                duration_seconds=10,
                share=share,
                threshold=0.5,
                group="negative",
                grouping="sentiment",
                counts={"angry": 3, "happy": 2},
                faces=5,
            )
            notifier.notify(event)
            assert done.acquire(timeout=30)
    finally:
        notifier.close()
        server.shutdown()
    recorded = store.alerts()
    assert list(recorded["delivered"]) == [True, False]
    assert recorded["payload"].iloc[0]["share"] == 0.6 and recorded["payload"].iloc[0]["group"] == "negative"
    assert "500" in recorded["error"].iloc[1] and url not in recorded["error"].iloc[1]
