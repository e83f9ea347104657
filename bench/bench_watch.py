"""Memory of the headless camera worker over a long run: ``watch --loop`` on a video file.

Runs ``python -m src.cli watch FILE --loop`` (src/streams/camera.py) in a child process with a
throw-away results store, and samples its resident memory (VmRSS in /proc/PID/status; Linux)
every ``--every`` seconds from the moment it records its first second, for ``--minutes``. Then
it stops the worker with SIGTERM, as a service manager would, and checks that it exits 0 within
10 s with its run stored ``ok``.

The file is, by default, a synthetic clip of a real face (the astronaut's, from
``skimage.data.astronaut``) drifting back and forth across a 640x360 frame for 6 s at 25 fps:
the worker reads it at its own pace and replays it without end, opening it again each time,
so a long run also covers hundreds of reconnections. ``--source`` takes another file.

Usage: python bench/bench_watch.py [--minutes 30] [--every 30] [--fps 5] [--source FILE]
The last line reads ``rss_start_mb=... rss_end_mb=... rss_peak_mb=... minutes=...``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from src.streams.camera import rss_mb

ROOT = Path(__file__).resolve().parents[1]


def synthetic_clip(path: Path, seconds: float = 6.0, fps: float = 25.0) -> Path:
    """A real face (about 90 px) drifting left and right at 100 px/s over a plain background."""
    context = cv2.cvtColor(data.astronaut()[40:190, 150:300], cv2.COLOR_RGB2BGR)
    side = 140
    patch = cv2.resize(context, (side, side), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    frames = int(seconds * fps)
    for i in range(frames):
        frame = np.full((360, 640, 3), 140, np.uint8)
        phase = i / frames
        x = round(40 + 300 * (2 * phase if phase < 0.5 else 2 - 2 * phase))
        frame[110 : 110 + side, x : x + side] = patch
        writer.write(frame)
    writer.release()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument("--fps", type=float, default=5.0, help="watch --fps")
    parser.add_argument("--source", help="a video file (default: the synthetic clip)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        source = Path(args.source) if args.source else synthetic_clip(Path(tmp) / "drift.avi")
        database = f"sqlite:///{Path(tmp, 'results.db').as_posix()}"
        env = {**os.environ, "FER_DATABASE_URL": database, "FER_RETENTION_DAYS": "0"}
        command = [sys.executable, "-m", "src.cli", "watch", str(source), "--loop", "--fps", str(args.fps)]
        command += ["--campaign", "bench-watch", "--location", "bench", "--status-every", "0"]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        lines: deque[str] = deque(maxlen=200)
        recording = threading.Event()

        def follow() -> None:
            for line in proc.stderr:
                lines.append(line.rstrip())
                if "recording in run" in line:
                    recording.set()

        threading.Thread(target=follow, daemon=True).start()
        if not recording.wait(120) or proc.poll() is not None:
            proc.kill()
            print("the worker did not start recording:\n" + "\n".join(lines), file=sys.stderr)
            return 1

        samples: list[float] = []
        start = time.monotonic()
        end = start + args.minutes * 60
        while True:
            rss = rss_mb(proc.pid)
            if rss is None or proc.poll() is not None:
                print("the worker ended early:\n" + "\n".join(lines), file=sys.stderr)
                return 1
            samples.append(rss)
            print(f"t={time.monotonic() - start:7.0f} s  rss={rss:7.1f} MB", flush=True)
            if time.monotonic() >= end:
                break
            time.sleep(max(0.0, min(args.every, end - time.monotonic())))
        minutes = (time.monotonic() - start) / 60

        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        took = time.monotonic() - stopped
        time.sleep(0.2)  # the reader thread prints the worker's last lines
        summary = next((line for line in reversed(lines) if line.startswith("watched ")), "(no summary line)")
        print(summary)
        print(f"SIGTERM: exit code {code} after {took:.1f} s" + ("" if code == 0 and took < 10 else "  <-- FAILED"))

    start_mb, end_mb, peak_mb = samples[0], samples[-1], max(samples)
    print(f"RSS start {start_mb:.1f} MB, end {end_mb:.1f} MB, peak {peak_mb:.1f} MB over {minutes:.1f} minutes")
    print(f"rss_start_mb={start_mb:.1f} rss_end_mb={end_mb:.1f} rss_peak_mb={peak_mb:.1f} minutes={minutes:.1f}")
    return 0 if code == 0 and took < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
