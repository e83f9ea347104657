"""Tallies keyed for reading without a join, with confidence bands; per-run row counters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The History & trends view and ``/v1/summary`` sum the tallies of the selected runs. With 10M
rows that meant joining every tally to its run and sorting the sums, and reading the rows
themselves for counts at a confidence threshold, for the rows that are not faces and for a
page of rows. This revision:

* rebuilds ``tallies`` with their run's ``campaign``, ``location``, ``source`` and ``status``
  (the first three never change; the status follows the run's as it finishes), the ``day`` of
  their hour, and ``n_50`` ... ``n_90``: of the ``n``, those at least 0.5 ... 0.9 sure (live
  seconds keep no confidence: in no band). Two covering indexes hold them in the order the
  readers group by (days; campaigns and sources), so SQLite sums them as it reads the index;
  fifteen columns each, MySQL's limit being sixteen;
* adds ``runs.no_face`` and ``runs.errors`` (its rows without a face, or that failed) and
  ``runs.first_time``/``runs.last_time`` (the first and last media time of its rows), kept by
  the store as it writes rows, so counting and paging rows read the runs alone.

The tallies are made again from the stored rows (face rows, live seconds, people) in batches of
``BATCH`` rows (or the Alembic config attribute ``tally_batch``); the counting is spelled out
here, like the types, so this revision does the same whatever later code does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
BATCH = 50_000
BANDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BAND_COLUMNS = tuple(f"n_{round(b * 100)}" for b in BANDS)
# Covering, in the order of the GROUP BYs: per day (charts over time), per campaign and source.
DAYS_INDEX = ["unit", "status", "day", "emotion", "uncertain", "campaign", "source", "location", "hour", "n"]
CAMPAIGNS_INDEX = ["unit", "status", "campaign", "source", "emotion", "uncertain", "location", "day", "hour", "n"]

_RUNS = sa.table(
    "runs",
    sa.column("id", sa.String()),
    sa.column("created_at", UTC_TIME),
    sa.column("campaign", sa.String()),
    sa.column("location", sa.String()),
    sa.column("source", sa.String()),
    sa.column("status", sa.String()),
    sa.column("no_face", sa.Integer()),
    sa.column("errors", sa.Integer()),
    sa.column("first_time", sa.Double()),
    sa.column("last_time", sa.Double()),
)
_FACES = sa.table(
    "faces",
    sa.column("id", BIG_ID),
    sa.column("run_id", sa.String()),
    sa.column("emotion", sa.String()),
    sa.column("status", sa.String()),
    sa.column("time", sa.Double()),
    sa.column("confidence", sa.Double()),
    sa.column("uncertain", sa.Boolean()),
)
_LIVE = sa.table(
    "live_seconds",
    sa.column("id", BIG_ID),
    sa.column("run_id", sa.String()),
    sa.column("second", UTC_TIME),
    sa.column("counts", sa.Text()),
)
_PEOPLE = sa.table(
    "people",
    sa.column("id", BIG_ID),
    sa.column("run_id", sa.String()),
    sa.column("first_seen", UTC_TIME),
    sa.column("emotion", sa.String()),
    sa.column("confidence", sa.Double()),
    sa.column("uncertain", sa.Boolean()),
)
_TALLY_COLUMNS = ("run_id", "hour", "unit", "emotion", "uncertain", "n", "day", "campaign", "location", "source")
_TALLIES = sa.table(
    "tallies",
    *(sa.column(name) for name in (*_TALLY_COLUMNS, "status", *BAND_COLUMNS)),
)


def _tallies_table() -> None:
    op.create_table(
        "tallies",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("hour", UTC_TIME, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("emotion", sa.String(64), nullable=False),
        sa.Column("uncertain", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("day", UTC_TIME, nullable=False),
        sa.Column("campaign", sa.String(255)),
        sa.Column("location", sa.String(255)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in BAND_COLUMNS),
        **MYSQL,
    )
    op.create_index("ix_tallies_run_id_unit", "tallies", ["run_id", "unit"])
    op.create_index("ix_tallies_hour", "tallies", ["hour"])
    op.create_index("ix_tallies_days", "tallies", [*DAYS_INDEX, *BAND_COLUMNS])
    op.create_index("ix_tallies_campaigns", "tallies", [*CAMPAIGNS_INDEX, *BAND_COLUMNS])


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("no_face", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("errors", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("first_time", sa.Double(), nullable=True))
        batch.add_column(sa.Column("last_time", sa.Double(), nullable=True))
    op.drop_table("tallies")  # its indexes with it
    _tallies_table()
    conn = op.get_bind()
    _count_rows(conn)
    _carry_over_faces(conn)
    _carry_over_live_seconds(conn)
    _carry_over_people(conn)


def downgrade() -> None:
    # The 0004 tallies are these without the new columns: the same counts per key. The index on
    # run and unit stays as it is (MySQL's foreign key needs it), without 0004's covered columns.
    for name in ("ix_tallies_days", "ix_tallies_campaigns"):
        op.drop_index(name, table_name="tallies")
    with op.batch_alter_table("tallies") as batch:
        for name in ("day", "campaign", "location", "source", "status", *BAND_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("runs") as batch:
        for name in ("no_face", "errors", "first_time", "last_time"):
            batch.drop_column(name)


# --- The run counters -------------------------------------------------------------------


def _count_rows(conn) -> None:
    """Each run's rows that are not faces (the partial index ``ix_faces_not_ok``), and the first
    and last media time of its rows (two seeks per run on ``ix_faces_run_id_time``)."""
    not_ok = sa.text("status != 'ok'")  # a literal, so the partial index applies
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"no_face": 0, "errors": 0})
    query = sa.select(_FACES.c.run_id, _FACES.c.status, sa.func.count()).where(not_ok)
    for run_id, status, n in conn.execute(query.group_by(_FACES.c.run_id, _FACES.c.status)):
        counts[run_id]["no_face" if status == "no_face" else "errors"] += int(n)
    update = (
        _RUNS.update()
        .where(_RUNS.c.id == sa.bindparam("run"))
        .values(no_face=sa.bindparam("no_face"), errors=sa.bindparam("errors"))
    )
    records = [{"run": run_id, **n} for run_id, n in counts.items()]
    for start in range(0, len(records), BATCH):
        conn.execute(update, records[start : start + BATCH])

    def edge(order) -> sa.ScalarSelect:
        found = sa.select(_FACES.c.time).where(_FACES.c.run_id == _RUNS.c.id, _FACES.c.time.is_not(None))
        return found.order_by(order).limit(1).scalar_subquery()

    spans = conn.execute(sa.select(_RUNS.c.id, edge(_FACES.c.time), edge(_FACES.c.time.desc()))).all()
    update = (
        _RUNS.update()
        .where(_RUNS.c.id == sa.bindparam("run"))
        .values(first_time=sa.bindparam("first"), last_time=sa.bindparam("last"))
    )
    records = [{"run": run_id, "first": first, "last": last} for run_id, first, last in spans if first is not None]
    for start in range(0, len(records), BATCH):
        conn.execute(update, records[start : start + BATCH])


# --- Tallying stored rows -----------------------------------------------------------------


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _runs_of(conn, run_ids) -> dict[str, tuple]:
    """{run id: (time, campaign, location, source, status)} of a batch's runs."""
    found: dict[str, tuple] = {}
    ids = sorted(run_ids)
    columns = (_RUNS.c.id, _RUNS.c.created_at, _RUNS.c.campaign, _RUNS.c.location, _RUNS.c.source, _RUNS.c.status)
    for start in range(0, len(ids), 500):
        for run_id, *values in conn.execute(sa.select(*columns).where(_RUNS.c.id.in_(ids[start : start + 500]))):
            found[run_id] = tuple(values)
    return found


