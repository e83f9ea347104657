"""Read-only loaders for the evaluation outputs the dashboard shows.

Every loader returns ``None`` when its file is missing or unreadable, so a page
can show "not evaluated yet" instead of failing. The folder is ``outputs.read_dir``:
the pinned version, else the newest one holding a metrics.json. Nothing here writes
files or imports Streamlit or TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from src.training.outputs import model_folder, read_dir


def folder(version: str | None = None, model: str | Path | None = None) -> Path:
    """The reports of ``model`` (a model file; None: the deployed one) in the read folder."""
    return model_folder(read_dir(version), model)


def _json(name: str, version: str | None, model: str | Path | None = None) -> dict | None:
    try:
        payload = json.loads((folder(version, model) / name).read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _csv(name: str, version: str | None, model: str | Path | None = None) -> pd.DataFrame | None:
    try:
        return pd.read_csv(folder(version, model) / name)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def load_metrics(version: str | None = None, model: str | Path | None = None) -> dict | None:
    """metrics.json: per-split scores, FER+ accuracy, calibration."""
    return _json("metrics.json", version, model)


def load_roc(version: str | None = None, model: str | Path | None = None) -> dict | None:
    """roc.json: {split: {label: {fpr, tpr, auc}}}."""
    return _json("roc.json", version, model)


def load_history(version: str | None = None, model: str | Path | None = None) -> pd.DataFrame | None:
    """history.csv of the training run: epoch, accuracy, loss, val_accuracy, val_loss."""
    return _csv("history.csv", version, model)


def load_dataset_stats(version: str | None = None) -> dict | None:
    """dataset_stats.json: class counts, pixel statistics, FER+ agreement."""
    return _json("dataset_stats.json", version)


def load_model_comparison(version: str | None = None) -> pd.DataFrame | None:
    """model_comparison.csv: model, source, private_test_accuracy, macro_f1, notes."""
    return _csv("model_comparison.csv", version)


def load_benchmark(version: str | None = None) -> dict | None:
    """benchmark.json from the bench script (latency, throughput, memory)."""
    return _json("benchmark.json", version)


def mean_faces_path(version: str | None = None) -> Path | None:
    """mean_faces.png if it has been written."""
    path = read_dir(version) / "mean_faces.png"
    return path if path.is_file() else None


def load_cross_dataset(version: str | None = None, model: str | Path | None = None) -> dict | None:
    """cross_dataset.json from bench/score_wild.py: ExpW held-back photos, CK+ (full pipeline)."""
    return _json("cross_dataset.json", version, model)
