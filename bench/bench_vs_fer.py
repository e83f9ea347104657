"""This pipeline against the free ``fer`` package, on the same photos, same machine.

Three photo sets, each written as JPEG files to a temporary folder (seeded):

- ``web``: ExpW's held-back photos (the 20% of source photos training never saw), the
  dataset's face-centred crops (face box plus up to one box-width of context) scaled so
  their long side is 400-800 px: in-the-wild photos where the face is about a third of
  the frame.
- ``portrait``: a studio-portrait proxy made from the same held-back faces. Each crop is
  cut again around its labelled face so that the face box is 40-70% of the short side,
  at a portrait aspect (height 1.0-1.25x the width; edges replicated where the source
  crop ends at its photo's border), then scaled to a long side of 256-760 px. The
  faces are ExpW's 64 px ones enlarged 1.3-8x, so softer than a real studio photo; what
  matters here is the geometry: one large face filling most of a small-to-mid image.
- ``ck``: CK+ posed faces (48x48 grey lab crops; contempt, not one of our classes, is left
  out), enlarged so the crop is 50-75% of the side, on a plain backdrop of the crop's
  edge grey, a square of 256-512 px: a lab-lit, plain-background, frontal proxy for
  studio portraits, though grey and far softer than a camera's.

For each pipeline, per photo: decode from the file, detect, classify; the labelled face
is matched to the detected face of highest IoU (>= 0.3), a missed face counts as wrong.
The pipelines take turns photo by photo, so a load change on the shared machine hits
them alike. Prints per set accuracy, faces found, wall and CPU seconds per photo (after
start-up, one process, sequential) and each pipeline's ratio to ``fer``'s wall time.
``--stages`` also splits this project's wall time per photo into decode, detection,
alignment, classification (test-time views included) and the rest of a ``predict`` call.
``--set`` picks one set (default: all; ``ck`` needs ``--ckplus``).

``fer`` is not a dependency of this project: install it into a scratch folder
(``.venv/bin/pip install --no-deps --target /tmp/fer fer``; it needs TensorFlow, OpenCV,
requests and setuptools, which the dev install has), put that folder on ``PYTHONPATH``
and pass ``--with-fer``; it runs as ``FER(mtcnn=False)``, its default OpenCV Haar
detector. Without it only this project's rows are printed.

Usage: PYTHONPATH=/tmp/fer python bench/bench_vs_fer.py --expw PATH/TO/expw
[--ckplus PATH/TO/ckplus48] [--set all|web|portrait|ck] [--with-fer] [--limit 300] [--stages]
[--model FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

Detect = Callable[[Path], list[tuple[tuple[float, float, float, float], str]]]
CK_LABELS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def _held_back(expw: Path, limit: int, seed: int) -> pd.DataFrame:
    from src.training.data import expw_split

    labels = pd.read_csv(expw / "labels.csv")
    held = labels[[expw_split(s) == "PublicTest" for s in labels["source_image"]]]
    # labels.csv is ordered by search keyword: a random sample keeps the classes mixed.
    return held.sample(n=min(limit, len(held)), random_state=seed).reset_index(drop=True)


def web_photos(expw: Path, folder: Path, limit: int, seed: int = 0) -> pd.DataFrame:
    """ExpW held-back crops scaled to a long side of 400-800 px; boxes in the written pixels."""
    held = _held_back(expw, limit, seed)
    rng = np.random.default_rng(seed)
    rows = []
    for row in held.itertuples():
        image = cv2.imread(str(expw / "faces" / row.file))
        scale = rng.uniform(400, 800) / max(image.shape[:2])
        cv2.imwrite(str(folder / row.file), cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
        rows.append((row.file, row.x * scale, row.y * scale, row.w * scale, row.h * scale, row.emotion))
    return pd.DataFrame(rows, columns=["file", "x", "y", "w", "h", "emotion"])


def portrait_photos(expw: Path, folder: Path, limit: int, seed: int = 0) -> pd.DataFrame:
    """ExpW held-back faces recut so the face is 40-70% of the short side, long side 256-760 px."""
    held = _held_back(expw, limit, seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for row in held.itertuples():
        image = cv2.imread(str(expw / "faces" / row.file))
        width = row.w / rng.uniform(0.40, 0.70)
        height = width * rng.uniform(1.0, 1.25)
        # Face centre a little above the frame's centre, as portraits are framed.
        cx, cy = row.x + row.w / 2, row.y + row.h / 2 + 0.1 * height
        x0, y0 = round(cx - width / 2), round(cy - height / 2)
        x1, y1 = x0 + round(width), y0 + round(height)
        pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        crop = padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
        scale = rng.uniform(256, 760) / max(crop.shape[:2])
        name = f"portrait_{row.file}"
        cv2.imwrite(str(folder / name), cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
        box = ((row.x - x0) * scale, (row.y - y0) * scale, row.w * scale, row.h * scale)
        rows.append((name, *box, row.emotion))
    return pd.DataFrame(rows, columns=["file", "x", "y", "w", "h", "emotion"])


def ck_photos(ckplus: Path, folder: Path, limit: int, seed: int = 0) -> pd.DataFrame:
    """CK+ 48 px faces (six shared classes) enlarged onto a plain 256-512 px square backdrop."""
    files = [
        (path, CK_LABELS[path.parent.name]) for path in sorted(ckplus.glob("*/*.png")) if path.parent.name in CK_LABELS
    ]
    rng = np.random.default_rng(seed + 2)
    picks = rng.permutation(len(files))[:limit]
    rows = []
    for i in picks:
        path, emotion = files[i]
        face = cv2.imread(str(path))
        side = round(rng.uniform(256, 512))
        inner = round(side * rng.uniform(0.50, 0.75))
        face = cv2.resize(face, (inner, inner), interpolation=cv2.INTER_CUBIC)
        left, top = (side - inner) // 2, round((side - inner) * 0.4)
        # A plain backdrop in the crop's own edge grey, as a studio wall would be.
        edge = np.concatenate([face[0], face[-1], face[:, 0], face[:, -1]])
        backdrop = tuple(int(v) for v in np.median(edge, axis=0))
        image = cv2.copyMakeBorder(
            face, top, side - inner - top, left, side - inner - left, cv2.BORDER_CONSTANT, value=backdrop
        )
        name = f"ck_{path.parent.name}_{path.stem}.jpg"
        cv2.imwrite(str(folder / name), image)
        rows.append((name, left, top, inner, inner, emotion))
    return pd.DataFrame(rows, columns=["file", "x", "y", "w", "h", "emotion"])


def score(held: pd.DataFrame, folder: Path, pipelines: dict[str, Detect]) -> dict[str, tuple[float, ...]]:
    """Per pipeline: (accuracy, faces found, wall s/photo, CPU s/photo); pipelines take turns per photo."""
    from src.engine.faces import iou

    for detect in pipelines.values():
        detect(folder / held["file"].iloc[0])  # warm-up
    tally = {name: [0, 0, 0.0, 0.0] for name in pipelines}
    for row in held.itertuples():
        box = (row.x, row.y, row.w, row.h)
        for name, detect in pipelines.items():
            wall, cpu = time.perf_counter(), time.process_time()
            faces = detect(folder / row.file)
            tally[name][2] += time.perf_counter() - wall
            tally[name][3] += time.process_time() - cpu
            best, best_iou = None, 0.3
            for face_box, emotion in faces:
                overlap = iou(box, face_box)
                if overlap >= best_iou:
                    best, best_iou = emotion, overlap
            tally[name][0] += best == row.emotion
            tally[name][1] += best is not None
    n = len(held)
    return {name: tuple(v / n for v in values) for name, values in tally.items()}


def stages(held: pd.DataFrame, folder: Path, fast: bool = False, model: Path | None = None) -> dict[str, float]:
    """Milliseconds per photo of this project's stages, the steps of ``EmotionRecognizer.predict``.

    ``other`` is a whole ``predict`` call less those stages: per-face measures and results.
    """
    from src.engine.faces import get_detector
    from src.engine.inference import EmotionRecognizer
    from src.engine.preprocessing import extract_face, load_image_sized, to_gray

    rec = EmotionRecognizer(model, fast=fast)
    detector = get_detector(fast)
    keys = ("decode", "detect", "align", "classify", "predict")
    totals = dict.fromkeys(keys, 0.0)
    for row in held.itertuples():
        path = folder / row.file
        t0 = time.perf_counter()
        rgb, _ = load_image_sized(path)
        t1 = time.perf_counter()
        found = detector.detect_faces(rgb)
        t2 = time.perf_counter()
        gray = to_gray(rgb)
        faces = np.stack([extract_face(gray, f.box, f.landmarks, rec.size) for f in found]) if found else None
        t3 = time.perf_counter()
        if faces is not None:
            rec.classify(faces)
        t4 = time.perf_counter()
        rec.predict(path)
        t5 = time.perf_counter()
        for key, seconds in zip(keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            totals[key] += seconds
    ms = {key: 1000 * seconds / len(held) for key, seconds in totals.items()}
    ms["other"] = max(0.0, ms["predict"] - sum(ms[key] for key in keys[:-1]))
    return ms


def main() -> None:
    from src.engine.inference import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--ckplus", type=Path, help="CK+ 48x48 folder (for --set ck or all)")
    ap.add_argument("--set", choices=("all", "web", "portrait", "ck"), default="all")
    ap.add_argument("--with-fer", action="store_true", help="also run the fer package (on PYTHONPATH)")
    ap.add_argument("--no-fast", action="store_true", help="leave out this project's --fast row")
    ap.add_argument("--limit", type=int, default=300, help="photos per set (a seeded sample)")
    ap.add_argument("--stages", action="store_true", help="also time this project's stages per photo")
    ap.add_argument("--model", type=Path, help="this project's model file (default: the deployed one)")
    args = ap.parse_args()
    names = ("web", "portrait", "ck") if args.set == "all" else (args.set,)
    if "ck" in names and args.ckplus is None:
        if args.set == "ck":
            ap.error("--set ck needs --ckplus")
        names = tuple(n for n in names if n != "ck")

    pipelines: dict[str, Detect] = {}
    for label, fast in (("ours (default)", False), ("ours (--fast)", True)):
        if fast and args.no_fast:
            continue
        rec = EmotionRecognizer(args.model, fast=fast)
        pipelines[label] = lambda p, r=rec: [(f.box, f.emotion) for f in r.predict(p)]
    if args.with_fer:
        from fer.fer import FER

        detector = FER(mtcnn=False)

        def fer_detect(path: Path):
            image = cv2.imread(str(path))
            return [
                (tuple(face["box"]), max(face["emotions"], key=face["emotions"].get))
                for face in detector.detect_emotions(image)
            ]

        pipelines["fer (Haar + mini-Xception)"] = fer_detect

    makers = {
        "web": (lambda folder: web_photos(args.expw, folder, args.limit), "ExpW held-back photos, 400-800 px"),
        "portrait": (
            lambda folder: portrait_photos(args.expw, folder, args.limit),
            "ExpW held-back portraits, face 40-70% of the short side, 256-760 px",
        ),
        "ck": (lambda folder: ck_photos(args.ckplus, folder, args.limit), "CK+ posed faces, 256-512 px squares"),
    }
    for name in names:
        make, title = makers[name]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            held = make(folder)
            results = score(held, folder, pipelines)
            split = stages(held, folder, model=args.model) if args.stages else None
        fer_wall = next((r[2] for label, r in results.items() if label.startswith("fer")), None)
        print(f"\n[{name}] {len(held)} {title}")
        print(f"{'pipeline':28s} {'accuracy':>9s} {'found':>7s} {'s/photo':>8s} {'cpu s':>7s} {'x fer':>6s}")
        for label, (accuracy, found, wall, cpu) in results.items():
            ratio = f"{wall / fer_wall:6.2f}" if fer_wall else f"{'-':>6s}"
            print(f"{label:28s} {accuracy:9.3f} {found:7.3f} {wall:8.4f} {cpu:7.4f} {ratio}")
        if split:
            print("ours (default), wall ms per photo: " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))


if __name__ == "__main__":
    main()
