"""The bundled model artefact: present, small, matching its manifest, and right on a real photo;
its INT8 twin vouched for by the manifest and agreeing with the fp32 twin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from src import config
from src.engine.manifest import manifest_path, read_manifest, sha256_file

MODEL = config.ROOT / "models" / "fer_cnn.keras"
BUNDLED = ["fer_cnn.keras", "fer_plus.keras", "fer_compact.keras"]


@pytest.mark.parametrize("name", BUNDLED)
def test_model_file_is_small_and_matches_manifest(name):
    model = config.ROOT / "models" / name
    assert model.is_file(), f"{model} is missing"
    assert model.stat().st_size <= 20 * 1024 * 1024
    assert manifest_path(model).exists()
    manifest = read_manifest(model)
    assert manifest["sha256"] == sha256_file(model)
    assert manifest["file"] == model.name
    # The data is named by file and hash, never by a path of the machine it was trained on.
    assert "/" not in json.dumps(manifest["training"]["data"])


def test_manifest_labels_and_input_size():
    manifest = read_manifest(MODEL)
    assert manifest["class_names"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert manifest["input_size"] == 48
    assert manifest.get("temperature", 1.0) > 0


def test_astronaut_is_one_happy_face():
    from skimage import data as skdata

    from src.engine.inference import get_recognizer

    recognizer = get_recognizer(MODEL)
    assert recognizer.class_names == config.EMOTIONS
    faces = recognizer.predict(skdata.astronaut())
    assert len(faces) == 1
    assert faces[0].emotion == "happy", faces[0].emotions


@pytest.mark.parametrize("name", BUNDLED)
def test_int8_twin_matches_its_manifest_and_agrees_with_the_fp32_twin(name):
    from skimage import data as skdata

    from src.engine.faces import get_detector
    from src.engine.preprocessing import extract_face, to_gray
    from src.engine.runtime import int8_problem, int8_twin, load_classifier
    from src.training.export import INT8_MIN_AGREEMENT, check_inputs

    model = config.ROOT / "models" / name
    manifest = read_manifest(model)
    record = manifest["onnx_int8"]
    assert int8_problem(model, manifest) is None, f"run `python -m src.cli export --model {name} --data PATH`"
    assert record["sha256"] == sha256_file(int8_twin(model))
    assert record["size_bytes"] <= manifest["onnx"]["size_bytes"] / 3  # int8 weights: about a quarter of fp32
    assert record["onnx_sha256"] == manifest["onnx"]["sha256"]
    assert "Training" in record["calibration"] and "/" not in json.dumps(record)
    assert record["top1_agreement"] >= INT8_MIN_AGREEMENT

    rgb = skdata.astronaut()
    face = get_detector().detect_faces(rgb)[0]
    astronaut = extract_face(to_gray(rgb), face.box, face.landmarks, 48)[None, ..., None]
    x = np.concatenate([check_inputs(48, seed=2), astronaut]).astype(np.float32)
    (fp32, fp32_info), (int8, int8_info) = load_classifier(model, "onnx"), load_classifier(model, "int8")
    assert (fp32_info.runtime, int8_info.runtime) == ("onnx", "onnx-int8")
    expected, got = fp32(x), int8(x)
    # Noise, flat and saturated images sit far from the faces it was calibrated on: most, not all, agree.
    assert (expected.argmax(1) == got.argmax(1)).mean() >= 0.9
    assert got[-1].argmax() == expected[-1].argmax() and np.abs(got[-1] - expected[-1]).max() <= 0.01


def test_the_fast_model_is_the_deployed_ensembles_compact_member():
    """models/fer_compact.keras (``--model fer_compact``) is v3's first member on its own, each with
    its own class shifts (``balance``): the same weights but for the output biases, which differ
    by the difference of the two shifts."""
    import keras

    from src.engine.model import ensemble_members

    fast_file = config.ROOT / "models" / "fer_compact.keras"
    compact, ensemble = read_manifest(fast_file), read_manifest(MODEL)
    first = ensemble["training"]["members"][0]
    assert compact["training"]["config"] == first["training"]["config"]
    assert "members" not in compact["training"] and compact["training"]["parameters"] < 400_000
    shifts = [np.array([m["training"]["class_bias"]["bias"][c] for c in config.EMOTIONS]) for m in (compact, ensemble)]
    fast = keras.models.load_model(fast_file, compile=False)
    member = ensemble_members(keras.models.load_model(MODEL, compile=False))[0]
    assert [layer.name for layer in fast.layers] == [layer.name for layer in member.layers]
    for ours, theirs in zip(fast.layers, member.layers):
        if ours.name != "emotion":
            assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights())), ours.name
    (fast_kernel, fast_bias), (member_kernel, member_bias) = (
        m.get_layer("emotion").get_weights() for m in (fast, member)
    )
    assert np.array_equal(fast_kernel, member_kernel)
    assert np.allclose(fast_bias - member_bias, shifts[0] - shifts[1], atol=1e-3)
