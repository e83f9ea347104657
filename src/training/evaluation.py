"""Model evaluation, calibration and dataset statistics written for the dashboard.

``evaluate`` scores a saved model on PublicTest and PrivateTest with scikit-learn
metrics, fits a softmax temperature on PublicTest (never on PrivateTest), and
writes ``metrics.json``, ``roc.json``, ``history.csv`` and ``model_comparison.csv``
under ``outputs/<version>/`` (``outputs.write_dir``, by default where the dashboard
reads). ``write_dataset_stats`` writes ``dataset_stats.json`` and ``mean_faces.png``
for the Data Analysis page. Accuracy-type metrics use the uncalibrated
probabilities (temperature never changes the argmax).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy.optimize import minimize_scalar
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from src import config
from src.common import sanitize
from src.engine.manifest import sha256_file, write_manifest
from src.training import model_card
from src.training.baseline import write_model_comparison
from src.training.data import FerData, ferplus_majority
from src.training.outputs import write_dir

if TYPE_CHECKING:
    from src.engine.classifier import ModelInfo

# src.engine.model (Keras) is imported inside the functions that need a model, so the
# metric helpers and dataset statistics load without TensorFlow.

ECE_BINS = 15
ROC_MAX_POINTS = 200
HIST_BIN_WIDTH = 8
CNN_SOURCE = "this project's CNN (src/training/train.py)"


def predict_proba(model: Any, images: np.ndarray, batch_size: int = 256, views: str | None = None) -> np.ndarray:
    """Uncalibrated class probabilities for (N, H, W) uint8 faces (resized to the model's input).

    ``model`` is a Keras model or anything holding one as ``.model`` (an
    ``EmotionRecognizer``); the recognizer's own ``classify`` would apply the
    temperature, which evaluation must fit rather than assume. The test-time ``views``
    (default ``config.TTA``) are averaged as inference averages them.
    """
    keras_model = getattr(model, "model", model)
    if len(images) == 0:
        return np.zeros((0, int(keras_model.output_shape[-1])), np.float64)
    from src.engine.classifier import tta_averaged
    from src.engine.preprocessing import resize_faces

    x = resize_faces(images, int(keras_model.input_shape[1])).astype(np.float32)[..., None]
    predict = lambda batch: keras_model.predict(batch, batch_size=batch_size, verbose=0)  # noqa: E731
    probs = np.asarray(tta_averaged(predict, x, views or config.TTA), np.float64)
    return probs / probs.sum(axis=1, keepdims=True)


def scale_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities, as inference computes them, renormalised in float64."""
    from src.engine.inference import apply_temperature  # deferred: inference pulls in the face detector

    out = apply_temperature(np.asarray(probs, np.float64), float(temperature)).astype(np.float64)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (sklearn ``log_loss``) over all classes."""
    probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    probs /= probs.sum(axis=1, keepdims=True)
    return float(log_loss(labels, probs, labels=np.arange(probs.shape[1])))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, list]:
    """Accuracy vs confidence of the top class in ``n_bins`` equal-width bins over [0, 1].

    Empty bins get ``None`` accuracy/confidence (count 0) so plots show a gap, not a point.
    """
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edge_i, edge_i+1]; confidence 0 falls in the first bin.
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    out: dict[str, list] = {"bin_lower": [], "bin_upper": [], "accuracy": [], "confidence": [], "count": []}
    for i in range(n_bins):
        mask = idx == i
        n = int(mask.sum())
        out["bin_lower"].append(round(float(edges[i]), 6))
        out["bin_upper"].append(round(float(edges[i + 1]), 6))
        out["accuracy"].append(float(correct[mask].mean()) if n else None)
        out["confidence"].append(float(conf[mask].mean()) if n else None)
        out["count"].append(n)
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    if len(labels) == 0:
        return float("nan")
    rel = reliability(probs, labels, n_bins)
    total = sum(rel["count"])
    return float(sum(n * abs(a - c) for a, c, n in zip(rel["accuracy"], rel["confidence"], rel["count"]) if n) / total)


def fit_temperature(probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T minimising NLL of softmax(log p / T) on the given (validation) predictions."""
    result = minimize_scalar(
        lambda t: nll(scale_probs(probs, t), labels), bounds=bounds, method="bounded", options={"xatol": 1e-4}
    )
    return float(result.x)


def split_metrics(labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Accuracy, F1s, per-class precision/recall/F1/support, confusion matrix and ECE."""
    classes = np.arange(len(class_names))
    pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, pred, labels=classes, average="weighted", zero_division=0)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(labels, pred, labels=classes).astype(int).tolist(),
        "ece": expected_calibration_error(probs, labels),
    }


def _thin(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(fpr) <= max_points:
        return fpr, tpr
    keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
    return fpr[keep], tpr[keep]


def roc_curves(
    labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], max_points: int = ROC_MAX_POINTS
) -> dict[str, dict]:
    """One-vs-rest ROC per class (sklearn), thinned to ``max_points``; classes lacking
    positives or negatives in the split are left out (their ROC is undefined)."""
    curves = {}
    for k, name in enumerate(class_names):
        positive = (labels == k).astype(int)
        if positive.min(initial=1) == positive.max(initial=0):
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, k])
        fpr, tpr = _thin(fpr, tpr, max_points)
        curves[name] = {
            "fpr": [round(float(v), 5) for v in fpr],
            "tpr": [round(float(v), 5) for v in tpr],
            "auc": float(roc_auc_score(positive, probs[:, k])),
        }
    return curves


def ferplus_metrics(votes: np.ndarray | None, probs: np.ndarray, class_names: tuple[str, ...]) -> dict | None:
    """Accuracy and macro F1 against the FER+ strict-majority label (rows with one)."""
    if votes is None or len(votes) == 0:
        return None
    majority = ferplus_majority(votes)
    keep = majority >= 0
    if not keep.any():
        return None
    pred = probs[keep].argmax(axis=1)
    return {
        "n": int(keep.sum()),
        "accuracy": float(accuracy_score(majority[keep], pred)),
        "macro_f1": float(
            f1_score(majority[keep], pred, labels=np.arange(len(class_names)), average="macro", zero_division=0)
        ),
    }


@dataclass
class Evaluation:
    """What ``evaluate`` computed and where it wrote it."""

    metrics: dict
    roc: dict
    output_dir: Path
    split: str

    @property
    def summary_line(self) -> str:
        s = self.metrics["splits"][self.split]
        return f"accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f}"


def find_run_dir(model_file: Path, manifest: dict) -> Path | None:
    """The training run a published model came from, for its history.csv.

    Looks at an explicit ``run_dir`` in the manifest, then for a run under
    ``config.RUNS_DIR`` whose ``best.keras`` is byte-identical to the model.
    """
    for info in (manifest.get("training") or {}, manifest):
        if info.get("run_dir") and Path(info["run_dir"]).is_dir():
            return Path(info["run_dir"])
    digest = sha256_file(model_file)
    return _runs_with_best({digest}, model_file.stat().st_size).get(digest)


def _runs_with_best(digests: set[str], size: int | None = None) -> dict[str, Path]:
    """Runs under ``config.RUNS_DIR`` whose ``best.keras`` has one of these sha256s, each file
    hashed once (and only when it has ``size`` bytes, when that is known)."""
    found: dict[str, Path] = {}
    if not config.RUNS_DIR.is_dir():
        return found
    for best in sorted(config.RUNS_DIR.glob("*/best.keras")):
        if size is not None and best.stat().st_size != size:
            continue
        digest = sha256_file(best)
        if digest in digests:
            found.setdefault(digest, best.parent)
    return found


def training_history(model_file: Path, manifest: dict, run_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The epochs of the run(s) a model came from: one run's history.csv, or for an ensemble
    each member's that can be found (by its sha256 under ``config.RUNS_DIR``), with a
    ``member`` column naming it."""
    members = (manifest.get("training") or {}).get("members")
    if run_dir is None and members:
        runs = _runs_with_best({str(m.get("sha256", "")) for m in members})
        parts = []
        for member in members:
            run = runs.get(str(member.get("sha256", "")))
            if run is not None and (run / "history.csv").exists():
                parts.append(pd.read_csv(run / "history.csv").assign(member=str(member.get("name", run.name))))
        return pd.concat(parts, ignore_index=True) if parts else None
    run = Path(run_dir) if run_dir else find_run_dir(model_file, manifest)
    return pd.read_csv(run / "history.csv") if run is not None and (run / "history.csv").exists() else None


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)  # readers (the dashboard) never see a half-written file


def _json_safe(value: Any) -> Any:
    """NaN -> None so the JSON stays standard (e.g. ECE of an empty split)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def update_model_comparison(
    out_dir: Path, metrics: dict, model_name: str, selected_on: str = "FER2013 PublicTest"
) -> Path:
    """Put this CNN's row in ``model_comparison.csv`` (baseline rows come from src.training.baseline)."""
    private = metrics["splits"].get("PrivateTest") or {}
    row = {
        "model": f"CNN ({model_name})",
        "source": CNN_SOURCE,
        "private_test_accuracy": round(private.get("accuracy", float("nan")), 4),
        "macro_f1": round(private.get("macro_f1", float("nan")), 4),
        "notes": f"version {metrics['model']['version']}; selected on {selected_on}; "
        f"T={metrics['calibration']['temperature']:.3f}"
        if metrics.get("calibration")
        else f"version {metrics['model']['version']}",
    }
    return write_model_comparison(out_dir / "model_comparison.csv", [row])


def evaluate(
    data: FerData,
    model_file: str | Path | None = None,
    output_dir: str | Path | None = None,
    split: str = "PrivateTest",
    run_dir: str | Path | None = None,
    update_manifest: bool = True,
    views: str | None = None,
    version: str | None = None,
) -> Evaluation:
    """Score a saved model, calibrate it on PublicTest and write the dashboard files.

    ``views``: the test-time views to score and calibrate with (``config.TTA_MODES``),
    default those the model is served with. With ``update_manifest`` the fitted temperature,
    the headline metrics and the views go into the model's manifest, so inference serves
    the calibrated probabilities of the views they were measured on, under ``version`` if given.
    """
    from src.engine.classifier import check_tta
    from src.engine.model import load_model

    model_file = Path(model_file or config.MODEL_FILE)
    out_dir = Path(output_dir) if output_dir else write_dir()
    model, info = load_model(model_file)
    views = check_tta(views) if views else info.views
    class_names = info.class_names
    if tuple(class_names) != tuple(data.class_names):
        raise ValueError(f"model classes {class_names} differ from the dataset's {data.class_names}")
    split = config.SPLITS.get(split, split)

    probs: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    votes: dict[str, np.ndarray | None] = {}
    for name in ("PublicTest", "PrivateTest", split):
        if name in probs:
            continue
        part = data.split(name)
        if len(part) == 0:
            continue
        probs[name] = predict_proba(model, part.images, views=views)
        labels[name] = part.labels
        votes[name] = part.ferplus
    if split not in probs:
        raise ValueError(f"the dataset has no {split} rows")

    metrics: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "file": model_file.name,
            "sha256": sha256_file(model_file),
            "version": version or info.version,
            "test_time_views": views,
        },
        "class_names": list(class_names),
        "splits": {name: split_metrics(labels[name], probs[name], class_names) for name in probs},
        "ferplus": {},
        "calibration": None,
    }
    if "PrivateTest" in probs:
        metrics["ferplus"]["PrivateTest"] = ferplus_metrics(votes["PrivateTest"], probs["PrivateTest"], class_names)
    if "PublicTest" in probs:
        temperature = fit_temperature(probs["PublicTest"], labels["PublicTest"])
        report = "PrivateTest" if "PrivateTest" in probs else "PublicTest"
        before, after = probs[report], scale_probs(probs[report], temperature)
        metrics["calibration"] = {
            "temperature": temperature,
            "fitted_on": "PublicTest",
            "reported_on": report,
            "ece_before": expected_calibration_error(before, labels[report]),
            "ece_after": expected_calibration_error(after, labels[report]),
            "nll_before": nll(before, labels[report]),
            "nll_after": nll(after, labels[report]),
            "reliability": {report: reliability(after, labels[report])},
            "reliability_uncalibrated": {report: reliability(before, labels[report])},
        }
    metrics = _json_safe(metrics)
    roc = {
        name: roc_curves(labels[name], probs[name], class_names)
        for name in dict.fromkeys(("PrivateTest", split))
        if name in probs
    }

    _write_json(out_dir / "metrics.json", metrics)
    _write_json(out_dir / "roc.json", roc)
    history = training_history(model_file, info.manifest, run_dir)
    if history is not None:
        sanitize.csv_frame(history).to_csv(out_dir / "history.csv", index=False)
    selected_on = model_card.selection_text(info.manifest.get("training") or {})
    update_model_comparison(out_dir, metrics, model.name, selected_on)
    if update_manifest:
        _update_manifest(model_file, info, metrics)
    return Evaluation(metrics=metrics, roc=roc, output_dir=out_dir, split=split)


