"""How far to trust the model's confidence on real photos: its calibration on held-back ExpW faces.

The served temperature is fitted on FER2013's PublicTest (``src.training.evaluation``), so a
face labelled 70% is right about 70% of the time *on FER2013's 48x48 lab crops*. Real photos
are harder, and the same confidence means less there. This module measures it: ExpW's
held-back photos (the 20% of source photos training never saw, ``src.training.data.expw_split``)
go through the product's whole pipeline (``src.training.error_model.predict_faces``: detection,
alignment, classifier, test-time views (the model's own), the served temperature), and the confidences of the faces
found are compared with how often they are right.

What it reports (``measure``), on the found faces (a missed face has no confidence):

* ``ece``: the expected calibration error as served (15 equal-width bins, as evaluation);
  ``reliability`` its bins; ``accuracy`` and ``mean_confidence``; ``right_at_70``, how often a
  face labelled 65-75% sure is right (what the dashboard's sentence quotes).
* ``temperature_wild``: a temperature fitted on these faces, in the units of the manifest's
  ``temperature`` (it divides the log of the view-averaged probabilities), so it could stand
  in for it. It is *not* served: ``temperature`` stays the FER2013 one; ``src.engine.doubt`` uses it
  to mark faces whose confidence, rescaled for real photos, is low (``config.DOUBT_MIN_CONFIDENCE``). ``ece_after`` is the
  ECE it would give, cross-fitted: fitted on one half of the photos and measured on the other,
  and the other way round, so the figure is not flattered by fitting and scoring on the same
  faces.

``build`` runs the pipeline and writes the record into the model's manifest
(``calibration_wild`` and ``temperature_wild``; the manifest keeps them while the weights are
unchanged) and into the output folder as ``calibration_wild.json``. The dashboard's Model
Performance page and model card read the manifest's (``src.training.model_card``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from src import config
from src.engine.manifest import read_manifest, sha256_file, write_manifest
from src.training.error_model import MATCH_IOU, SPLIT_RULE, held_back_labels, predict_faces
from src.training.evaluation import ECE_BINS, expected_calibration_error, fit_temperature, nll, reliability, scale_probs
from src.training.outputs import model_folder, write_dir

FILE_NAME = "calibration_wild.json"
PROTOCOL = (
    "whole pipeline (EmotionRecognizer.analyze_batch on the photo files, the served temperature applied); "
    f"labelled box matched to the detected face of highest IoU >= {MATCH_IOU}; faces the detector missed "
    "have no confidence and are left out"
)
CROSS_FIT = "temperature fitted on one half of the photos (by sha1 of the photo's name), ECE measured on the other"
AROUND_70 = (0.65, 0.75)


def found_probabilities(faces: pd.DataFrame, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """``(probabilities, true label indices, source photos)`` of the found faces of ``predict_faces`` rows."""
    found = faces[faces["found"].astype(bool)]
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(found["emotion"]) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown} are not classes of the model ({', '.join(class_names)})")
    probs = found[[f"p_{name}" for name in class_names]].to_numpy(np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = found["emotion"].map(index).to_numpy(np.int64)
    return probs, labels, found["source_image"].astype(str)


def halves(photos: pd.Series) -> np.ndarray:
    """0 or 1 per face, by its source photo: every face of one photo on the same side."""
    return np.array([hashlib.sha1(f"calibration:{p}".encode()).digest()[0] & 1 for p in photos], np.int64)


def cross_fitted(probs: np.ndarray, labels: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Each half's probabilities rescaled with the temperature fitted on the other half."""
    out = probs.copy()
    for half in (0, 1):
        fit, apply = side != half, side == half
        if fit.any() and apply.any():
            out[apply] = scale_probs(probs[apply], fit_temperature(probs[fit], labels[fit]))
    return out


def measure(faces: pd.DataFrame, class_names: Sequence[str], served_temperature: float) -> dict:
    """The calibration record of ``predict_faces`` rows (probabilities as served)."""
    probs, labels, photos = found_probabilities(faces, class_names)
    if not len(labels):
        raise ValueError("no labelled face was found in the photos: nothing to measure")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    around = (confidence >= AROUND_70[0]) & (confidence < AROUND_70[1])
    # A temperature on the served probabilities multiplies the served one (softmax(log p / T) / t).
    extra = fit_temperature(probs, labels)
    after = cross_fitted(probs, labels, halves(photos))
    return {
        "dataset": "ExpW",
        "split": SPLIT_RULE,
        "protocol": PROTOCOL,
        "photos": int(faces["source_image"].nunique()),
        "labelled_faces": int(len(faces)),
        "faces": int(len(labels)),
        "accuracy": round(float(correct.mean()), 4),
        "mean_confidence": round(float(confidence.mean()), 4),
        "right_at_70": {
            "confidence": list(AROUND_70),
            "faces": int(around.sum()),
            "accuracy": round(float(correct[around].mean()), 4) if around.any() else None,
        },
        "bins": ECE_BINS,
        "ece": round(expected_calibration_error(probs, labels), 4),
        "nll": round(nll(probs, labels), 4),
        "reliability": reliability(probs, labels),
        "served_temperature": float(served_temperature),
        "temperature_wild": round(float(served_temperature) * extra, 4),
        "ece_after": round(expected_calibration_error(after, labels), 4),
        "nll_after": round(nll(after, labels), 4),
        "ece_after_method": CROSS_FIT,
        "applied": False,
    }


def build(
    expw: str | Path,
    model_file: str | Path | None = None,
    output_dir: str | Path | None = None,
    update_manifest: bool = True,
) -> dict:
    """Run ExpW's held-back photos through ``model_file`` and record its calibration on them.

    Writes ``calibration_wild.json`` into ``output_dir`` (default: the model's folder of the
    current output version) and, with ``update_manifest``, the same as ``calibration_wild``
    and its ``temperature_wild`` into the model's manifest. The served ``temperature`` is left alone. Returns the record.
    """
    from src.engine.inference import EmotionRecognizer

    model_file = Path(model_file or config.MODEL_FILE)
    recognizer = EmotionRecognizer(model_file)
    faces = predict_faces(expw, held_back_labels(expw), recognizer)
    record = measure(faces, recognizer.class_names, recognizer.info.temperature)
    record.update(
        model={
            "file": model_file.name,
            "sha256": str(recognizer.info.manifest.get("sha256") or sha256_file(model_file)),
            "runtime": recognizer.info.runtime,
            "test_time_views": recognizer.info.views,
        },
        labels_sha256=sha256_file(Path(expw) / "labels.csv"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    folder = Path(output_dir) if output_dir else model_folder(write_dir(), model_file)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILE_NAME).write_text(json.dumps(record, indent=1) + "\n")
    if update_manifest:
        record_in_manifest(model_file, record)
    return record


def record_in_manifest(model_file: str | Path, record: dict) -> dict:
    """``record`` into the manifest of ``model_file`` as ``calibration_wild`` and ``temperature_wild``.

    Refused (ValueError) when the record was measured on other weights than the manifest's.
    """
    manifest = read_manifest(model_file)
    measured = (record.get("model") or {}).get("sha256")
    if measured and measured != manifest.get("sha256"):
        raise ValueError(f"the calibration was measured on other weights ({measured[:12]}…) than {model_file}'s")
    framework = {key: manifest.get(key, "?") for key in ("keras_version", "backend")}
    return write_manifest(
        model_file,
        manifest["class_names"],
        manifest["input_size"],
        framework=framework,
        calibration_wild=record,
        temperature_wild=record["temperature_wild"],
    )
