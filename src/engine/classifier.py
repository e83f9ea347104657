"""What every way of running the model shares: its facts (``ModelInfo``, read from the
manifest), the predict callable's type, and flip-averaged prediction (test-time augmentation).

``src.engine.model`` (Keras) and ``src.engine.runtime`` (ONNX Runtime) both return these,
so neither needs the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def flip_averaged(predict, x: np.ndarray, flip: bool = True) -> np.ndarray:
    """``predict(x)`` on (N, H, W, 1) faces, averaged with the mirrored faces' when ``flip``.

    One call on the faces and their mirror images together (a batch of 2N), so the
    test-time augmentation costs one network call, not two.
    """
    if not flip or len(x) == 0:
        return np.asarray(predict(x))
    both = np.asarray(predict(np.concatenate([x, x[:, :, ::-1]])))
    return (both[: len(x)] + both[len(x) :]) / 2