def _update_manifest(model_file: Path, info: ModelInfo, metrics: dict) -> None:
    splits, calibration = metrics["splits"], metrics.get("calibration") or {}
    plus = (metrics.get("ferplus") or {}).get("PrivateTest") or {}
    fields: dict[str, Any] = {
        "metrics": {
            "public_test_accuracy": (splits.get("PublicTest") or {}).get("accuracy"),
            "private_test_accuracy": (splits.get("PrivateTest") or {}).get("accuracy"),
            "private_test_macro_f1": (splits.get("PrivateTest") or {}).get("macro_f1"),
            "ferplus_accuracy": plus.get("accuracy"),
            "ece_after": calibration.get("ece_after"),
            "test_time_views": metrics["model"].get("test_time_views"),
        },
    }
    if "temperature" in calibration:
        # The temperature holds for the views it was fitted on, so both are served together.
        fields["temperature"] = calibration["temperature"]
        fields["test_time_views"] = metrics["model"]["test_time_views"]
    fields["version"] = metrics["model"]["version"]
    write_manifest(model_file, info.class_names, info.input_size, **fields)


def dataset_stats(data: FerData) -> dict:
    """Class counts per split, pixel statistics and FER2013 vs FER+ agreement."""
    names = tuple(data.class_names)
    counts = {usage: data.split(usage).class_counts() for usage in config.SPLITS.values()}
    train = data.split("Training")
    train_counts = np.array([counts["Training"][n] for n in names])
    nonzero = train_counts[train_counts > 0]
    per_class = {}
    for k, name in enumerate(names):
        faces = train.images[train.labels == k]
        per_class[name] = (
            {"mean": float(faces.mean(dtype=np.float64)), "std": float(faces.std(dtype=np.float64))}
            if len(faces)
            else {"mean": None, "std": None}
        )
    levels = np.bincount(train.images.ravel(), minlength=256)
    stats: dict[str, Any] = {
        "source": Path(data.source).name if data.source else "",
        "class_names": list(names),
        "class_counts": counts,
        "total": int(len(data)),
        "imbalance_ratio": float(nonzero.max() / nonzero.min()) if len(nonzero) else None,
        "pixel_stats": {
            "per_class": per_class,
            "histogram": {
                "bins": list(range(0, 256, HIST_BIN_WIDTH)),  # left edges; each bin is HIST_BIN_WIDTH levels
                "bin_width": HIST_BIN_WIDTH,
                "Training": levels.reshape(-1, HIST_BIN_WIDTH).sum(axis=1).astype(int).tolist(),
            },
        },
        "ferplus_agreement": None,
    }
    if data.ferplus is not None:
        majority = ferplus_majority(data.ferplus)
        keep = majority >= 0
        fer, plus = data.labels[keep], majority[keep]
        stats["ferplus_agreement"] = {
            "overall": float(accuracy_score(fer, plus)) if keep.any() else None,
            "per_class": {
                name: (float((plus[fer == k] == k).mean()) if (fer == k).any() else None)
                for k, name in enumerate(names)
            },
            "n_compared": int(keep.sum()),
            "confusion": confusion_matrix(fer, plus, labels=np.arange(len(names))).astype(int).tolist(),
        }
    return stats


def mean_faces_image(data: FerData, scale: int = 2) -> Image.Image:
    """The Training mean face of each class side by side, in class order (grey if a class is empty)."""
    train = data.split("Training")
    size = data.images.shape[1]
    tiles = []
    for k in range(len(data.class_names)):
        faces = train.images[train.labels == k]
        mean = faces.mean(axis=0, dtype=np.float64) if len(faces) else np.full((size, size), 128.0)
        tile = Image.fromarray(np.clip(mean, 0, 255).round().astype(np.uint8))
        tiles.append(tile.resize((size * scale, size * scale), Image.Resampling.BICUBIC))
    strip = Image.new("L", (size * scale * len(tiles), size * scale))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (i * size * scale, 0))
    return strip


def write_dataset_stats(data: FerData, output_dir: str | Path | None = None) -> dict:
    """Write ``dataset_stats.json`` and ``mean_faces.png``; returns the stats."""
    out_dir = Path(output_dir) if output_dir else write_dir()
    stats = _json_safe(dataset_stats(data))
    _write_json(out_dir / "dataset_stats.json", stats)
    mean_faces_image(data).save(out_dir / "mean_faces.png")
    return stats
