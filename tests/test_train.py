"""Training: resumable from its run folder, seeded, class weights, published artefact."""

import json

import numpy as np
import pandas as pd

from src import config
from src.manifest import sha256_file
from src.model import load_model
from src.train import class_weights, publish, train


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
    assert set(info["class_weights"]) == set(config.EMOTIONS)

    dest = publish(run, tmp_path / "models" / "m.keras", version="t")
    manifest = json.loads(dest.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256_file(dest)
    model, meta = load_model(dest)
    assert meta.class_names == config.EMOTIONS and meta.input_size == 48
    probs = np.asarray(model(np.zeros((2, 48, 48, 1), np.float32), training=False))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
