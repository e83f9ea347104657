"""Reading the results store: the SELECTs behind ``Store``'s readers and the pandas DataFrames
their rows become (UTC, timezone-aware times; empty text ``""``; missing numbers ``NA``).

Rows, people and live seconds are read from finished runs only (status ``ok``) unless the caller
asks for more (``finished_filter``): running and abandoned runs hold partial counts, and a failed
run's rows stop wherever it failed."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import operators

from src import config
from src.analytics.store.errors import StoreError
from src.analytics.store.records import check_source, filter_names
from src.analytics.store.schema import (
    ALERTS,
    FACES,
    LIVE_SECONDS,
    PEOPLE,
    RUN_STATUSES,
    RUNS,
    TALLIES,
    TALLY_UNITS,
    as_utc,
    band_column,
)

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
# Store.tallies(): counts per hour, run columns, label and doubt.
TALLY_COLUMNS = ("hour", "campaign", "location", "source", "emotion", "uncertain", "n")
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
    where += name_filters(RUNS, campaign=campaign, location=location, source=source, run_id=run_id)
    if since is not None:
        where.append(RUNS.c.created_at >= as_utc(since))
    if until is not None:
        where.append(RUNS.c.created_at < as_utc(until))
    return where


def name_filters(
    table: sa.Table, *, campaign: Any, location: Any, source: Any, run_id: Any
) -> list[sa.ColumnElement[bool]]:
    """The filters on a run's names and id, on ``runs`` or on the copies ``tallies`` keep."""
    where: list[sa.ColumnElement[bool]] = []
    for name, value in (("campaign", campaign), ("location", location)):
        names = filter_names(value, name)
        if names is not None:
            column = table.c[name]
            named = [n for n in names if n is not None]
            if None not in names:
                where.append(column.in_(named))
            elif named:
                where.append(sa.or_(column.in_(named), column.is_(None)))
            else:  # "(no campaign)" alone: a bare IS NULL keeps the index usable (an empty IN does not)
                where.append(column.is_(None))
    if source is not None:
        sources = [source] if isinstance(source, str) else list(source)
        where.append(table.c.source.in_([check_source(s) for s in sources]))
    if run_id is not None:
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        where.append((RUNS.c.id if table is RUNS else table.c.run_id).in_(ids))
    return where


def finished_filter(
    *, include_unfinished: bool, include_running: bool, fresh_since: datetime, dialect: str = ""
) -> list[sa.ColumnElement[bool]]:
    """Which runs' rows a reader counts: ``ok`` runs; with ``include_running`` also runs still
    being written (``running``, heartbeat since ``fresh_since``); everything with ``include_unfinished``."""
    if include_unfinished:
        return []
    status = RUNS.c.status
    if dialect == "sqlite":
        # Nearly every run is ok, but without statistics SQLite reads the runs of one campaign
        # through the status index (every run) rather than the campaign's: a unary + keeps it off.
        status = sa.UnaryExpression(status, operator=operators.custom_op("+"), type_=status.type)
    ok = status == "ok"
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


def _labels_of(rows: Rows, column: str) -> list[str]:
    """The labels of the rows' probabilities, in the order met (the configured ones when none)."""
    labels: dict[str, None] = {}
    for r in rows:
        labels.update(dict.fromkeys(r[column] or ()))
    return list(labels) or list(config.EMOTIONS)


