"""People as the unit: a ``people`` table beside the samples, ``runs.samples`` and ``runs.people``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

A face in a photo is one person; a video or live track is one person, summed up: the mean of
its samples' probabilities, its label and confidence, first and last seen, samples and
dwell time. ``runs.samples`` counts a run's face observations (face rows, plus a live
session's face-seconds) and ``runs.people`` its people.

Stored data is carried over: samples from the face rows and live seconds, and people from
the face rows: every untracked face row is a person, and the tracked rows of a run that
finished ``ok`` make one person per file and track id with at least two samples (the default
FER_PERSON_MIN_SAMPLES), as the store does when such a run finishes from now on.
Live sessions stored before this revision kept per-second counts only: they have no people.
The derivation is spelled out here, like the types, so this revision does the same whatever
later code does.
"""

from __future__ import annotations

import json
import statistics
from datetime import timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
MIN_SAMPLES = 2
# The built-in sentiment of a label, for a track whose mean label none of its rows had.
SENTIMENT = {"happy": "positive", "angry": "negative", "disgust": "negative", "fear": "negative", "sad": "negative"}

_RUNS = sa.table(
    "runs", sa.column("id", sa.String()), sa.column("created_at", UTC_TIME), sa.column("status", sa.String())
)
_FACES = sa.table(
    "faces",
    sa.column("id", BIG_ID),
    sa.column("run_id", sa.String()),
    sa.column("file", sa.Text()),
    sa.column("face", sa.Integer()),
    sa.column("emotion", sa.String()),
    sa.column("confidence", sa.Double()),
    sa.column("sentiment", sa.String()),
    sa.column("emotions", sa.Text()),
    sa.column("status", sa.String()),
    sa.column("time", sa.Double()),
    sa.column("track_id", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("face", sa.Integer(), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("dwell_s", sa.Double(), nullable=True),
        sa.Column("emotion", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("sentiment", sa.String(16), nullable=True),
        sa.Column("emotions", sa.Text(), nullable=True),
        **MYSQL,
    )
    # A person's number is unique within its run: two writers can never both add person 3.
    op.create_index("ix_people_run_id_person", "people", ["run_id", "person"], unique=True)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("samples", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("people", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE runs SET samples = faces + COALESCE("
        "(SELECT SUM(live_seconds.faces) FROM live_seconds WHERE live_seconds.run_id = runs.id), 0)"
    )
    _people_of_stored_rows(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("people")
        batch.drop_column("samples")
    op.drop_index("ix_people_run_id_person", table_name="people")
    op.drop_table("people")


# --- Carrying stored rows over ------------------------------------------------------------


def _probabilities(text: str | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (json.loads(text) if text else {}).items() if v is not None}


def _track(rows: list, interval: float | None) -> dict:
    """One track's rows summed up: mean probabilities, label, times, samples, dwell."""
    totals: dict[str, float] = {}
    with_probs = 0
    for row in rows:
        probs = _probabilities(row.emotions)
        with_probs += bool(probs)
        for label, p in probs.items():
            totals[label] = totals.get(label, 0.0) + p
    mean = {label: total / with_probs for label, total in totals.items()} if with_probs else {}
    labels = [row.emotion for row in rows]
    if mean:
        emotion = max(mean, key=lambda k: mean[k])
        confidence = mean[emotion]
    else:
        emotion = max(dict.fromkeys(labels), key=labels.count)
        confidence = labels.count(emotion) / len(labels)
    times = [row.time for row in rows if row.time is not None]
    first, last = (min(times), max(times)) if times else (0.0, 0.0)
    span = last - first
    step = interval if interval is not None else (span / (len(rows) - 1) if len(rows) > 1 else 0.0)
    sentiment = next((row.sentiment for row in rows if row.emotion == emotion and row.sentiment), None)
    return {
        "emotion": emotion,
        "confidence": confidence,
        "sentiment": sentiment or SENTIMENT.get(emotion, "neutral"),
        "emotions": json.dumps(mean, ensure_ascii=False) if mean else None,
        "first": first,
        "last": last,
        "samples": len(rows),
        "dwell_s": span + step if times else None,
    }


def _interval(times: list[float]) -> float | None:
    distinct = sorted(set(times))
    gaps = [b - a for a, b in zip(distinct, distinct[1:])]
    return statistics.median(gaps) if gaps else None


def _people_of_run(rows: list, created_at, with_tracks: bool) -> list[dict]:
    people = []
    tracks: dict[tuple[str, int], list] = {}
    times: dict[str, list[float]] = {}
    for row in rows:
        if row.track_id is None:
            at = created_at + timedelta(seconds=row.time or 0.0)
            people.append(
                {
                    "kind": "photo",
                    "file": row.file,
                    "face": row.face,
                    "track_id": None,
                    "first_seen": at,
                    "last_seen": at,
                    "samples": 1,
                    "dwell_s": None,
                    "emotion": row.emotion,
                    "confidence": row.confidence,
                    "sentiment": row.sentiment,
                    "emotions": row.emotions,
                }
            )
        elif with_tracks:
            tracks.setdefault((row.file, row.track_id), []).append(row)
            if row.time is not None:
                times.setdefault(row.file, []).append(row.time)
    for (file, track_id), found in tracks.items():
        if len(found) < MIN_SAMPLES:
            continue
        summary = _track(found, _interval(times.get(file, [])))
        people.append(
            {
                "kind": "track",
                "file": file,
                "face": None,
                "track_id": track_id,
                "first_seen": created_at + timedelta(seconds=summary.pop("first")),
                "last_seen": created_at + timedelta(seconds=summary.pop("last")),
                **summary,
            }
        )
    return people


def _people_of_stored_rows(conn) -> None:
    people_table = sa.table(
        "people",
        *(sa.column(name) for name in ("run_id", "person", "kind", "file", "face", "track_id")),
        sa.column("first_seen", UTC_TIME),
        sa.column("last_seen", UTC_TIME),
        *(sa.column(name) for name in ("samples", "dwell_s", "emotion", "confidence", "sentiment", "emotions")),
    )
    runs_counts = sa.table("runs", sa.column("id", sa.String()), sa.column("people", sa.Integer()))
    face_row = sa.and_(_FACES.c.status == "ok", _FACES.c.emotion.is_not(None), _FACES.c.emotion != "")
    run_ids = conn.execute(sa.select(_FACES.c.run_id).where(face_row).distinct()).scalars().all()
    for run_id in run_ids:
        run = conn.execute(sa.select(_RUNS.c.created_at, _RUNS.c.status).where(_RUNS.c.id == run_id)).first()
        if run is None:
            continue
        rows = conn.execute(sa.select(_FACES).where(_FACES.c.run_id == run_id, face_row).order_by(_FACES.c.id)).all()
        people = _people_of_run(rows, run.created_at, with_tracks=run.status == "ok")
        if not people:
            continue
        conn.execute(people_table.insert(), [{"run_id": run_id, "person": i, **p} for i, p in enumerate(people)])
        conn.execute(runs_counts.update().where(runs_counts.c.id == run_id).values(people=len(people)))
