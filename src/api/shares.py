"""Error-aware shares for ``/v1/summary``: raw shares beside the shares corrected for the model's mistakes.

The served model reads a face right less than half the time on real photos, and its
mistakes are systematic, so a raw share is biased. ``src.analytics.quantify`` corrects the
shares of a selection with the model's error model (confusion counts measured on held-back
ExpW photos, ``src.training.error_model``). This module is the API's side of it:

* ``ServedErrorModel.load``: the error model beside the served model, read once per app
  (``create_app`` keeps it in ``app.state``), checked to belong to the served weights; when
  it is missing, unusable or another model's, it is None with the reason in plain words.
* ``adjust``: the corrected share and its 95% range for every record of ``emotions``,
  ``groups`` (sentiment) and ``custom_groups``, or null with ``adjusted_reason``.

The shares count people (the store's person tallies): a face in a photo is one person, and
someone followed through a video or by the live camera is one person with their averaged
label, each one independent unit (``quantify_counts``). The error model was measured on single
faces; a tracked person's averaged label is right more often, so for them the correction is on
the cautious side.

A group with a ``min_confidence`` threshold cannot be corrected (the error model has no
confidences), nor the ``other`` bucket of a grouping that has one (which faces fall there
depends on the threshold).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from src.analytics.groups import Grouping
from src.analytics.quantify import Quantification, Share, group_map, quantify_counts
from src.engine.classifier import model_views
from src.engine.manifest import sha256_file
from src.training.error_model import ErrorModel, ErrorModelError, error_model_path, load_error_model

LOGGER = logging.getLogger(__name__)

BUILD_HINT = "build it with `python -m src.cli error-model --expw PATH/TO/expw`"
NO_FACES = "no people in this selection"
DIGITS = 4  # corrected shares to 0.01 points: their ranges are far wider
ADJUSTED_KEYS = ("adjusted_share", "adjusted_low", "adjusted_high", "adjusted_reason")


@dataclass(frozen=True)
class ServedErrorModel:
    """The served model's error model (None, with ``reason``, when shares cannot be corrected)."""

    model: ErrorModel | None
    reason: str | None = None
    model_version: str = ""

    @classmethod
    def load(
        cls, model_file: str | Path, manifest: dict | None = None, path: str | Path | None = None
    ) -> ServedErrorModel:
        """The error model at ``path`` (default: beside ``model_file``), if it was measured on the
        served weights: the sha256 of the manifest (``manifest``, the recognizer's) or of the file."""
        manifest = manifest or {}
        path = Path(path) if path else error_model_path(model_file)
        version = str(manifest.get("version") or "")
        try:
            model = load_error_model(path)
        except ErrorModelError as exc:
            LOGGER.warning("shares will not be corrected: %s", exc)
            if not path.is_file():
                return cls(None, f"no error model for the served model ({path.name} not found): {BUILD_HINT}", version)
            return cls(
                None, f"the error model {path.name} is unusable (the server log says why): {BUILD_HINT}", version
            )
        served = str(manifest.get("sha256") or "") or (sha256_file(model_file) if Path(model_file).is_file() else "")
        if model.model_sha256 != served:
            return cls(
                None,
                f"the error model {path.name} was measured on other weights ({model.model_file}, sha256 "
                f"{model.model_sha256[:12]}…) than the served model's ({served[:12] or 'unknown'}…): {BUILD_HINT}",
                version,
            )
        views = model_views(manifest)
        if model.views and model.views != views:
            # Other views, other mistakes: the counts no longer describe what is served.
            return cls(
                None,
                f"the error model {path.name} was measured with the test-time views {model.views!r}, the served "
                f"model reads faces with {views!r}: {BUILD_HINT}",
                version,
            )
        return cls(model, None, version)

    def block(self) -> dict | None:
        """The ``error_model`` field of /v1/summary: what the correction rests on."""
        model = self.model
        if model is None:
            return None
        return {
            "dataset": model.dataset,
            "split": model.split,
            "photos": model.photos,
            "faces": model.faces,
            "labelled_faces": model.labelled_faces,
            "accuracy_on_found": round(model.accuracy(), 4) if model.faces else None,
            "created": model.created,
            "model_file": model.model_file,
            "model_sha256": model.model_sha256,
            "model_version": self.model_version or None,
            "runtime": model.runtime,
            "test_time_views": model.views or None,
            "description": model.describe(),
        }


