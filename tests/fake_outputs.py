"""A small, internally consistent fake set of evaluation outputs for the dashboard tests.

Mirrors the schemas the evaluation code writes (metrics.json, roc.json, history.csv,
dataset_stats.json, mean_faces.png, model_comparison.csv, benchmark.json). The
numbers are made up; they only ever live in pytest temporary folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
TEST_COUNTS = [491, 55, 528, 879, 594, 416, 626]
VAL_COUNTS = [467, 56, 496, 895, 653, 415, 607]
TRAIN_COUNTS = [3995, 436, 4097, 7215, 4830, 3171, 4965]
RECALL = [0.55, 0.45, 0.40, 0.85, 0.52, 0.78, 0.66]


def _confusion(counts: list[int], rng: np.random.Generator) -> list[list[int]]:
    """Rows summing to the class counts, with the given recall on the diagonal."""
    matrix = []
    for k, (n, recall) in enumerate(zip(counts, RECALL)):
        hit = int(round(n * recall))
        rest = rng.multinomial(n - hit, np.ones(6) / 6)
        row = list(rest[:k]) + [hit] + list(rest[k:])
        matrix.append([int(v) for v in row])
    return matrix


def _split(counts: list[int], rng: np.random.Generator) -> dict:
    cm = np.array(_confusion(counts, rng))
    n = int(cm.sum())
    precision = cm.diagonal() / np.maximum(1, cm.sum(axis=0))
    recall = cm.diagonal() / np.maximum(1, cm.sum(axis=1))
    f1 = 2 * precision * recall / np.maximum(1e-9, precision + recall)
    return {
        "n": n,
        "accuracy": float(cm.diagonal().sum() / n),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * cm.sum(axis=1)).sum() / n),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(CLASSES, precision, recall, f1, cm.sum(axis=1))
        },
        "confusion_matrix": cm.tolist(),
        "ece": 0.041,
    }


def metrics(sha256: str = "0" * 64, version: str = "test-v1") -> dict:
    rng = np.random.default_rng(0)
    edges = np.linspace(0, 1, 11)
    return {
        "created": "2026-11-21T12:00:00+00:00",
        "model": {"file": "fer_cnn.keras", "sha256": sha256, "version": version},
        "class_names": CLASSES,
        "splits": {"PublicTest": _split(VAL_COUNTS, rng), "PrivateTest": _split(TEST_COUNTS, rng)},
        "ferplus": {"PrivateTest": {"n": 3400, "accuracy": 0.71, "macro_f1": 0.52}},
        "calibration": {
            "temperature": 1.3,
            "fitted_on": "PublicTest",
            "ece_before": 0.08,
            "ece_after": 0.03,
            "nll_before": 1.02,
            "nll_after": 0.97,
            "reliability": {
                "PrivateTest": {
                    "bin_lower": edges[:-1].round(2).tolist(),
                    "bin_upper": edges[1:].round(2).tolist(),
                    "accuracy": [0, 0.12, 0.22, 0.33, 0.41, 0.52, 0.63, 0.72, 0.83, 0.93],
                    "confidence": [0, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95],
                    "count": [0, 20, 150, 400, 520, 560, 540, 480, 420, 499],
                }
            },
        },
    }


def roc() -> dict:
    out = {}
    for c, auc in zip(CLASSES, (0.86, 0.9, 0.78, 0.95, 0.83, 0.94, 0.85)):
        out[c] = {"fpr": [0.0, 0.1, 0.3, 1.0], "tpr": [0.0, auc - 0.3, auc - 0.05, 1.0], "auc": auc}
    return {"PrivateTest": out}


def history(epochs: int = 6) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame(
        {
            "epoch": e,
            "accuracy": 0.3 + 0.06 * e,
            "loss": 1.8 - 0.12 * e,
            "val_accuracy": 0.32 + 0.05 * e,
            "val_loss": 1.75 - 0.09 * e,
        }
    )


def dataset_stats() -> dict:
    rng = np.random.default_rng(1)
    counts = {
        split: dict(zip(CLASSES, c))
        for split, c in (("Training", TRAIN_COUNTS), ("PublicTest", VAL_COUNTS), ("PrivateTest", TEST_COUNTS))
    }
    confusion = (np.diag([400, 40, 380, 820, 450, 360, 540]) + rng.integers(0, 30, (7, 7))).tolist()
    return {
        "source": "fer2013.csv.gz",
        "class_names": CLASSES,
        "class_counts": counts,
        "total": sum(TRAIN_COUNTS) + sum(VAL_COUNTS) + sum(TEST_COUNTS),
        "imbalance_ratio": max(TRAIN_COUNTS) / min(TRAIN_COUNTS),
        "pixel_stats": {
            "per_class": {c: {"mean": 120.0 + i * 3, "std": 60.0 + i} for i, c in enumerate(CLASSES)},
            "histogram": {
                "bins": list(range(0, 256, 8)),
                "bin_width": 8,
                "Training": rng.integers(1000, 5000, 32).tolist(),
            },
        },
        "ferplus_agreement": {
            "overall": 0.78,
            "n_compared": 35000,
            "per_class": dict(zip(CLASSES, (0.7, 0.4, 0.55, 0.92, 0.68, 0.85, 0.8))),
            "confusion": confusion,
        },
    }


def model_comparison() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": "Human (Goodfellow et al. 2013)",
                "source": "literature",
                "private_test_accuracy": 0.655,
                "macro_f1": None,
                "notes": "approximate",
            },
            {
                "model": "HOG + linear SVM",
                "source": "baseline",
                "private_test_accuracy": 0.45,
                "macro_f1": 0.38,
                "notes": "",
            },
            {
                "model": "compact CNN",
                "source": "this project (CNN)",
                "private_test_accuracy": 0.66,
                "macro_f1": 0.61,
                "notes": "",
            },
        ]
    )


def benchmark() -> dict:
    return {
        "median_photo_ms": 42.0,
        "faces_per_second": 310.0,
        "model_load_s": 2.1,
        "cold_start_s": 6.5,
        "peak_rss_mb": 720.0,
    }


def write_fake_outputs(folder: Path, sha256: str = "0" * 64) -> Path:
    """Write the full fake set into ``folder`` (created if needed); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics(sha256)))
    (folder / "roc.json").write_text(json.dumps(roc()))
    (folder / "dataset_stats.json").write_text(json.dumps(dataset_stats()))
    (folder / "benchmark.json").write_text(json.dumps(benchmark()))
    history().to_csv(folder / "history.csv", index=False)
    model_comparison().to_csv(folder / "model_comparison.csv", index=False)
    tiles = [np.full((96, 96), 80 + 20 * k, np.uint8) for k in range(len(CLASSES))]
    Image.fromarray(np.hstack(tiles)).save(folder / "mean_faces.png")
    return folder
