"""Dataset views for the Data Analysis page: example-face grids, mean-face tiles and key findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from src.training.data import FerData

FER2013_URL = (
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data"
)
NO_EXAMPLES = (
    "A grid of real example faces for each emotion appears here once the FER2013 dataset is on this "
    f"computer: download `fer2013.csv` from [Kaggle]({FER2013_URL}) and run "
    "`python -m src.cli collect PATH/TO/fer2013`."
)


def sample_grid(data: FerData, per_class: int = 8, split: str = "Training", seed: int = 0, gap: int = 2) -> np.ndarray:
    """A uint8 grayscale mosaic: one row per class (in class order), ``per_class`` random faces each.

    Classes with fewer faces than ``per_class`` leave their remaining tiles mid-grey.
    """
    part = data.split(split) if split else data
    size = data.images.shape[1] if data.images.ndim == 3 else 48
    rng = np.random.default_rng(seed)
    rows, cols = len(data.class_names), per_class
    grid = np.full((rows * (size + gap) - gap, cols * (size + gap) - gap), 255, np.uint8)
    for r in range(rows):
        idx = np.flatnonzero(part.labels == r)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for c in range(cols):
            tile = part.images[pick[c]] if c < len(pick) else np.full((size, size), 128, np.uint8)
            y, x = r * (size + gap), c * (size + gap)
            grid[y : y + size, x : x + size] = tile
    return grid


def grid_rows(grid: np.ndarray, rows: int, gap: int = 2) -> list[np.ndarray]:
    """Split a ``sample_grid`` mosaic back into its per-class rows (to label each one)."""
    size = (grid.shape[0] + gap) // rows - gap
    return [grid[r * (size + gap) : r * (size + gap) + size] for r in range(rows)]


def strip_tiles(strip: np.ndarray | str | Path, n: int) -> list[np.ndarray]:
    """Cut the side-by-side mean-faces strip (array or PNG path) into ``n`` equal tiles."""
    arr = np.asarray(Image.open(strip).convert("L")) if isinstance(strip, (str, Path)) else np.asarray(strip)
    width = arr.shape[1] // n
    return [arr[:, i * width : (i + 1) * width] for i in range(n)]


def insights(stats: dict) -> list[str]:
    """Plain-language findings an analyst should know before trusting per-class numbers."""
    out: list[str] = []
    names = list(stats.get("class_names") or [])
    train = (stats.get("class_counts") or {}).get("Training") or {}
    if train:
        total = sum(train.values()) or 1
        big = max(train, key=train.get)
        small = min(train, key=train.get)
        ratio = stats.get("imbalance_ratio") or (train[big] / max(1, train[small]))
        out.append(
            f"**Imbalance**: *{big}* has {train[big] / total:.0%} of training faces, *{small}* only "
            f"{train[small] / total:.1%} ({ratio:.1f}x fewer); the model uses class weights, "
            f"and macro-F1 is reported next to accuracy."
        )
    per_class = (stats.get("pixel_stats") or {}).get("per_class") or {}
    means = {n: v["mean"] for n, v in per_class.items() if v and v.get("mean") is not None}
    if means:
        dark, light = min(means, key=means.get), max(means, key=means.get)
        out.append(
            f"**Brightness** is similar across classes ({means[dark]:.0f} for *{dark}* to "
            f"{means[light]:.0f} for *{light}* on a 0-255 scale), so brightness alone does not "
            "give the class away."
        )
    agreement = stats.get("ferplus_agreement") or {}
    if agreement.get("overall") is not None:
        per = {n: p for n, p in (agreement.get("per_class") or {}).items() if p is not None}
        worst = min(per, key=per.get) if per else None
        text = (
            f"**Label noise**: FER+ re-annotators (10 per face) agree with the original label on "
            f"{agreement['overall']:.0%} of {agreement.get('n_compared', 0):,} faces"
        )
        if worst:
            text += f"; least on *{worst}* ({per[worst]:.0%})"
        out.append(text + ". Accuracy far above that agreement would be suspicious.")
    if names and not out:
        out.append(f"{len(names)} classes: {', '.join(names)}.")
    return out
