"""The model manifest (src/engine/manifest.py): strict and tolerant reading, writing, and no Keras needed."""

from __future__ import annotations

import json

import pytest

from src.engine.manifest import ManifestError, manifest_path, read_manifest, sha256_file, write_manifest

FRAMEWORK = {"keras_version": "3.test", "backend": "numpy"}


def test_manifest_sits_beside_the_model(tmp_path):
    assert manifest_path(tmp_path / "fer_cnn.keras") == tmp_path / "fer_cnn.json"


def test_tolerant_reading_gives_none_for_missing_broken_or_odd_files(tmp_path):
    model = tmp_path / "m.keras"
    assert read_manifest(model, strict=False) is None
    manifest_path(model).write_text("{broken")
    assert read_manifest(model, strict=False) is None
    manifest_path(model).write_text("[1, 2]")
    assert read_manifest(model, strict=False) is None
    manifest_path(model).write_text(json.dumps({"version": "v7", "sha256": "abc"}))
    assert read_manifest(model, strict=False)["version"] == "v7"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{broken", "not valid JSON"), ("[1, 2]", "holds a list")],
)
def test_strict_reading_names_the_file_and_the_problem(tmp_path, content, message):
    model = tmp_path / "m.keras"
    if content is not None:
        manifest_path(model).write_text(content)
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(model)
    assert "m.json" in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that catch ValueError keep working


def test_write_keeps_unrepeated_fields_and_the_birth_date_of_unchanged_weights(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"weights v1")
    first = write_manifest(model, ("a", "b"), 48, framework=FRAMEWORK, version="v1", training={"epochs": 3})
    assert first["sha256"] == sha256_file(model) and first["size_bytes"] == 10
    assert first["class_names"] == ["a", "b"] and first["keras_version"] == "3.test"
    assert read_manifest(model) == first

    manifest_path(model).write_text(json.dumps({**first, "created": "2020-01-01T00:00:00+00:00"}))
    again = write_manifest(model, ("a", "b"), 48, framework=FRAMEWORK, temperature=1.5)
    assert again["created"] == "2020-01-01T00:00:00+00:00"  # same weights
    assert again["training"] == {"epochs": 3} and again["version"] == "v1" and again["temperature"] == 1.5

    model.write_bytes(b"weights v2")
    retrained = write_manifest(model, ("a", "b"), 48, framework=FRAMEWORK)
    assert retrained["created"] != "2020-01-01T00:00:00+00:00"
    assert retrained["sha256"] == sha256_file(model) != first["sha256"]
    # New weights start afresh: no score, temperature or version of the old weights survives.
    assert "version" not in retrained and "training" not in retrained and retrained["temperature"] == 1.0
