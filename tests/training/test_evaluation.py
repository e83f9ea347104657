"""Evaluation outputs: metrics.json schema, agreement with scikit-learn, ECE and
temperature scaling on synthetic cases, dataset statistics and the manifest update."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from src import config
from src.engine.manifest import read_manifest, sha256_file
from src.engine.model import load_model
from src.training.data import ferplus_majority, load_dataset
from src.training.evaluation import (
    evaluate,
    expected_calibration_error,
    fit_temperature,
    nll,
    predict_proba,
    reliability,
    scale_probs,
    write_dataset_stats,
)

SPLIT_KEYS = {"n", "accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "ece"}


def _calibrated(n: int, k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities whose top-class confidence is exactly the chance of being right."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(1.0 / k, 1.0, n)
    top = rng.integers(0, k, n)
    probs = np.repeat(((1 - conf) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), top] = conf
    right = rng.uniform(size=n) < conf
    wrong = (top + rng.integers(1, k, n)) % k
    return probs, np.where(right, top, wrong)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_ece_of_calibrated_probabilities_is_near_zero():
    probs, labels = _calibrated(100_000)
    assert expected_calibration_error(probs, labels) < 0.01
    rel = reliability(probs, labels)
    assert len(rel["count"]) == 15 and sum(rel["count"]) == len(labels)
    assert rel["bin_lower"][0] == 0.0 and rel["bin_upper"][-1] == 1.0


def test_ece_of_overconfident_probabilities_is_large():
    probs, labels = _calibrated(20_000)
    sharp = _softmax(np.log(probs) * 4)
    assert expected_calibration_error(sharp, labels) > 0.1


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, (6000, 7))
    labels = np.array([rng.choice(7, p=p) for p in _softmax(logits)])  # labels drawn from softmax(logits)
    overconfident = _softmax(logits * 3.0)
    fitted = fit_temperature(overconfident[:3000], labels[:3000])
    assert 2.4 < fitted < 3.6
    held = slice(3000, None)
    after = scale_probs(overconfident[held], fitted)
    assert nll(after, labels[held]) < nll(overconfident[held], labels[held]) - 0.1
    assert expected_calibration_error(after, labels[held]) < expected_calibration_error(
        overconfident[held], labels[held]
    )
    np.testing.assert_array_equal(after.argmax(axis=1), overconfident[held].argmax(axis=1))


def test_evaluate_writes_schema_and_agrees_with_sklearn(fer_dir, model_copy, tmp_path):
    data = load_dataset(fer_dir)
    out = tmp_path / "out"
    result = evaluate(data, model_copy, out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result.metrics
    assert set(metrics) >= {"created", "model", "class_names", "splits", "ferplus", "calibration"}
    assert metrics["model"] == {
        "file": model_copy.name,
        "sha256": sha256_file(model_copy),
        "version": "test-smoke",
        "test_time_views": config.TTA,  # the scores are those of the served views
    }
    assert metrics["class_names"] == list(config.EMOTIONS)
    assert set(metrics["splits"]) == {"PublicTest", "PrivateTest"}
    for s in metrics["splits"].values():
        assert set(s) >= SPLIT_KEYS
        assert set(s["per_class"]) == set(config.EMOTIONS)
        assert set(s["per_class"]["fear"]) == {"precision", "recall", "f1", "support"}
        assert np.asarray(s["confusion_matrix"]).shape == (7, 7)
        assert sum(map(sum, s["confusion_matrix"])) == s["n"]
    cal = metrics["calibration"]
    assert cal["fitted_on"] == "PublicTest"
    assert {"temperature", "ece_before", "ece_after", "nll_before", "nll_after"} <= set(cal)
    assert set(cal["reliability"]["PrivateTest"]) == {"bin_lower", "bin_upper", "accuracy", "confidence", "count"}
    assert set(metrics["ferplus"]["PrivateTest"]) == {"n", "accuracy", "macro_f1"}

    # The numbers are scikit-learn's on the model's own predictions.
    model, _ = load_model(model_copy)
    private = data.split("PrivateTest")
    probs = predict_proba(model, private.images)
    pred = probs.argmax(axis=1)
    s = metrics["splits"]["PrivateTest"]
    assert s["n"] == len(private)
    assert s["accuracy"] == pytest.approx(accuracy_score(private.labels, pred))
    assert s["macro_f1"] == pytest.approx(f1_score(private.labels, pred, average="macro", zero_division=0))
    cm = np.asarray(s["confusion_matrix"])
    assert np.trace(cm) / cm.sum() == pytest.approx(s["accuracy"])
    for k, name in enumerate(config.EMOTIONS):
        assert s["per_class"][name]["support"] == int(cm[k].sum())
        assert s["per_class"][name]["recall"] == pytest.approx(cm[k, k] / cm[k].sum())
    assert s["ece"] == pytest.approx(expected_calibration_error(probs, private.labels))
    assert cal["ece_before"] == pytest.approx(s["ece"])

    majority = ferplus_majority(private.ferplus)
    keep = majority >= 0
    plus = metrics["ferplus"]["PrivateTest"]
    assert plus["n"] == int(keep.sum())
    assert plus["accuracy"] == pytest.approx(accuracy_score(majority[keep], pred[keep]))

    roc = json.loads((out / "roc.json").read_text())
    assert set(roc["PrivateTest"]) == set(config.EMOTIONS)
    for k, name in enumerate(config.EMOTIONS):
        curve = roc["PrivateTest"][name]
        assert len(curve["fpr"]) == len(curve["tpr"]) <= 200
        assert curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0
        assert curve["auc"] == pytest.approx(roc_auc_score(private.labels == k, probs[:, k]))
    assert result.summary_line == f"accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f}"


def test_evaluate_updates_manifest_history_and_comparison(fer_dir, model_copy, tmp_path):
    before = read_manifest(model_copy)
    out = tmp_path / "out"
    result = evaluate(load_dataset(fer_dir), model_copy, out)
    manifest = read_manifest(model_copy)
    assert manifest["temperature"] == pytest.approx(result.metrics["calibration"]["temperature"])
    assert manifest["metrics"]["private_test_accuracy"] == result.metrics["splits"]["PrivateTest"]["accuracy"]
    assert set(manifest["metrics"]) == {
        "public_test_accuracy",
        "private_test_accuracy",
        "private_test_macro_f1",
        "ferplus_accuracy",
        "ece_after",
        "test_time_views",
    }
    assert manifest["metrics"]["test_time_views"] == config.TTA
    for kept in ("training", "version", "created", "class_names", "input_size"):
        assert manifest[kept] == before[kept]
    assert manifest["sha256"] == sha256_file(model_copy)
    _, info = load_model(model_copy)
    assert info.temperature == pytest.approx(manifest["temperature"])

    # The model is a copy of the smoke run's best.keras, found by content under runs/.
    history = pd.read_csv(out / "history.csv")
    assert history.columns[0] == "epoch"
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "val_fer_accuracy", "val_mean_accuracy"} <= set(history)
    comparison = pd.read_csv(out / "model_comparison.csv")
    assert list(comparison.columns)[:5] == ["model", "source", "private_test_accuracy", "macro_f1", "notes"]
    evaluate(load_dataset(fer_dir), model_copy, out)  # re-evaluating replaces the CNN row
    again = pd.read_csv(out / "model_comparison.csv")
    assert again["model"].str.startswith("CNN").sum() == 1


def test_dataset_stats_and_mean_faces(fer_dir, tmp_path):
    data = load_dataset(fer_dir)
    stats = write_dataset_stats(data, tmp_path)
    saved = json.loads((tmp_path / "dataset_stats.json").read_text())
    assert saved == stats
    assert set(stats) >= {
        "source",
        "class_names",
        "class_counts",
        "total",
        "imbalance_ratio",
        "pixel_stats",
        "ferplus_agreement",
    }
    assert stats["total"] == len(data)
    assert stats["class_counts"]["Training"] == data.split("Training").class_counts()
    assert stats["imbalance_ratio"] == 1.0
    train = data.split("Training")
    happy = train.images[train.labels == config.EMOTIONS.index("happy")]
    assert stats["pixel_stats"]["per_class"]["happy"]["mean"] == pytest.approx(happy.mean())
    hist = stats["pixel_stats"]["histogram"]
    assert len(hist["bins"]) == len(hist["Training"]) and sum(hist["Training"]) == train.images.size
    agree = stats["ferplus_agreement"]
    majority = ferplus_majority(data.ferplus)
    assert agree["n_compared"] == int((majority >= 0).sum())
    assert agree["overall"] == 1.0  # the synthetic votes always side with the FER2013 label
    assert np.asarray(agree["confusion"]).shape == (7, 7)
    with Image.open(tmp_path / "mean_faces.png") as im:
        assert im.size == (7 * 96, 96)


def test_an_ensembles_history_holds_each_member_found_under_runs(trained_model, isolated_dirs):
    from src.training.evaluation import training_history

    smoke = isolated_dirs["runs"] / "smoke"
    manifest = {
        "training": {
            "members": [
                {"name": "small", "sha256": sha256_file(smoke / "best.keras")},
                {"name": "lost", "sha256": "0" * 64},  # its run folder is gone: left out, not an error
            ]
        }
    }
    history = training_history(trained_model, manifest)
    assert set(history["member"]) == {"small"}
    assert len(history) == len(pd.read_csv(smoke / "history.csv")) and "val_mean_accuracy" in history
    assert training_history(trained_model, {"training": {"members": manifest["training"]["members"][1:]}}) is None


def test_evaluate_with_views_scores_them_and_serves_them_with_their_temperature(fer_dir, model_copy, tmp_path):
    from src.engine.inference import EmotionRecognizer

    data = load_dataset(fer_dir)
    result = evaluate(data, model_copy, tmp_path / "zoom", views="zoom", version="test-smoke-zoom")
    assert result.metrics["model"]["test_time_views"] == "zoom"
    assert result.metrics["model"]["version"] == read_manifest(model_copy)["version"] == "test-smoke-zoom"
    model, _ = load_model(model_copy)
    private = data.split("PrivateTest")
    zoomed = predict_proba(model, private.images, views="zoom")
    assert not np.allclose(zoomed, predict_proba(model, private.images, views="flip"))
    assert result.metrics["splits"]["PrivateTest"]["ece"] == pytest.approx(
        expected_calibration_error(zoomed, private.labels)
    )
    manifest = read_manifest(model_copy)
    assert manifest["test_time_views"] == "zoom" and manifest["metrics"]["test_time_views"] == "zoom"
    assert manifest["temperature"] == pytest.approx(result.metrics["calibration"]["temperature"])
    recognizer = EmotionRecognizer(model_copy)
    assert recognizer.info.views == "zoom"
    served = recognizer.classify(private.images[:16])
    expected = scale_probs(zoomed[:16], manifest["temperature"])
    np.testing.assert_allclose(served, expected, atol=2e-4)

    # Without --views the model is evaluated on its own views again.
    again = evaluate(data, model_copy, tmp_path / "again")
    assert again.metrics["model"]["test_time_views"] == "zoom"


def test_evaluate_score_only_leaves_the_manifest_alone(fer_dir, model_copy, tmp_path):
    before = model_copy.with_suffix(".json").read_bytes()
    result = evaluate(load_dataset(fer_dir), model_copy, tmp_path / "out", update_manifest=False, views="none")
    assert result.metrics["model"]["test_time_views"] == "none"
    assert model_copy.with_suffix(".json").read_bytes() == before
