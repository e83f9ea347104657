"""The bundled model artefact: present, small, matching its manifest, and right on a real photo."""

from __future__ import annotations

import json

import pytest

from src import config
from src.manifest import manifest_path, read_manifest, sha256_file

MODEL = config.ROOT / "models" / "fer_cnn.keras"


@pytest.mark.parametrize("name", ["fer_cnn.keras", "fer_plus.keras"])
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

    from src.inference import get_recognizer

    recognizer = get_recognizer(MODEL)
    assert recognizer.class_names == config.EMOTIONS
    faces = recognizer.predict(skdata.astronaut())
    assert len(faces) == 1
    assert faces[0].emotion == "happy", faces[0].emotions
