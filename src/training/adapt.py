"""Adapt the model to a customer's own labelled faces, in minutes on a CPU, without TensorFlow.

A folder holds one sub-folder per emotion (the model's label names; ``anger``, ``sadness``
and the like are read as ``angry``, ``sad``), each with whole photos (or face crops with
``crops=True``). Every photo goes through the product's own detection and alignment
(``EmotionRecognizer.locate``; the largest face of a photo is its face). The frozen model's
features (its features twin, ``fer_cnn.features.onnx``: the input of the classifier head,
for each test-time view the model is served with) feed a new head, a class-balanced logistic
regression (scikit-learn) whose strength is chosen by cross-validation over groups of
photos. The result is one ONNX file (the features graph with the new head appended) and its
manifest, so it is served wherever a model is (``predict --model``, the dashboard's model
picker, the API) by ONNX Runtime.

Honest figures: a share of the photos is held back (stratified by emotion, and by group:
``group_pattern`` keeps all photos of one person on one side, e.g. ``^(S\\d+)_`` for CK+
subjects); the manifest records the accuracy of the original model and of the adapted head
on them. The published head is then refitted on all the photos.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from src import config
from src.engine.classifier import model_views, tta_count, tta_views
from src.engine.manifest import read_manifest, sha256_file, write_manifest
from src.engine.preprocessing import ImageError, load_image
from src.engine.runtime import features_problem, features_twin, keras_available, onnx_predict

# Folder names read as one of the seven labels (CK+, RAF-DB, AffectNet and everyday spellings).
ALIASES = {
    "anger": "angry",
    "angry": "angry",
    "disgusted": "disgust",
    "disgust": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "fear": "fear",
    "happiness": "happy",
    "happy": "happy",
    "joy": "happy",
    "sadness": "sad",
    "sad": "sad",
    "surprised": "surprise",
    "surprise": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}
MIN_FACES_PER_CLASS = 4
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


class AdaptError(ValueError):
    """The folder or the model cannot be adapted; the message says why and what to do."""


@dataclass
class Faces:
    """Aligned faces of a labelled folder, with the photos that gave none and why."""

    faces: np.ndarray  # (N, size, size) uint8
    labels: list[str]
    files: list[str]
    groups: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Scores:
    accuracy: float
    macro_f1: float
    recall: dict[str, float]


@dataclass
class AdaptResult:
    model: Path
    classes: tuple[str, ...]
    faces: int
    held_out: int
    before: Scores
    after: Scores
    skipped: list[tuple[str, str]]
    seconds: float


def label_of(folder_name: str, labels: Sequence[str]) -> str | None:
    """The model label a folder name stands for, or None."""
    name = folder_name.strip().lower()
    label = ALIASES.get(name, name)
    return label if label in labels else None


def scan(folder: str | Path, labels: Sequence[str]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """(photo, label) pairs of ``folder/<emotion>/...`` and the entries left out, with reasons."""
    root = Path(folder)
    if not root.is_dir():
        raise AdaptError(f"{root} is not a folder (expected one sub-folder per emotion: {', '.join(labels)})")
    items, skipped = [], []
    for sub in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not sub.is_dir():
            skipped.append((sub.name, "not in an emotion folder"))
            continue
        label = label_of(sub.name, labels)
        if label is None:
            skipped.append((f"{sub.name}/", f"not an emotion of this model ({', '.join(labels)})"))
            continue
        for photo in sorted(sub.rglob("*")):
            if photo.is_file() and not photo.name.startswith("."):
                if photo.suffix.lower() in config.IMAGE_EXTENSIONS:
                    items.append((photo, label))
                else:
                    skipped.append((str(photo.relative_to(root)), "not an image file"))
    if not items:
        raise AdaptError(f"no photos found in emotion folders under {root} (folders named {', '.join(labels)})")
    return items, skipped


def collect(
    folder: str | Path,
    recognizer,
    crops: bool = False,
    group_pattern: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Faces:
    """Detect, align and crop the face of every photo (the largest one), as inference does."""
    items, skipped = scan(folder, recognizer.class_names)
    pattern = re.compile(group_pattern) if group_pattern else None
    faces, labels, files, groups = [], [], [], []
    root = Path(folder)
    for i, (photo, label) in enumerate(items):
        if progress is not None:
            progress(i, len(items))
        name = str(photo.relative_to(root))
        try:
            found, crops_ = recognizer.locate(load_image(photo), crop=crops)
        except (ImageError, OSError, ValueError) as exc:
            skipped.append((name, str(exc) or type(exc).__name__))
            continue
        if not len(crops_):
            skipped.append((name, "no face found"))
            continue
        largest = 0 if crops else int(np.argmax([f.box.w * f.box.h for f in found]))
        faces.append(crops_[largest])
        labels.append(label)
        files.append(name)
        match = pattern.search(photo.name) if pattern else None
        groups.append(match.group(1) if match and match.groups() else (match.group(0) if match else name))
    if progress is not None:
        progress(len(items), len(items))
    size = recognizer.size
    stacked = np.stack(faces) if faces else np.zeros((0, size, size), np.uint8)
    return Faces(stacked, labels, files, groups, skipped)


def features_of(model_file: Path, faces: np.ndarray, views: str | None = None) -> np.ndarray:
    """The frozen model's head features of (N, size, size) faces, one per test-time view: (N, views, d).

    The views are those the model is served with (``model_views``: the face, its mirror image and,
    with "zoom" or "scale", both zoomed in and out). Every view trains the head (a mirrored or reframed
    face is as true a sample), and inference averages the head's probabilities over them, as
    it does for every model. ``views`` overrides the model's ("none": the face as seen)."""
    manifest = read_manifest(model_file)
    problem = features_problem(model_file, manifest)
    if problem is not None:
        if not keras_available():
            raise AdaptError(
                f"{model_file.name} has no usable features twin ({problem}); run `python -m src.cli export "
                f"--model {model_file.name}` where TensorFlow is installed (pip install -e '.[train]')"
            )
        from src.training.export import export_features

        export_features(model_file)
    predict, size, dims = onnx_predict(features_twin(model_file))
    x = np.asarray(faces, np.float32).reshape(len(faces), size, size, 1)
    mode = views or model_views(manifest)
    out = np.zeros((len(x), tta_count(mode), dims), np.float32)
    for i in range(0, len(x), 128):
        views = tta_views(x[i : i + 128], mode)
        found = predict(views.reshape(-1, size, size, 1)).reshape(len(views), -1, dims)
        out[i : i + found.shape[1]] = found.transpose(1, 0, 2)
    return out


