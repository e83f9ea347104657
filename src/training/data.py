"""Dataset loading: FER2013 CSV (plain or gzip), image-folder layout, FER+ votes.

Everything is returned as compact uint8 arrays (N, 48, 48) with integer labels in
FER2013 order and a ``usage`` array holding Training / PublicTest / PrivateTest.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from src import config

USAGES = tuple(config.SPLITS.values())
_FOLDER_SPLITS = {
    "train": "Training",
    "training": "Training",
    "validation": "PublicTest",
    "val": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}


class DatasetError(ValueError):
    """The data at a path is not a FER2013 dataset we can read."""


@dataclass
class FerData:
    """Faces, labels and split of every row; optional FER+ vote distribution."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, index into class_names
    usage: np.ndarray  # (N,) str
    class_names: tuple[str, ...] = config.EMOTIONS
    ferplus: np.ndarray | None = None  # (N, 7) float32 vote counts in class_names order
    source: str = ""
    notes: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None  # (N,) str: the source photo of each face, where known

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, usage: str) -> FerData:
        usage = config.SPLITS.get(usage, usage)
        mask = self.usage == usage
        return FerData(
            images=self.images[mask],
            labels=self.labels[mask],
            usage=self.usage[mask],
            class_names=self.class_names,
            ferplus=None if self.ferplus is None else self.ferplus[mask],
            source=self.source,
            notes=list(self.notes),
            groups=None if self.groups is None else self.groups[mask],
        )

    def at_size(self, size: int) -> FerData:
        """The same faces at ``size`` x ``size`` pixels (FER2013's 48 px faces for a net of
        another input size)."""
        from src.engine.preprocessing import resize_faces

        return replace(self, images=resize_faces(self.images, size))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts)}


