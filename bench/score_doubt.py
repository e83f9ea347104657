"""Measure the per-face doubt rules (src/engine/doubt.py) on ExpW's held-back faces.

ExpW's held-back photos (the 20% of source photos training never saw,
``src.training.data.expw_split``) go through the product's pipeline: detection with landmarks
and alignment (``EmotionRecognizer.locate``), the classifier with its test-time views
(the model's own) and the served temperature (``classify``), and ``doubt.measure`` on each detected face. Each labelled face is
matched to the detection of highest IoU (>= 0.3, as ``src.training.error_model``); faces the
detector missed have no label to doubt and are left out.

ExpW's crops are scaled so that every labelled face is 64 px wide, so face size cannot vary
in them: the size rule is measured on the same photos shrunk so that their face is 12-32 px
wide (one extra pass per size). Their natural blur barely varies either (the sharpest and the
blurriest tenth are right as often), so the blur rule is measured on the photos as shipped
pooled with copies blurred by a Gaussian of 1.5 and 3 px per 64 px of face. Yaw and confidence
are measured on the photos as shipped.

For each sign it prints (and records) accuracy by bins and a sweep of thresholds: the share of
faces a threshold flags, how often the flagged and the other faces are right, and the threshold
it would suggest (the one flagging the most faces while those are right at most ``--target``
of the time). Then the thresholds in force (``src/config.py``, ``FER_DOUBT_*``): share flagged
and accuracy of flagged against not flagged, per reason and all together. The record goes to
``doubt.json`` in the model's output folder (beside ``calibration_wild.json``).

Usage: python bench/score_doubt.py --expw PATH/TO/expw [--model FILE] [--output DIR] [--target 0.30]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from src import config
from src.engine import doubt
from src.engine.faces import iou
from src.engine.manifest import sha256_file

ROOT = Path(__file__).resolve().parents[1]

SHRUNK_SIDES = (12, 16, 24, 32)
BLUR_SIGMAS = (1.5, 3.0)  # Gaussian sigma in px per 64 px of labelled face width
SIGNS = {
    # sign: (column, direction): "below" flags small values, "above" large ones
    "blurred": ("sharpness", "below"),
    "turned": ("yaw", "above"),
    "low_confidence": ("confidence_wild", "below"),
    "small": ("face_px", "below"),
}
MATCH_IOU = 0.3
MAX_FLAGGED = 0.35  # a suggested threshold never flags more than this share of faces


def _faces_of_photo(rec, rgb: np.ndarray, box: tuple[float, float, float, float]):
    """The best-matching detection of the labelled ``box`` in ``rgb``: (face, aligned crop), or None."""
    found, crops = rec.locate(rgb)
    best, best_iou = None, MATCH_IOU
    for i, face in enumerate(found):
        overlap = iou(box, tuple(face.box))
        if overlap >= best_iou:
            best, best_iou = i, overlap
    return None if best is None else (found[best], crops[best])


def collect(expw: Path, rec, labels: pd.DataFrame, side: int | None = None, sigma: float = 0.0) -> pd.DataFrame:
    """One row per labelled face: found, correct, and the four signs (photos shrunk to ``side`` px
    faces, or blurred by ``sigma`` px per 64 px of face)."""
    names = list(rec.class_names)
    wild = rec.info.manifest.get("temperature_wild")
    kept, crops = [], []
    for row in labels.itertuples(index=False):
        bgr = cv2.imread(str(expw / "faces" / row.file), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        box = (row.x, row.y, row.w, row.h)
        if sigma:
            rgb = cv2.GaussianBlur(rgb, (0, 0), sigma * row.w / 64)
        if side is not None:
            scale = side / max(1, row.w)
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            box = tuple(v * scale for v in box)
        match = _faces_of_photo(rec, rgb, box)
        record = {"file": row.file, "source_image": row.source_image, "label": row.emotion, "found": match is not None}
        if match is not None:
            face, crop = match
            signs = doubt.measure(face.box, face.landmarks, crop, None)
            record.update(face_px=signs.face_px, sharpness=signs.sharpness, yaw=signs.yaw)
            crops.append(crop)
        kept.append(record)
    frame = pd.DataFrame(kept)
    frame["side"], frame["sigma"] = side or 0, sigma
    probs = rec.classify(np.stack(crops)) if crops else np.zeros((0, len(names)))
    found = frame["found"].to_numpy(bool)
    frame.loc[found, "predicted"] = [names[i] for i in probs.argmax(axis=1)]
    frame.loc[found, "confidence"] = probs.max(axis=1)
    frame.loc[found, "confidence_wild"] = doubt.wild_probabilities(probs, rec.info.temperature, wild).max(axis=1)
    frame["correct"] = frame["found"] & (frame["predicted"] == frame["label"])
    return frame


def _flags(faces: pd.DataFrame, column: str, direction: str, threshold: float) -> np.ndarray:
    values = faces[column].to_numpy(np.float64)
    flagged = values < threshold if direction == "below" else values > threshold
    return flagged & np.isfinite(values)


def split_stats(faces: pd.DataFrame, flagged: np.ndarray) -> dict:
    """Share flagged and the accuracy of the flagged and the other faces."""
    correct = faces["correct"].to_numpy(bool)
    n = len(faces)
    return {
        "faces": int(n),
        "flagged": int(flagged.sum()),
        "share_flagged": round(float(flagged.mean()), 4) if n else None,
        "accuracy_flagged": round(float(correct[flagged].mean()), 4) if flagged.any() else None,
        "accuracy_not_flagged": round(float(correct[~flagged].mean()), 4) if (~flagged).any() else None,
    }


def bins(faces: pd.DataFrame, column: str, n_bins: int = 10) -> list[dict]:
    """Accuracy by quantile bin of ``column`` (faces where it was measured)."""
    measured = faces[np.isfinite(faces[column].to_numpy(np.float64))]
    if measured.empty:
        return []
    edges = np.unique(np.quantile(measured[column], np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, measured[column], side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        part = measured[which == b]
        if len(part):
            out.append(
                {
                    "from": round(float(edges[b]), 4),
                    "to": round(float(edges[b + 1]), 4),
                    "faces": int(len(part)),
                    "accuracy": round(float(part["correct"].mean()), 4),
                }
            )
    return out


def sweep(faces: pd.DataFrame, column: str, direction: str, target: float) -> dict:
    """Thresholds at quantiles of ``column``: what each flags and how often those faces are right."""
    values = faces[column].to_numpy(np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"thresholds": [], "suggested": None}
    shares = np.arange(0.02, MAX_FLAGGED + 1e-9, 0.01)
    quantiles = shares if direction == "below" else 1 - shares
    rows, suggested = [], None
    for threshold in np.unique(np.round(np.quantile(values, quantiles), 4)):
        stats = split_stats(faces, _flags(faces, column, direction, float(threshold)))
        rows.append({"threshold": float(threshold), **stats})
        good = stats["accuracy_flagged"] is not None and stats["accuracy_flagged"] <= target
        if good and stats["share_flagged"] <= MAX_FLAGGED:
            if suggested is None or stats["flagged"] > suggested["flagged"]:
                suggested = rows[-1]
    return {"thresholds": rows, "suggested": suggested}


def in_force(faces: pd.DataFrame, thresholds: doubt.Thresholds) -> dict:
    """The configured rules on ``faces``: each reason alone and any of them."""
    limits = {
        "small": thresholds.min_face_px,
        "blurred": thresholds.min_sharpness,
        "turned": thresholds.max_yaw,
        "low_confidence": thresholds.min_confidence,
    }
    out, any_flag = {}, np.zeros(len(faces), bool)
    for reason, (column, direction) in SIGNS.items():
        limit = limits[reason]
        flagged = _flags(faces, column, direction, limit) if limit > 0 else np.zeros(len(faces), bool)
        out[reason] = {"threshold": limit, **split_stats(faces, flagged)}
        any_flag |= flagged
    out["any"] = split_stats(faces, any_flag)
    return out


def in_force_on_pools(found: pd.DataFrame, pools: dict, thresholds: doubt.Thresholds) -> dict:
    """Each configured rule on the faces it was measured on (its pool: shipped plus copies, or as shipped)."""
    out = {}
    for reason in SIGNS:
        faces, on = pools.get(reason, (found, "photos as shipped"))
        out[reason] = {"on": on, **in_force(faces, thresholds)[reason]}
    return out


def size_table(copies: pd.DataFrame, by: str, name: str) -> list[dict]:
    """Per kind of copy (shrunk face width, or blur): faces found, median signs, accuracy of those found."""
    out = []
    for value, part in copies.groupby(by):
        found = part[part["found"]]
        out.append(
            {
                name: float(value),
                "labelled": int(len(part)),
                "found": int(len(found)),
                "median_box_short_side": round(float(found["face_px"].median()), 1) if len(found) else None,
                "median_sharpness": round(float(found["sharpness"].median()), 4) if len(found) else None,
                "accuracy_found": round(float(found["correct"].mean()), 4) if len(found) else None,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expw", required=True, type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--output", default=None, type=Path, help="folder for doubt.json (default: the model's)")
    parser.add_argument("--target", type=float, default=0.30, help="accuracy a flagged group should stay under")
    parser.add_argument("--limit", type=int, default=0, help="first N held-back faces only (0: all)")
    args = parser.parse_args()

    from src.engine.inference import EmotionRecognizer
    from src.training.error_model import SPLIT_RULE, held_back_labels
    from src.training.outputs import model_folder, write_dir

    model_file = Path(args.model or config.MODEL_FILE)
    rec = EmotionRecognizer(model_file)
    labels = held_back_labels(args.expw)
    if args.limit:
        labels = labels.head(args.limit)
    start = time.perf_counter()
    shipped = collect(args.expw, rec, labels)
    shrunk = pd.concat([collect(args.expw, rec, labels, side=side) for side in SHRUNK_SIDES], ignore_index=True)
    blurred = pd.concat([collect(args.expw, rec, labels, sigma=sigma) for sigma in BLUR_SIGMAS], ignore_index=True)
    seconds = time.perf_counter() - start
    found = shipped[shipped["found"]].reset_index(drop=True)
    pools = {
        "small": (pd.concat([found, shrunk[shrunk["found"]]], ignore_index=True), "as shipped and shrunk copies"),
        "blurred": (pd.concat([found, blurred[blurred["found"]]], ignore_index=True), "as shipped and blurred copies"),
    }
    every = pd.concat([found, shrunk[shrunk["found"]], blurred[blurred["found"]]], ignore_index=True)
    thresholds = doubt.Thresholds.configured()

    signs = {}
    for reason, (column, direction) in SIGNS.items():
        faces, on = pools.get(reason, (found, "photos as shipped"))
        signs[reason] = {
            "measure": column,
            "flags": direction,
            "on": on,
            "bins": bins(faces, column),
            **sweep(faces, column, direction, args.target),
        }
    record = {
        "dataset": "ExpW",
        "split": SPLIT_RULE,
        "protocol": (
            "EmotionRecognizer.locate (detection, landmarks, alignment) and classify (test-time views "
            f"{rec.info.views!r}, served temperature) on the held-back photo files; labelled box matched to the detection of highest IoU >= "
            f"{MATCH_IOU}; missed faces left out; confidence_wild = served probabilities rescaled to the manifest's "
            "temperature_wild; size measured on copies shrunk so the labelled face is "
            f"{', '.join(map(str, SHRUNK_SIDES))} px wide; blur on copies blurred by a Gaussian of "
            f"{' and '.join(map(str, BLUR_SIGMAS))} px per 64 px of face"
        ),
        "labelled_faces": int(len(shipped)),
        "faces": int(len(found)),
        "accuracy": round(float(found["correct"].mean()), 4),
        "temperature": rec.info.temperature,
        "temperature_wild": rec.info.manifest.get("temperature_wild"),
        "target_accuracy_flagged": args.target,
        "thresholds": {
            "min_face_px": thresholds.min_face_px,
            "min_sharpness": thresholds.min_sharpness,
            "max_yaw": thresholds.max_yaw,
            "min_confidence": thresholds.min_confidence,
        },
        "in_force": in_force(found, thresholds),
        "in_force_on_pools": in_force_on_pools(found, pools, thresholds),
        "in_force_with_copies": in_force(every, thresholds),
        "by_face_width": size_table(shrunk, "side", "face_width_px"),
        "by_blur": size_table(pd.concat([shipped, blurred], ignore_index=True), "sigma", "gaussian_sigma_per_64px"),
        "signs": signs,
        "model": {
            "file": model_file.name,
            "sha256": str(rec.info.manifest.get("sha256") or sha256_file(model_file)),
            "runtime": rec.info.runtime,
        },
        "labels_sha256": sha256_file(Path(args.expw) / "labels.csv"),
        "seconds": round(seconds, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    folder = args.output or model_folder(write_dir(), model_file)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doubt.json").write_text(json.dumps(record, indent=1) + "\n")

    print(f"{record['faces']} of {record['labelled_faces']} faces found; accuracy {record['accuracy']:.1%}")
    for reason, info in signs.items():
        print(f"\n{reason} ({info['measure']}, {info['on']}): accuracy by bin")
        for b in info["bins"]:
            print(f"  {b['from']:9.4f} .. {b['to']:9.4f}  {b['faces']:5d} faces  {b['accuracy']:.1%}")
        s = info["suggested"]
        if s:
            print(
                f"  suggested {s['threshold']}: flags {s['share_flagged']:.1%}, right {s['accuracy_flagged']:.1%} "
                f"vs {s['accuracy_not_flagged']:.1%}"
            )
        else:
            print(f"  no threshold flags a group right at most {args.target:.0%} of the time")
    for table, key in (("by_face_width", "face_width_px"), ("by_blur", "gaussian_sigma_per_64px")):
        print(f"\n{table}: found, median box short side and sharpness, accuracy")
        for row in record[table]:
            print(
                f"  {key} {row[key]:g}: {row['found']}/{row['labelled']} found, {row['median_box_short_side']} px, "
                f"sharpness {row['median_sharpness']}, right {row['accuracy_found']}"
            )
    print("\nthresholds in force, photos as shipped:")
    for reason, stats in record["in_force"].items():
        print(f"  {reason}: {json.dumps(stats)}")
    print("\nthresholds in force, each on the faces it was measured on:")
    for reason, stats in record["in_force_on_pools"].items():
        print(f"  {reason}: {json.dumps(stats)}")
    print(f"\nwrote {folder / 'doubt.json'} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
