"""Reading the results store: the SELECTs behind ``Store``'s readers and the pandas DataFrames
their rows become (UTC, timezone-aware times; empty text ``""``; missing numbers ``NA``).

Rows, people and live seconds are read from finished runs only (status ``ok``) unless the caller
asks for more (``finished_filter``): running and abandoned runs hold partial counts, and a failed
run's rows stop wherever it failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from src import config
from src.analytics.store.errors import StoreError
from src.analytics.store.records import check_source, filter_names
from src.analytics.store.schema import ALERTS, FACES, LIVE_SECONDS, PEOPLE, RUN_STATUSES, RUNS, as_utc

# The columns of the DataFrames returned by Store.runs(), Store.results(), Store.people() and Store.alerts().
RUN_COLUMNS = (
    "run_id",
    "run_time",
    "finished_at",
    "heartbeat_at",
    "source",
    "campaign",
    "location",
    "tags",
    "model_version",
    "status",
    "error",
    "files",
    "faces",
    "samples",
    "people",
)
RESULT_RUN_COLUMNS = ("run_id", "run_time", "source", "campaign", "location", "tags", "model_version")
RESULT_FACE_COLUMNS = ("file", "face", "x", "y", "w", "h", "emotion", "confidence", "sentiment")
RESULT_TAIL_COLUMNS = ("status", "error", "time", "track_id", "at")
# Store.people(): the run's columns (RESULT_RUN_COLUMNS), these, one per label, then the tail.
PEOPLE_COLUMNS = (
    "person",
    "kind",
    "file",
    "face",
    "track_id",
    "first_seen",
    "last_seen",
    "samples",
    "dwell_s",
    "emotion",
    "confidence",
    "sentiment",
)
PEOPLE_TAIL_COLUMNS = ("status", "at")
ALERT_COLUMNS = ("alert_id", "at", "run_id", "kind", "message", "payload", "delivered", "error")
_INT_COLUMNS = ("face", "x", "y", "w", "h", "track_id")

Rows = Sequence[Mapping[str, Any]]


def run_filters(
    *, campaign: Any, location: Any, source: Any, since: Any, until: Any, run_id: Any = None, status: Any = None
) -> list[sa.ColumnElement[bool]]:
    """The conditions on ``runs`` of ``Store.runs()`` and ``Store.results()`` (see docs/store.md)."""
    where: list[sa.ColumnElement[bool]] = []
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for value in statuses:
            if value not in RUN_STATUSES:
                raise StoreError(f"unknown run status {value!r}; one of {', '.join(RUN_STATUSES)}")
        where.append(RUNS.c.status.in_(statuses))
    for column, value, what in ((RUNS.c.campaign, campaign, "campaign"), (RUNS.c.location, location, "location")):
        names = filter_names(value, what)
        if names is not None:
            named = [n for n in names if n is not None]
            where.append(sa.or_(column.in_(named), column.is_(None)) if None in names else column.in_(named))
    if source is not None:
        sources = [source] if isinstance(source, str) else list(source)
        where.append(RUNS.c.source.in_([check_source(s) for s in sources]))
    if since is not None:
        where.append(RUNS.c.created_at >= as_utc(since))
    if until is not None:
        where.append(RUNS.c.created_at < as_utc(until))
    if run_id is not None:
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        where.append(RUNS.c.id.in_(ids))
    return where


def finished_filter(
    *, include_unfinished: bool, include_running: bool, fresh_since: datetime
) -> list[sa.ColumnElement[bool]]:
    """Which runs' rows a reader counts: ``ok`` runs; with ``include_running`` also runs still
    being written (``running``, heartbeat since ``fresh_since``); everything with ``include_unfinished``."""
    if include_unfinished:
        return []
    ok = RUNS.c.status == "ok"
    if not include_running:
        return [ok]
    return [sa.or_(ok, sa.and_(RUNS.c.status == "running", RUNS.c.heartbeat_at >= fresh_since))]


# --- Runs ---------------------------------------------------------------------------------


def runs_query(where: sa.ColumnElement[bool], limit: int | None = None) -> sa.Select:
    query = sa.select(RUNS).where(where).order_by(RUNS.c.created_at.desc(), RUNS.c.id)
    if limit is not None:
        query = query.limit(int(limit))
    return query


def runs_frame(rows: Rows) -> pd.DataFrame:
    records = [
        {
            "run_id": r["id"],
            "run_time": r["created_at"],
            "finished_at": r["finished_at"],
            "heartbeat_at": r["heartbeat_at"],
            "source": r["source"],
            "campaign": r["campaign"] or "",
            "location": r["location"] or "",
            "tags": list(r["tags"] or []),
            "model_version": r["model_version"],
            "status": r["status"],
            "error": r["error"],
            "files": int(r["files"]),
            "faces": int(r["faces"]),
            "samples": int(r["samples"]),
            "people": int(r["people"]),
        }
        for r in rows
    ]
    frame = pd.DataFrame(records, columns=list(RUN_COLUMNS))
    for column in ("run_time", "finished_at", "heartbeat_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype(dict.fromkeys(("files", "faces", "samples", "people"), "int64"))


# --- Results (per-face rows with their run's columns) -------------------------------------


def _run_columns() -> tuple[sa.ColumnElement, ...]:
    """The run's columns every row of results and people carries."""
    return (
        RUNS.c.id.label("run_id"),
        RUNS.c.created_at,
        RUNS.c.source,
        RUNS.c.campaign,
        RUNS.c.location,
        RUNS.c.tags,
        RUNS.c.model_version,
    )


