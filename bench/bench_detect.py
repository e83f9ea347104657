"""Face-detection benchmark: speed, recall and false positives on offline photos.

Prints, for the configured detector (src/config.py, YuNet by default) beside Haar:
- median ms of ``detect`` on a 640x480 frame and on a 1280x960 frame (the
  astronaut photo padded to 4:3), wall clock and CPU time of this process;
- the same for YuNet without its coarse first pass (config.YUNET_COARSE_SIDE);
- recall and false positives on synthetic multi-face canvases: the 100 LFW faces
  of ``skimage.data.lfw_subset`` and crops of the astronaut's face pasted 3-4 per
  canvas, at 36-180 px, on gray or on photos without faces (640x480), and at
  40-400 px on 1280x960 canvases, at working sizes of 640 and 320 px;
- the same on FER2013 Training faces (the first ``--fer-faces``, when the dataset
  is found): harder, with many turned, occluded and low-resolution faces;
- boxes found on the scikit-image photos without a human face (chelsea, coffee,
  rocket, ...: every box is a false positive), and on ``camera``, whose man is
  seen from the side (one box = the profile fallback found him).

``--compare`` adds the alternatives that were measured to choose the settings
(the "default" cascade, other scale factors and neighbour counts).

Usage: python bench/bench_detect.py [--repeats 30] [--compare] [--fer PATH] [--fer-faces 400]
Wall-clock timings on a loaded 2-core machine are noisy; CPU time is steadier.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from skimage import data

from src import config
from src.engine.faces import Box, FaceDetector, YuNetDetector, get_detector
from src.training.data import DatasetError, parse_pixels, resolve_dataset_path

Scene = tuple[np.ndarray, list[Box]]
NO_FACE_PHOTOS = (
    "chelsea",
    "coffee",
    "rocket",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
    "cell",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "logo",
    "checkerboard",
    "colorwheel",
    "microaneurysms",
)
BACKGROUNDS = (None, "brick", "grass", "coffee", "rocket", "chelsea", "page", "clock")


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return image


def astronaut() -> np.ndarray:
    return to_gray(data.astronaut())


def frame(width: int, height: int) -> np.ndarray:
    """The astronaut photo letterboxed into a 4:3 gray frame of the given size."""
    canvas = np.full((height, width), 200, np.uint8)
    side = height
    photo = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA if side < 512 else cv2.INTER_CUBIC)
    left = (width - side) // 2
    canvas[:, left : left + side] = photo
    return canvas


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def _place(
    rng: np.random.Generator, taken: list[tuple[int, int, int]], side: int, width: int, height: int
) -> tuple[int, int] | None:
    """A free top-left corner for a side x side patch, or None."""
    for _ in range(50):
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        if all(x + side < ox or ox + oside < x or y + side < oy or oy + oside < y for ox, oy, oside in taken):
            taken.append((x, y, side))
            return x, y
    return None


def canvas_with_faces(
    faces: Iterable[np.ndarray | None],
    sizes: tuple[int, int],
    width: int,
    height: int,
    background: np.ndarray | None,
    rng: np.random.Generator,
) -> Scene:
    """Paste faces onto a canvas; ``None`` means the astronaut's face with its surroundings.

    LFW faces are tight 25x25 crops, so they get a replicated border of a quarter
    of their size (a detector needs some forehead and chin around the face).
    """
    canvas = (
        np.full((height, width), 128, np.uint8)
        if background is None
        else cv2.resize(background, (width, height), interpolation=cv2.INTER_AREA)
    )
    context = astronaut()[40:190, 150:300]  # face at (26, 26, 97, 97) of this 150x150 crop
    truth: list[Box] = []
    taken: list[tuple[int, int, int]] = []
    for face in faces:
        size = int(rng.integers(*sizes))
        if face is None:
            side = round(size * 150 / 97)
            patch, offset = _resize(context, side), round(26 * size / 97)
        else:
            pad = round(size / 4)
            patch = cv2.copyMakeBorder(_resize(face, size), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            side, offset = patch.shape[0], pad
        corner = _place(rng, taken, side, width, height) if side < min(width, height) else None
        if corner is None:
            continue
        x, y = corner
        canvas[y : y + side, x : x + side] = patch
        truth.append(Box(x + offset, y + offset, size, size))
    return canvas, truth


def fer_faces(path: str | None, count: int) -> np.ndarray | None:
    """The first ``count`` FER2013 Training faces (never the test split), or None without the CSV."""
    try:
        folder = resolve_dataset_path(path)
    except DatasetError:
        return None
    csv = next((f for f in (folder, folder / "fer2013.csv.gz", folder / "fer2013.csv") if f.is_file()), None)
    if csv is None or count <= 0:
        return None
    rows = pd.read_csv(csv, nrows=2 * count + 100, usecols=["pixels", "Usage"])
    return parse_pixels(rows.loc[rows["Usage"] == "Training", "pixels"].head(count))


def synthetic_set(
    width: int, height: int, sizes: tuple[int, int], seed: int = 0, faces: np.ndarray | None = None
) -> list[Scene]:
    """Canvases of 4 faces (LFW by default); with LFW, also 16 canvases of 3 astronaut faces."""
    rng = np.random.default_rng(seed)
    if faces is None:
        faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)  # first 100 are faces, the rest are not
    photos = {name: to_gray(getattr(data, name)()) for name in BACKGROUNDS if name}
    backgrounds = [photos.get(name) if name else None for name in BACKGROUNDS]
    scenes = []
    order = rng.permutation(len(faces))
    for i in range(0, len(faces), 4):
        scenes.append(
            canvas_with_faces(
                faces[order[i : i + 4]], sizes, width, height, backgrounds[(i // 4) % len(backgrounds)], rng
            )
        )
    if faces.shape[1:] == (25, 25):
        for i in range(16):
            scenes.append(canvas_with_faces([None] * 3, sizes, width, height, backgrounds[i % len(backgrounds)], rng))
    return scenes


class EqualizedDetector(FaceDetector):
    """The detector on a histogram-equalised image (measured, not used: it lost faces)."""

    def detect(self, gray: np.ndarray) -> list[Box]:
        return super().detect(cv2.equalizeHist(gray))


def match(found: list[Box], truth: list[Box]) -> tuple[int, int]:
    """(true positives, false positives): a hit has its centre in the face and a similar size."""
    used: set[int] = set()
    hits = 0
    for t in truth:
        for i, f in enumerate(found):
            cx, cy = f.x + f.w / 2, f.y + f.h / 2
            if i not in used and t.x <= cx <= t.x + t.w and t.y <= cy <= t.y + t.h and 0.5 <= f.w / t.w <= 2:
                used.add(i)
                hits += 1
                break
    return hits, len(found) - len(used)


def evaluate(detector: FaceDetector, scenes: list[Scene]) -> tuple[float, int, int, float]:
    """Recall, false positives, faces, median CPU ms per scene."""
    hits = false = faces = 0
    cpu = []
    for image, truth in scenes:
        t = time.process_time()
        found = detector.detect(image)
        cpu.append((time.process_time() - t) * 1000)
        h, f = match(found, truth)
        hits, false, faces = hits + h, false + f, faces + len(truth)
    return hits / faces, false, faces, statistics.median(cpu)


def no_face_boxes(detector: FaceDetector) -> dict[str, int]:
    return {name: len(detector.detect(to_gray(getattr(data, name)()))) for name in NO_FACE_PHOTOS}


def time_detect(detector: FaceDetector, image: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median wall and CPU ms of one detect call."""
    detector.detect(image)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        detector.detect(image)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def report(name: str, detector: FaceDetector, sets: dict[str, list[Scene]]) -> None:
    parts = []
    for label, scenes in sets.items():
        recall, false, faces, cpu = evaluate(detector, scenes)
        parts.append(f"{label}: recall {recall:.3f} of {faces}, {false} FP, {cpu:.0f} CPU ms")
    negatives = no_face_boxes(detector)
    fired = {k: v for k, v in negatives.items() if v}
    profile = len(detector.detect(data.camera()))
    print(
        f"{name:44s} " + " | ".join(parts) + f" | {len(negatives)} no-face photos: {sum(negatives.values())} boxes "
        f"{fired or ''} | cameraman (profile): {profile} box",
        flush=True,
    )


