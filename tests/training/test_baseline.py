"""The classical baseline on the tiny synthetic dataset: feature shapes, pipeline, JSON and comparison CSV."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from src import config
from src.training import baseline
from src.training.data import load_dataset

EXPECTED_KEYS = {"features", "classifier", "selection", "cv", "public_test", "private_test", "train_seconds"}


@pytest.fixture(scope="module")
def data(fer_csv):
    return load_dataset(fer_csv)


@pytest.fixture(scope="module")
def result(data):
    # Two alphas keep the grid (and the test) short.
    return baseline.run_baseline(data, alphas=(1e-3, 1e-4), log=lambda _: None)


def test_feature_shapes(data):
    faces = data.images[:5]
    hog = baseline.hog_features(faces)
    lbp = baseline.lbp_features(faces)
    assert hog.shape == (5, 900) and hog.dtype == np.float32
    assert lbp.shape == (5, baseline.LBP_GRID**2 * (baseline.LBP_POINTS + 2))
    np.testing.assert_allclose(lbp.reshape(5, baseline.LBP_GRID**2, -1).sum(axis=2), 1.0, rtol=1e-5)
    assert baseline.extract_features(faces, "hog+lbp").shape == (5, hog.shape[1] + lbp.shape[1])
    with pytest.raises(ValueError):
        baseline.extract_features(faces, "sift")


def test_pipeline_predicts_seven_classes(data):
    train = data.split("Training")
    x = baseline.extract_features(train.images, "hog")
    model = baseline.make_classifier(1e-3).fit(x, train.labels)
    pred = model.predict(baseline.extract_features(data.split("PrivateTest").images, "hog"))
    assert set(model.classes_) == set(range(len(config.EMOTIONS)))
    assert pred.min() >= 0 and pred.max() < len(config.EMOTIONS)


def test_result_has_expected_keys(result):
    assert EXPECTED_KEYS <= set(result)
    assert {"accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std", "folds", "rows", "subsampled"} <= set(
        result["cv"]
    )
    assert result["cv"]["folds"] == baseline.CV_FOLDS
    private = result["private_test"]
    assert 0.0 <= private["accuracy"] <= 1.0 and 0.0 <= private["macro_f1"] <= 1.0
    assert list(private["per_class_f1"]) == list(config.EMOTIONS)
    assert len(result["selection"]["grid"]) == len(baseline.FEATURE_SETS) * 2
    assert result["features"]["name"] in baseline.FEATURE_SETS


def test_cv_subsample_is_reported(data):
    train = data.split("Training")
    x = baseline.extract_features(train.images, "hog")
    cv = baseline.cross_validate(x, train.labels, 1e-3, limit=42)
    assert cv["subsampled"] and cv["rows"] == 42 and cv["folds"] == 5


def test_cli_writes_json_and_comparison(fer_csv, tmp_path):
    output = tmp_path / "v1" / "baseline.json"
    assert baseline.main(["--data", str(fer_csv), "--output", str(output), "--cv-folds", "3"]) == 0
    saved = json.loads(output.read_text())
    assert EXPECTED_KEYS <= set(saved) and saved["cv"]["folds"] == 3
    with (output.parent / "model_comparison.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == baseline.COMPARISON_COLUMNS
    models = [r["model"] for r in rows]
    assert "Residual Masking Network" in models and "Human accuracy" in models
    assert any(r["source"] == baseline.BASELINE_SOURCE for r in rows)
    accuracies = [float(r["private_test_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)


def test_write_model_comparison_upserts(tmp_path):
    path = tmp_path / "model_comparison.csv"
    row = {
        "model": "CNN (a)",
        "source": "this project (CNN)",
        "private_test_accuracy": 0.6,
        "macro_f1": 0.5,
        "notes": "first",
    }
    baseline.write_model_comparison(path, [row])
    baseline.write_model_comparison(path, [{**row, "model": "CNN (b)", "private_test_accuracy": 0.62}])
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    ours = [r for r in rows if r["source"] == "this project (CNN)"]
    assert [r["model"] for r in ours] == ["CNN (b)"]
    assert len(rows) == len(baseline.PUBLISHED_ANCHORS) + 1
