"""The per-class logit shift (src/training/class_bias.py): fitted on validation faces only,
folded into the output layers so that the model computes what the fit scored, and published
with its record by ``python -m src.cli balance``."""

from __future__ import annotations

import numpy as np
import pytest

from src import config
from src.training import class_bias


def test_the_fit_gives_a_never_predicted_class_its_faces_and_keeps_the_gain_it_claims():
    rng = np.random.default_rng(0)
    k, n = 3, 600
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), labels] += 1.5
    logits[:, 2] -= 2.5  # class 2 is almost never the top class
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    views = probs[None, None]  # one member, one view
    fitted = class_bias.fit({"val": (views, labels)})

    before = (probs.argmax(axis=1)[labels == 2] == 2).mean()
    after = (class_bias.shifted(views, fitted.bias).argmax(axis=1)[labels == 2] == 2).mean()
    assert before < 0.2 and after > 0.5
    assert fitted.bias.shape == (k,) and abs(fitted.bias.mean()) < 1e-9
    gain = lambda s: s["accuracy"] + s["macro_f1"]  # noqa: E731
    assert gain(fitted.after["val"]) > gain(fitted.before["val"])
    assert fitted.after["val"]["lowest_recall"] > fitted.before["val"]["lowest_recall"]
    record = fitted.record(("a", "b", "c"))
    assert set(record["bias"]) == {"a", "b", "c"} and record["before"]["val"] == fitted.before["val"]


def test_a_shift_that_changes_nothing_stays_zero():
    labels = np.array([0, 1, 2] * 20)
    probs = np.eye(3)[labels] * 0.8 + 0.2 / 3  # already right on every face
    fitted = class_bias.fit({"val": (probs[None, None], labels)})
    assert np.allclose(fitted.bias, 0) and fitted.after == fitted.before
    with pytest.raises(ValueError, match="at least one validation set"):
        class_bias.fit({})


def test_the_folded_ensemble_computes_what_the_fit_scored(trained_model):
    import keras

    from src.engine.classifier import tta_averaged
    from src.engine.model import build_ensemble

    first = keras.models.load_model(trained_model, compile=False)
    second = keras.models.load_model(trained_model, compile=False)
    kernel, bias = second.get_layer("emotion").get_weights()
    second.get_layer("emotion").set_weights([kernel * 1.7, bias - 0.3])
    model = build_ensemble([first, second])
    faces = np.random.default_rng(1).integers(0, 256, (12, 48, 48)).astype(np.uint8)

    views = class_bias.view_probs(model, faces, "flip")
    assert views.shape == (2, 2, 12, 7)
    predict = lambda x: np.asarray(model.predict(x, verbose=0))  # noqa: E731
    unshifted = tta_averaged(predict, faces[..., None].astype(np.float32), "flip")
    assert np.allclose(class_bias.shifted(views, np.zeros(7)), unshifted, atol=1e-5)

    shift = np.array([-0.5, 0.6, 0.2, -0.2, 0.1, -0.1, -0.1])
    class_bias.fold(model, shift)
    folded = tta_averaged(predict, faces[..., None].astype(np.float32), "flip")
    assert np.allclose(folded, class_bias.shifted(views, shift), atol=1e-5)
    with pytest.raises(ValueError, match="the model has 7 classes, the bias 3"):
        class_bias.fold(model, np.zeros(3))


def test_balance_publishes_the_shifted_model_with_its_record(model_copy, fer_csv, expw_dir, tmp_path, capsys):
    from src.cli import main
    from src.engine.manifest import read_manifest, write_manifest
    from src.engine.model import load_model
    from src.engine.runtime import onnx_twin

    write_manifest(model_copy, config.EMOTIONS, 48, trained_on="2 cores, bf16")
    dest = tmp_path / "balanced" / "fer_cnn.keras"
    argv = ["balance", "--model", str(model_copy), "--data", str(fer_csv), "--expw", str(expw_dir)]
    assert main([*argv, "--output", str(dest), "--version", "t-balanced"]) == 0
    out = capsys.readouterr().out
    assert "logit shifts: angry" in out and "PublicTest: accuracy" in out and "ExpW held-back: accuracy" in out
    manifest = read_manifest(dest)
    record = manifest["training"]["class_bias"]
    assert manifest["version"] == "t-balanced" and list(record["bias"]) == list(config.EMOTIONS)
    assert manifest["trained_on"] == "2 cores, bf16" and "metrics" not in manifest  # new weights: scored again
    assert set(record["fitted_on"]) == {"PublicTest", "ExpW held-back"} and onnx_twin(dest).is_file()
    assert manifest["training"]["config"] == read_manifest(model_copy)["training"]["config"]  # the recipe kept

    model, _ = load_model(dest)
    original, _ = load_model(model_copy)
    shift = np.array([record["bias"][name] for name in config.EMOTIONS])
    _, before = original.get_layer("emotion").get_weights()
    _, after = model.get_layer("emotion").get_weights()
    assert np.allclose(after - before, shift, atol=1e-3)

    # A model balanced once is not balanced again on top; bad arguments are named.
    assert main(["balance", "--model", str(dest), "--data", str(fer_csv)]) == 2
    assert "already has a class bias folded in" in capsys.readouterr().err
    assert main(["balance", "--model", str(model_copy), "--data", str(fer_csv), "--expw", str(tmp_path)]) == 2
    assert f"--expw {tmp_path}: no labels.csv there" in capsys.readouterr().err
