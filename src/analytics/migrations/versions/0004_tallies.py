"""Tallies: counts per run, UTC hour, unit, label and doubt; ``uncertain`` on faces and people.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The History & trends view, the summary and the report count labels per hour; reading every
row for that does not scale. ``tallies`` holds the counts, written by the store in the
transaction that stores the rows they count (append-only: readers sum equal keys).
``unit`` is ``sample`` (a face row with status ok and a label, at its run's time plus its
media time; a live second's count of a label, at that second) or ``person`` (a person, at
first seen). ``uncertain`` marks the faces the engine found doubtful; ``faces.uncertain`` and
``people.uncertain`` are new and empty for stored data, which counts as sure.

Stored data is carried over in batches of ``BATCH`` rows (or the Alembic config attribute
``tally_batch``), so a large store is never read into memory at once; the counting is spelled out here, like the types, so this revision does
the same whatever later code does.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
BATCH = 50_000

_RUNS = sa.table("runs", sa.column("id", sa.String()), sa.column("created_at", UTC_TIME))
_FACES = sa.table(
    "faces",
    sa.column("id", BIG_ID),
    sa.column("run_id", sa.String()),
    sa.column("emotion", sa.String()),
    sa.column("status", sa.String()),
    sa.column("time", sa.Double()),
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
)
_TALLIES = sa.table(
    "tallies",
    sa.column("run_id", sa.String()),
    sa.column("hour", UTC_TIME),
    sa.column("unit", sa.String()),
    sa.column("emotion", sa.String()),
    sa.column("uncertain", sa.Boolean()),
    sa.column("n", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "tallies",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("hour", UTC_TIME, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("emotion", sa.String(64), nullable=False),
        sa.Column("uncertain", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("n", sa.Integer(), nullable=False),
        **MYSQL,
    )
    # Covering: the readers sum a run's tallies of one unit from the index alone.
    op.create_index("ix_tallies_run_id_unit", "tallies", ["run_id", "unit", "hour", "emotion", "uncertain", "n"])
    op.create_index("ix_tallies_hour", "tallies", ["hour"])
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("uncertain", sa.Boolean(), nullable=True))
    # Pages of rows newest first: each run's first and last media time, read from an index.
    # It starts with run_id, so it also serves the foreign key (MySQL) and the old index goes.
    op.create_index("ix_faces_run_id_time", "faces", ["run_id", "time"])
    op.drop_index("ix_faces_run_id", table_name="faces")
    # Counting rows: a run's face rows are ``runs.faces``; the others (no face, error) are few,
    # so a partial index holds them (MySQL has none: status first, the same rows in a range).
    if op.get_bind().dialect.name == "mysql":
        op.create_index("ix_faces_not_ok", "faces", ["status", "run_id"])
    else:
        not_ok = sa.text("status != 'ok'")
        op.create_index("ix_faces_not_ok", "faces", ["run_id"], sqlite_where=not_ok, postgresql_where=not_ok)
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("uncertain", sa.Boolean(), nullable=True))
    conn = op.get_bind()
    _carry_over_faces(conn)
    _carry_over_live_seconds(conn)
    _carry_over_people(conn)


def downgrade() -> None:
    op.drop_index("ix_faces_not_ok", table_name="faces")
    op.create_index("ix_faces_run_id", "faces", ["run_id"])
    op.drop_index("ix_faces_run_id_time", table_name="faces")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("uncertain")
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("uncertain")
    op.drop_table("tallies")  # its indexes with it (MySQL refuses to drop the foreign key's first)


# --- Carrying stored rows over ------------------------------------------------------------


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _insert(conn, unit: str, counts: Counter) -> None:
    if counts:
        records = [
            {"run_id": run_id, "hour": hour, "unit": unit, "emotion": emotion, "uncertain": False, "n": n}
            for (run_id, hour, emotion), n in counts.items()
        ]
        conn.execute(_TALLIES.insert(), records)


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


def _carry_over_faces(conn) -> None:
    query = (
        sa.select(_FACES.c.id, _FACES.c.run_id, _FACES.c.emotion, _FACES.c.time, _RUNS.c.created_at)
        .select_from(_FACES.join(_RUNS, _FACES.c.run_id == _RUNS.c.id))
        .where(_FACES.c.status == "ok", _FACES.c.emotion.is_not(None), _FACES.c.emotion != "")
    )
    for rows in _batches(conn, query, _FACES.c.id):
        counts: Counter = Counter()
        for row in rows:
            at = row.created_at + timedelta(seconds=row.time or 0.0)
            counts[(row.run_id, _hour(at), row.emotion)] += 1
        _insert(conn, "sample", counts)


def _carry_over_live_seconds(conn) -> None:
    query = sa.select(_LIVE.c.id, _LIVE.c.run_id, _LIVE.c.second, _LIVE.c.counts)
    for rows in _batches(conn, query, _LIVE.c.id):
        counts: Counter = Counter()
        for row in rows:
            for emotion, n in (json.loads(row.counts) if row.counts else {}).items():
                if n:
                    counts[(row.run_id, _hour(row.second), emotion)] += int(n)
        _insert(conn, "sample", counts)


def _carry_over_people(conn) -> None:
    query = sa.select(_PEOPLE.c.id, _PEOPLE.c.run_id, _PEOPLE.c.first_seen, _PEOPLE.c.emotion)
    for rows in _batches(conn, query, _PEOPLE.c.id):
        counts: Counter = Counter((row.run_id, _hour(row.first_seen), row.emotion) for row in rows)
        _insert(conn, "person", counts)
