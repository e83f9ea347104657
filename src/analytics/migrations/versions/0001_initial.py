"""Initial schema: runs, their face rows, live-session seconds and alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Types are spelled out here (not imported from src.analytics.store) so this revision keeps creating
the same schema whatever later code does. Times are naive UTC, microseconds kept
(DATETIME(6) on MySQL/MariaDB); JSON is stored as text so key order and exact values
survive on every backend; MySQL tables are utf8mb4 with a binary collation, so names
compare exactly (emoji, case) as on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")
NAME = 255  # campaign, location, model version: indexed, 255 utf8mb4 chars fit InnoDB's index limit
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("campaign", sa.String(NAME), nullable=True),
        sa.Column("location", sa.String(NAME), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("faces", sa.Integer(), nullable=False, server_default="0"),
        **MYSQL,
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_campaign_created_at", "runs", ["campaign", "created_at"])
    op.create_index("ix_runs_source_created_at", "runs", ["source", "created_at"])
    op.create_index("ix_runs_location", "runs", ["location"])

    op.create_table(
        "faces",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), _run_fk(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("face", sa.Integer(), nullable=True),
        sa.Column("x", sa.Integer(), nullable=True),
        sa.Column("y", sa.Integer(), nullable=True),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
        sa.Column("emotion", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("sentiment", sa.String(16), nullable=True),
        sa.Column("emotions", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("time", sa.Double(), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        **MYSQL,
    )
    op.create_index("ix_faces_run_id", "faces", ["run_id"])

    op.create_table(
        "live_seconds",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), _run_fk(), nullable=False),
        sa.Column("second", UTC_TIME, nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        **MYSQL,
    )
    op.create_index("ix_live_seconds_run_id_second", "live_seconds", ["run_id", "second"])

    op.create_table(
        "alerts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("run_id", sa.String(32), _run_fk(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        **MYSQL,
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_run_id", "alerts", ["run_id"])


def downgrade() -> None:
    for table in ("alerts", "live_seconds", "faces", "runs"):
        op.drop_table(table)
