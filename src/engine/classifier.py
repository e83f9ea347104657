"""What every way of running the model shares: its facts (``ModelInfo``, read from the
manifest), the predict callable's type, and test-time augmentation (``tta_averaged``).

``src.engine.model`` (Keras) and ``src.engine.runtime`` (ONNX Runtime) both return these,
so neither needs the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src import config

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelInfo:
    """What the app needs to know about a saved model, read from its manifest."""

    path: Path
    class_names: tuple[str, ...]
    input_size: int
    temperature: float
    manifest: dict
    runtime: str = "keras"

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unversioned"))

    @property
    def views(self) -> str:
        """The test-time views this model is served with (``model_views``)."""
        return model_views(self.manifest)


# Test-time augmentation modes (``config.TTA_MODES``): the views of each face whose probabilities
# are averaged. "flip": the face and its mirror image; "zoom": those two, and both again
# zoomed in and out by ZOOM_SCALES around the centre (six views), which absorbs some of the
# detector's framing error; "scale": only the zoomed four, at two thirds of zoom's cost.
ZOOM_SCALES = (1.1, 0.9)


def check_tta(mode: str) -> str:
    if mode not in config.TTA_MODES:
        raise ValueError(f"test-time augmentation {mode!r} is not one of {', '.join(config.TTA_MODES)}")
    return mode


def model_views(manifest: dict | None) -> str:
    """The test-time views to serve a model with: ``FER_TTA`` when set, else those its
    manifest names (``test_time_views``: the views its temperature and scores were measured
    on), else ``config.TTA``. An unknown name in a manifest falls back rather than fails."""
    if config.TTA_OVERRIDE is not None:
        return config.TTA_OVERRIDE
    named = (manifest or {}).get("test_time_views") if isinstance(manifest, dict) else None
    return named if named in config.TTA_MODES else config.TTA


def tta_count(mode: str) -> int:
    """How many views of each face ``mode`` classifies."""
    return {"none": 1, "flip": 2, "zoom": 2 * (1 + len(ZOOM_SCALES)), "scale": 2 * len(ZOOM_SCALES)}[check_tta(mode)]


def zoomed(x: np.ndarray, scale: float) -> np.ndarray:
    """(N, H, W, 1) faces scaled by ``scale`` about their centre, the borders mirrored."""
    h, w = x.shape[1:3]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    m = np.float32([[scale, 0, cx * (1 - scale)], [0, scale, cy * (1 - scale)]])
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i, :, :, 0] = cv2.warpAffine(
            x[i, :, :, 0], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    return out


def tta_views(x: np.ndarray, mode: str) -> np.ndarray:
    """(views, N, H, W, 1): the views of (N, H, W, 1) faces that ``mode`` classifies (the face
    as seen first, except in "scale", which has no unzoomed view)."""
    check_tta(mode)
    zooms = [zoomed(x, s) for s in ZOOM_SCALES] if mode in ("zoom", "scale") else []
    base = zooms if mode == "scale" else [x, *zooms]
    if mode == "none":
        return np.stack(base)
    return np.stack([v for b in base for v in (b, b[:, :, ::-1])])


def tta_averaged(predict, x: np.ndarray, mode: str = "flip") -> np.ndarray:
    """``predict`` on (N, H, W, 1) faces, averaged over the views of ``mode`` (``TTA_MODES``).

    One call on all the views together (a batch of views x N), so the test-time
    augmentation costs one network call, not one per view.
    """
    if mode == "none" or len(x) == 0:
        check_tta(mode)
        return np.asarray(predict(x))
    views = tta_views(x, mode)
    out = np.asarray(predict(views.reshape(-1, *x.shape[1:])))
    return out.reshape(len(views), len(x), *out.shape[1:]).mean(axis=0)
