"""Model export (src/training/export.py): the ONNX twin checked against Keras, the INT8 twin
calibrated on Training faces and checked against the fp32 twin, both recorded in the manifest."""

from __future__ import annotations

import numpy as np
import pytest
from support import astronaut_face, calibration_faces

from src import config
from src.cli import main
from src.engine.manifest import manifest_path, read_manifest, sha256_file
from src.engine.runtime import int8_problem, int8_twin, load_classifier, onnx_twin, twin_problem
from src.training.export import EXPORT_TOLERANCE, check_inputs, export_int8, export_onnx


def test_publish_exports_a_twin_that_agrees_with_keras(trained_model):
    manifest = read_manifest(trained_model)
    record = manifest["onnx"]
    twin = onnx_twin(trained_model)
    assert twin.is_file() and record["file"] == twin.name
    assert record["sha256"] == sha256_file(twin) and record["keras_sha256"] == manifest["sha256"]
    assert record["max_abs_diff"] <= EXPORT_TOLERANCE
    assert twin_problem(trained_model, manifest) is None

    onnx, info = load_classifier(trained_model, "onnx")
    keras_predict, keras_info = load_classifier(trained_model, "keras")
    assert (info.runtime, keras_info.runtime) == ("onnx", "keras")
    assert info.class_names == keras_info.class_names and info.input_size == keras_info.input_size
    x = np.concatenate([check_inputs(info.input_size, seed=1), astronaut_face(info.input_size)[None, ..., None]])
    x = x.astype(np.float32)
    assert np.abs(onnx(x) - keras_predict(x)).max() <= EXPORT_TOLERANCE


def test_int8_export_below_the_agreement_threshold_writes_nothing(model_copy):
    export_onnx(model_copy)
    before = manifest_path(model_copy).read_text()
    with pytest.raises(ValueError, match=r"of 16 held-out faces \(< 101%\); not written"):
        export_int8(model_copy, calibration_faces(), "synthetic test faces", min_agreement=1.01)
    with pytest.raises(ValueError, match="need at least 2 calibration faces"):
        export_int8(model_copy, calibration_faces(1), "synthetic test faces")
    assert manifest_path(model_copy).read_text() == before
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["fer_cnn.json", "fer_cnn.keras", "fer_cnn.onnx"]


def test_export_writes_the_int8_twin_from_training_faces_or_says_why_not(
    model_copy, fer_csv, tmp_path, monkeypatch, capsys
):
    assert main(["export", "--model", str(model_copy), "--data", str(fer_csv)]) == 0
    out = capsys.readouterr().out
    record = read_manifest(model_copy)["onnx_int8"]
    # 84 Training rows in the synthetic CSV: three quarters calibrate, a quarter check.
    assert record["calibration"] == "63 FER2013 Training faces, seed 0" and record["checked_faces"] == 21
    assert f"exported {int8_twin(model_copy)} (INT8, calibrated on 63 FER2013 Training faces, seed 0" in out
    assert load_classifier(model_copy, "auto")[1].runtime == "onnx-int8"

    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "no-datasets")
    assert main(["export", "--model", str(model_copy)]) == 0
    out = capsys.readouterr().out
    assert (
        "exported" in out and "INT8 twin skipped (it is calibrated on FER2013 Training faces): no dataset found" in out
    )
    assert main(["export", "--model", str(model_copy), "--no-int8"]) == 0
    assert "INT8 twin skipped (--no-int8)" in capsys.readouterr().out


def test_publish_writes_the_int8_twin_when_given_the_training_data(trained_model, fer_csv, isolated_dirs, tmp_path):
    from src.training.train import publish

    dest = publish(isolated_dirs["runs"] / "smoke", tmp_path / "m.keras", data_path=fer_csv, version="t")
    assert int8_problem(dest, read_manifest(dest)) is None
    assert load_classifier(dest, "auto")[1].runtime == "onnx-int8"


def test_publish_exports_the_features_twin_for_adapt(trained_model):
    """The features twin gives the Keras features model's outputs and is recorded in the manifest."""
    from src.engine.model import load_model
    from src.engine.runtime import features_problem, features_twin, onnx_predict
    from src.training.export import features_model

    manifest = read_manifest(trained_model)
    assert features_problem(trained_model, manifest) is None
    record = manifest["onnx_features"]
    model, _ = load_model(trained_model)
    x = check_inputs(48, count=16, seed=3)
    expected = features_model(model).predict(x, verbose=0)
    predict, _, dims = onnx_predict(features_twin(trained_model))
    assert dims == record["dimensions"] == expected.shape[1]
    assert np.abs(predict(x) - expected).max() <= EXPORT_TOLERANCE * max(1.0, float(np.abs(expected).max()))