def results_query(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    return (
        sa.select(
            *_run_columns(),
            *(FACES.c[name] for name in ("file", "face", "x", "y", "w", "h", "emotion", "confidence")),
            FACES.c.sentiment,
            FACES.c.emotions,
            FACES.c.status,
            FACES.c.error,
            FACES.c.time,
            FACES.c.track_id,
        )
        .select_from(FACES.join(RUNS, FACES.c.run_id == RUNS.c.id))
        .where(sa.and_(sa.true(), *where))
        .order_by(RUNS.c.created_at, RUNS.c.id, FACES.c.id)
    )


def _run_record(r) -> dict:
    """The run's values of a results or people row (``_run_columns``), as the frames show them."""
    return {
        "run_id": r["run_id"],
        "run_time": r["created_at"],
        "source": r["source"],
        "campaign": r["campaign"] or "",
        "location": r["location"] or "",
        "tags": list(r["tags"] or []),
        "model_version": r["model_version"],
    }


def results_frame(rows: Rows) -> pd.DataFrame:
    """One column per label, in the order the models gave them (the configured labels when
    nothing is stored); ``at`` is the run's time plus the row's media ``time``."""
    labels: dict[str, None] = {}
    for r in rows:
        labels.update(dict.fromkeys(r["emotions"] or ()))
    label_list = list(labels) or list(config.EMOTIONS)
    records = []
    for r in rows:
        probs = r["emotions"] or {}
        record = {
            **_run_record(r),
            **{name: r[name] for name in ("file", "face", "x", "y", "w", "h")},
            "emotion": r["emotion"] or "",
            "confidence": r["confidence"],
            "sentiment": r["sentiment"] or "",
            **{label: probs.get(label) for label in label_list},
            "status": r["status"],
            "error": r["error"],
            "time": r["time"],
            "track_id": r["track_id"],
        }
        records.append(record)
    columns = [*RESULT_RUN_COLUMNS, *RESULT_FACE_COLUMNS, *label_list, *RESULT_TAIL_COLUMNS]
    frame = pd.DataFrame(records, columns=columns)
    frame["run_time"] = pd.to_datetime(frame["run_time"], utc=True)
    for column in _INT_COLUMNS:
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    for column in ("confidence", "time", *label_list):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["at"] = frame["run_time"] + pd.to_timedelta(frame["time"].fillna(0.0), unit="s")
    return frame


# --- People (one row per person, with their run's columns) ---------------------------------


def people_query(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    return (
        sa.select(
            *_run_columns(),
            *(PEOPLE.c[name] for name in PEOPLE_COLUMNS),
            PEOPLE.c.emotions,
        )
        .select_from(PEOPLE.join(RUNS, PEOPLE.c.run_id == RUNS.c.id))
        .where(sa.and_(sa.true(), *where))
        .order_by(RUNS.c.created_at, RUNS.c.id, PEOPLE.c.person)
    )


def people_frame(rows: Rows) -> pd.DataFrame:
    """One column per label (the models' order; the configured labels when nothing is stored);
    ``status`` is always ``ok`` and ``at`` is when the person was first seen, so the trends read
    this table as they read the face rows."""
    labels: dict[str, None] = {}
    for r in rows:
        labels.update(dict.fromkeys(r["emotions"] or ()))
    label_list = list(labels) or list(config.EMOTIONS)
    records = []
    for r in rows:
        probs = r["emotions"] or {}
        records.append(
            {
                **_run_record(r),
                **{name: r[name] for name in PEOPLE_COLUMNS},
                "sentiment": r["sentiment"] or "",
                **{label: probs.get(label) for label in label_list},
                "status": "ok",
                "at": r["first_seen"],
            }
        )
    columns = [*RESULT_RUN_COLUMNS, *PEOPLE_COLUMNS, *label_list, *PEOPLE_TAIL_COLUMNS]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("run_time", "first_seen", "last_seen", "at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("face", "track_id"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    for column in ("confidence", "dwell_s", *label_list):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame.astype({"person": "int64", "samples": "int64"})


# --- Live seconds -------------------------------------------------------------------------


def live_seconds_query(
    *, run_id: str | None, since: Any, until: Any, runs_where: Sequence[sa.ColumnElement[bool]] = ()
) -> sa.Select:
    """Live seconds, oldest first; ``runs_where`` are conditions on their runs (``finished_filter``)."""
    where = list(runs_where)
    if run_id is not None:
        where.append(LIVE_SECONDS.c.run_id == run_id)
    if since is not None:
        where.append(LIVE_SECONDS.c.second >= as_utc(since))
    if until is not None:
        where.append(LIVE_SECONDS.c.second < as_utc(until))
    query = sa.select(LIVE_SECONDS)
    if runs_where:
        query = query.select_from(LIVE_SECONDS.join(RUNS, LIVE_SECONDS.c.run_id == RUNS.c.id))
    return query.where(sa.and_(sa.true(), *where)).order_by(LIVE_SECONDS.c.second, LIVE_SECONDS.c.id)


def live_seconds_frame(rows: Rows) -> pd.DataFrame:
    labels: dict[str, None] = {}
    for r in rows:
        labels.update(dict.fromkeys(r["counts"]))
    label_list = list(labels) or list(config.EMOTIONS)
    records = [
        {
            "run_id": r["run_id"],
            "second": r["second"],
            "faces": r["faces"],
            **{label: r["counts"].get(label, 0) for label in label_list},
        }
        for r in rows
    ]
    frame = pd.DataFrame(records, columns=["run_id", "second", "faces", *label_list])
    frame["second"] = pd.to_datetime(frame["second"], utc=True)
    return frame.astype({"faces": "int64", **dict.fromkeys(label_list, "int64")})


# --- Alerts -------------------------------------------------------------------------------


def alerts_query(*, since: Any, until: Any, run_id: str | None) -> sa.Select:
    where = []
    if since is not None:
        where.append(ALERTS.c.created_at >= as_utc(since))
    if until is not None:
        where.append(ALERTS.c.created_at < as_utc(until))
    if run_id is not None:
        where.append(ALERTS.c.run_id == run_id)
    return sa.select(ALERTS).where(sa.and_(sa.true(), *where)).order_by(ALERTS.c.created_at, ALERTS.c.id)


def alerts_frame(rows: Rows) -> pd.DataFrame:
    records = [
        {
            "alert_id": int(r["id"]),
            "at": r["created_at"],
            "run_id": r["run_id"] or "",
            "kind": r["kind"],
            "message": r["message"],
            "payload": r["payload"],
            "delivered": bool(r["delivered"]),
            "error": r["error"],
        }
        for r in rows
    ]
    frame = pd.DataFrame(records, columns=list(ALERT_COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.astype({"alert_id": "int64", "delivered": "bool"})