def expw_scenes(path: str | None, limit: int) -> list[Scene]:
    """ExpW photos (face + context crops) with their labelled box: in-the-wild recall."""
    if not path:
        return []
    root = Path(path)
    labels = pd.read_csv(root / "labels.csv").head(limit)
    scenes = []
    for row in labels.itertuples():
        image = cv2.imread(str(root / "faces" / row.file), cv2.IMREAD_GRAYSCALE)
        if image is not None:
            scenes.append((image, [Box(int(row.x), int(row.y), int(row.w), int(row.h))]))
    return scenes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed detect calls per frame size")
    ap.add_argument("--compare", action="store_true", help="also measure the alternative settings")
    ap.add_argument("--fer", help="FER2013 CSV or folder (default: the project's dataset, if any)")
    ap.add_argument("--fer-faces", type=int, default=400, help="FER2013 Training faces to paste (0: none)")
    ap.add_argument("--expw", help="ExpW folder (labels.csv + faces/): recall on in-the-wild photos")
    ap.add_argument("--expw-faces", type=int, default=1000, help="ExpW photos to use")
    args = ap.parse_args()

    detector = get_detector()
    haar = FaceDetector()
    print(
        f"configured detector: {config.DETECTOR} ({type(detector).__name__}); OpenCV {cv2.__version__}; "
        f"YuNet max side {config.YUNET_MAX_SIDE} after a {config.YUNET_COARSE_SIDE} px coarse pass (kept when its "
        f"faces are >= {config.YUNET_COARSE_MIN_FACE} px), min score {config.YUNET_MIN_SCORE}; Haar cascade "
        f"{config.HAAR_CASCADE}, max side {config.DETECT_MAX_SIDE}; min face {config.MIN_FACE_SIZE}px"
    )
    single = YuNetDetector(coarse_side=0)
    for name, det in (("configured", detector), ("yunet without the coarse pass", single), ("haar", haar)):
        for width, height in ((640, 480), (1280, 960)):
            image = frame(width, height)
            wall, cpu = time_detect(det, image, args.repeats)
            print(
                f"{name} detect {width}x{height}: median {wall:.1f} ms wall, {cpu:.1f} ms CPU "
                f"({len(det.detect(image))} face)",
                flush=True,
            )

    small = {"640x480": synthetic_set(640, 480, (36, 180))}
    fer = fer_faces(args.fer, args.fer_faces)
    if fer is not None:
        small["FER 640x480"] = synthetic_set(640, 480, (36, 180), faces=fer)
    wild = expw_scenes(args.expw, args.expw_faces)
    if wild:
        small["ExpW photos"] = wild
    large = {"1280x960": synthetic_set(1280, 960, (40, 400), seed=1)}
    report("configured", detector, {**small, **large})
    report("haar (the previous default)", haar, {**small, **large})
    report("yunet without the coarse pass", single, {**small, **large})
    for side in (320, 480):
        report(f"yunet, max side {side}", YuNetDetector(max_side=side, coarse_side=0), {**small, **large})
    if args.compare:
        report("haar, max side 320", FaceDetector(max_side=320), large)
        report("haar without the profile fallback", FaceDetector(profile_cascade=""), small)
        report("haar with equalizeHist", EqualizedDetector(), small)
        for cascade in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt.xml"):
            report(cascade, FaceDetector(cascade=cascade), small)
        for scale, neighbours in ((1.05, 5), (1.1, 3), (1.1, 4), (1.1, 6), (1.2, 3), (1.2, 5)):
            report(
                f"scaleFactor {scale}, minNeighbors {neighbours}",
                FaceDetector(scale_factor=scale, min_neighbors=neighbours),
                small,
            )


if __name__ == "__main__":
    main()
