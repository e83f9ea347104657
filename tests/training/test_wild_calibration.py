"""The calibration on real photos: ECE as served, a cross-fitted temperature, the manifest record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.engine.manifest import read_manifest, write_manifest
from src.training import model_card, wild_calibration

CLASSES = ("angry", "happy", "neutral")
FRAMEWORK = {"keras_version": "3", "backend": "tensorflow"}


def faces(n: int = 600, sure: float = 0.9, right: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """``predict_faces`` rows of a model ``sure`` of its top label and right on a ``right`` share of
    faces, two faces per photo, and a few faces the detector missed."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, len(CLASSES), n)
    hit = rng.random(n) < right
    top = np.where(hit, true, (true + rng.integers(1, len(CLASSES), n)) % len(CLASSES))
    probs = np.full((n, len(CLASSES)), (1 - sure) / (len(CLASSES) - 1))
    probs[np.arange(n), top] = sure
    found = np.arange(n) % 50 != 0
    frame = pd.DataFrame(
        {
            "source_image": [f"photo_{i // 2}.jpg" for i in range(n)],
            "emotion": [CLASSES[t] for t in true],
            "found": found,
            "predicted": [CLASSES[t] if f else "" for t, f in zip(top, found)],
        }
    )
    for j, name in enumerate(CLASSES):
        frame[f"p_{name}"] = np.where(found, probs[:, j], np.nan)
    return frame


def test_an_over_confident_model_is_measured_as_such():
    rows = faces(sure=0.9, right=0.5)
    record = wild_calibration.measure(rows, CLASSES, served_temperature=0.8)
    assert record["labelled_faces"] == 600 and record["faces"] == 588 and record["photos"] == 300
    assert record["mean_confidence"] == pytest.approx(0.9)
    assert record["accuracy"] == pytest.approx(0.5, abs=0.05)
    assert record["ece"] == pytest.approx(0.4, abs=0.05)  # 90% sure, right half the time
    assert sum(record["reliability"]["count"]) == 588 and record["bins"] == 15
    # A temperature above 1 on the served probabilities softens them: it multiplies the served one.
    assert record["temperature_wild"] > 0.8
    assert record["ece_after"] < 0.1, "fitted on one half of the photos, it calibrates the other"
    assert record["applied"] is False
    # The dashboard's sentence reads the record as it is.
    (sentence,) = model_card.calibration_sentences({"calibration_wild": record}, None)
    assert "over-confident" in sentence and f"ECE {record['ece']:.1%}" in sentence


def test_halves_keep_a_photo_whole():
    side = wild_calibration.halves(pd.Series(["a.jpg", "a.jpg", "b.jpg", "c.jpg"] * 50))
    assert side[0] == side[1] and set(side) == {0, 1}


def test_a_calibrated_model_stays_calibrated():
    record = wild_calibration.measure(faces(sure=0.6, right=0.6, n=3000), CLASSES, served_temperature=1.0)
    assert record["ece"] < 0.05 and record["temperature_wild"] == pytest.approx(1.0, abs=0.15)


def test_nothing_found_or_unknown_labels_are_errors():
    rows = faces(n=10)
    with pytest.raises(ValueError, match="no labelled face"):
        wild_calibration.measure(rows.assign(found=False), CLASSES, 1.0)
    with pytest.raises(ValueError, match="not classes"):
        wild_calibration.measure(rows.assign(emotion="contempt"), CLASSES, 1.0)


def test_the_record_goes_into_the_manifest_without_touching_the_served_temperature(tmp_path):
    model = tmp_path / "fer_cnn.keras"
    model.write_bytes(b"weights")
    written = write_manifest(model, CLASSES, 48, framework=FRAMEWORK, temperature=0.78, version="v9")
    record = wild_calibration.measure(faces(), CLASSES, 0.78)
    record["model"] = {"file": model.name, "sha256": written["sha256"]}
    wild_calibration.record_in_manifest(model, record)
    manifest = read_manifest(model)
    assert manifest["temperature"] == 0.78 and manifest["version"] == "v9" and manifest["created"] == written["created"]
    assert manifest["temperature_wild"] == record["temperature_wild"]
    assert manifest["calibration_wild"]["ece"] == record["ece"]
    assert model_card.wild_calibration(manifest)["faces"] == 588
    other = {**record, "model": {"sha256": "0" * 64}}
    with pytest.raises(ValueError, match="other weights"):
        wild_calibration.record_in_manifest(model, other)
