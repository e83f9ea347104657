"""Score the CLI end to end on FER2013 crops: export a split as PNGs, run
``python -m src.cli predict --crops`` on them, and compare with the labels.

This checks the shipped path (file decode -> resize -> model -> calibrated
probabilities -> CSV) rather than the in-memory evaluation.

Usage: python bench/score_predict_crops.py [--data PATH] [--split PrivateTest] [--model FILE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def main() -> None:
    from src import config
    from src.training.data import load_cached

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="PrivateTest")
    ap.add_argument("--model", default=str(config.MODEL_FILE))
    args = ap.parse_args()

    data = load_cached(args.data).split(args.split)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.split
        folder.mkdir()
        for i, face in enumerate(data.images):
            Image.fromarray(face).save(folder / f"{i:05d}.png")
        out = Path(tmp) / "pred.csv"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "src.cli",
                "predict",
                str(folder),
                "--crops",
                "--model",
                args.model,
                "--output",
                str(out),
            ],
            check=True,
            cwd=config.ROOT,  # the same checkout as this process, whatever the caller's directory
        )
        seconds = time.perf_counter() - start
        pred = pd.read_csv(out)
    pred["index"] = pred["file"].map(lambda f: int(Path(f).stem))
    pred = pred.sort_values("index")
    assert len(pred) == len(data) and (pred["status"] == "ok").all(), "every crop should give one row"
    truth = np.asarray(data.class_names)[data.labels]
    acc = float((pred["emotion"].to_numpy() == truth).mean())
    from sklearn.metrics import f1_score

    macro = f1_score(truth, pred["emotion"], average="macro")
    print(f"{args.split}: {len(pred)} crops in {seconds:.1f} s (CLI, cold start included)")
    print(f"accuracy={acc:.4f} macro_f1={macro:.4f}")


if __name__ == "__main__":
    main()
