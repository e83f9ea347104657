"""bench/score_wild.py: each dataset's row carries a confusion table that adds up to its
faces and agrees with its accuracy (a missed face counts as wrong, under "(no face)")."""

from __future__ import annotations

import importlib.util

import numpy as np
from PIL import Image

from src import config

spec = importlib.util.spec_from_file_location("score_wild", config.ROOT / "bench" / "score_wild.py")
score_wild = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score_wild)


def test_confusion_counts_each_true_label_by_answer_with_missed_faces_last():
    table = score_wild.confusion(
        ["fear", "fear", "angry", "surprise"], ["surprise", "(no face)", "angry", "oops"], config.EMOTIONS
    )
    assert table["true"] == ["angry", "fear", "surprise"]  # the classes' order, only those that occur
    assert table["predicted"] == [*config.EMOTIONS, "(no face)"]
    counts = np.array(table["counts"])
    assert counts.sum() == 4
    assert counts[1, config.EMOTIONS.index("surprise")] == 1 and counts[1, -1] == 1
    assert counts[2, -1] == 1  # an answer outside the classes counts as no answer


def test_rows_hold_tables_that_match_their_accuracy(trained_model, expw_dir, tmp_path):
    ck = tmp_path / "ckplus"
    rng = np.random.default_rng(0)
    for folder in ("anger", "fear", "surprise"):
        (ck / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(ck / folder / f"{i}.png")

    row = score_wild.score_ckplus(ck, str(trained_model), config.ROOT)
    table = row["confusion"]
    counts = np.array(table["counts"])
    assert table["true"] == ["angry", "fear", "surprise"] and counts.sum() == row["faces"] == 9
    diagonal = sum(counts[i, table["predicted"].index(t)] for i, t in enumerate(table["true"]))
    assert diagonal / row["faces"] == row["accuracy"]

    row = score_wild.score_expw(expw_dir, str(trained_model), config.ROOT, None)
    table = row["confusion"]
    counts = np.array(table["counts"])
    assert counts.sum() == row["faces"] > 0
    diagonal = sum(counts[i, table["predicted"].index(t)] for i, t in enumerate(table["true"]))
    assert round(diagonal / row["faces"], 4) == row["accuracy"]
    assert round(1 - counts[:, -1].sum() / row["faces"], 4) == row["faces_found"]
