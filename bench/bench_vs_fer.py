"""This pipeline against the free ``fer`` package, on the same in-the-wild photos, same machine.

The photos are ExpW's held-back ones (the 20% of source photos training never saw),
scaled so their long side is 400-800 px (seeded), written as JPEG files. For each
pipeline, per photo: decode from the file, detect, classify; the labelled face is
matched to the detected face of highest IoU (>= 0.3), a missed face counts as wrong.
Prints accuracy, faces found and seconds per photo (after start-up, one process,
sequential).

``fer`` is not a dependency of this project: install it into a scratch folder
(``pip install --no-deps --target /tmp/fer fer``; it needs TensorFlow, OpenCV,
requests and setuptools, which the dev install has), put that folder on
``PYTHONPATH`` and pass ``--with-fer``. Without it only this project's rows are printed.

Usage: PYTHONPATH=/tmp/fer python bench/bench_vs_fer.py --expw PATH/TO/expw [--with-fer] [--limit 1040]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def photos(expw: Path, folder: Path, limit: int, seed: int = 0) -> pd.DataFrame:
    from src.training.data import expw_split

    labels = pd.read_csv(expw / "labels.csv")
    held = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]]
    rng = np.random.default_rng(seed)
    # labels.csv is ordered by search keyword: a random sample keeps the classes mixed.
    held = held.sample(n=min(limit, len(held)), random_state=seed).copy()
    scales = []
    for name in held["file"]:
        image = cv2.imread(str(expw / "faces" / name))
        scale = rng.uniform(400, 800) / max(image.shape[:2])
        cv2.imwrite(str(folder / name), cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
        scales.append(scale)
    held["scale"] = scales
    return held.reset_index(drop=True)


def score(held: pd.DataFrame, folder: Path, detect) -> tuple[float, float, float]:
    """(accuracy, faces found, seconds per photo) of ``detect(path) -> [(box, emotion)]``."""
    from src.engine.faces import iou

    detect(folder / held["file"].iloc[0])  # warm-up
    correct = found = 0
    start = time.perf_counter()
    for row in held.itertuples():
        faces = detect(folder / row.file)
        box = tuple(v * row.scale for v in (row.x, row.y, row.w, row.h))
        best, best_iou = None, 0.3
        for face_box, emotion in faces:
            overlap = iou(box, face_box)
            if overlap >= best_iou:
                best, best_iou = emotion, overlap
        found += best is not None
        correct += best == row.emotion
    seconds = (time.perf_counter() - start) / len(held)
    return correct / len(held), found / len(held), seconds


def main() -> None:
    from src.engine.inference import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--with-fer", action="store_true", help="also run the fer package (on PYTHONPATH)")
    ap.add_argument("--limit", type=int, default=1040, help="held-back photos to use (a seeded sample)")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        held = photos(args.expw, folder, args.limit)
        for name, fast in (
            ("this project (default, YuNet 320 then 640 px)", False),
            ("this project (--fast, YuNet 320 px)", True),
        ):
            rec = EmotionRecognizer(fast=fast)
            rows.append((name, *score(held, folder, lambda p, r=rec: [(f.box, f.emotion) for f in r.predict(p)])))
        if args.with_fer:
            from fer.fer import FER

            detector = FER(mtcnn=False)

            def fer_detect(path: Path):
                image = cv2.imread(str(path))
                return [
                    (tuple(face["box"]), max(face["emotions"], key=face["emotions"].get))
                    for face in detector.detect_emotions(image)
                ]

            rows.append(("fer (Haar + mini-Xception, TFLite)", *score(held, folder, fer_detect)))
    print(f"{len(held)} ExpW held-back photos, 400-800 px")
    print(f"{'pipeline':40s} {'accuracy':>9s} {'found':>7s} {'s/photo':>8s}")
    for name, accuracy, found, seconds in rows:
        print(f"{name:40s} {accuracy:9.3f} {found:7.3f} {seconds:8.4f}")


if __name__ == "__main__":
    main()
