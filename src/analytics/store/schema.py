"""The results store's tables as the code reads and writes them, their column types and limits.

``src/analytics/migrations/`` creates these tables: a change here needs a new revision there
(docs/store.md, "Migrations"), and the revisions spell their types out instead of importing them.
"""

from __future__ import annotations

import json
import numbers
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from src.analytics.store.errors import StoreError

SOURCES = ("photo", "batch", "video", "live", "api", "cli")
RUN_STATUSES = ("running", "ok", "failed")
ROW_STATUSES = ("ok", "no_face", "error")
NAME_MAX = 255  # campaign, location, tag, model version: indexed columns (utf8mb4 on MySQL)
LABEL_MAX = 64
TAGS_MAX = 100
ERROR_MAX = 10_000  # characters of an error text kept


# --- Times --------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: Any) -> datetime:
    """A point in time as an aware UTC datetime: datetimes (naive = UTC), dates (midnight UTC),
    pandas Timestamps, ISO strings, or POSIX seconds."""
    if isinstance(value, bool):
        raise StoreError(f"{value!r} is not a time")
    if isinstance(value, numbers.Real):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError:
            raise StoreError(f"{value!r} is not a time (expected e.g. 2026-01-31 or 2026-01-31T12:00:00Z)") from None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            raise StoreError("a time is missing (NaT)")
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise StoreError(f"{value!r} is not a time")


# --- Column types -------------------------------------------------------------------------


class UTCDateTime(sa.TypeDecorator):
    """Naive UTC in the database (every backend alike), timezone-aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONText(sa.TypeDecorator):
    """JSON kept as text: key order and values come back exactly, on every backend."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


# --- Tables -------------------------------------------------------------------------------

_META = sa.MetaData()
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

RUNS = sa.Table(
    "runs",
    _META,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("campaign", sa.String(NAME_MAX)),
    sa.Column("location", sa.String(NAME_MAX)),
    sa.Column("tags", JSONText(), nullable=False),
    sa.Column("model_version", sa.String(NAME_MAX), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("files", sa.Integer(), nullable=False),
    sa.Column("faces", sa.Integer(), nullable=False),
    # The writer's last sign of life (start, every write, finish): a running run whose heartbeat
    # is older than the lease (FER_RUN_LEASE_S) was abandoned. Revision 0002.
    sa.Column("heartbeat_at", UTCDateTime()),
    # Revision 0003. ``samples``: face observations (a photo's faces, a video's face rows, a live
    # session's face-seconds); ``people``: its rows in ``people``. ``faces`` counts face rows.
    sa.Column("samples", sa.Integer(), nullable=False),
    sa.Column("people", sa.Integer(), nullable=False),
    # Revision 0005, kept in the transaction that stores the rows: its rows that are not faces
    # (``no_face``, ``errors``: with ``faces`` every row) and the first and last media time of
    # its rows (None: no row has one), so counting and paging rows read the runs alone.
    sa.Column("no_face", sa.Integer(), nullable=False, default=0),
    sa.Column("errors", sa.Integer(), nullable=False, default=0),
    sa.Column("first_time", sa.Double()),
    sa.Column("last_time", sa.Double()),
)
FACES = sa.Table(
    "faces",
    _META,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("file", sa.Text(), nullable=False),
    sa.Column("face", sa.Integer()),
    sa.Column("x", sa.Integer()),
    sa.Column("y", sa.Integer()),
    sa.Column("w", sa.Integer()),
    sa.Column("h", sa.Integer()),
    sa.Column("emotion", sa.String(LABEL_MAX)),
    sa.Column("confidence", sa.Double()),
    sa.Column("sentiment", sa.String(16)),
    sa.Column("emotions", JSONText()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("time", sa.Double()),
    sa.Column("track_id", sa.Integer()),
    # Revision 0004: the engine found the face doubtful (None: not said, counted as sure).
    sa.Column("uncertain", sa.Boolean()),
)
LIVE_SECONDS = sa.Table(
    "live_seconds",
    _META,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("second", UTCDateTime(), nullable=False),
    sa.Column("faces", sa.Integer(), nullable=False),
    sa.Column("counts", JSONText(), nullable=False),
)
# One row per person seen (src/analytics/people.py): a face in a photo, or a track of a video
# or a live session summed up. Revision 0003.
PEOPLE = sa.Table(
    "people",
    _META,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("person", sa.Integer(), nullable=False),  # 0, 1, ... within its run, in the order stored
    sa.Column("kind", sa.String(16), nullable=False),  # people.KINDS: photo or track
    sa.Column("file", sa.Text(), nullable=False),
    sa.Column("face", sa.Integer()),
    sa.Column("track_id", sa.Integer()),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
    sa.Column("last_seen", UTCDateTime(), nullable=False),
    sa.Column("samples", sa.Integer(), nullable=False),
    sa.Column("dwell_s", sa.Double()),
    sa.Column("emotion", sa.String(LABEL_MAX), nullable=False),
    sa.Column("confidence", sa.Double()),
    sa.Column("sentiment", sa.String(16)),
    sa.Column("emotions", JSONText()),
    sa.Column("uncertain", sa.Boolean()),  # revision 0004, as on faces
)
# The confidence thresholds the tallies count at (``n_50`` ... ``n_90``): ``Store.tallies`` with
# one of them as ``min_confidence`` reads the tallies, with any other the rows.
CONFIDENCE_BANDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def band_column(band: float) -> str:
    """The tallies column counting at confidence ``band`` (one of CONFIDENCE_BANDS)."""
    return f"n_{round(band * 100)}"


# Revision 0004, rebuilt by 0005. Counts per run, UTC hour, unit, label and doubt: what the trends
# need without reading every row. ``unit`` is "sample" (face rows with a label, live face-seconds)
# or "person". Append-only: every write adds its own rows in the transaction that stores what they
# count, so readers SUM over equal keys. Revision 0005 copies the run's campaign, location, source
# and status beside them (the status kept equal to the run's as it finishes) and adds ``day`` and
# the counts at each confidence band, so the readers sum one index in the order they group by,
# without a join and without reading rows.
TALLIES = sa.Table(
    "tallies",
    _META,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("hour", UTCDateTime(), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("emotion", sa.String(LABEL_MAX), nullable=False),
    sa.Column("uncertain", sa.Boolean(), nullable=False, default=False),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("day", UTCDateTime(), nullable=False),  # the start of the hour's UTC day
    sa.Column("campaign", sa.String(NAME_MAX)),
    sa.Column("location", sa.String(NAME_MAX)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # Of the ``n``, those whose confidence is at least 0.5, 0.6, ... (CONFIDENCE_BANDS; live
    # seconds have none, so never in a band).
    *(sa.Column(band_column(band), sa.Integer(), nullable=False, default=0) for band in CONFIDENCE_BANDS),
)
TALLY_UNITS = ("sample", "person")
ALERTS = sa.Table(
    "alerts",
    _META,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE")),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("payload", JSONText(), nullable=False),
    sa.Column("delivered", sa.Boolean(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
)
CHILDREN = (FACES, LIVE_SECONDS, PEOPLE, TALLIES, ALERTS)  # the tables whose rows belong to a run
