"""Output folders (src/training/outputs.py): the version rule, and writers writing where the dashboard reads."""

from __future__ import annotations

import json

import pytest

from src import config
from src.app import reports
from src.training import outputs


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "outputs"
    monkeypatch.setattr(config, "OUTPUTS_DIR", folder)
    monkeypatch.setenv("FER_OUTPUTS_DIR", str(folder))
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    return folder


def publish(root, version: str, payload: dict | None = None) -> None:
    (root / version).mkdir(parents=True, exist_ok=True)
    (root / version / "metrics.json").write_text(json.dumps(payload or {"version": version}))


def test_nothing_yet_means_v1_for_everyone(root):
    assert outputs.read_dir() == outputs.write_dir() == root / "v1"
    assert outputs.write_dir(outputs.NEW) == root / "v1"


def test_readers_take_the_newest_published_version_writers_the_newest_folder(root):
    publish(root, "v2")
    publish(root, "v10")
    (root / "v11").mkdir()  # a round under way: no metrics.json yet
    (root / "v12.bak").mkdir()  # not a version
    (root / "v13").write_text("a file, not a folder")
    assert outputs.read_dir() == root / "v10"  # numeric order, not string order
    assert outputs.write_dir() == root / "v11"  # the unfinished round is completed, not a new one begun
    assert outputs.write_dir(outputs.NEW) == root / "v12"
    assert outputs.read_dir("v2") == outputs.write_dir("v2") == root / "v2"


def test_a_pinned_version_holds_for_readers_and_writers(root, monkeypatch):
    publish(root, "v1")
    publish(root, "v3")
    monkeypatch.setattr(config, "OUTPUT_VERSION", "v2")
    assert outputs.read_dir() == outputs.write_dir() == root / "v2"
    assert outputs.write_dir("v5") == root / "v5"  # an explicit version beats the pin
    assert outputs.write_dir(outputs.NEW) == root / "v4"


@pytest.mark.parametrize("name", ["v1", "v12", "new"])
def test_version_names_accepted(name):
    assert outputs.output_version(name) == name


@pytest.mark.parametrize("name", ["", "1", "v", "v1/../x", "v1\n", "latest", "V2"])
def test_version_names_refused(name):
    with pytest.raises(ValueError, match="not of the form"):
        outputs.output_version(name)


def test_evaluate_writes_where_the_dashboard_reads(root, fer_dir, model_copy):
    """The first outputs/v2/ used to split them: evaluate wrote v1 while the dashboard read v2."""
    from src.engine.manifest import sha256_file
    from src.training.data import load_dataset
    from src.training.evaluation import evaluate, write_dataset_stats

    data = load_dataset(fer_dir)
    publish(root, "v1", {"model": {"sha256": "old"}})
    publish(root, "v2", {"model": {"sha256": "older still"}})

    result = evaluate(data, model_copy, update_manifest=False)
    write_dataset_stats(data)
    assert result.output_dir == root / "v2"
    shown = reports.load_metrics()
    assert shown == result.metrics and shown["model"]["sha256"] == sha256_file(model_copy)
    assert reports.load_dataset_stats()["total"] == len(data)
    assert set(reports.load_model_comparison()["source"]) >= {"this project's CNN (src/training/train.py)"}
    assert json.loads((root / "v1" / "metrics.json").read_text()) == {"model": {"sha256": "old"}}

    # A new round: the dashboard stays on v2 until the new evaluation is written, then moves.
    new = outputs.write_dir(outputs.NEW)
    assert new == root / "v3" and reports.load_metrics() == shown
    again = evaluate(data, model_copy, new, update_manifest=False)
    assert outputs.read_dir() == again.output_dir == root / "v3"
    assert reports.load_metrics() == again.metrics


def test_another_model_reports_in_its_own_sub_folder(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    default, plus, stray = models / "fer_cnn.keras", models / "fer_plus.keras", models / "scratch.keras"
    for f in (default, plus, stray):
        f.write_bytes(b"x")
    for f in (default, plus):
        f.with_suffix(".json").write_text("{}")
    monkeypatch.setattr(config, "MODELS_DIR", models)
    monkeypatch.setattr(config, "MODEL_FILE", default)
    base = tmp_path / "outputs" / "v2"
    assert outputs.model_folder(base, None) == base
    assert outputs.model_folder(base, default) == base
    assert outputs.model_folder(base, plus) == base / "fer_plus"
    # Only models with a manifest are offered, the deployed one first.
    assert outputs.model_files() == [default, plus]


def test_adapted_models_are_offered_but_onnx_twins_are_not(tmp_path, monkeypatch):
    """An adapted model (src/training/adapt.py) is an .onnx file whose own manifest says ``adapted_from``;
    the ONNX, INT8 and features twins of a .keras model share its manifest or have none."""
    models = tmp_path / "models"
    models.mkdir()
    default = models / "fer_cnn.keras"
    for name in ("fer_cnn.keras", "fer_cnn.onnx", "fer_cnn.int8.onnx", "fer_cnn.features.onnx", "acme.onnx"):
        (models / name).write_bytes(b"x")
    for name in ("zeta.onnx", "broken.onnx", "no_manifest.onnx"):
        (models / name).write_bytes(b"x")
    (models / "fer_cnn.json").write_text(json.dumps({"version": "v3", "onnx": {"sha256": "x"}}))
    adapted = {"version": "adapted-acme", "adapted_from": {"file": "fer_cnn.keras", "version": "v3"}}
    (models / "acme.json").write_text(json.dumps(adapted))
    (models / "zeta.json").write_text(json.dumps({**adapted, "version": "adapted-zeta"}))
    (models / "broken.json").write_text("{not json")
    (models / "ghost.json").write_text(json.dumps(adapted))  # a manifest whose model file is gone
    monkeypatch.setattr(config, "MODELS_DIR", models)
    monkeypatch.setattr(config, "MODEL_FILE", default)
    assert outputs.adapted_model_files() == [models / "acme.onnx", models / "zeta.onnx"]
    assert outputs.model_files() == [default, models / "acme.onnx", models / "zeta.onnx"]
    assert outputs.is_adapted(adapted) and not outputs.is_adapted({"version": "v3"}) and not outputs.is_adapted(None)
    # Reports of an adapted model would go to its own sub-folder, as any other model's.
    assert outputs.model_folder(tmp_path / "v1", models / "acme.onnx") == tmp_path / "v1" / "acme"
