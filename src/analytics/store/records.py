"""What the results store accepts: incoming runs, rows, people, live seconds and alerts checked and
turned into table records, or refused with a ``StoreError`` that says which value and why.

Names (files, campaigns, tags) are kept exactly as given once made valid Unicode
(``sanitize.text``); neutralising formulas is for CSV output, not for storage.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from src.analytics import people
from src.analytics.groups import sentiment_of
from src.analytics.store.errors import RunClosedError, StoreError
from src.analytics.store.schema import (
    CONFIDENCE_BANDS,
    ERROR_MAX,
    LABEL_MAX,
    NAME_MAX,
    ROW_STATUSES,
    SOURCES,
    TAGS_MAX,
    as_utc,
    band_column,
    utc_now,
)
from src.common import sanitize

# Row keys that are not class probabilities (every other key of a row is one).
_ROW_KEYS = frozenset(
    {"file", "face", "x", "y", "w", "h", "emotion", "confidence", "sentiment", "status", "error"}
    | {"time", "time_s", "track_id", "frame", "emotions", "run_id", "uncertain", "doubt"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


# --- Run ids ------------------------------------------------------------------------------


def is_run_id(run_id: Any) -> bool:
    """Whether ``run_id`` looks like one of ours (32 hex digits), before asking the database."""
    return isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) is not None


def check_run_id(run_id: Any) -> None:
    if not is_run_id(run_id):
        raise RunClosedError(f"unknown run {sanitize.line(str(run_id))!r} (a run id is 32 hex digits)")


# --- Single values ------------------------------------------------------------------------


def storable_text(value: Any) -> str:
    """Free text (file names, errors, messages) as storable Unicode: surrogate escapes become
    ``\\xNN`` (sanitize.text) and NUL, which PostgreSQL refuses in text, ``\\x00``."""
    return sanitize.text(str(value)).replace("\x00", "\\x00")


def clean_name(value: Any, what: str) -> str | None:
    """A campaign, location, tag or model version: stripped, one line, at most NAME_MAX characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"the {what} must be text, not {type(value).__name__}")
    value = sanitize.text(value).strip()
    if not value:
        return None
    if _CONTROL.search(value):
        raise StoreError(f"the {what} {sanitize.line(value)!r} holds control characters (line breaks, tabs...)")
    if len(value) > NAME_MAX:
        raise StoreError(f"the {what} is {len(value)} characters long; the limit is {NAME_MAX}")
    return value


def clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        tag = clean_name(tag, "tag")
        if tag is not None and tag not in out:
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise StoreError(f"{len(out)} tags; the limit is {TAGS_MAX} per run")
    return out


def filter_names(value: Any, what: str) -> list[str | None] | None:
    """A filter value: one name or several (None = no filter; "" = runs without one)."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return [clean_name(v, what) for v in values]


def check_source(source: Any) -> str:
    if source not in SOURCES:
        raise StoreError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    return source


def as_label(value: Any, what: str = "emotion") -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} label {value!r} is not text")
    if len(value) > LABEL_MAX:
        raise StoreError(f"{what} label {value[:40]!r}... is longer than {LABEL_MAX} characters")
    return value


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _int(value: Any, what: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise StoreError(f"{what}={value!r} is not a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what}={value!r} is not a whole number") from None
    if not number.is_integer():
        raise StoreError(f"{what}={value!r} is not a whole number")
    if not -(2**31) <= number < 2**31:  # the columns are 32-bit on every backend
        raise StoreError(f"{what}={value!r} is out of range")
    return int(number)


def _float(value: Any, what: str) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise StoreError(f"{what}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise StoreError(f"{what}={value!r} is not a finite number")
    return number


def _bool(value: Any, what: str) -> bool | None:
    """A yes/no flag (``uncertain``): True/False, 1/0, numpy booleans; None when not said."""
    if _blank(value):
        return None
    if isinstance(value, (bool, numbers.Integral)) or hasattr(value, "dtype"):
        if value in (0, 1):
            return bool(value)
    raise StoreError(f"{what}={value!r} is not true or false")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- Records ------------------------------------------------------------------------------


def run_record(
    source: str,
    *,
    campaign: str | None,
    location: str | None,
    tags: Iterable[str],
    model_version: str,
    created_at: datetime | None,
) -> dict:
    """A new ``runs`` row (status ``running``, a fresh id, its first heartbeat now) from
    ``Store.start_run``'s arguments."""
    return {
        "id": uuid.uuid4().hex,
        "created_at": utc_now() if created_at is None else as_utc(created_at),
        "finished_at": None,
        "source": check_source(source),
        "campaign": clean_name(campaign, "campaign"),
        "location": clean_name(location, "location"),
        "tags": clean_tags(tags),
        "model_version": clean_name(model_version, "model version") or "",
        "status": "running",
        "error": "",
        "files": 0,
        "faces": 0,
        "heartbeat_at": utc_now(),  # not created_at: a backdated run is still being written now
        "samples": 0,
        "people": 0,
    }


