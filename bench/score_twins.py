"""Accuracy of a model's fp32 and INT8 ONNX twins side by side, as served (the test-time views each model is served with).

For each model: FER2013 PublicTest and PrivateTest accuracy (FER2013 labels), PrivateTest
FER+ majority accuracy (rows with a strict majority, when fer2013new.csv is there), ExpW's
held-back faces (the 20% of source photos training never saw, aligned crops) and how often
the INT8 twin gives the fp32 twin's top answer. The INT8 twin was calibrated on Training
faces only, so none of these faces took part in it. Prints a table, writes nothing.

Usage: python bench/score_twins.py --fer PATH/TO/fer2013 [--expw PATH/TO/expw] [--model FILE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def predictions(predict, faces: np.ndarray, views: str) -> np.ndarray:
    from src.engine.classifier import tta_averaged

    x = faces[..., None].astype(np.float32)
    return np.concatenate([tta_averaged(predict, x[i : i + 256], views) for i in range(0, len(x), 256)]).argmax(1)


def main() -> None:
    from src import config
    from src.engine.runtime import int8_twin, load_classifier, onnx_twin
    from src.training.data import ferplus_majority, load_cached, load_expw_cached

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer", required=True, help="FER2013 (fer2013.csv(.gz), with fer2013new.csv beside it)")
    ap.add_argument("--expw", help="ExpW-style folder (labels.csv + faces/)")
    ap.add_argument("--model", nargs="+", default=[str(config.MODEL_FILE), str(config.MODELS_DIR / "fer_plus.keras")])
    args = ap.parse_args()

    fer = load_cached(args.fer)
    sets = {"PublicTest": fer.split("PublicTest"), "PrivateTest": fer.split("PrivateTest")}
    private = sets["PrivateTest"]
    plus = None
    if private.ferplus is not None:
        majority = ferplus_majority(private.ferplus)
        plus = (private.images[majority >= 0], majority[majority >= 0])
    wild = load_expw_cached(args.expw).split("PublicTest") if args.expw else None

    print(f"{'model':16s} {'twin':6s} {'Public':>8s} {'Private':>8s} {'FER+ Pr':>8s} {'ExpW':>8s} {'agree':>7s}")
    for model in args.model:
        answers = {}
        for twin_name, twin in (("fp32", onnx_twin(model)), ("int8", int8_twin(model))):
            predict, info = load_classifier(twin)
            scored = {name: (predictions(predict, d.images, info.views), d.labels) for name, d in sets.items()}
            if plus is not None:
                scored["FER+ Pr"] = (predictions(predict, plus[0], info.views), plus[1])
            if wild is not None:
                scored["ExpW"] = (predictions(predict, wild.images, info.views), wild.labels)
            answers[twin_name] = np.concatenate([p for p, _ in scored.values()])
            row = {name: f"{(p == y).mean():.2%}" for name, (p, y) in scored.items()}
            agree = f"{(answers[twin_name] == answers['fp32']).mean():.2%}" if twin_name == "int8" else ""
            print(
                f"{Path(model).stem:16s} {twin_name:6s} {row['PublicTest']:>8s} {row['PrivateTest']:>8s} "
                f"{row.get('FER+ Pr', '-'):>8s} {row.get('ExpW', '-'):>8s} {agree:>7s}",
                flush=True,
            )
    sizes = {name: len(d) for name, d in sets.items()}
    print(
        f"faces: {sizes}, FER+ PrivateTest {0 if plus is None else len(plus[1])}, ExpW {0 if wild is None else len(wild)}"
    )


if __name__ == "__main__":
    main()
