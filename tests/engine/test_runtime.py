"""The serving runtime: ONNX twins exported from Keras, checked equal, served without TensorFlow;
INT8 twins quantised from them, checked to agree, served by default."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from support import WITHOUT_TF, astronaut_face, calibration_faces

from src import config
from src.cli import main
from src.engine.inference import EmotionRecognizer
from src.engine.manifest import manifest_path, read_manifest, sha256_file
from src.engine.runtime import (
    RuntimeUnavailable,
    int8_problem,
    int8_twin,
    load_classifier,
    onnx_twin,
    twin_problem,
)
from src.training.export import EXPORT_TOLERANCE, INT8_MIN_AGREEMENT, check_inputs, export_int8, export_onnx

BUNDLED = [config.ROOT / "models" / name for name in ("fer_cnn.keras", "fer_plus.keras", "fer_compact.keras")]


def test_results_are_the_same_through_either_runtime(trained_model, monkeypatch):
    results = {}
    for runtime in ("onnx", "keras"):
        monkeypatch.setattr(config, "RUNTIME", runtime)
        recognizer = EmotionRecognizer(trained_model)
        assert recognizer.info.runtime == runtime
        results[runtime] = recognizer.analyze(skdata.astronaut(), name="astronaut")
    onnx, keras_result = results["onnx"], results["keras"]
    assert [f.box for f in onnx.faces] == [f.box for f in keras_result.faces]
    for a, b in zip(onnx.faces, keras_result.faces):
        assert a.emotion == b.emotion
        assert max(abs(a.emotions[k] - b.emotions[k]) for k in a.emotions) <= EXPORT_TOLERANCE


def test_auto_serves_the_twin_and_falls_back_when_it_does_not_match(model_copy):
    export_onnx(model_copy)
    assert load_classifier(model_copy, "auto")[1].runtime == "onnx"

    twin = onnx_twin(model_copy)
    twin.write_bytes(twin.read_bytes() + b"\0")
    problem = twin_problem(model_copy, read_manifest(model_copy))
    assert "changed since it was exported" in problem
    assert load_classifier(model_copy, "auto")[1].runtime == "keras"
    with pytest.raises(RuntimeUnavailable, match="python -m src.cli export"):
        load_classifier(model_copy, "onnx")

    # New weights (a fresh manifest) make the export stale; exporting again mends it.
    manifest = read_manifest(model_copy)
    manifest["onnx"]["keras_sha256"] = "0" * 64
    manifest_path(model_copy).write_text(json.dumps(manifest))
    assert "stale export" in twin_problem(model_copy, read_manifest(model_copy))
    assert main(["export", "--model", str(model_copy)]) == 0
    assert twin_problem(model_copy, read_manifest(model_copy)) is None

    twin.unlink()
    assert "no ONNX export" in twin_problem(model_copy, read_manifest(model_copy))
    assert load_classifier(model_copy, "auto")[1].runtime == "keras"


def test_an_onnx_file_can_be_served_directly_and_bad_settings_are_named(model_copy):
    export_onnx(model_copy)
    predict, info = load_classifier(onnx_twin(model_copy), "auto")
    assert info.runtime == "onnx" and info.class_names == config.EMOTIONS
    assert predict(np.zeros((3, 48, 48, 1), np.float32)).shape == (3, 7)
    with pytest.raises(RuntimeUnavailable, match="FER_RUNTIME='tflite'"):
        load_classifier(model_copy, "tflite")
    with pytest.raises(FileNotFoundError):
        load_classifier(model_copy.with_name("missing.keras"))


@pytest.mark.parametrize("model", BUNDLED, ids=lambda p: p.name)
def test_bundled_twins_match_their_manifest_and_keras(model):
    manifest = read_manifest(model)
    assert twin_problem(model, manifest) is None, "run `python -m src.cli export --model " + model.name + "`"
    onnx, _ = load_classifier(model, "onnx")
    keras_predict, _ = load_classifier(model, "keras")
    x = np.concatenate([check_inputs(48, seed=2), astronaut_face()[None, ..., None]]).astype(np.float32)
    assert np.abs(onnx(x) - keras_predict(x)).max() <= EXPORT_TOLERANCE


def test_predict_runs_without_tensorflow_and_training_commands_say_what_is_missing(tmp_path, monkeypatch):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo)
    served = subprocess.run(
        [sys.executable, "-c", WITHOUT_TF, "predict", str(photo)],
        cwd=config.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 0, served.stderr[-2000:]
    # The child serves the default runtime, the INT8 twin: the same numbers as in this process;
    # the same answer as Keras.
    monkeypatch.setattr(config, "RUNTIME", "int8")
    expected = EmotionRecognizer(config.MODEL_FILE).analyze(str(photo), name=str(photo))
    header, row = served.stdout.splitlines()[:2]
    fields = dict(zip(header.split(","), row.split(",")))
    assert fields["emotion"] == expected.faces[0].emotion
    for label, p in expected.faces[0].emotions.items():
        assert abs(float(fields[label]) - p) <= 1e-4 + 5e-5  # the CSV rounds to 4 places
    monkeypatch.setattr(config, "RUNTIME", "keras")
    assert EmotionRecognizer(config.MODEL_FILE).analyze(str(photo)).faces[0].emotion == fields["emotion"]

    for command in (["export"], ["evaluate", "--data", str(tmp_path)], ["train", "--data", str(tmp_path)]):
        refused = subprocess.run(
            [sys.executable, "-c", WITHOUT_TF, *command], cwd=config.ROOT, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 2, (command, refused.stderr[-2000:])
        assert "needs TensorFlow" in refused.stderr and "pip install -e '.[train]'" in refused.stderr


def test_int8_twin_is_recorded_served_by_default_and_checked(model_copy):
    # model_copy has no fp32 twin: export_int8 writes it first.
    record = export_int8(model_copy, calibration_faces(), "synthetic test faces")
    manifest = read_manifest(model_copy)
    twin = int8_twin(model_copy)
    assert manifest["onnx_int8"] == record and record["file"] == twin.name == "fer_cnn.int8.onnx"
    assert record["sha256"] == sha256_file(twin) and record["size_bytes"] == twin.stat().st_size
    assert record["keras_sha256"] == manifest["sha256"] and record["onnx_sha256"] == manifest["onnx"]["sha256"]
    assert record["calibration"] == "48 synthetic test faces" and record["checked_faces"] == 16
    assert INT8_MIN_AGREEMENT <= record["top1_agreement"] <= 1
    assert twin_problem(model_copy, manifest) is None and int8_problem(model_copy, manifest) is None

    runtimes = {name: load_classifier(model_copy, name) for name in ("auto", "onnx", "int8")}
    assert {name: info.runtime for name, (_, info) in runtimes.items()} == {
        "auto": "onnx-int8",
        "onnx": "onnx",
        "int8": "onnx-int8",
    }
    x = calibration_faces(32, seed=6)[..., None].astype(np.float32)
    fp32, int8 = runtimes["onnx"][0](x), runtimes["int8"][0](x)
    assert int8.shape == fp32.shape and np.allclose(int8.sum(axis=1), 1, atol=1e-5)
    assert np.abs(int8 - fp32).max() < 0.1  # quantised, not equal, but close
    # The INT8 file served as a path reads the manifest of the model it came from.
    predict, info = load_classifier(twin, "auto")
    assert info.runtime == "onnx-int8" and info.version == "test-smoke"
    assert np.array_equal(predict(x), int8)

    twin.write_bytes(twin.read_bytes() + b"\0")
    assert "changed since it was exported" in int8_problem(model_copy, read_manifest(model_copy))
    assert load_classifier(model_copy, "auto")[1].runtime == "onnx"
    with pytest.raises(RuntimeUnavailable, match=r"FER_RUNTIME=int8 cannot serve fer_cnn.keras: fer_cnn.int8.onnx "):
        load_classifier(model_copy, "int8")
    twin.unlink()
    with pytest.raises(RuntimeUnavailable, match="no INT8 export fer_cnn.int8.onnx beside the model"):
        load_classifier(model_copy, "int8")
    assert load_classifier(model_copy, "auto")[1].runtime == "onnx"
