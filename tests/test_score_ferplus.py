"""bench/score_ferplus.py: the FER+ plurality protocol's labels (the majority one is src.training.data's)."""

from __future__ import annotations

import importlib.util

import pandas as pd

from src import config

spec = importlib.util.spec_from_file_location("score_ferplus", config.ROOT / "bench" / "score_ferplus.py")
score_ferplus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score_ferplus)


def test_plurality_keeps_a_clear_emotion_and_drops_ties_contempt_unknown_and_dropped_rows():
    columns = score_ferplus.COLUMNS
    rows = [
        {"neutral": 4, "happiness": 6},  # happy under both protocols
        {"anger": 3, "contempt": 4, "neutral": 3},  # contempt leads: dropped
        {"fear": 4, "surprise": 4, "NF": 2},  # tie: dropped
        {"unknown": 6, "sadness": 4},  # unknown leads: dropped
        {"disgust": 4, "anger": 3, "sadness": 3},  # disgust by plurality, not by majority
        {"neutral": 10},  # FER+ dropped the image: dropped
    ]
    frame = pd.DataFrame([{c: r.get(c, 0) for c in columns} for r in rows])
    frame["Image name"] = ["a.png", "b.png", "c.png", "d.png", "e.png", None]
    labels = score_ferplus.plurality_labels(frame, tuple(config.EMOTIONS))
    index = config.EMOTIONS.index
    assert labels.tolist() == [index("happy"), -1, -1, -1, index("disgust"), -1]
    # The fifth face has no majority among the seven emotions' votes: the protocols part there.
    from src.training.data import ferplus_majority

    column_of = {emotion: column for column, emotion in config.FERPLUS_TO_EMOTION.items()}
    votes = frame[[column_of[e] for e in config.EMOTIONS]].to_numpy(float)
    assert ferplus_majority(votes)[4] == -1 and ferplus_majority(votes)[0] == index("happy")
