"""Score the shipped pipeline beyond FER2013, through the CLI, as a user would run it.

* ExpW held-back photos (the 20% of source photos training never saw, split by
  ``src.training.data.expw_split``): ``python -m src.cli predict`` on the photo files,
  each labelled face matched to the detected face of highest IoU (>= 0.3); a missed
  face counts as wrong. Run on the photos as shipped (faces ~64 px), and scaled up
  so their long side is 400-800 px (seeded), which is also the speed benchmark:
  seconds per photo after start-up = (time for all - time for one) / (n - 1).
* CK+ (48x48 posed crops, the 6 classes it shares with ours; contempt left out):
  ``predict --crops``.

Each row also holds its confusion table (true label by answer, a missed face or a failed
crop counted under ``(no face)``), so the open-mouth confusions (angry, fear, surprise) can
be compared across datasets on the Model Performance page.

Writes ``cross_dataset.json`` into the output folder (``src.training.outputs.write_dir``)
beside FER2013's figures, for the Model Performance page.

Usage: python bench/score_wild.py --expw PATH/TO/expw [--ckplus PATH/TO/ckplus48] [--model FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

NO_ANSWER = "(no face)"  # the answer column of a face the pipeline missed (or a crop it failed on)

CKPLUS_TO_OURS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def confusion(truth, guessed, classes) -> dict:
    """Counts of each true label (rows: those of ``classes`` that occur) by answer (columns:
    every class, then ``NO_ANSWER``)."""
    truth, guessed = list(truth), list(guessed)
    rows = [c for c in classes if c in set(truth)]
    columns = [*classes, NO_ANSWER]
    counts = np.zeros((len(rows), len(columns)), int)
    for t, g in zip(truth, guessed):
        counts[rows.index(t), columns.index(g if g in columns else NO_ANSWER)] += 1
    return {"true": rows, "predicted": columns, "counts": counts.tolist()}


def class_names(model: str) -> list[str]:
    """The model's labels, from its manifest (the bundled order when it has none)."""
    from src import config
    from src.engine.manifest import read_manifest

    return list((read_manifest(model, strict=False) or {}).get("class_names") or config.EMOTIONS)


def run_cli(args: list[str], root: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "src.cli", "predict", *args], check=True, cwd=root)
    return time.perf_counter() - start


def score_expw(expw: Path, model: str, root: Path, scale_range: tuple[int, int] | None, seed: int = 0) -> dict:
    from src.engine.faces import iou
    from src.training.data import expw_split

    labels = pd.read_csv(expw / "labels.csv")
    held = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        scales = {}
        for name in held["file"].unique():
            image = cv2.imread(str(expw / "faces" / name))
            scale = 1.0
            if scale_range:
                scale = rng.uniform(*scale_range) / max(image.shape[:2])
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            scales[name] = scale
        out = Path(tmp) / "pred.csv"
        one = Path(tmp) / "one.csv"
        first = sorted(scales)[0]
        t_one = run_cli([str(folder / first), "--model", model, "--output", str(one)], root)
        t_all = run_cli([str(folder), "--model", model, "--output", str(out)], root)
        pred = pd.read_csv(out)
    pred["name"] = pred["file"].map(lambda f: Path(f).name)
    faces = pred[pred["status"] == "ok"].groupby("name")
    correct = found = 0
    predicted = []
    for row in held.itertuples():
        s = scales[row.file]
        box = (row.x * s, row.y * s, row.w * s, row.h * s)
        best, best_iou = None, 0.3
        if row.file in faces.groups:
            for det in faces.get_group(row.file).itertuples():
                overlap = iou(box, (det.x, det.y, det.w, det.h))
                if overlap >= best_iou:
                    best, best_iou = det, overlap
        predicted.append(best.emotion if best is not None else NO_ANSWER)
        if best is not None:
            found += 1
            correct += int(best.emotion == row.emotion)
    n = len(held)
    photos = len(scales)
    return {
        "dataset": "ExpW held-back photos" + (" (scaled to 400-800 px)" if scale_range else ""),
        "protocol": "full pipeline via `src.cli predict`; labelled face matched by IoU >= 0.3; missed = wrong",
        "faces": n,
        "photos": photos,
        "accuracy": round(correct / n, 4),
        "macro_f1": round(
            float(f1_score(held["emotion"], predicted, labels=sorted(set(held["emotion"])), average="macro")), 4
        ),
        "faces_found": round(found / n, 4),
        "accuracy_on_found": round(correct / max(found, 1), 4),
        "seconds_per_photo_after_startup": round((t_all - t_one) / max(photos - 1, 1), 4),
        "seconds_cli_one_photo": round(t_one, 2),
        "confusion": confusion(held["emotion"], predicted, class_names(model)),
    }


def score_ckplus(ckplus: Path, model: str, root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pred.csv"
        folders = [str(ckplus / name) for name in CKPLUS_TO_OURS if (ckplus / name).is_dir()]
        run_cli([*folders, "--crops", "--model", model, "--output", str(out)], root)
        pred = pd.read_csv(out)
    truth = pred["file"].map(lambda f: CKPLUS_TO_OURS[Path(f).parent.name])
    ok = pred["status"] == "ok"
    accuracy = float((pred.loc[ok, "emotion"] == truth[ok]).sum() / len(pred))
    guessed = pred["emotion"].where(ok, NO_ANSWER)
    macro_f1 = float(f1_score(truth, guessed, labels=sorted(set(truth)), average="macro"))
    per_class = {
        label: round(float((pred.loc[truth == label, "emotion"] == label).mean()), 4) for label in sorted(set(truth))
    }
    return {
        "dataset": "CK+ (48x48 posed crops, 6 shared classes)",
        "protocol": "`src.cli predict --crops`; contempt left out; never used for selection",
        "faces": int(len(pred)),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro_f1, 4),
        "recall_per_class": per_class,
        "confusion": confusion(truth, guessed, class_names(model)),
    }


def main() -> None:
    from src import config
    from src.training.outputs import model_folder, write_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--ckplus", type=Path)
    ap.add_argument("--model", default=str(config.MODEL_FILE))
    ap.add_argument(
        "--output-dir", type=Path, help="default: the current output folder (src.training.outputs.write_dir)"
    )
    args = ap.parse_args()

    rows = [
        score_expw(args.expw, args.model, config.ROOT, None),
        score_expw(args.expw, args.model, config.ROOT, (400, 800)),
    ]
    if args.ckplus:
        rows.append(score_ckplus(args.ckplus, args.model, config.ROOT))
    for row in rows:
        print(json.dumps(row))
    out_dir = args.output_dir or model_folder(write_dir(), args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cross_dataset.json").write_text(
        json.dumps({"model": Path(args.model).name, "rows": rows}, indent=2) + "\n"
    )
    print(f"wrote {out_dir / 'cross_dataset.json'}")


if __name__ == "__main__":
    main()
