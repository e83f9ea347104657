"""Training: resumable from its run folder, seeded, class weights, published artefact."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src import config
from src.engine.manifest import sha256_file, write_manifest
from src.engine.model import load_model
from src.training.train import class_weights, publish, train

ROOT = Path(__file__).resolve().parents[2]


def test_class_weights_lift_rare_classes_and_average_one():
    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, 2, power=0.5)
    assert w[1] > w[0]
    assert np.isclose(w[labels].mean(), 1.0)
    assert np.allclose(class_weights(labels, 2, power=0.0), 1.0)


def test_training_resumes_and_publishes(fer_csv, tmp_path):
    run = tmp_path / "run"
    train(str(fer_csv), "smoke", run_dir=run, epochs=1)
    assert len(pd.read_csv(run / "history.csv")) == 1
    # The same command with more epochs continues after the finished one instead of restarting.
    train(str(fer_csv), "smoke", run_dir=run, epochs=2)
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1]
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["epochs"] == 2 and info["profile"] == "smoke"
    assert info["wall_seconds_total"] > info["wall_seconds_last_session"]  # both sessions counted
    assert set(info["class_weights"]) == set(config.EMOTIONS)

    dest = publish(run, tmp_path / "models" / "m.keras", version="t")
    manifest = json.loads(dest.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256_file(dest)
    model, meta = load_model(dest)
    assert meta.class_names == config.EMOTIONS and meta.input_size == 48
    probs = np.asarray(model(np.zeros((2, 48, 48, 1), np.float32), training=False))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_session_killed_mid_run_keeps_its_wall_time(fer_csv, tmp_path):
    """Background runs die with their session: run.json counts the time after every epoch."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "src.cli", "train", "--profile", "smoke", "--epochs", "200", "--width", "12"]
    cmd += ["--expw-repeat", "5", "--class-weight-power", "0.25"]
    proc = subprocess.Popen([*cmd, "--data", str(fer_csv), "--run-dir", str(run)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        history = run / "history.csv"
        while not history.exists() or len(history.read_text().splitlines()) < 3:  # header + two epochs
            assert proc.poll() is None and time.monotonic() < deadline, "training stopped before two epochs"
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    info = json.loads((run / "run.json").read_text())
    assert info["wall_seconds_total"] == info["wall_seconds_last_session"] > 0
    assert info["config"]["width"] == 12 and info["config"]["epochs"] == 200  # the command's overrides
    assert info["config"]["expw_repeat"] == 5 and info["config"]["class_weight_power"] == 0.25


def test_expw_faces_are_detected_aligned_and_split_by_photo(expw_dir):
    from src.training.data import load_expw

    data = load_expw(expw_dir, val_fraction=0.5)
    assert data.images.shape == (14, 48, 48) and data.images.dtype == np.uint8
    assert set(data.usage) <= {"Training", "PublicTest"}
    # Both faces of a source photo land on the same side.
    for photo in set(data.groups):
        assert len(set(data.usage[data.groups == photo])) == 1
    assert "0 of 14 faces not found" in data.notes[-1]


@pytest.mark.parametrize("bf16", [False, True])
def test_wild_training_with_and_without_bfloat16(fer_csv, expw_dir, tmp_path, bf16):
    """The smoke profile on FER2013 + ExpW: both validation sets logged, a float32 model saved."""
    run = train(
        str(fer_csv), "smoke", run_dir=tmp_path / "run", expw_path=expw_dir, mixed_precision=bf16, ferplus_weight=0.3
    )
    history = pd.read_csv(run / "history.csv")
    assert {"val_fer_accuracy", "val_expw_accuracy", "val_mean_accuracy"} <= set(history.columns)
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["mixed_precision"] is bf16
    assert set(info["data"]) == {"fer2013", "expw"}
    assert str(tmp_path) not in json.dumps(info["data"])  # named by file and sha256, not by path
    model, _ = load_model(run / "best.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # the run leaves the policy as it found it


def test_distillation_blends_the_teachers_soft_targets(fer_csv, trained_model, tmp_path):
    import keras

    from src.training.train import teacher_probs

    x = np.random.default_rng(0).uniform(0, 255, (16, 48, 48, 1)).astype(np.float32)
    sharp = teacher_probs([str(trained_model)], x, temperature=1.0)
    soft = teacher_probs([str(trained_model)], x, temperature=3.0)
    np.testing.assert_allclose(sharp.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    entropy = lambda p: -(p * np.log(p)).sum(axis=1)  # noqa: E731
    assert (entropy(soft) > entropy(sharp)).all()
    # An ensemble of one model twice is that model.
    np.testing.assert_allclose(teacher_probs([str(trained_model)] * 2, x, 1.0), sharp, atol=1e-6)
    model = keras.models.load_model(trained_model, compile=False)
    np.testing.assert_allclose(teacher_probs([model], x, 1.0), sharp, atol=1e-6)

    run = train(str(fer_csv), "smoke", run_dir=tmp_path / "student", teachers=(str(trained_model),), distil_weight=0.5)
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["teachers"] == [trained_model.name]
    assert info["data"]["teachers"] == {trained_model.name: sha256_file(trained_model)}
    assert info["data"]["teacher_views"] == {trained_model.name: "flip"}  # its manifest names none: the default

    # The soft targets are kept in the run folder: resuming for one more epoch reads them back.
    cache = run / "teacher_probs.npz"
    written = cache.stat().st_mtime_ns
    train(str(fer_csv), "smoke", run_dir=run, teachers=(str(trained_model),), distil_weight=0.5, epochs=2)
    assert cache.stat().st_mtime_ns == written
    assert len(keras.models.load_model(run / "best.keras", compile=False).get_weights()) > 0
    assert sum(1 for _ in open(run / "history.csv")) == 3  # header + the two epochs


def test_a_teacher_is_read_with_the_views_its_manifest_names(trained_model, tmp_path):
    import keras

    from src.engine.classifier import tta_averaged
    from src.training.train import cached_teacher_probs, teacher_probs, teacher_views

    # A teacher whose answer depends on which way the face looks (the smoke-trained net is
    # too near uniform for its mirror image to change it measurably).
    keras.utils.set_random_seed(0)
    teacher = tmp_path / "teacher.keras"
    keras.Sequential(
        [keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")]
    ).save(teacher)
    write_manifest(teacher, config.EMOTIONS, 48, test_time_views="none")
    assert teacher_views(teacher) == "none" and teacher_views(trained_model) == "flip"
    x = np.random.default_rng(1).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    raw = keras.models.load_model(teacher, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(teacher_probs([teacher], x, 1.0), raw / raw.sum(axis=1, keepdims=True), atol=1e-5)
    flipped = tta_averaged(lambda b: keras.models.load_model(teacher, compile=False).predict(b, verbose=0), x, "flip")
    assert not np.allclose(teacher_probs([teacher], x, 1.0), flipped / flipped.sum(axis=1, keepdims=True), atol=1e-2)

    # The cache follows the teacher's views: naming other views recomputes the soft targets.
    first = cached_teacher_probs(tmp_path, [teacher], x, 1.0)
    write_manifest(teacher, config.EMOTIONS, 48, test_time_views="flip")
    again = cached_teacher_probs(tmp_path, [teacher], x, 1.0)
    np.testing.assert_allclose(again, flipped / flipped.sum(axis=1, keepdims=True), atol=1e-5)
    assert not np.allclose(first, again, atol=1e-2)


def test_an_ensemble_is_published_as_one_model_that_averages_its_members(
    trained_model, fer_csv, isolated_dirs, tmp_path, capsys
):
    import keras

    from src.cli import main
    from src.engine.inference import EmotionRecognizer
    from src.engine.manifest import read_manifest, write_manifest
    from src.engine.model import ensemble_members
    from src.engine.runtime import int8_twin, load_classifier, onnx_twin
    from src.training.export import _head_nodes

    run_dir = isolated_dirs["runs"] / "smoke"
    # A second member that differs from the run's (identical members would be merged in the ONNX graph),
    # published where the ensemble goes: every member is read before anything is written.
    dest = tmp_path / "models" / "fer_cnn.keras"
    dest.parent.mkdir()
    sharper = keras.models.load_model(trained_model, compile=False)
    kernel, bias = sharper.get_layer("emotion").get_weights()
    sharper.get_layer("emotion").set_weights([kernel * 1.5, bias])
    sharper.save(dest)
    write_manifest(dest, config.EMOTIONS, 48, version="sharper", training=read_manifest(trained_model)["training"])
    member_weights = load_model(dest)[0].get_weights()
    argv = ["ensemble", "--member", str(run_dir), "--member", str(dest), "--model", str(dest)]
    assert main([*argv, "--data", str(fer_csv), "--version", "t-ensemble"]) == 0
    assert "published the mean of 2 models" in capsys.readouterr().out

    model, info = load_model(dest)
    members = ensemble_members(model)
    assert len(members) == 2 and info.version == "t-ensemble" and info.class_names == config.EMOTIONS
    assert all(np.array_equal(a, b) for a, b in zip(members[1].get_weights(), member_weights))
    x = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    mean = np.mean([np.asarray(m(x, training=False)) for m in members], axis=0)
    assert np.allclose(np.asarray(model(x, training=False)), mean, atol=1e-6)

    training = read_manifest(dest)["training"]
    assert [m["name"] for m in training["members"]] == ["smoke", "sharper"]
    assert training["config"]["arch"] == "ensemble" and training["parameters"] == model.count_params()
    assert training["members"][0]["sha256"] == sha256_file(run_dir / "best.keras")
    assert training["wall_seconds_total"] == pytest.approx(
        sum(m["training"]["wall_seconds_total"] for m in training["members"])
    )
    # Both members' heads stay float in the INT8 twin, which serves by default.
    heads = _head_nodes(onnx_twin(dest))
    assert sum("Softmax" in name for name in heads) == 2 and any("mean_probs" in name for name in heads)
    predict, served = load_classifier(dest, "auto")
    assert served.runtime == "onnx-int8" and int8_twin(dest).is_file()
    assert np.abs(predict(x) - mean).max() < 0.1
    probs = EmotionRecognizer(dest).classify(x[:2, ..., 0].astype(np.uint8))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


def test_ensemble_refuses_what_it_cannot_average(trained_model, tmp_path, capsys):
    from src.cli import main

    assert main(["ensemble", "--member", str(trained_model), "--model", str(tmp_path / "e.keras")]) == 2
    assert "an ensemble needs at least two --member models" in capsys.readouterr().err
    missing = tmp_path / "nowhere.keras"
    assert main(["ensemble", "--member", str(trained_model), "--member", str(missing)]) == 2
    assert f"--member {missing}: not a .keras model or a training run folder" in capsys.readouterr().err
    assert main(["ensemble", "--member", str(tmp_path), "--member", str(trained_model)]) == 2
    assert f"--member {tmp_path}: a run folder without best.keras" in capsys.readouterr().err
    assert not (tmp_path / "e.keras").exists()


def test_a_net_of_another_input_size_trains_publishes_is_scored_and_served(
    fer_csv, expw_dir, trained_model, tmp_path, capsys
):
    """--input-size: FER2013's 48 px faces are enlarged, ExpW's crops are taken at the size, and
    everything downstream takes the size from the model."""
    from src.cli import main
    from src.engine.inference import EmotionRecognizer
    from src.training.data import load_expw

    wild = load_expw(expw_dir, val_fraction=0.5, size=64)
    assert wild.images.shape == (14, 64, 64) and "0 of 14 faces not found" in wild.notes[-1]

    run = train(str(fer_csv), "smoke", run_dir=tmp_path / "run", expw_path=expw_dir, input_size=56)
    assert json.loads((run / "run.json").read_text())["config"]["input_size"] == 56
    dest = publish(run, tmp_path / "models" / "wide.keras", data_path=fer_csv, version="test-56")
    _, info = load_model(dest)
    assert info.input_size == 56 and json.loads(dest.with_suffix(".json").read_text())["input_size"] == 56

    recognizer = EmotionRecognizer(dest)
    assert recognizer.size == 56
    probs = recognizer.classify(np.full((2, 56, 56), 128, np.uint8))
    assert probs.shape == (2, len(config.EMOTIONS)) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert np.allclose(recognizer.classify(np.full((2, 48, 48), 128, np.uint8)), probs, atol=1e-5)  # a dataset's faces

    out = tmp_path / "scores"
    assert (
        main(["evaluate", "--data", str(fer_csv), "--model", str(dest), "--score-only", "--output-dir", str(out)]) == 0
    )
    scored = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= scored["splits"]["PrivateTest"]["accuracy"] <= 1.0

    assert (
        main(["ensemble", "--member", str(dest), "--member", str(trained_model), "--model", str(tmp_path / "e.keras")])
        == 2
    )
    assert "the members read faces of different sizes ([48, 56] px)" in capsys.readouterr().err
    assert not (tmp_path / "e.keras").exists()