def face_record(run_id: str, row: Any, labels: Sequence[str] | None, index: int) -> dict:
    """One ``faces`` row from a row of the CLI's per-face table (``ImageResult.rows``).

    Probabilities are the row's own ``emotions`` dict, else its ``labels`` keys, else every key
    that is not a column of the per-face table."""
    if not isinstance(row, Mapping):
        raise StoreError(f"row {index}: expected a dict of the per-face table, got {type(row).__name__}")
    where = f"row {index}"
    file = row.get("file")
    if _blank(file):
        raise StoreError(f"{where}: no file name")
    status = row.get("status") or "ok"
    if status not in ROW_STATUSES:
        raise StoreError(f"{where}: status {status!r} is not one of {', '.join(ROW_STATUSES)}")
    given = row.get("emotions")
    if isinstance(given, Mapping):
        candidates = dict(given)
    elif labels is not None:
        candidates = {label: row.get(label) for label in labels}
    else:
        candidates = {k: v for k, v in row.items() if k not in _ROW_KEYS}
    emotions: dict[str, float] = {}
    for key, value in candidates.items():
        if _blank(value):
            continue
        label = as_label(key, f"{where}: class")
        emotions[label] = _float(value, f"{where}: {key}")
    emotion = as_label(row.get("emotion"), f"{where}: emotion")
    time_value = row.get("time", row.get("time_s"))
    return {
        "run_id": run_id,
        "file": storable_text(file),
        "face": _int(row.get("face"), f"{where}: face"),
        "x": _int(row.get("x"), f"{where}: x"),
        "y": _int(row.get("y"), f"{where}: y"),
        "w": _int(row.get("w"), f"{where}: w"),
        "h": _int(row.get("h"), f"{where}: h"),
        "emotion": emotion,
        "confidence": _float(row.get("confidence"), f"{where}: confidence"),
        "sentiment": sentiment_of(emotion) if emotion else None,
        "emotions": emotions or None,
        "status": status,
        "error": storable_text(row.get("error") or "")[:ERROR_MAX],
        "time": _float(time_value, f"{where}: time"),
        "track_id": _int(row.get("track_id"), f"{where}: track_id"),
        "uncertain": _bool(row.get("uncertain"), f"{where}: uncertain"),
    }


def person_record(run_id: str, person: Any, index: int, *, number: int, origin: datetime, relative: bool) -> dict:
    """One ``people`` row from a person (``people.Person`` or a dict of its fields).

    ``number`` is the person's number within its run. Times are seconds after ``origin`` (the
    run's start) when ``relative`` (what the store derives from face rows), else points in time
    (datetimes, POSIX seconds, ISO text: what a live session hands in); a missing time is
    ``origin`` plus the other time, or ``origin`` itself (a photo)."""
    if hasattr(person, "as_row"):
        person = person.as_row()
    where = f"person {index}"
    if not isinstance(person, Mapping):
        raise StoreError(f"{where}: expected a dict of a person's fields, got {type(person).__name__}")
    kind = person.get("kind") or people.TRACK
    if kind not in people.KINDS:
        raise StoreError(f"{where}: kind {kind!r} is not one of {', '.join(people.KINDS)}")
    file = person.get("file")
    if _blank(file):
        raise StoreError(f"{where}: no file name")
    emotion = as_label(person.get("emotion"), f"{where}: emotion")
    if emotion is None:
        raise StoreError(f"{where}: no emotion")
    given = person.get("probabilities", person.get("emotions")) or {}
    if not isinstance(given, Mapping):
        raise StoreError(f"{where}: probabilities must be a dict {{label: p}}")
    probabilities = {}
    for key, value in given.items():
        if not _blank(value):
            probabilities[as_label(key, f"{where}: class")] = _float(value, f"{where}: {key}")

    def when(value: Any, what: str) -> datetime | None:
        if _blank(value):
            return None
        if relative:
            return origin + timedelta(seconds=_float(value, f"{where}: {what}"))
        return as_utc(value)

    first = when(person.get("first_seen"), "first_seen")
    last = when(person.get("last_seen"), "last_seen")
    first = first or last or origin
    last = last or first
    if last < first:
        raise StoreError(f"{where}: last seen before first seen")
    samples = _int(person.get("samples"), f"{where}: samples")
    samples = 1 if samples is None else samples
    if samples < 1:
        raise StoreError(f"{where}: samples={samples} (a person has at least one)")
    dwell = _float(person.get("dwell_s"), f"{where}: dwell_s")
    if dwell is not None and dwell < 0:
        raise StoreError(f"{where}: dwell_s={dwell} is negative")
    return {
        "run_id": run_id,
        "person": number,
        "kind": kind,
        "file": storable_text(file),
        "face": _int(person.get("face"), f"{where}: face"),
        "track_id": _int(person.get("track_id"), f"{where}: track_id"),
        "first_seen": first,
        "last_seen": last,
        "samples": samples,
        "dwell_s": dwell,
        "emotion": emotion,
        "confidence": _float(person.get("confidence"), f"{where}: confidence"),
        "sentiment": sentiment_of(emotion),
        "emotions": probabilities or None,
        "uncertain": _bool(person.get("uncertain"), f"{where}: uncertain"),
    }


