"""A model's accuracy against the FER+ re-labels of FER2013, under both protocols in use.

FER+ (Barsoum et al., 2016) gives each FER2013 face ten votes over ten columns: the seven
emotions, contempt, unknown and not-a-face. A face's label depends on the protocol:

- ``majority`` (this project's, ``src.training.data.ferplus_majority``, what ``evaluate``
  reports): the emotion holding more than half of the votes cast for the seven emotions;
  faces without one are left out.
- ``plurality``: the column with the most of all ten columns' votes; faces where that column
  is contempt, unknown or not-a-face, where two columns tie for the most, or that FER+
  dropped are left out.

Scored as the model is served (``EmotionRecognizer.classify``: its runtime and test-time views), on
PublicTest (the FER+ model was selected on its majority labels) and PrivateTest. Prints a
table, writes nothing.

Usage: python bench/score_ferplus.py --fer PATH/TO/fer2013 [--model FILE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

# The ten columns of fer2013new.csv, and the seven that are this project's emotions.
COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")


def plurality_labels(frame: pd.DataFrame, class_names: tuple[str, ...]) -> np.ndarray:
    """Per row of fer2013new.csv: the index in ``class_names`` of its plurality column, -1 where none."""
    from src import config

    votes = frame[list(COLUMNS)].to_numpy(float)
    top = votes.argmax(axis=1)
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    emotion = {column: config.FERPLUS_TO_EMOTION.get(column) for column in COLUMNS}
    index = np.array([class_names.index(emotion[c]) if emotion[c] in class_names else -1 for c in COLUMNS])
    labels = index[top]
    labels[tied | (votes.sum(axis=1) == 0) | frame["Image name"].isna().to_numpy()] = -1
    return labels


def main() -> None:
    from src import config
    from src.engine.inference import EmotionRecognizer
    from src.training.data import ferplus_majority, load_cached

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fer", required=True, type=Path, help="FER2013 folder holding fer2013.csv(.gz) and fer2013new.csv"
    )
    ap.add_argument("--model", nargs="+", default=[str(config.MODELS_DIR / "fer_plus.keras"), str(config.MODEL_FILE)])
    args = ap.parse_args()

    fer = load_cached(args.fer)
    frame = pd.read_csv(args.fer / "fer2013new.csv")
    if len(frame) != len(fer) or fer.ferplus is None:
        raise SystemExit(f"{args.fer}: fer2013new.csv must sit beside the FER2013 CSV, row for row")
    usage = np.asarray(fer.usage)
    print(f"{'model':16s} {'views':6s} {'split':12s} {'majority':>16s} {'plurality':>16s}")
    for model in args.model:
        recognizer = EmotionRecognizer(model)
        info = recognizer.info
        plurality = plurality_labels(frame, info.class_names)
        majority = ferplus_majority(fer.ferplus)
        for split in ("PublicTest", "PrivateTest"):
            rows = np.flatnonzero(usage == split)
            pred = recognizer.classify(fer.images[rows]).argmax(axis=1)  # the served path, views included
            cells = []
            for labels in (majority[rows], plurality[rows]):
                keep = labels >= 0
                cells.append(f"{(pred[keep] == labels[keep]).mean():.2%} (n={int(keep.sum())})")
            print(f"{Path(model).stem:16s} {info.views:6s} {split:12s} {cells[0]:>16s} {cells[1]:>16s}")


if __name__ == "__main__":
    main()
