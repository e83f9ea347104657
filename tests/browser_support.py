"""Helpers for the real-browser tests: a fake-camera video, a Streamlit server, Chromium.

Chromium's fake capture device plays a YUV4MPEG2 (.y4m) file in a loop; we write one
directly with numpy from the astronaut photo in scikit-image, so the live camera test
sees a real face without a webcam or ffmpeg.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from support import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("FER_CHROMIUM", "/usr/bin/chromium"))
WEBRTC_IFRAME = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]'

# Chromium flags that work in a container without GPU, sandbox or internet; the fake
# media flags turn the .y4m into the camera and auto-accept the permission prompt.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def face_frame(width: int = 640, height: int = 480, shift: int = 0) -> np.ndarray:
    """The astronaut photo's head and shoulders centred on a grey webcam-sized RGB frame."""
    from skimage import data

    photo = data.astronaut()[: min(height, 512)]
    canvas = np.full((height, width, 3), 128, np.uint8)
    x0 = (width - photo.shape[1]) // 2 + shift
    canvas[: photo.shape[0], max(0, x0) : x0 + photo.shape[1]] = photo[:, max(0, -x0) : width - x0]
    return canvas


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limited-range BT.601 Y, Cb, Cr planes with 2x2 averaged chroma (what I420 readers assume)."""
    rgb = rgb.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 219 * (0.299 * r + 0.587 * g + 0.114 * b)
    cb = 128 + 224 * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = 128 + 224 * (0.5 * r - 0.418688 * g - 0.081312 * b)

    def sub(plane: np.ndarray) -> np.ndarray:
        h, w = plane.shape
        return plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    return tuple(np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, sub(cb), sub(cr)))


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """Write RGB frames (even width/height) as an uncompressed 4:2:0 YUV4MPEG2 file."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n")
            for plane in rgb_to_yuv420(frame):
                fh.write(plane.tobytes())
    return path


def face_video(path: Path, n: int = 30) -> Path:
    """~2 s of the face drifting a few pixels left and right (a live camera is never still)."""
    shifts = np.rint(6 * np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False))).astype(int)
    return write_y4m(path, [face_frame(shift=int(s)) for s in shifts])


# Loaded as sitecustomize by a server started with ``run_count_lag``: the session's
# script_run_count goes up ``lag`` seconds after a run's "finished" message is sent,
# as when the event loop is too busy to flush it. This widens the window of the
# streamlit-webrtc stale-context race (see src/app/webrtc_fix.py) so tests hit it reliably.
_RUN_COUNT_LAG = """
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import runtime as _runtime

_LAG = {lag!r}
_send = _runtime.Runtime._send_message


def _lagging_send(self, session_info, msg):
    _send(self, session_info, msg)
    if msg.WhichOneof("type") == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
        session_info.script_run_count -= 1

        def catch_up():
            session_info.script_run_count += 1

        self._get_async_objs().eventloop.call_later(_LAG, catch_up)


_runtime.Runtime._send_message = _lagging_send
"""


@contextlib.contextmanager
def streamlit_server(
    log_path: Path,
    script: str = "streamlit_app.py",
    timeout: float = 90.0,
    env: dict[str, str] | None = None,
    run_count_lag: float = 0.0,
) -> Iterator[str]:
    """Run ``streamlit run`` on a free port; yields the base URL once /_stcore/health answers."""
    port = free_port()
    pythonpath = [str(ROOT)]
    if run_count_lag > 0:
        inject = log_path.parent / "fault_injection"
        inject.mkdir(exist_ok=True)
        (inject / "sitecustomize.py").write_text(_RUN_COUNT_LAG.format(lag=run_count_lag))
        pythonpath.append(str(inject))
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        script,
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    # The shipped app reads the repository's models/ and outputs/ (it never writes there),
    # not the empty temporary folders that tests/conftest.py points FER_* at.
    inherited = {k: v for k, v in os.environ.items() if k not in ("FER_OUTPUTS_DIR", "FER_RUNS_DIR")}
    full_env = {**inherited, "PYTHONPATH": os.pathsep.join(pythonpath), **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"streamlit did not answer within {timeout:.0f} s")
                time.sleep(0.5)
            yield url
        finally:
            stop_process(proc, timeout=15)
