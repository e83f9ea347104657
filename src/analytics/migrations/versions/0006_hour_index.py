"""Per-hour tallies read in index order; the index of rows that are not faces goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

* ``ix_tallies_hours``: the tallies covered in the order of a per-hour GROUP BY (the History
  chart's *Per hour*), as ``ix_tallies_days`` is for days. Without it SQLite sorted every
  selected tally by hour: 0.23-0.26 s for the people of a 10M-sample store against 0.05 s per day.
* ``ix_faces_not_ok`` (0004) is dropped: since 0005 the rows that are not faces are counted
  from ``runs.no_face`` and ``runs.errors``, so nothing reads it, and MySQL kept it for every row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BAND_COLUMNS = ("n_50", "n_60", "n_70", "n_80", "n_90")
# Fifteen columns, MySQL's limit being sixteen.
HOURS_INDEX = ["unit", "status", "hour", "emotion", "uncertain", "campaign", "source", "location", "day", "n"]


def upgrade() -> None:
    op.create_index("ix_tallies_hours", "tallies", [*HOURS_INDEX, *BAND_COLUMNS])
    op.drop_index("ix_faces_not_ok", table_name="faces")


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.create_index("ix_faces_not_ok", "faces", ["status", "run_id"])
    else:
        not_ok = sa.text("status != 'ok'")
        op.create_index("ix_faces_not_ok", "faces", ["run_id"], sqlite_where=not_ok, postgresql_where=not_ok)
    op.drop_index("ix_tallies_hours", table_name="tallies")