def parse_pixels(pixels: pd.Series, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Turn the space-separated ``pixels`` column into an (N, size, size) uint8 array."""
    joined = " ".join(pixels.astype(str).tolist())
    flat = np.array(joined.split(), dtype=np.uint8) if joined.strip() else np.zeros(0, np.uint8)
    if flat.size != len(pixels) * size * size:
        raise DatasetError(f"pixels column does not hold {size}x{size} images in every row")
    return flat.reshape(len(pixels), size, size)


def load_fer_csv(path: str | Path) -> FerData:
    """Read ``fer2013.csv`` or ``fer2013.csv.gz`` (columns emotion, pixels, Usage)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"emotion": "int64", "pixels": str, "Usage": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    missing = {"emotion", "pixels", "Usage"} - set(frame.columns)
    if missing:
        raise DatasetError(f"{path.name} lacks columns {sorted(missing)}")
    bad_usage = set(frame["Usage"].unique()) - set(USAGES)
    if bad_usage:
        raise DatasetError(f"{path.name} has unknown Usage values {sorted(bad_usage)}")
    labels = frame["emotion"].to_numpy(np.int64)
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(config.EMOTIONS):
        raise DatasetError(f"{path.name} has emotion labels outside 0..{len(config.EMOTIONS) - 1}")
    return FerData(
        images=parse_pixels(frame["pixels"]),
        labels=labels,
        usage=frame["Usage"].to_numpy(str),
        source=str(path),
    )


def _read_face_file(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def load_image_folder(root: str | Path, val_fraction: float = 0.1, seed: int = 0) -> FerData:
    """Read ``train/<class>/*``, ``test/<class>/*`` and optional ``validation/<class>/*``.

    Class folders are matched case-insensitively to the FER2013 names. Without a
    validation folder a stratified ``val_fraction`` of train becomes PublicTest
    (seeded, so the split is the same on every run).
    """
    root = Path(root)
    index = {name: i for i, name in enumerate(config.EMOTIONS)}
    images, labels, usage, notes = [], [], [], []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = _FOLDER_SPLITS.get(split_dir.name.lower())
        if split is None:
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = index.get(class_dir.name.lower())
            if label is None:
                notes.append(f"skipped unknown class folder {class_dir.relative_to(root)}")
                continue
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() not in config.IMAGE_EXTENSIONS:
                    continue
                try:
                    images.append(_read_face_file(file, config.IMAGE_SIZE))
                except OSError as exc:
                    notes.append(f"skipped unreadable {file.relative_to(root)}: {exc}")
                    continue
                labels.append(label)
                usage.append(split)
    if not images:
        raise DatasetError(f"{root} has no train/<class>/ or test/<class>/ images")
    data = FerData(
        images=np.stack(images),
        labels=np.asarray(labels, np.int64),
        usage=np.asarray(usage, dtype=object).astype(str),
        source=str(root),
        notes=notes,
    )
    if "PublicTest" not in set(data.usage) and val_fraction > 0:
        _carve_validation(data, val_fraction, seed)
    return data


def _carve_validation(data: FerData, fraction: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for label in np.unique(data.labels):
        idx = np.flatnonzero((data.labels == label) & (data.usage == "Training"))
        take = rng.permutation(idx)[: int(round(len(idx) * fraction))]
        data.usage[take] = "PublicTest"
    data.notes.append(f"no validation folder: {fraction:.0%} of train (stratified, seed {seed}) is PublicTest")


def load_ferplus(path: str | Path, n_rows: int | None = None) -> np.ndarray:
    """FER+ votes as (N, 7) float32 counts in FER2013 class order, aligned row by row.

    Rows FER+ dropped (empty ``Image name``) get all-zero votes.
    """
    frame = pd.read_csv(path)
    missing = set(config.FERPLUS_TO_EMOTION) - set(frame.columns)
    if missing:
        raise DatasetError(f"{Path(path).name} lacks FER+ columns {sorted(missing)}")
    if n_rows is not None and len(frame) != n_rows:
        raise DatasetError(f"FER+ file has {len(frame)} rows, FER2013 has {n_rows}: not aligned")
    inverse = {v: k for k, v in config.FERPLUS_TO_EMOTION.items()}
    votes = frame[[inverse[name] for name in config.EMOTIONS]].to_numpy(np.float32)
    dropped = frame["Image name"].isna().to_numpy()
    votes[dropped] = 0.0
    return votes


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """Strict-majority FER+ label per row (index into the 7 classes), -1 where none."""
    total = votes.sum(axis=1)
    top = votes.argmax(axis=1)
    strict = votes.max(axis=1) * 2 > total
    return np.where(strict & (total > 0), top, -1)


def resolve_dataset_path(path: str | Path | None = None) -> Path:
    """The dataset to use: the given path, else inputs/datasets/fer2013."""
    if path is not None:
        return Path(path).expanduser()
    default = config.DATASETS_DIR / "fer2013"
    if default.exists():
        return default
    raise DatasetError(
        "no dataset found: pass --data PATH (fer2013.csv(.gz), a folder holding it, or train/ test/ "
        f"image folders) or copy one to {default} with `python -m src.cli collect PATH`; FER2013 is "
        "downloaded from Kaggle (see the README, Training and evaluation)"
    )


def load_dataset(path: str | Path | None = None, with_ferplus: bool = True) -> FerData:
    """Load a dataset from a CSV file, a folder holding one, or an image-folder tree.

    FER+ votes are attached when ``fer2013new.csv`` sits beside the CSV.
    """
    path = resolve_dataset_path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    csv = None
    if path.is_file():
        csv = path
    else:
        for name in ("fer2013.csv", "fer2013.csv.gz"):
            if (path / name).exists():
                csv = path / name
                break
    if csv is not None:
        data = load_fer_csv(csv)
        plus = csv.parent / "fer2013new.csv"
        if with_ferplus and plus.exists():
            data.ferplus = load_ferplus(plus, n_rows=len(data))
        return data
    return load_image_folder(path)


def _npz_cached(cache: Path, source: Path, build: Callable[[], FerData]) -> FerData:
    """``build()``'s arrays kept in ``cache`` (.npz, no pickles): read back on the next call."""
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        optional = {k: z[k] if k in z and z[k].size else None for k in ("ferplus", "groups")}
        groups = optional["groups"]
        return FerData(
            images=z["images"],
            labels=z["labels"],
            usage=z["usage"].astype(str),
            ferplus=optional["ferplus"],
            groups=None if groups is None else groups.astype(str),
            source=str(source),
        )
    data = build()
    cache.parent.mkdir(parents=True, exist_ok=True)
    empty = np.zeros(0, np.float32)
    np.savez(
        cache,
        images=data.images,
        labels=data.labels,
        usage=data.usage,
        ferplus=empty if data.ferplus is None else data.ferplus,
        groups=empty if data.groups is None else data.groups,
    )
    return data


def load_cached(path: str | Path | None = None, cache_dir: Path | None = None) -> FerData:
    """``load_dataset`` with an .npz cache keyed by the source path (parsing the CSV takes ~10 s)."""
    source = resolve_dataset_path(path).resolve()
    key = hashlib.sha256(f"{source}:{source.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    cache = (cache_dir or config.RUNS_DIR / "cache") / f"fer_{key}.npz"
    return _npz_cached(cache, source, lambda: load_dataset(source))


def collect_dataset(source: str | Path, dest: Path | None = None) -> Path:
    """Data-collection step: copy a user's FER2013 copy (CSV or folders) under inputs/datasets/."""
    source = Path(source).expanduser()
    dest = dest or config.DATASETS_DIR / "fer2013"
    load_dataset(source, with_ferplus=False)  # validate before copying
    dest.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copy2(source, dest / source.name)
        return dest
    for item in source.iterdir():
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        elif item.name.startswith("fer2013"):
            shutil.copy2(item, target)
    return dest


def expw_split(source_image: str, val_fraction: float = 0.2) -> str:
    """ "Training" or "PublicTest" for an ExpW face, decided by its source photo.

    A hash of the photo's name, not a random draw: every face of one photo lands on
    the same side, and the split is the same on every machine and run.
    """
    bucket = int(hashlib.sha1(source_image.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "PublicTest" if bucket < val_fraction else "Training"


def load_expw(root: str | Path, val_fraction: float = 0.2, size: int = config.IMAGE_SIZE) -> FerData:
    """ExpW face crops as aligned ``size`` x ``size`` faces (48 by default), split by source photo.

    ``root`` holds ``labels.csv`` (file, source_image, x, y, w, h, emotion) and
    ``faces/``. Each crop goes through the product's own detector and alignment
    (``src.engine.faces``, ``src.engine.preprocessing.extract_face``): the detection that best
    overlaps the labelled box gives the landmarks. Where none overlaps it by IoU 0.3,
    the labelled box is framed like the aligned faces (its median scale); the note
    says how often.
    """
    import cv2

    from src.engine.faces import Box, get_detector, iou
    from src.engine.preprocessing import ImageError, extract_face, load_image

    root = Path(root)
    try:
        frame = pd.read_csv(root / "labels.csv")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {root / 'labels.csv'}: {exc}") from exc
    missing = {"file", "source_image", "x", "y", "w", "h", "emotion"} - set(frame.columns)
    if missing:
        raise DatasetError(f"labels.csv lacks columns {sorted(missing)}")
    index = {name: i for i, name in enumerate(config.EMOTIONS)}
    detector = get_detector(backend="yunet")
    images, labels, usage, sources, fallback, notes = [], [], [], [], [], []
    pending: list[tuple[int, np.ndarray, Box]] = []
    for row in frame.itertuples(index=False):
        label = index.get(str(row.emotion).lower())
        if label is None:
            notes.append(f"skipped {row.file}: unknown emotion {row.emotion!r}")
            continue
        try:
            rgb = load_image(root / "faces" / row.file, max_side=0)  # labelled boxes are in full-size pixels
        except ImageError as exc:
            notes.append(f"skipped {row.file}: {exc}")
            continue
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        box = Box(int(row.x), int(row.y), int(row.w), int(row.h))
        best, best_iou = None, 0.3
        for face in detector.detect_faces(rgb):
            overlap = iou(face.box, box)
            if overlap >= best_iou:
                best, best_iou = face, overlap
        if best is None:
            pending.append((len(images), gray, box))
            images.append(None)
        else:
            images.append(extract_face(gray, best.box, best.landmarks, size))
            fallback.append(_frame_scale(best.landmarks, box, size))
        labels.append(label)
        usage.append(expw_split(str(row.source_image), val_fraction))
        sources.append(str(row.source_image))
    if not labels:
        raise DatasetError(f"{root} has no usable labelled faces")
    scale = float(np.median(fallback)) if fallback else 1.6
    for i, gray, box in pending:
        images[i] = _frame_box(gray, box, scale, size)
    notes.append(f"{len(pending)} of {len(labels)} faces not found by the detector: framed from their labelled box")
    data = FerData(
        images=np.stack(images),
        labels=np.asarray(labels, np.int64),
        usage=np.asarray(usage, dtype=object).astype(str),
        source=str(root),
        notes=notes,
        groups=np.asarray(sources, dtype=object).astype(str),
    )
    return data


def _frame_scale(landmarks: np.ndarray, box, size: int = config.IMAGE_SIZE) -> float:
    """Side of the aligned frame, in photo pixels, over the labelled box's width."""
    from src.engine.preprocessing import alignment_matrix

    matrix = alignment_matrix(landmarks, size)
    return size / float(np.hypot(matrix[0, 0], matrix[1, 0])) / max(box[2], 1)


def _frame_box(gray: np.ndarray, box, scale: float, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """A square of ``scale`` box widths around the box's centre, as a ``size`` x ``size`` face."""
    import cv2

    from src.engine.preprocessing import resize_face

    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = scale * box[2]
    matrix = np.array([[1, 0, side / 2 - cx], [0, 1, side / 2 - cy]], np.float64) * (size / side)
    k = 4 if side > 2 * size else 1
    big = cv2.warpAffine(gray, matrix * k, (size * k,) * 2, borderMode=cv2.BORDER_REPLICATE)
    return resize_face(big, size)


def load_expw_cached(path: str | Path, cache_dir: Path | None = None, size: int = config.IMAGE_SIZE) -> FerData:
    """``load_expw`` (faces at ``size`` px) with an .npz cache keyed by the labels file and the
    size (detection takes ~1.5 min)."""
    root = Path(path).expanduser().resolve()
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"{root} has no labels.csv: not an ExpW-style folder")
    sized = "" if size == config.IMAGE_SIZE else f":{size}px"  # 48 px keeps its earlier key
    key = hashlib.sha256(f"expw-v1{sized}:{root}:{labels.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    cache = (cache_dir or config.RUNS_DIR / "cache") / f"expw_{key}.npz"
    return _npz_cached(cache, root, lambda: load_expw(root, size=size))