def _threshold_reason(grouping: Grouping, bucket: str) -> str | None:
    """Why ``bucket`` of ``grouping`` cannot be corrected, or None when it can."""
    thresholds = [g for g in grouping.groups if g.min_confidence is not None]
    for group in thresholds:
        if group.name == bucket:
            return (
                f"the group {bucket!r} counts faces at least {group.min_confidence:g} sure, and the error model "
                "has no confidences: its share cannot be corrected"
            )
    if thresholds and bucket == grouping.other:
        return (
            f"which faces fall in {bucket!r} depends on the confidence threshold of {thresholds[0].name!r}, "
            "and the error model has no confidences: its share cannot be corrected"
        )
    return None


def _share(q: Quantification | None, kind: str, label: str) -> Share | None:
    """The share of an emotion or group of ``q``; None without ``q`` or for a label it does not hold."""
    if q is None:
        return None
    try:
        return q.emotion(label) if kind == "emotion" else q.group(label)
    except KeyError:
        return None


def _fill(record: dict, share: Share | None, reason: str | None) -> dict:
    if share is None or reason is not None or math.isnan(share.corrected):
        values = (None, None, None, reason or (NO_FACES if share else "not a group the correction knows"))
    else:
        values = (round(share.corrected, DIGITS), round(share.low, DIGITS), round(share.high, DIGITS), None)
    return {**record, **dict(zip(ADJUSTED_KEYS, values))}


def adjust(
    summary: dict,
    counts: Mapping[str, int],
    served: ServedErrorModel | None,
    sentiment: Grouping,
    custom: Sequence[Grouping] = (),
    versions: Mapping[str, int] | None = None,
) -> dict:
    """``summary`` with the adjusted fields in its records and an ``adjustment`` block (method,
    level, plain explanation, warnings), or null ones with reasons. ``counts``: people per label;
    ``versions``: people per model version that read them (for a warning when it is not the served one)."""
    model = served.model if served else None
    reason = (served.reason if served else None) or ("no error model was given" if model is None else None)
    counts = {label: int(n) for label, n in counts.items() if n}
    q: Quantification | None = None
    if model is not None and counts:
        unknown = sorted(set(counts) - set(model.class_names))
        if unknown:
            reason = (
                f"people labelled {', '.join(unknown)}, which the error model does not know "
                f"({', '.join(model.class_names)}): these shares cannot be corrected"
            )
        else:
            groups: dict[str, tuple[str, ...]] = {}
            for i, grouping in enumerate((sentiment, *custom)):
                mapped = group_map(grouping, model.class_names)
                for bucket in grouping.buckets:  # a bucket no emotion can reach is held at 0
                    groups[f"{i}:{bucket}"] = mapped.get(bucket, ())
            q = quantify_counts(counts, model, groups=groups)
    elif model is not None:
        reason = NO_FACES

    out = dict(summary)
    out["emotions"] = [_fill(r, _share(q, "emotion", r["emotion"]), reason) for r in summary["emotions"]]
    out["groups"] = [
        _fill(r, _share(q, "group", f"0:{r['group']}"), reason or _threshold_reason(sentiment, r["group"]))
        for r in summary["groups"]
    ]
    by_name = {g.name: (i, g) for i, g in enumerate(custom, start=1)}
    custom_records = []
    for r in summary["custom_groups"]:
        i, grouping = by_name.get(r["grouping"], (0, None))
        own = _threshold_reason(grouping, r["group"]) if grouping else "not a grouping of the groups file in force"
        custom_records.append(_fill(r, _share(q, "group", f"{i}:{r['group']}"), reason or own))
    out["custom_groups"] = custom_records
    out["error_model"] = served.block() if served else None
    out["error_model_reason"] = reason if model is None else None
    out["adjustment"] = _adjustment(q, versions or {}, served) if q else None
    return out


def _adjustment(q: Quantification, versions: Mapping[str, int], served: ServedErrorModel) -> dict:
    warnings = list(q.warnings)
    if served.model_version:
        other = {v: n for v, n in versions.items() if v != served.model_version and n}
        if other:
            n = sum(other.values())
            names = ", ".join(v or "unversioned" for v in sorted(other))
            warnings.append(
                f"{n:,} of the {q.faces:,} people were read by another model ({names}); "
                f"the correction assumes the mistakes of the served one ({served.model_version})."
            )
    return {
        "method": q.method,
        "level": q.level,
        "explanation": q.explanation,
        "warnings": warnings,
        "clusters": q.clusters,
        "effective_faces": q.effective_faces,
    }
