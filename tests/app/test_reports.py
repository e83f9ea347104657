"""Dashboard loaders: version selection, round trips, and None (never an error) when missing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from src import config
from src.app import reports


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "OUTPUTS_DIR", tmp_path)
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    return tmp_path


def test_missing_files_give_none(outputs):
    for loader in (
        reports.load_metrics,
        reports.load_roc,
        reports.load_history,
        reports.load_dataset_stats,
        reports.load_model_comparison,
        reports.load_benchmark,
        reports.mean_faces_path,
    ):
        assert loader() is None


def test_highest_version_with_metrics_wins(outputs, monkeypatch):
    for version in ("v1", "v2", "v10"):
        (outputs / version).mkdir()
    (outputs / "v1" / "metrics.json").write_text(json.dumps({"v": 1}))
    (outputs / "v2" / "metrics.json").write_text(json.dumps({"v": 2}))
    assert reports.load_metrics() == {"v": 2}  # v10 has no metrics yet
    (outputs / "v10" / "metrics.json").write_text(json.dumps({"v": 10}))
    assert reports.load_metrics() == {"v": 10}  # numeric order, not string order
    assert reports.load_metrics("v1") == {"v": 1}
    monkeypatch.setattr(config, "OUTPUT_VERSION", "v2")
    assert reports.load_metrics() == {"v": 2}


def test_round_trips_and_corrupt_files(outputs):
    folder = outputs / "v1"
    folder.mkdir()
    (folder / "metrics.json").write_text("{not json")
    assert reports.load_metrics() is None
    (folder / "benchmark.json").write_text(json.dumps({"median_photo_ms": 12.5}))
    assert reports.load_benchmark() == {"median_photo_ms": 12.5}
    pd.DataFrame({"epoch": [0, 1], "accuracy": [0.3, 0.4]}).to_csv(folder / "history.csv", index=False)
    assert list(reports.load_history()["accuracy"]) == [0.3, 0.4]
    (folder / "model_comparison.csv").write_text("")
    assert reports.load_model_comparison() is None
    (folder / "mean_faces.png").write_bytes(b"png")
    assert reports.mean_faces_path() == folder / "mean_faces.png"