def head_probs(features: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The head's probabilities on (N, views, d) features, averaged over the views."""
    return np.mean([_softmax(features[:, v] @ weights + bias) for v in range(features.shape[1])], axis=0)


def _scores(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> Scores:
    from sklearn.metrics import f1_score, recall_score

    recall = recall_score(truth, predicted, labels=list(classes), average=None, zero_division=0)
    return Scores(
        accuracy=float(np.mean(np.asarray(truth) == np.asarray(predicted))),
        macro_f1=float(f1_score(truth, predicted, labels=list(classes), average="macro", zero_division=0)),
        recall={c: round(float(r), 4) for c, r in zip(classes, recall)},
    )


def _split(labels: np.ndarray, groups: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices, stratified by label and disjoint by group."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = max(2, round(1 / holdout))
    if len(set(groups)) < folds:
        raise AdaptError(
            f"holding back {holdout:.0%} of the photos needs at least {folds} different people (groups); "
            f"the person pattern found {len(set(groups))} (check it, or leave it empty)"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return train, test


def fit_head(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, classes: Sequence[str], seed: int = 0):
    """A standardised, class-balanced logistic regression on (N, views, d) features; its strength
    chosen by cross-validation over groups.

    Returns (weights (d, k), bias (k,), C) with the standardisation folded in, so the head
    is one Gemm on the raw features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    # Every view of each face is a sample; a face's views share its group.
    views = features.shape[1]
    features = features.reshape(-1, features.shape[-1])
    labels, groups = np.repeat(labels, views), np.repeat(groups, views)
    mean, std = features.mean(0), features.std(0) + 1e-6
    z = (features - mean) / std
    y = np.array([list(classes).index(label) for label in labels])
    counts = np.bincount(y, minlength=len(classes))
    folds = int(min(5, counts.min(), len(set(groups))))
    model = LogisticRegression(class_weight="balanced", max_iter=3000)
    if folds >= 2:
        search = GridSearchCV(
            model, {"C": list(C_GRID)}, cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        )
        search.fit(z, y, groups=groups)
        c = float(search.best_params_["C"])
    else:
        c = 0.1
    model.set_params(C=c).fit(z, y)
    weights = (model.coef_ / std).T.astype(np.float32)
    bias = (model.intercept_ - (model.coef_ * (mean / std)).sum(1)).astype(np.float32)
    return weights, bias, c


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def write_onnx(features_file: Path, weights: np.ndarray, bias: np.ndarray, dest: Path) -> None:
    """The features graph with a Gemm + Softmax head appended, as one ONNX model."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(features_file))
    graph = model.graph
    features = graph.output[0].name
    graph.initializer.extend(
        [numpy_helper.from_array(weights, "adapter_W"), numpy_helper.from_array(bias, "adapter_b")]
    )
    graph.node.extend(
        [
            helper.make_node("Gemm", [features, "adapter_W", "adapter_b"], ["adapter_logits"], name="adapter_head"),
            helper.make_node("Softmax", ["adapter_logits"], ["emotion"], axis=1, name="adapter_softmax"),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("emotion", onnx.TensorProto.FLOAT, [None, int(weights.shape[1])]))
    onnx.checker.check_model(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest))


def adapt(
    folder: str | Path,
    output: str | Path,
    model_file: str | Path | None = None,
    crops: bool = False,
    holdout: float = 0.25,
    group_pattern: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> AdaptResult:
    """Fit a new head on ``folder``'s labelled photos and publish it as ``output`` (.onnx + .json)."""
    from src.engine.inference import EmotionRecognizer

    started = datetime.now(UTC)
    model_file = Path(model_file or config.MODEL_FILE)
    output = Path(output)
    if output.suffix != ".onnx":
        raise AdaptError(f"--output must name an .onnx file (got {output.name})")
    if not 0.05 <= holdout <= 0.5:
        raise AdaptError("the held-back share must be between 0.05 and 0.5")
    recognizer = EmotionRecognizer(model_file)
    data = collect(folder, recognizer, crops=crops, group_pattern=group_pattern, progress=progress)
    classes = tuple(c for c in recognizer.class_names if c in set(data.labels))
    counts = {c: data.labels.count(c) for c in classes}
    few = {c: n for c, n in counts.items() if n < MIN_FACES_PER_CLASS}
    if len(classes) < 2 or few:
        detail = ", ".join(f"{c}: {n}" for c, n in (few or counts).items()) or "no face was found in any photo"
        raise AdaptError(
            f"adapting needs at least two emotions with {MIN_FACES_PER_CLASS} or more usable faces each ({detail})"
        )
    labels, groups = np.array(data.labels), np.array(data.groups)
    feats = features_of(model_file, data.faces)
    train, test = _split(labels, groups, holdout, seed)
    weights, bias, c = fit_head(feats[train], labels[train], groups[train], classes, seed)
    after = [classes[i] for i in head_probs(feats[test], weights, bias).argmax(1)]
    base = recognizer.classify(data.faces[test])
    keep = [recognizer.class_names.index(c) for c in classes]
    before = [classes[i] for i in base[:, keep].argmax(1)]
    before_scores = _scores(labels[test], before, classes)
    after_scores = _scores(labels[test], after, classes)

    weights, bias, c_all = fit_head(feats, labels, groups, classes, seed)
    write_onnx(features_twin(model_file), weights, bias, output)
    predict, _, _ = onnx_predict(output)
    check = data.faces[: min(64, len(data.faces))].astype(np.float32)[..., None]
    expected = head_probs(features_of(model_file, data.faces[: len(check)], views="none"), weights, bias)
    diff = float(np.abs(predict(check) - expected).max())
    if diff > 1e-3:
        output.unlink(missing_ok=True)
        raise AdaptError(f"the adapted model's ONNX graph disagrees with its head by {diff:.2e}; nothing written")
    base_manifest = read_manifest(model_file)
    seconds = (datetime.now(UTC) - started).total_seconds()
    write_manifest(
        output,
        classes,
        recognizer.size,
        framework={"runtime": "onnxruntime", "head": "scikit-learn logistic regression"},
        # The weights' hash keeps stored runs apart when a model is deleted and made again under one name.
        version=f"adapted-{output.stem}-{sha256_file(output)[:8]}",
        # Its head was fitted on, and averages over, the base model's views.
        test_time_views=recognizer.info.views,
        adapted_from={
            "file": model_file.name,
            "sha256": base_manifest.get("sha256") or sha256_file(model_file),
            "version": base_manifest.get("version", "unversioned"),
        },
        adaptation={
            "folder": Path(folder).name,
            "faces": len(labels),
            "faces_per_class": counts,
            "photos_skipped": len(data.skipped),
            "crops": crops,
            "held_out_faces": int(len(test)),
            "held_out_share": holdout,
            "group_pattern": group_pattern,
            "groups": int(len(set(data.groups))),
            "seed": seed,
            "C": c_all,
            "C_held_out_fit": c,
            "before": asdict(before_scores),
            "after": asdict(after_scores),
            "method": (
                "frozen features (over the test-time views) of the base model + class-balanced logistic regression; "
                "scores on held-back photos (stratified, disjoint by group) of a head fitted without them; "
                "the published head is refitted on all photos"
            ),
            "seconds": round(seconds, 1),
        },
    )
    return AdaptResult(
        model=output,
        classes=classes,
        faces=len(labels),
        held_out=int(len(test)),
        before=before_scores,
        after=after_scores,
        skipped=data.skipped,
        seconds=seconds,
    )
