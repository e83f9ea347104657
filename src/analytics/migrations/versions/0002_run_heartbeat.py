"""Run leases: ``runs.heartbeat_at``, the writer's last sign of life.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

A run is written by one process; every write renews its heartbeat. A ``running`` run whose
heartbeat is older than the lease (``FER_RUN_LEASE_S``) was abandoned by a process that died
(SIGKILL, the OOM killer, a power cut), and the store marks it failed. Existing runs get
their last known time: when they finished, else when they started, so runs left ``running``
by a crash before this revision are marked failed once their lease has passed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", UTC_TIME, nullable=True))
    op.execute("UPDATE runs SET heartbeat_at = COALESCE(finished_at, created_at)")
    # The sweep for abandoned runs looks up running runs by heartbeat.
    op.create_index("ix_runs_status_heartbeat_at", "runs", ["status", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_heartbeat_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
