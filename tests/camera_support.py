"""What the camera-worker tests share (tests/streams/test_camera.py, tests/cli/test_watch.py): a
clip of a real face, Debian's ffmpeg serving it as a live MPEG-TS stream on 127.0.0.1, and waiting."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
# A short probe, so that each (re)connection starts in about a second: an option the CLI passes on.
QUICK_PROBE = {"analyzeduration": "1000000"}


def require_ffmpeg() -> str:
    if not Path(FFMPEG).is_file():
        pytest.skip("the stream tests need ffmpeg (sudo apt-get install -y ffmpeg)")
    return FFMPEG


def drift_clip(path: Path, seconds: float = 4.0, fps: float = 10.0) -> Path:
    """The astronaut's face (about 60 px) drifting right then back at 60 px/s over a grey frame."""
    from skimage import data

    context = cv2.cvtColor(data.astronaut()[40:190, 150:300], cv2.COLOR_RGB2BGR)  # face at 26..123
    side = round(150 * 60 / 97)
    patch = cv2.resize(context, (side, side), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    frames = int(seconds * fps)
    for i in range(frames):
        frame = np.full((360, 640, 3), 140, np.uint8)
        step = i if i < frames // 2 else frames - i
        x = round(40 + 60 * step / fps)
        frame[130 : 130 + side, x : x + side] = patch
        writer.write(frame)
    writer.release()
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamServer:
    """ffmpeg playing ``clip`` in a loop, in real time, as MPEG-TS to ``url``: ``tcp://...?listen=1``
    waits for one reader, ``udp://...`` sends whether anyone reads. ``kill`` cuts the stream
    (SIGKILL: no goodbye to the reader), ``start`` brings it back on the same address."""

    def __init__(self, clip: Path, url: str):
        self.clip, self.url = clip, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> StreamServer:
        command = [require_ffmpeg(), "-hide_banner", "-loglevel", "quiet", "-nostdin", "-re", "-stream_loop", "-1"]
        command += ["-i", str(self.clip), "-an", "-c:v", "mpeg2video", "-q:v", "4", "-g", "10", "-f", "mpegts"]
        self.proc = subprocess.Popen([*command, self.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.kill()


def wait_for(condition: Callable[[], object], timeout: float, what: str, step: float = 0.2):
    """Poll ``condition`` until it is true (returning its value); fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)