def _batches(conn, query: sa.Select, id_column: sa.ColumnClause):
    """The rows of ``query`` in batches of BATCH, by id (keyset: each batch one indexed range)."""
    size = int(context.config.attributes.get("tally_batch", BATCH))
    last = None
    while True:
        page = query if last is None else query.where(id_column > last)
        rows = conn.execute(page.order_by(id_column).limit(size)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


class _Counts:
    """Counts per (run, hour, label, doubt): ``n`` and at each confidence band."""

    def __init__(self, unit: str):
        self.unit = unit
        self.counts: dict[tuple, list[int]] = {}

    def add(self, run_id: str, at: datetime, emotion: str, uncertain, confidence, n: int = 1) -> None:
        key = (run_id, _hour(at), emotion, bool(uncertain))
        found = self.counts.get(key)
        if found is None:
            found = self.counts[key] = [0] * (1 + len(BANDS))
        found[0] += n
        if confidence is not None:
            for i, band in enumerate(BANDS, start=1):
                if confidence >= band:
                    found[i] += n

    def insert(self, conn, runs: dict[str, tuple]) -> None:
        records = []
        for (run_id, hour, emotion, uncertain), found in self.counts.items():
            _, campaign, location, source, status = runs[run_id]
            records.append(
                {
                    "run_id": run_id,
                    "hour": hour,
                    "unit": self.unit,
                    "emotion": emotion,
                    "uncertain": uncertain,
                    "n": found[0],
                    "day": hour.replace(hour=0),
                    "campaign": campaign,
                    "location": location,
                    "source": source,
                    "status": status,
                    **dict(zip(BAND_COLUMNS, found[1:])),
                }
            )
        if records:
            conn.execute(_TALLIES.insert(), records)


def _carry_over_faces(conn) -> None:
    query = sa.select(
        _FACES.c.id, _FACES.c.run_id, _FACES.c.emotion, _FACES.c.time, _FACES.c.confidence, _FACES.c.uncertain
    ).where(_FACES.c.status == "ok", _FACES.c.emotion.is_not(None), _FACES.c.emotion != "")
    for rows in _batches(conn, query, _FACES.c.id):
        known = _runs_of(conn, {row.run_id for row in rows})
        counts = _Counts("sample")
        for row in rows:
            at = known[row.run_id][0] + timedelta(seconds=row.time or 0.0)
            counts.add(row.run_id, at, row.emotion, row.uncertain, row.confidence)
        counts.insert(conn, known)


def _carry_over_live_seconds(conn) -> None:
    query = sa.select(_LIVE.c.id, _LIVE.c.run_id, _LIVE.c.second, _LIVE.c.counts)
    for rows in _batches(conn, query, _LIVE.c.id):
        known = _runs_of(conn, {row.run_id for row in rows})
        counts = _Counts("sample")
        for row in rows:
            for emotion, n in (json.loads(row.counts) if row.counts else {}).items():
                if n:
                    counts.add(row.run_id, row.second, emotion, False, None, int(n))
        counts.insert(conn, known)


def _carry_over_people(conn) -> None:
    query = sa.select(
        _PEOPLE.c.id, _PEOPLE.c.run_id, _PEOPLE.c.first_seen, _PEOPLE.c.emotion, _PEOPLE.c.confidence
    ).add_columns(_PEOPLE.c.uncertain)
    for rows in _batches(conn, query, _PEOPLE.c.id):
        known = _runs_of(conn, {row.run_id for row in rows})
        counts = _Counts("person")
        for row in rows:
            counts.add(row.run_id, row.first_seen, row.emotion, row.uncertain, row.confidence)
        counts.insert(conn, known)