def results_frame(rows: Rows, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """One column per label, in the order the models gave them (the configured labels when
    nothing is stored), or exactly ``labels``; ``at`` is the run's time plus the row's media ``time``."""
    label_list = _labels_of(rows, "emotions") if labels is None else list(labels)
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


def people_frame(rows: Rows, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """One column per label (the models' order; the configured labels when nothing is stored;
    or exactly ``labels``); ``status`` is always ``ok`` and ``at`` is when the person was first
    seen, so the trends read this table as they read the face rows."""
    label_list = _labels_of(rows, "emotions") if labels is None else list(labels)
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


# --- Aggregates, pages and streams -------------------------------------------------------
#
# Times compared and bucketed in SQL are POSIX seconds computed the same way on every backend
# (a row's ``at`` is its run's time plus its media time, two columns of two tables).


def epoch_seconds(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """A UTC time column (naive UTC in the database) as POSIX seconds, microseconds kept."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds, plus the fraction from character 20.
        whole = sa.cast(sa.func.strftime("%s", column), sa.Integer)
        return whole + sa.cast(sa.func.substr(column, 20), sa.Float)
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", column), sa.Double)
    # MySQL: UNIX_TIMESTAMP would read the naive value in the session's time zone.
    micros = sa.func.timestampdiff(sa.literal_column("MICROSECOND"), sa.literal("1970-01-01 00:00:00"), column)
    return micros / 1_000_000.0


def hour_seconds(epoch: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """POSIX seconds floored to the start of their UTC hour (times after 1970)."""
    if dialect == "sqlite":
        return sa.cast(epoch / 3600, sa.Integer) * 3600  # truncation is the floor for positive times
    return sa.cast(sa.func.floor(epoch / 3600) * 3600, sa.BigInteger)


def day_seconds(epoch: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """POSIX seconds floored to the start of their UTC day (times after 1970)."""
    if dialect == "sqlite":
        return sa.cast(epoch / 86400, sa.Integer) * 86400
    return sa.cast(sa.func.floor(epoch / 86400) * 86400, sa.BigInteger)


def row_at_seconds(dialect: str) -> sa.ColumnElement:
    """A face row's ``at`` (its run's time plus its media time) as POSIX seconds."""
    return epoch_seconds(RUNS.c.created_at, dialect) + sa.func.coalesce(FACES.c.time, 0.0)


def time_range(value: sa.ColumnElement, since: Any, until: Any, *, seconds: bool) -> list[sa.ColumnElement[bool]]:
    """``since`` (inclusive) and ``until`` (exclusive) on ``value``: a time column, or POSIX seconds."""
    where = []
    for bound, keep in ((since, value.__ge__), (until, value.__lt__)):
        if bound is not None:
            when = as_utc(bound)
            where.append(keep(when.timestamp() if seconds else when))
    return where


def _hour_up(value: Any) -> datetime:
    """A time rounded up to the start of an hour (itself when it is one)."""
    when = as_utc(value)
    floor = when.replace(minute=0, second=0, microsecond=0)
    return floor if floor == when else floor + timedelta(hours=1)


TALLY_BUCKETS = ("hour", "day", "all")  # "all": summed over time, ``hour`` the first one counted
TALLY_KEYS = ("campaign", "location", "source")


def check_bucket(bucket: Any) -> str:
    if bucket not in TALLY_BUCKETS:
        raise StoreError(f"unknown bucket {bucket!r}; one of {', '.join(TALLY_BUCKETS)}")
    return bucket


def check_keys(by: Any) -> tuple[str, ...]:
    keys = (by,) if isinstance(by, str) else tuple(by)
    unknown = [k for k in keys if k not in TALLY_KEYS]
    if unknown:
        raise StoreError(f"unknown tally key {unknown[0]!r}; any of {', '.join(TALLY_KEYS)}")
    return keys


def _run_keys(by: Sequence[str], table: sa.Table = RUNS) -> tuple[sa.ColumnElement, ...]:
    """The run columns kept apart (``by``); the others are summed over and come back as ""."""
    return tuple(table.c[k] if k in by else sa.literal(None, sa.String).label(k) for k in TALLY_KEYS)


def day_of(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The start of a stored time's UTC day (times are stored naive UTC), as the driver gives it."""
    if dialect == "sqlite":
        return sa.func.substr(column, 1, 10, type_=sa.String)
    if dialect == "postgresql":
        return sa.func.date_trunc("day", column, type_=sa.DateTime)
    return sa.func.timestamp(sa.func.date(column), type_=sa.DateTime)


def check_unit(unit: Any) -> str:
    if unit not in TALLY_UNITS:
        raise StoreError(f"unknown unit {unit!r}; one of {', '.join(TALLY_UNITS)}")
    return unit


# The order the tallies' covering indexes keep (revisions 0005 and 0006: days, hours, campaigns):
# a GROUP BY that follows one of them is summed as the index is read, without sorting.
_DAYS_ORDER = ("emotion", "uncertain", "campaign", "source", "location")
_CAMPAIGNS_ORDER = ("campaign", "source", "emotion", "uncertain", "location")


def tallies_query(
    unit: str,
    where: Sequence[sa.ColumnElement[bool]],
    since: Any,
    until: Any,
    include_uncertain: bool,
    dialect: str,
    bucket: str = "hour",
    by: Sequence[str] = TALLY_KEYS,
    *,
    band: float | None = None,
    statuses: Sequence[str] | None = ("ok",),
    running: sa.Select | None = None,
    campaign_filtered: bool = False,
) -> sa.Select:
    """The tallies of ``unit`` summed per hour (or day, or over all time), the run columns in
    ``by``, label and doubt; ``where``: conditions on the tallies' copies of the run columns
    (``name_filters``). Counted are the tallies of runs of ``statuses`` (None: any) and, with
    ``running`` (a SELECT of run ids), those of these runs while they run. ``band``: the count at
    that confidence band (``CONFIDENCE_BANDS``) instead of every one. ``campaign_filtered``:
    ``where`` keeps some campaigns only (on SQLite, their tallies are then read by campaign)."""
    n = TALLIES.c.n if band is None else TALLIES.c[band_column(band)]
    # The hour as the driver gives it (SQLite: text), parsed for the whole frame at once.
    as_given = sa.String if dialect == "sqlite" else sa.DateTime
    conditions = [TALLIES.c.unit == unit, *where, *time_range(TALLIES.c.hour, since, until, seconds=False)]
    if not include_uncertain:
        conditions.append(TALLIES.c.uncertain == sa.false())
    # SQLite sums per day or hour along ix_tallies_days even when a few campaigns are asked for,
    # reading every campaign's tallies to skip a sort; those campaigns' rows, read through
    # ix_tallies_campaigns and then sorted, cost a third of that at 10M samples.
    narrow = campaign_filtered and dialect == "sqlite" and bucket != "all"

    def part(*more: sa.ColumnElement[bool]) -> sa.Select:
        source, count = TALLIES, n
        if narrow:
            kept = (*TALLY_KEYS, "day", "hour", "emotion", "uncertain")
            rows = sa.select(*(TALLIES.c[k] for k in kept), n.label("n")).where(*conditions, *more)
            source = rows.order_by(TALLIES.c.campaign).subquery("narrow")  # the order picks the index
            count = source.c.n
        names = dict(zip(TALLY_KEYS, _run_keys(by, source)))
        names |= {"emotion": source.c.emotion, "uncertain": source.c.uncertain}
        if bucket == "all":
            hour = sa.type_coerce(sa.func.min(source.c.hour), as_given).label("hour")
            order = [names[k] for k in _CAMPAIGNS_ORDER]
        else:
            hour = sa.type_coerce(source.c.day if bucket == "day" else source.c.hour, as_given).label("hour")
            order = [hour, *(names[k] for k in _DAYS_ORDER)]
        columns = [hour, *(names[k] for k in (*TALLY_KEYS, "emotion", "uncertain"))]
        summed = sa.cast(sa.func.sum(count), sa.BigInteger).label("n")
        query = sa.select(*columns, summed).group_by(*_grouped(order))
        query = query if narrow else query.where(*conditions, *more)
        return query if band is None else query.having(sa.func.sum(count) > 0)  # none sure enough: no row

    finished = () if statuses is None else (TALLIES.c.status.in_(list(statuses)),)
    if running is None:
        return part(*finished)
    # The runs being written, apart: each part still follows an index, and a few rows are summed again.
    both = sa.union_all(part(*finished), part(TALLIES.c.status == "running", TALLIES.c.run_id.in_(running))).subquery()
    again = [both.c.emotion, both.c.uncertain, *(both.c[k] for k in by)]
    first = sa.func.min(both.c.hour) if bucket == "all" else both.c.hour
    return sa.select(
        sa.type_coerce(first, as_given).label("hour"),
        *(both.c[k] if k in by else sa.literal(None, sa.String).label(k) for k in TALLY_KEYS),
        both.c.emotion,
        both.c.uncertain,
        sa.cast(sa.func.sum(both.c.n), sa.BigInteger).label("n"),
    ).group_by(*([] if bucket == "all" else [both.c.hour]), *again)


def _grouped(keys: Sequence[sa.ColumnElement]) -> list[sa.ColumnElement]:
    """The keys to group by: not the constants standing for run columns summed over (PostgreSQL
    refuses a NULL constant in GROUP BY)."""
    return [k for k in keys if not (isinstance(k, sa.Label) and isinstance(k.element, sa.Null | sa.BindParameter))]


def counted_query(
    unit: str,
    where: Sequence[sa.ColumnElement[bool]],
    since: Any,
    until: Any,
    include_uncertain: bool,
    min_confidence: float,
    dialect: str,
    bucket: str = "hour",
    by: Sequence[str] = TALLY_KEYS,
) -> sa.Select:
    """What ``tallies_query`` sums, counted from the rows themselves (people, or face rows with a
    label) with ``confidence >= min_confidence``; the hour comes back as POSIX seconds."""
    # A count's hour is in [since, until) when its time is in [since, until) rounded up to hours.
    since, until = (None if t is None else _hour_up(t) for t in (since, until))
    if unit == "person":
        table, hour = PEOPLE, hour_seconds(epoch_seconds(PEOPLE.c.first_seen, dialect), dialect)
        if dialect == "sqlite":  # the hour's text, cheaper than the arithmetic per row; parsed per group
            hour = sa.func.substr(PEOPLE.c.first_seen, 1, 13, type_=sa.String).concat(":00:00")
        if bucket == "day":
            hour = day_of(PEOPLE.c.first_seen, dialect)
        conditions = time_range(PEOPLE.c.first_seen, since, until, seconds=False)
    else:
        table, hour = FACES, hour_seconds(row_at_seconds(dialect), dialect)
        if bucket == "day":
            hour = day_seconds(row_at_seconds(dialect), dialect)
        conditions = [FACES.c.status == "ok", FACES.c.emotion.is_not(None), FACES.c.emotion != ""]
        conditions += time_range(row_at_seconds(dialect), since, until, seconds=True)
    uncertain = sa.func.coalesce(table.c.uncertain, sa.false())
    conditions += [table.c.confidence >= float(min_confidence), *where]
    if not include_uncertain:
        conditions.append(uncertain == sa.false())
    keys = (hour, *_run_keys(by), table.c.emotion, uncertain)
    if bucket == "all":  # summed over time: the first hour counted
        keys = (sa.func.min(hour), *keys[1:])
    return (
        sa.select(*(key.label(name) for key, name in zip(keys, TALLY_COLUMNS)), sa.func.count().label("n"))
        .select_from(table.join(RUNS, table.c.run_id == RUNS.c.id))
        .where(*conditions)
        .group_by(*_grouped(keys[1:] if bucket == "all" else keys))
    )


def tallies_frame(rows: Sequence[Sequence[Any]], *, hour_in_seconds: bool = False) -> pd.DataFrame:
    """Rows of ``tallies_query`` or ``counted_query`` as the frame of ``Store.tallies``. Built
    column by column, each distinct hour and name converted once (there are few of them)."""
    columns = list(zip(*rows)) if rows else [()] * len(TALLY_COLUMNS)
    hour_codes, hours = pd.factorize(pd.Series(columns[0], dtype=object))
    if hour_in_seconds and len(hours) and isinstance(hours[0], str | datetime):
        hour_in_seconds = False  # SQLite's people: the hour as text; days of people: a time
    if hour_in_seconds:
        parsed = pd.to_datetime(pd.Series(hours, dtype="float64").astype("int64"), unit="s", utc=True)
    else:
        parsed = pd.to_datetime(pd.Series(hours, dtype=object), utc=True, format="ISO8601")
    hour = pd.DatetimeIndex(parsed).take(hour_codes) if len(rows) else pd.DatetimeIndex([], tz="UTC")

    def names(values: Sequence[Any]) -> pd.Series:
        return pd.Series(["" if v is None else str(v) for v in values], dtype=object)

    return pd.DataFrame(
        {
            "hour": hour,
            "campaign": names(columns[1]),
            "location": names(columns[2]),
            "source": names(columns[3]),
            "emotion": names(columns[4]),
            "uncertain": pd.Series([bool(v) for v in columns[5]], dtype=bool),
            "n": pd.Series([int(v) for v in columns[6]], dtype="int64"),
        },
        columns=list(TALLY_COLUMNS),
    )


def results_where(
    where: Sequence[sa.ColumnElement[bool]], since: Any, until: Any, dialect: str
) -> list[sa.ColumnElement[bool]]:
    """The run conditions and the time range on each face row's ``at``."""
    return [*where, *time_range(row_at_seconds(dialect), since, until, seconds=True)]


def count_query(table: sa.Table, where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    return (
        sa.select(sa.func.count())
        .select_from(table.join(RUNS, table.c.run_id == RUNS.c.id))
        .where(sa.and_(sa.true(), *where))
    )


def run_rows() -> sa.ColumnElement:
    """A run's rows from its counters: faces, files without a face, files that failed."""
    return RUNS.c.faces + RUNS.c.no_face + RUNS.c.errors


def run_spans_query(where: Sequence[sa.ColumnElement[bool]], dialect: str) -> sa.Select:
    """Each selected run's time (POSIX seconds), rows (its counters: faces, no face, errors) and
    first and last media time (``runs.first_time``/``last_time``): the runs table alone."""
    start = epoch_seconds(RUNS.c.created_at, dialect)
    rows = run_rows()
    query = sa.select(RUNS.c.id, start, rows, RUNS.c.first_time, RUNS.c.last_time).where(sa.and_(sa.true(), *where))
    return query.order_by(RUNS.c.created_at, RUNS.c.id)  # oldest first, as results() reads them


def newest_spans_query(where: Sequence[sa.ColumnElement[bool]], dialect: str, limit: int) -> sa.Select:
    """The ``limit`` selected runs whose rows can be the newest (latest possible ``at`` first) as
    ``RunSpan`` fields: id, rows, and the earliest and latest ``at`` computed here, so the order
    and the values agree exactly."""
    start = epoch_seconds(RUNS.c.created_at, dialect)
    first = start + sa.case((RUNS.c.first_time < 0, RUNS.c.first_time), else_=0.0)
    last = start + sa.case((RUNS.c.last_time > 0, RUNS.c.last_time), else_=0.0)
    rows = run_rows()
    query = sa.select(RUNS.c.id, rows, first, last.label("last")).where(sa.and_(sa.true(), *where))
    return query.order_by(sa.desc("last"), RUNS.c.id).limit(int(limit))


def rows_query(where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    """How many rows the selected runs hold, from their counters."""
    return sa.select(sa.func.sum(run_rows())).where(sa.and_(sa.true(), *where))


@dataclass(frozen=True)
class RunSpan:
    """A run's rows as the pager sees them: how many, and the earliest and latest ``at`` any
    of them can have (POSIX seconds; a row without media time is at the run's time)."""

    run_id: str
    rows: int
    first: float
    last: float


def run_spans(spans: Sequence[Sequence[Any]]) -> list[RunSpan]:
    """``RunSpan``s from the rows of ``run_spans_query``."""
    found = []
    for run_id, start, rows, min_t, max_t in spans:
        start = float(start)
        first = start + min(0.0, float(min_t if min_t is not None else 0.0))
        last = start + max(0.0, float(max_t if max_t is not None else 0.0))
        found.append(RunSpan(run_id, int(rows), first, last))
    return found


_MARGIN_S = 0.001  # float rounding: a run this close to a bound is counted row by row


def split_spans(spans: Sequence[RunSpan], since: Any, until: Any) -> tuple[list[RunSpan], list[RunSpan]]:
    """The runs whose rows all fall in [since, until), and those with rows on both sides of a
    bound (to be counted row by row); runs with no row in the range are left out."""
    low = -math.inf if since is None else as_utc(since).timestamp()
    high = math.inf if until is None else as_utc(until).timestamp()
    inside, across = [], []
    for span in spans:
        if span.last < low - _MARGIN_S or span.first >= high + _MARGIN_S:
            continue
        if span.first >= low + _MARGIN_S and span.last < high - _MARGIN_S:
            inside.append(span)
        else:
            across.append(span)
    return inside, across


def runs_of_top_rows(inside: Sequence[RunSpan], across: Sequence[RunSpan], k: int) -> list[str] | None:
    """The fewest runs that surely hold the ``k`` newest rows (by ``at``), or None for all.

    Runs go by their latest possible row, newest first; once the runs taken hold ``k`` rows
    surely newer than anything the remaining runs can have, the rest cannot reach the page.
    Rows of runs across a time bound count for nothing here (some may be filtered out)."""
    spans = sorted([*((s, s.rows) for s in inside), *((s, 0) for s in across)], key=lambda e: -e[0].last)
    taken: list[str] = []
    waiting: list[tuple[float, int]] = []  # (-first, rows) of taken runs not yet surely newer
    sure = 0
    for i, (span, rows) in enumerate(spans):
        taken.append(span.run_id)
        heapq.heappush(waiting, (-span.first, rows))
        if i + 1 == len(spans):
            return None
        bound = spans[i + 1][0].last  # no row of the runs left is newer
        while waiting and -waiting[0][0] > bound:
            sure += heapq.heappop(waiting)[1]
        if sure >= k:
            return taken
    return None


def page_ids_query(where: Sequence[sa.ColumnElement[bool]], dialect: str, offset: int, limit: int) -> sa.Select:
    """The ids of one page of face rows newest first (``at``, then id, descending): the sort
    carries ids only, the rows are read by id afterwards."""
    return (
        sa.select(FACES.c.id)
        .select_from(FACES.join(RUNS, FACES.c.run_id == RUNS.c.id))
        .where(sa.and_(sa.true(), *where))
        .order_by(row_at_seconds(dialect).desc(), FACES.c.id.desc())
        .offset(int(offset))
        .limit(int(limit))
    )


def rows_by_id_query(ids: Sequence[int], dialect: str) -> sa.Select:
    return (
        results_query([FACES.c.id.in_(list(ids))])
        .order_by(None)
        .order_by(row_at_seconds(dialect).desc(), FACES.c.id.desc())
    )


def chunk_query(base: sa.Select, table: sa.Table, after: int | None, chunk_rows: int) -> sa.Select:
    """The next ``chunk_rows`` rows of ``base`` by the table's id, after id ``after`` (keyset)."""
    query = base.order_by(None).add_columns(table.c.id.label("row_id"))
    if after is not None:
        query = query.where(table.c.id > after)
    return query.order_by(table.c.id).limit(int(chunk_rows))


def run_groups(runs: Sequence[tuple[str, int]], chunk_rows: int) -> list[list[str]]:
    """Consecutive runs grouped so that each group holds about ``chunk_rows`` rows (a larger
    run is a group by itself). Runs counted empty still go in a group: a count is a plan, not a
    filter."""
    groups: list[list[str]] = []
    held = chunk_rows
    for run_id, rows in runs:
        if not groups or held + rows > chunk_rows:
            groups.append([])
            held = 0
        groups[-1].append(run_id)
        held += rows
    return groups


def labels_query(table: sa.Table, where: Sequence[sa.ColumnElement[bool]]) -> sa.Select:
    """The probabilities of each selected run's first and last row that has some (in media
    time, or person number): the labels of the runs' models (one model per run), read through
    an index on the run without a scan."""

    def one(*order) -> sa.ScalarSelect:
        return (
            sa.select(table.c.emotions)
            .where(table.c.run_id == RUNS.c.id, table.c.emotions.is_not(None))
            .order_by(*order)
            .limit(1)
            .scalar_subquery()
        )

    # In the order of an index that starts with run_id (faces: its media time; people: its number).
    within = table.c.time if table is FACES else table.c.person
    first, last = one(within).label("first"), one(within.desc()).label("last")
    # Runs oldest first, as results() meets them.
    query = sa.select(first, last).select_from(RUNS).where(sa.and_(sa.true(), *where))
    return query.order_by(RUNS.c.created_at, RUNS.c.id)


def labels_of_runs(rows: Sequence[Sequence[Any]]) -> list[str]:
    """The labels met in ``labels_query``'s rows, in order (the configured ones when none)."""
    labels: dict[str, None] = {}
    for row in rows:
        for emotions in row:
            labels.update(dict.fromkeys(emotions or ()))
    return list(labels) or list(config.EMOTIONS)


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
    label_list = _labels_of(rows, "counts")
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
