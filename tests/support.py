"""Small helpers the test modules share: free loopback ports, encoded images, stopping servers."""

from __future__ import annotations

import io
import socket
import subprocess

import numpy as np
from PIL import Image

# Run in a child Python: imports of TensorFlow, Keras and tf2onnx fail as they would in the
# serving install (pip install -e . without the train extra).
WITHOUT_TF = """
import importlib.abc, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, NoTensorFlow())
from src.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
sys.exit(code)
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a server process, killing it when it does not exit within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def astronaut_face(size: int = 48) -> np.ndarray:
    """The astronaut's face, detected, aligned and cropped as the engine does."""
    from skimage import data as skdata

    from src.engine.faces import get_detector
    from src.engine.preprocessing import extract_face, to_gray

    rgb = skdata.astronaut()
    face = get_detector().detect_faces(rgb)[0]
    return extract_face(to_gray(rgb), face.box, face.landmarks, size)


def calibration_faces(count: int = 64, seed: int = 5) -> np.ndarray:
    """Face-like 48x48 images for the tiny model: smooth shading plus noise, uint8."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 48)
    shade = rng.uniform(-1, 1, (count, 3))
    base = 255 * np.clip(shade[:, :1, None] * ramp[None, None, :] + shade[:, 1:2, None] * ramp[None, :, None], 0, 1)
    return np.clip(base + rng.normal(0, 30, (count, 48, 48)), 0, 255).astype(np.uint8)
