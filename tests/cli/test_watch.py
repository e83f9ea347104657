"""``python -m src.cli watch``: a real TCP stream from Debian's ffmpeg, cut mid-run and brought back,
read by the CLI in a child process that is then stopped with SIGTERM; bad sources are one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from camera_support import QUICK_PROBE, StreamServer, drift_clip, free_udp_port, require_ffmpeg, wait_for
from support import free_port

from src.analytics.store import Store
from src.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROBE = [f"--option={key}={value}" for key, value in QUICK_PROBE.items()]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    require_ffmpeg()
    return drift_clip(tmp_path_factory.mktemp("watch") / "drift.avi")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    return err[-1]


def test_a_bad_source_is_one_clear_line(tmp_path, capsys):
    assert main(["watch", str(tmp_path / "lobby.mp4")]) == 2
    assert _error_line(capsys) == f"error: no such file: {tmp_path / 'lobby.mp4'}"
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    assert main(["watch", str(notes)]) == 2
    assert _error_line(capsys) == f"error: not a video: {notes} (FFmpeg cannot read it)"
    assert main(["watch", str(notes), str(notes)]) == 2
    assert "--engine ray" in _error_line(capsys)


def test_an_unreachable_stream_gives_up_after_max_retries(capsys):
    url = f"tcp://127.0.0.1:{free_port()}"
    assert main(["watch", url, "--max-retries", "2", "--backoff-max", "1", "--status-every", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: cannot read {url} after 3 attempts: Connection refused"
    assert len([line for line in err if "failed (Connection refused); next in" in line]) == 2  # a line per retry


def test_watch_reconnects_after_a_cut_and_stops_cleanly_on_sigterm(tmp_path, clip):
    """The issue's test: a stream cut mid-run, logged, reconnected with back-off once ffmpeg is
    back, seconds stored after the reconnection; SIGTERM ends it with exit 0 within 10 s and the
    run ``ok`` with all its seconds."""
    database = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    url = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "FER_DATABASE_URL": database, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "src.cli", "watch", url, "--campaign", "Lobby test", "--location", "Door 1"]
    command += ["--timeout", "2", "--backoff-max", "2", *PROBE]
    server = StreamServer(clip, f"{url}?listen=1").start()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stderr), daemon=True).start()

    def logged(text: str) -> bool:
        if proc.poll() is not None:
            raise AssertionError("the worker ended early:\n" + "\n".join(lines))
        return any(text in line for line in lines)

    store = Store(database)
    try:
        wait_for(lambda: logged("recording in run"), 40, "the first stored second")
        server.kill()
        wait_for(lambda: logged("stream lost (end of stream); reconnecting"), 10, "the drop to be logged")
        wait_for(lambda: logged("attempt 2 failed"), 10, "two failed reconnection attempts")
        server.start()
        wait_for(lambda: logged("reconnected"), 30, "the reconnection")
        back = pd.Timestamp.now(tz="UTC")
        wait_for(
            lambda: (store.live_seconds(include_unfinished=True)["second"] > back).sum() >= 2,
            20,
            "seconds stored after the reconnection",
        )
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        server.kill()
    time.sleep(0.2)
    log = "\n".join(lines)
    assert code == 0 and took < 10, log
    # One line per attempt, each waiting longer (jitter aside) up to the cap.
    waits = [float(w) for w in re.findall(r"attempt \d+ failed \(Connection refused\); next in ([\d.]+) s", log)]
    assert len(waits) >= 2 and all(w <= 2.0 for w in waits), log
    assert waits[0] <= 1.0 <= waits[1] * 2, log
    runs = store.runs()
    assert len(runs) == 1, log
    run = runs.iloc[0]
    assert (run["status"], run["source"], run["tags"], run["campaign"], run["location"]) == (
        "ok",
        "live",
        ["camera"],
        "Lobby test",
        "Door 1",
    )
    seconds = store.live_seconds()
    summary = re.search(r"watched .* 1 reconnection, (\d+) seconds(?: and \d+ pe\w+)? stored in run (\w+) \(ok\)", log)
    assert summary, log
    assert int(summary[1]) == len(seconds) and summary[2] == run["run_id"]
    assert (seconds["faces"] == 1).mean() > 0.8  # the face is seen in (nearly) every second


def test_a_file_is_watched_to_its_end_and_fires_the_webhook(tmp_path, clip):
    """A file without --loop: read at its own pace, its run ``ok`` at the end (exit 0). The alert,
    set to watch the positive group for 2 s (the astronaut smiles), is POSTed to the webhook
    once, as on the live tab, and its delivery recorded in the store."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    database = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    env = {
        **os.environ,
        "FER_DATABASE_URL": database,
        "FER_ALERT_WEBHOOK": f"http://127.0.0.1:{server.server_address[1]}/hook",
        "FER_ALERT_GROUP": "positive",
        "FER_ALERT_SECONDS": "2",
    }
    command = [sys.executable, "-m", "src.cli", "watch", str(clip), "--campaign", "Ad test", "--fps", "10"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert [event["kind"] for event in received] == ["live_alert"], done.stderr
    assert received[0]["group"] == "positive" and received[0]["counts"]["happy"] > 0
    store = Store(database)
    run = store.runs().iloc[0]
    assert (run["status"], run["campaign"], run["tags"]) == ("ok", "Ad test", ["camera"])
    assert 3 <= len(store.live_seconds()) <= 6  # a 4 s clip, read in real time
    alerts = store.alerts()
    assert list(alerts["delivered"]) == [True]


@pytest.mark.ray
def test_two_streams_on_ray_one_actor_each(tmp_path, clip):
    """``--engine ray`` with two UDP streams: one actor and one run per stream, each at its
    location, their log lines relayed by the driver; SIGTERM stops both, runs ``ok``, exit 0."""
    pytest.importorskip("ray")
    database = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    ports = [free_udp_port(), free_udp_port()]
    urls = [f"udp://127.0.0.1:{port}" for port in ports]
    env = {**os.environ, "FER_DATABASE_URL": database, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "src.cli", "watch", "--engine", "ray", *urls, "--campaign", "Two doors"]
    command += ["--location", "Door 1", "--location", "Door 2", "--ray-cpus-per-stream", "0.5", *PROBE]
    servers = [StreamServer(clip, f"{url}?pkt_size=1316").start() for url in urls]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stderr), daemon=True).start()
    store = Store(database)

    def both_recording() -> bool:
        if proc.poll() is not None:
            raise AssertionError("the driver ended early:\n" + "\n".join(lines))
        seconds = store.live_seconds(include_unfinished=True)
        return len(seconds) and (seconds.groupby("run_id").size() >= 2).sum() == 2

    try:
        wait_for(both_recording, 90, "both streams' seconds in the store", step=0.5)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        for server in servers:
            server.kill()
    time.sleep(0.2)
    log = "\n".join(lines)
    assert code == 0 and took < 10, log
    runs = store.runs().sort_values("location")
    assert list(runs["location"]) == ["Door 1", "Door 2"] and set(runs["status"]) == {"ok"}, log
    assert all(tags == ["camera"] for tags in runs["tags"])
    for i, url in enumerate(urls):
        assert f"[{i}] " in log and f"{url}: recording in run" in log, log
    assert len(re.findall(r"^watched udp://.*\(ok\)$", log, re.M)) == 2, log
