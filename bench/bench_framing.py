"""How the face framing changes accuracy on in-the-wild photos (ExpW), for one model.

For every ExpW photo whose labelled face YuNet finds (IoU >= 0.3), the same
detection is turned into the classifier's 48x48 input in four ways, and each is
scored:

- ``landmarks``: the product's alignment (``preprocessing.extract_face``): a
  similarity fitted from the eyes and mouth onto FER2013's mean landmark positions;
- ``box, FER framing``: a square around the detector's box, sized as FER2013's faces
  sit in their frame (side = (1.215 w + h) / 2, measured on Training faces);
- ``box, 15% wider``: the same square 15% larger;
- ``box + 10% margin``: the v1 pipeline's crop (``preprocessing.crop_face``).

Usage: python bench/bench_framing.py --expw PATH/TO/expw [--model FILE] [--split all|held-back]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pandas as pd


def box_frame(gray: np.ndarray, box, scale: float = 1.0, size: int = 48) -> np.ndarray:
    x, y, w, h = box
    side = scale * 0.5 * (1.215 * w + h)
    cx, cy = x + w / 2, y + h / 2
    k = 4
    matrix = np.array([[1, 0, side / 2 - cx], [0, 1, side / 2 - cy]], float) * (size / side) * k
    big = cv2.warpAffine(gray, matrix, (size * k, size * k), borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def main() -> None:
    from pathlib import Path

    from src import config
    from src.engine.faces import get_detector, iou
    from src.engine.inference import EmotionRecognizer
    from src.engine.preprocessing import crop_face, extract_face, load_image, to_gray
    from src.training.data import expw_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--model", default=str(config.MODEL_FILE))
    ap.add_argument("--split", choices=("all", "held-back"), default="held-back")
    args = ap.parse_args()

    rec = EmotionRecognizer(args.model)
    labels = pd.read_csv(args.expw / "labels.csv")
    if args.split == "held-back":
        labels = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]]
    index = {name: i for i, name in enumerate(rec.class_names)}
    detector = get_detector()
    variants: dict[str, list[np.ndarray]] = {
        "landmarks (shipped)": [],
        "box, FER framing": [],
        "box, 15% wider": [],
        "box + 10% margin (v1)": [],
    }
    truth = []
    for row in labels.itertuples():
        rgb = load_image(args.expw / "faces" / row.file, max_side=0)  # labelled boxes are in full-size pixels
        gray = to_gray(rgb)
        box = (row.x, row.y, row.w, row.h)
        best = max(detector.detect_faces(rgb), key=lambda f: iou(f.box, box), default=None)
        if best is None or iou(best.box, box) < 0.3:
            continue
        truth.append(index[row.emotion])
        variants["landmarks (shipped)"].append(extract_face(gray, best.box, best.landmarks))
        variants["box, FER framing"].append(box_frame(gray, best.box))
        variants["box, 15% wider"].append(box_frame(gray, best.box, 1.15))
        variants["box + 10% margin (v1)"].append(crop_face(gray, best.box))
    truth = np.array(truth)
    print(f"{len(truth)} of {len(labels)} labelled faces found; model {Path(args.model).name}")
    for name, faces in variants.items():
        accuracy = float((rec.classify(np.stack(faces)).argmax(axis=1) == truth).mean())
        print(f"{name:28s} accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