def second_record(run_id: str, item: Any, index: int) -> dict:
    """One ``live_seconds`` row from ``{"second": time, "faces": n, "counts": {label: n}}``."""
    if not isinstance(item, Mapping):
        raise StoreError(f"live second {index}: expected a dict with second, faces, counts")
    if item.get("second") is None:
        raise StoreError(f"live second {index}: no 'second' time")
    counts = item.get("counts") or {}
    if not isinstance(counts, Mapping):
        raise StoreError(f"live second {index}: counts must be a dict {{label: n}}")
    clean = {}
    for label, n in counts.items():
        clean[as_label(label, f"live second {index}: class")] = _int(n, f"live second {index}: counts[{label}]") or 0
    return {
        "run_id": run_id,
        "second": as_utc(item["second"]),
        "faces": _int(item.get("faces"), f"live second {index}: faces") or 0,
        "counts": clean,
    }


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in (its start): the time key of the tallies."""
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


def tally_records(
    run: Mapping[str, Any], unit: str, items: Iterable[tuple[datetime, str, bool | None, int, float | None]]
) -> list[dict]:
    """``tallies`` rows counting ``items`` (when, label, uncertain, n, confidence) of ``run`` (its
    row: ``id``, ``campaign``, ``location``, ``source``, ``status``): one per hour, label and
    doubt (None counts as sure), so one write adds few rows whatever its size, each with the
    run's columns and its counts at every confidence band (no confidence: in none)."""
    counts: dict[tuple[datetime, str, bool], list[int]] = {}
    for at, emotion, uncertain, n, confidence in items:
        if n:
            key = (hour_of(at), emotion, bool(uncertain))
            found = counts.get(key)
            if found is None:
                found = counts[key] = [0] * (1 + len(CONFIDENCE_BANDS))
            found[0] += int(n)
            if confidence is not None:
                for i, band in enumerate(CONFIDENCE_BANDS, start=1):
                    if confidence >= band:
                        found[i] += int(n)
    return [
        {
            "run_id": run["id"],
            "hour": hour,
            "unit": unit,
            "emotion": emotion,
            "uncertain": uncertain,
            "n": found[0],
            "day": hour.replace(hour=0),
            "campaign": run["campaign"],
            "location": run["location"],
            "source": run["source"],
            "status": run["status"],
            **{band_column(band): k for band, k in zip(CONFIDENCE_BANDS, found[1:])},
        }
        for (hour, emotion, uncertain), found in counts.items()
    ]


def face_tallies(run: Mapping[str, Any], records: Iterable[Mapping]) -> list[dict]:
    """The sample tallies of ``faces`` records (``face_record``) of ``run`` (its row, see
    ``tally_records``): face rows with status ok and a label, at the run's time
    (``created_at``) plus their media time."""
    origin = as_utc(run["created_at"])
    return tally_records(
        run,
        "sample",
        (
            (origin + timedelta(seconds=r["time"] or 0.0), r["emotion"], r.get("uncertain"), 1, r.get("confidence"))
            for r in records
            if r["status"] == "ok" and r["emotion"]
        ),
    )


def second_tallies(run: Mapping[str, Any], records: Iterable[Mapping]) -> list[dict]:
    """The sample tallies of ``live_seconds`` records: each second's count of each label (no
    confidence is kept for them)."""
    return tally_records(
        run, "sample", ((r["second"], label, None, n, None) for r in records for label, n in r["counts"].items())
    )


def person_tallies(run: Mapping[str, Any], records: Iterable[Mapping]) -> list[dict]:
    """The person tallies of ``people`` records (``person_record``): each person at first seen."""
    return tally_records(
        run, "person", ((r["first_seen"], r["emotion"], r.get("uncertain"), 1, r.get("confidence")) for r in records)
    )


def alert_record(
    *,
    kind: str,
    message: str,
    payload: Mapping[str, Any],
    delivered: bool,
    run_id: str | None,
    error: str,
    at: datetime | None,
) -> dict:
    """One ``alerts`` row from ``Store.record_alert``'s arguments (the run is checked there)."""
    kind_value = as_label(kind, "alert kind")
    if not kind_value:
        raise StoreError("an alert needs a kind")
    if not isinstance(payload, Mapping):
        raise StoreError(f"an alert payload must be a dict, not {type(payload).__name__}")
    try:
        payload_value = json.loads(json.dumps(dict(payload), default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the alert payload is not JSON: {exc}") from None
    return {
        "created_at": utc_now() if at is None else as_utc(at),
        "run_id": run_id,
        "kind": kind_value,
        "message": storable_text(message or ""),
        "payload": payload_value,
        "delivered": bool(delivered),
        "error": storable_text(error or "")[:ERROR_MAX],
    }
