"""The error model: confusion counts from held-back ExpW photos through the real pipeline, its file and loader."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from src import config
from src.engine.classifier import model_views
from src.engine.manifest import read_manifest, sha256_file
from src.training.data import expw_split
from src.training.error_model import (
    ErrorModel,
    ErrorModelError,
    build,
    count_confusions,
    error_model_path,
    load_error_model,
)

MODEL = config.ROOT / "models" / "fer_cnn.keras"


def test_build_runs_the_held_back_photos_through_the_pipeline(expw_dir, tmp_path):
    out = build(expw_dir, MODEL, tmp_path / "fer_cnn.error_model.json")
    model = load_error_model(out)
    labels = pd.read_csv(expw_dir / "labels.csv")
    held = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]]
    assert 0 < len(held) < len(labels)
    assert model.class_names == tuple(config.EMOTIONS)
    assert model.counts.shape == (7, 7)
    # Every held-back face is either in the counts (found) or missed, under its own true label.
    assert model.labelled_faces == len(held)
    per_class = held["emotion"].value_counts()
    rows = model.counts.sum(axis=1) + model.missed
    assert {config.EMOTIONS[i]: int(n) for i, n in enumerate(rows) if n} == per_class.to_dict()
    assert model.faces >= 1  # the astronaut's face is found
    assert model.photos == held["source_image"].nunique()
    assert model.model_sha256 == sha256_file(MODEL)
    assert model.model_file == "fer_cnn.keras"
    assert model.dataset == "ExpW" and "source photo" in model.split
    assert model.created[:4].isdigit() and model.runtime
    assert model.views == model_views(read_manifest(MODEL))  # the views it was served with
    payload = json.loads(out.read_text())
    assert payload["labels_sha256"] == sha256_file(expw_dir / "labels.csv")
    assert "left out" in payload["missed_rule"]
    assert "held-back ExpW photos" in model.describe()


def test_counts_leave_missed_faces_out_and_refuse_unknown_labels():
    names = ("a", "b")
    faces = pd.DataFrame(
        {"emotion": ["a", "a", "b", "b"], "found": [True, True, True, False], "predicted": ["a", "b", "b", ""]}
    )
    counts, missed = count_confusions(faces, names)
    np.testing.assert_array_equal(counts, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(missed, [0, 1])
    with pytest.raises(ErrorModelError, match="not classes"):
        count_confusions(faces.assign(emotion=["a", "z", "b", "b"]), names)


def test_round_trip_and_confusion_rates():
    model = ErrorModel(("a", "b"), np.array([[3, 1], [0, 0]]), np.array([1, 0]), dataset="X", photos=2)
    again = ErrorModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(again.counts, model.counts)
    np.testing.assert_array_equal(again.missed, model.missed)
    assert (again.class_names, again.dataset, again.photos) == (("a", "b"), "X", 2)
    np.testing.assert_allclose(model.confusion(), [[0.75, 0.25], [0, 0]])  # a row without faces stays 0
    assert model.accuracy() == 0.75


def test_paths_sit_beside_the_model_and_its_twins():
    assert error_model_path("models/fer_cnn.keras").name == "fer_cnn.error_model.json"
    assert error_model_path("models/fer_cnn.int8.onnx").name == "fer_cnn.error_model.json"
    assert error_model_path("models/fer_plus.onnx").parent.name == "models"


def test_missing_or_broken_files_give_a_clear_message_or_none(tmp_path, caplog):
    with pytest.raises(ErrorModelError, match="no error model at .*build it with"):
        load_error_model(tmp_path / "absent.keras")
    with caplog.at_level(logging.WARNING):
        assert load_error_model(tmp_path / "absent.keras", strict=False) is None
    assert "no error model" in caplog.text
    broken = tmp_path / "broken.error_model.json"
    broken.write_text("{not json")
    with pytest.raises(ErrorModelError, match="unusable"):
        load_error_model(broken)
    broken.write_text(json.dumps({"class_names": ["a", "b"], "counts": [[1, 2, 3]]}))
    with pytest.raises(ErrorModelError, match="2x2"):
        load_error_model(broken)
    broken.write_text(json.dumps([1, 2]))
    assert load_error_model(broken, strict=False) is None


def test_the_committed_error_model_belongs_to_the_committed_model():
    model = load_error_model(MODEL)
    assert model.model_sha256 == read_manifest(MODEL)["sha256"], (
        "models/fer_cnn.error_model.json was measured on other weights: rebuild it with "
        "`python -m src.cli error-model --expw PATH/TO/expw`"
    )
    assert model.class_names == tuple(read_manifest(MODEL)["class_names"])
    assert model.views == model_views(read_manifest(MODEL)), "measured with other test-time views: rebuild it"
    assert model.faces > 500 and model.dataset == "ExpW"


def test_the_cli_builds_it_and_names_a_bad_folder(expw_dir, tmp_path, capsys):
    from src.cli import main

    out = tmp_path / "em.json"
    assert main(["error-model", "--expw", str(expw_dir), "--model", str(MODEL), "--output", str(out)]) == 0
    assert f"wrote {out}: " in capsys.readouterr().out and out.is_file()
    assert main(["error-model", "--expw", str(tmp_path)]) == 2
    assert "holds no labels.csv" in capsys.readouterr().err
