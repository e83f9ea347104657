"""People as the unit: one record per person seen, derived from face rows and from live tracks.

A face in a photo is one person. A face followed over time, a video's track or a live
camera's track, is one person too, however many samples it left (one per sampled frame or
detection). A person's summary: the mean of its samples' probabilities, its label (the top
of that mean) with its confidence, first and last seen, how many samples, and its dwell
time: the seconds between first and last seen plus one sample interval, so a face seen in
ten samples 0.5 s apart stayed 5 s.

A track with fewer than ``config.PERSON_MIN_SAMPLES`` samples is no person (a detector
glitch opens a one-sample track); its samples still count as samples. Photos always count.

A person is ``uncertain`` (its label is unreliable, see ``src.engine.doubt``) when a photo
face's row is, and a track when more than half of its samples are (a track seen clearly most
of the time keeps its label, whatever a few blurred frames said). Rows without the flag
(older results) count as not uncertain.

Pure functions and one small accumulator, no database and no threads: the results store
derives its ``people`` rows with them (src/analytics/store), and the live camera tallies
its tracks with ``TrackTally`` (src/streams/live.py).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from src import config

PHOTO = "photo"  # a face in a still image: one sample, no time span
TRACK = "track"  # a face followed across video samples or live frames
KINDS = (PHOTO, TRACK)
LIVE_FILE = "(live camera)"  # the file name of the live camera's people and rows


@dataclass(frozen=True)
class Person:
    """One person's summary. Times are seconds in the clock of its samples (a video's media
    time, the live camera's POSIX time); a photo's are None (the time of its run)."""

    kind: str
    file: str
    emotion: str
    confidence: float | None
    probabilities: dict[str, float]
    samples: int = 1
    first_seen: float | None = None
    last_seen: float | None = None
    dwell_s: float | None = None
    face: int | None = None
    track_id: int | None = None
    uncertain: bool = False

    def as_row(self) -> dict[str, Any]:
        """The person as a dict of its fields (what ``Store.add_people`` takes)."""
        return dataclasses.asdict(self)


def min_samples_or_default(min_samples: int | None) -> int:
    return int(config.PERSON_MIN_SAMPLES if min_samples is None else min_samples)


def is_person(person: Person, min_samples: int | None = None) -> bool:
    """Whether ``person`` counts: a photo face always, a track with enough samples."""
    return person.kind == PHOTO or person.samples >= min_samples_or_default(min_samples)


# --- Summaries ----------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def mean_probabilities(samples: Iterable[Mapping[str, Any] | None]) -> dict[str, float]:
    """The mean of the samples' ``{label: p}``, labels in the order first met; a label a
    sample lacks counts 0 there. Samples without probabilities are left out; {} when none has any."""
    totals: dict[str, float] = {}
    n = 0
    for probs in samples:
        if not probs:
            continue
        n += 1
        for label, p in probs.items():
            totals[label] = totals.get(label, 0.0) + (_number(p) or 0.0)
    return {label: total / n for label, total in totals.items()} if n else {}


def top_label(probabilities: Mapping[str, float]) -> tuple[str, float] | None:
    """The label with the highest probability (the first one on a tie) and that probability."""
    if not probabilities:
        return None
    label = max(probabilities, key=lambda k: probabilities[k])  # max keeps the first of equals
    return label, float(probabilities[label])


def sampling_interval(times: Iterable[Any]) -> float | None:
    """The usual gap between samples: the median gap between the distinct times; None under two."""
    distinct = sorted({t for t in (_number(v) for v in times) if t is not None})
    gaps = [b - a for a, b in zip(distinct, distinct[1:])]
    return statistics.median(gaps) if gaps else None


def dwell_seconds(first: float, last: float, samples: int, interval: float | None = None) -> float:
    """Seconds a person stayed: from first to last seen plus one sample interval (``interval``,
    else the person's own mean gap between samples; nothing for a single sample without one)."""
    span = max(0.0, float(last) - float(first))
    if interval is None:
        interval = span / (samples - 1) if samples > 1 else 0.0
    return span + max(0.0, float(interval))


# --- From face rows -----------------------------------------------------------------------


def is_face_row(row: Mapping[str, Any]) -> bool:
    """A row that is a face (status ok, with an emotion), not a faceless or failed file."""
    return (row.get("status") or "ok") == "ok" and bool(row.get("emotion"))


def is_uncertain(value: Any) -> bool:
    """A row's ``uncertain`` cell as a bool: True, a non-zero number or "true"/"1"/"yes"; else False."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    number = _number(value)
    return bool(number) if number is not None else False


def mostly_uncertain(flags: Iterable[Any]) -> bool:
    """Whether more than half of these samples' ``uncertain`` cells are true."""
    values = [is_uncertain(v) for v in flags]
    return 2 * sum(values) > len(values)


def _track_id(row: Mapping[str, Any]) -> int | None:
    value = _number(row.get("track_id"))
    return None if value is None else int(value)


def photo_person(row: Mapping[str, Any]) -> Person:
    """A face row that was not tracked: one person, with the row's own label and probabilities."""
    probs = {str(k): float(v) for k, v in (row.get("emotions") or {}).items() if _number(v) is not None}
    face = _number(row.get("face"))
    return Person(
        kind=PHOTO,
        file=str(row.get("file") or ""),
        emotion=str(row["emotion"]),
        confidence=_number(row.get("confidence")),
        probabilities=probs,
        face=None if face is None else int(face),
        first_seen=_number(row.get("time")),
        last_seen=_number(row.get("time")),
        uncertain=is_uncertain(row.get("uncertain")),
    )


def track_person(
    rows: Sequence[Mapping[str, Any]], *, file: str, track_id: int | None, interval: float | None = None
) -> Person:
    """One track's face rows (``time``, ``emotion``, ``confidence``, ``emotions``) as a person.

    Without probabilities in any row, the label is the one most rows have (the first on a
    tie) and its confidence the share of rows that have it."""
    times = [t for t in (_number(r.get("time")) for r in rows) if t is not None]
    first, last = (min(times), max(times)) if times else (None, None)
    probs = mean_probabilities(r.get("emotions") for r in rows)
    top = top_label(probs)
    if top is None:
        labels = pd.Series([str(r.get("emotion")) for r in rows])
        counts = labels.value_counts(sort=False)
        label = str(counts.idxmax())
        top = label, float(counts[label] / len(rows))
    return Person(
        kind=TRACK,
        file=file,
        emotion=top[0],
        confidence=top[1],
        probabilities=probs,
        samples=len(rows),
        first_seen=first,
        last_seen=last,
        dwell_s=dwell_seconds(first, last, len(rows), interval) if first is not None else None,
        track_id=track_id,
        uncertain=mostly_uncertain(r.get("uncertain") for r in rows),
    )


def track_people(rows: Iterable[Mapping[str, Any]], min_samples: int | None = None) -> list[Person]:
    """The people of tracked face rows: one per (file, track_id), those with at least
    ``min_samples`` samples (default ``config.PERSON_MIN_SAMPLES``), in the order they appeared.

    The sample interval of a file is the usual gap between its sampled times (every track of
    a video shares its sampling), so a face seen once in a while is not given a long stay."""
    tracks: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    times: dict[str, list[Any]] = {}
    for row in rows:
        track_id = _track_id(row)
        if track_id is None or not is_face_row(row):
            continue
        file = str(row.get("file") or "")
        tracks.setdefault((file, track_id), []).append(row)
        times.setdefault(file, []).append(row.get("time"))
    intervals = {file: sampling_interval(values) for file, values in times.items()}
    people = [
        track_person(found, file=file, track_id=track_id, interval=intervals[file])
        for (file, track_id), found in tracks.items()
    ]
    return [p for p in people if is_person(p, min_samples)]


def people_of_rows(rows: Iterable[Mapping[str, Any]], min_samples: int | None = None) -> list[Person]:
    """The people of one run's face rows (the store's records, or ``ImageResult.rows`` with an
    ``emotions`` dict): each untracked face is a person, then each track with enough samples."""
    rows = list(rows)
    photos = [photo_person(r) for r in rows if is_face_row(r) and _track_id(r) is None]
    return photos + track_people(rows, min_samples)


def people_of_results(results: pd.DataFrame, labels: Sequence[str], min_samples: int | None = None) -> pd.DataFrame:
    """The people of a ``Store.results()`` frame, run by run: ``run_id`` and the ``Person``
    fields (``probabilities`` as a dict of ``labels``), one row per person."""
    columns = ["run_id", *(f.name for f in dataclasses.fields(Person))]
    out = []
    for run_id, part in results.groupby("run_id", sort=False) if len(results) else ():
        records = []
        for row in part.to_dict("records"):
            probs = {label: row.get(label) for label in labels if _number(row.get(label)) is not None}
            records.append({**row, "emotions": probs, "track_id": _track_id(row)})
        out += [{"run_id": run_id, **p.as_row()} for p in people_of_rows(records, min_samples)]
    return pd.DataFrame(out, columns=columns)


# --- Live tracks --------------------------------------------------------------------------


@dataclass
class TrackTally:
    """A live track's samples so far: times, count, the sum of its probabilities and how many
    of its samples were uncertain."""

    track_id: int
    first_seen: float
    last_seen: float
    samples: int = 0
    total: np.ndarray | None = None
    uncertain_samples: int = 0

    @classmethod
    def start(cls, track_id: int, time: float, probs: Sequence[float], uncertain: bool = False) -> TrackTally:
        tally = cls(int(track_id), float(time), float(time))
        tally.add(time, probs, uncertain)
        return tally

    def add(self, time: float, probs: Sequence[float], uncertain: bool = False) -> None:
        """One more sample (a detection of this face) at ``time``; ``uncertain`` when its label is doubtful."""
        values = np.asarray(probs, dtype=np.float64)
        self.total = values.copy() if self.total is None else self.total + values
        self.samples += 1
        self.uncertain_samples += bool(uncertain)
        self.first_seen = min(self.first_seen, float(time))
        self.last_seen = max(self.last_seen, float(time))

    def person(self, labels: Sequence[str], file: str = LIVE_FILE, interval: float | None = None) -> Person:
        """The track as a person (counted or not: see ``is_person``)."""
        mean = self.total / max(1, self.samples) if self.total is not None else np.zeros(len(labels))
        probs = {str(label): float(p) for label, p in zip(labels, mean)}
        label, confidence = top_label(probs) or ("", None)
        return Person(
            kind=TRACK,
            file=file,
            emotion=label,
            confidence=confidence,
            probabilities=probs,
            samples=self.samples,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            dwell_s=dwell_seconds(self.first_seen, self.last_seen, self.samples, interval),
            track_id=self.track_id,
            uncertain=2 * self.uncertain_samples > self.samples,
        )


__all__ = [
    "KINDS",
    "LIVE_FILE",
    "PHOTO",
    "TRACK",
    "Person",
    "TrackTally",
    "dwell_seconds",
    "is_face_row",
    "is_person",
    "is_uncertain",
    "mean_probabilities",
    "mostly_uncertain",
    "people_of_results",
    "people_of_rows",
    "photo_person",
    "sampling_interval",
    "top_label",
    "track_people",
    "track_person",
]
