"""``Store``, the results database at one URL, its runs (``RunHandle``) and the per-process
cache of stores (``open_store``).

Every method is one transaction, retried on deadlocks and lock timeouts. Opening a store
brings its schema to the newest Alembic revision, marks abandoned runs failed and applies the
retention; the checks of incoming values live in records.py, the SELECTs and DataFrames of
the readers in queries.py.

Face rows and live seconds are samples; people are stored beside them (``src.analytics.people``):
a photo's faces with their rows, a video's tracks as its run finishes ``ok``, a live
session's tracks as the writer hands them in.

Nothing is lost silently: a write whose transaction fails raises ``StoreError``, and so does
every call once the SQLite file the store opened has been deleted or replaced (pooled
connections would go on writing to the deleted file). Runs hold a lease: each write renews
the run's heartbeat, and a ``running`` run whose heartbeat is older than the lease was left by
a process that died; it is marked failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import numbers
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from src import config
from src.analytics import people as people_of
from src.analytics.store import queries
from src.analytics.store.backends import (
    WRITE_OPTION,
    is_connect_error,
    is_transient,
    make_engine,
    parse_url,
    printable_url,
    scrub,
    sqlite_file,
    url_secrets,
)
from src.analytics.store.errors import RunClosedError, StoreError, error_text
from src.analytics.store.records import (
    alert_record,
    check_run_id,
    clean_name,
    face_record,
    face_tallies,
    is_run_id,
    person_record,
    person_tallies,
    run_record,
    second_record,
    second_tallies,
    storable_text,
)
from src.analytics.store.schema import (
    ALERTS,
    CHILDREN,
    CONFIDENCE_BANDS,
    ERROR_MAX,
    FACES,
    LIVE_SECONDS,
    PEOPLE,
    RUNS,
    TALLIES,
    as_utc,
    utc_now,
)

# The Alembic scripts, beside this package: run from here, with no alembic.ini.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
RETENTION_EVERY_S = 3600  # a long-lived process re-applies the retention at most this often
WRITE_ATTEMPTS = 6
ABANDONED = "abandoned: the process that wrote it stopped (no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC)"

T = TypeVar("T")


@dataclass
class RunHandle:
    """The run of ``Store.run()``: its id, and ``add(rows)`` for its rows as they come."""

    store: Store
    id: str
    rows: int = 0
    seconds: int = 0
    people: int = 0  # people handed in with ``add_people`` (not those the store derives)
    status: str = "running"  # what the run ended as, once the ``with`` block is left

    def add(self, rows: Iterable[Mapping], *, labels: Sequence[str] | None = None) -> int:
        added = self.store.add_rows(self.id, rows, labels=labels)
        self.rows += added
        return added

    def add_live_seconds(self, seconds: Iterable[Mapping]) -> int:
        added = self.store.add_live_seconds(self.id, seconds)
        self.seconds += added
        return added

    def add_people(self, people: Iterable[Any]) -> int:
        added = self.store.add_people(self.id, people)
        self.people += added
        return added

    def renew_lease(self) -> None:
        self.store.renew_lease(self.id)


class Store:
    """The results database at one URL (see the package docstring). Thread-safe."""

    def __init__(
        self,
        url: str | None = None,
        *,
        retention_days: int | float | None = None,
        lease_s: float | None = None,
        person_min_samples: int | None = None,
    ):
        connect_url, self.dialect = parse_url(config.DATABASE_URL if url is None else url)
        self.url = printable_url(connect_url)  # safe to show: passwords and query secrets as ***
        self._secrets = url_secrets(connect_url)
        self.lease_s = float(config.RUN_LEASE_S if lease_s is None else lease_s)
        if not self.lease_s > 0:
            raise StoreError(f"the run lease (FER_RUN_LEASE_S) must be a positive number of seconds, not {lease_s}")
        # The samples a video track needs to be a person (FER_PERSON_MIN_SAMPLES), when its run finishes.
        self.person_min_samples = people_of.min_samples_or_default(person_min_samples)
        self.engine = make_engine(connect_url, self.dialect)
        self._writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._retention_days = float(config.RETENTION_DAYS if retention_days is None else retention_days)
        self._retention_at: float | None = None  # monotonic time of the last pass
        self._sweep_at: float | None = None  # monotonic time of the last look for abandoned runs
        # A SQLite file is known by its device and inode from the open on: a file deleted or
        # replaced under the process (its folder removed, a backup moved over it) is noticed.
        self._file = sqlite_file(connect_url) if self.dialect == "sqlite" else None
        self._file_id: tuple[int, int] | None = None
        self._lost: str | None = None  # why this store refuses all work, once its file went
        try:
            self._migrate()
            if self._file is not None:
                self._file_id = self._identity()
            self._maybe_retention()  # marks abandoned runs failed too
            self._maybe_sweep()
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool's connections (a later call opens new ones)."""
        with _STORES_LOCK:
            for key, store in list(_STORES.items()):
                if store is self:
                    del _STORES[key]
        self.engine.dispose()

    # -- plumbing

    def _error(self, exc: SQLAlchemyError, doing: str) -> StoreError:
        orig = getattr(exc, "orig", None)
        detail = str(orig if orig is not None else exc).strip().splitlines()
        reason = scrub(detail[0], self._secrets) if detail else type(exc).__name__
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or is_connect_error(exc):
            return StoreError(f"cannot connect to the results database {self.url}: {reason}")
        return StoreError(f"results database {self.url}: {doing} failed: {reason}")

    def _identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._file)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def _check_file(self, doing: str) -> None:
        """Refuse to go on once the SQLite file opened is gone or another one: pooled connections
        would keep using the deleted file, and whatever they wrote would vanish with it."""
        if self._lost is None and self._file_id is not None and self._identity() != self._file_id:
            self._lost = (
                f"the database file was removed or replaced while this process had it open, so nothing "
                f"more is read from or written to it here (restart the process to open {self._file} again)"
            )
            self.engine.dispose()  # no connection to the old file goes back into use
        if self._lost is not None:
            raise StoreError(f"results database {self.url}: {doing} failed: {self._lost}")

    def _transaction(self, work: Callable[[Connection], T], doing: str, *, write: bool = True) -> T:
        engine = self._writer if write else self.engine
        for attempt in range(WRITE_ATTEMPTS):
            self._check_file(doing)
            try:
                with engine.begin() as conn:
                    result = work(conn)
            except DBAPIError as exc:
                if write and attempt + 1 < WRITE_ATTEMPTS and is_transient(exc):
                    time.sleep(0.02 * 2**attempt * (1 + random.random()))
                    continue
                raise self._error(exc, doing) from exc
            except SQLAlchemyError as exc:
                raise self._error(exc, doing) from exc
            if write:
                self._check_file(doing)  # committed, but to the file still at that path?
            return result
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Connection], T], doing: str) -> T:
        return self._transaction(work, doing, write=False)

    def _read_rows(self, query: sa.Select, doing: str) -> list:
        return self._read(lambda conn: conn.execute(query).mappings().all(), doing)

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))

        def upgrade(conn: Connection) -> None:
            # Two processes opening a fresh database at once must not both create it.
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310541)"))
            elif self.dialect == "mysql":
                conn.execute(sa.text("SELECT GET_LOCK('fer_store_migrations', 60)"))
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            finally:
                if self.dialect == "mysql":
                    conn.execute(sa.text("SELECT RELEASE_LOCK('fer_store_migrations')"))

        self._transaction(upgrade, "creating or upgrading the schema")

    def _maybe_retention(self) -> None:
        due = self._retention_at is None or time.monotonic() - self._retention_at >= RETENTION_EVERY_S
        if self._retention_days > 0 and due:
            self._retention_at = time.monotonic()
            self.apply_retention(self._retention_days)

    def _maybe_sweep(self) -> None:
        """Look for abandoned runs again once a lease has passed (at most hourly): a long-lived
        process (the API, the dashboard) sees other processes' crashes without a restart."""
        every = min(self.lease_s, RETENTION_EVERY_S)
        if self._sweep_at is None or time.monotonic() - self._sweep_at >= every:
            self.fail_abandoned_runs()

    def fail_abandoned_runs(self) -> int:
        """Mark failed every ``running`` run whose heartbeat is older than the lease (``lease_s``,
        FER_RUN_LEASE_S): its process stopped without finishing it. Returns how many."""
        self._sweep_at = time.monotonic()
        now = utc_now()
        cutoff = now - timedelta(seconds=self.lease_s)
        last_seen = sa.func.coalesce(RUNS.c.heartbeat_at, RUNS.c.created_at)  # no heartbeat: older code
        stale = sa.and_(RUNS.c.status == "running", last_seen < cutoff)

        def work(conn: Connection) -> int:
            marked = 0
            for run_id, heartbeat_at, created_at in conn.execute(
                sa.select(RUNS.c.id, RUNS.c.heartbeat_at, RUNS.c.created_at).where(stale)
            ).all():
                since = heartbeat_at or created_at
                # The same condition again: a write may have renewed the lease meanwhile.
                done = conn.execute(
                    RUNS.update()
                    .where(RUNS.c.id == run_id, stale)
                    .values(status="failed", error=ABANDONED.format(since=since), finished_at=since)
                )
                if done.rowcount:
                    conn.execute(TALLIES.update().where(TALLIES.c.run_id == run_id).values(status="failed"))
                marked += done.rowcount
            return marked

        return self._transaction(work, "marking abandoned runs failed")

    def _claim(
        self,
        conn: Connection,
        run_id: str,
        files: int = 0,
        faces: int = 0,
        samples: int = 0,
        *,
        no_face: int = 0,
        errors: int = 0,
        times: Sequence[float] = (),
    ) -> None:
        """Lock a running run's row (and add to its counters), or say why it cannot take rows.

        Updating the parent first serialises writers of one run: on MySQL, inserting children
        first (a shared lock through the foreign key) then updating would deadlock."""
        check_run_id(run_id)
        values: dict[str, Any] = {
            "files": RUNS.c.files + files,
            "faces": RUNS.c.faces + faces,
            "samples": RUNS.c.samples + samples,
            "heartbeat_at": utc_now(),
        }
        if no_face:
            values["no_face"] = RUNS.c.no_face + no_face
        if errors:
            values["errors"] = RUNS.c.errors + errors
        if times:
            # Spelled out: LEAST/GREATEST differ between the backends on NULL.
            first, last = float(min(times)), float(max(times))
            values["first_time"] = sa.case(
                (sa.or_(RUNS.c.first_time.is_(None), RUNS.c.first_time > first), first), else_=RUNS.c.first_time
            )
            values["last_time"] = sa.case(
                (sa.or_(RUNS.c.last_time.is_(None), RUNS.c.last_time < last), last), else_=RUNS.c.last_time
            )
        result = conn.execute(RUNS.update().where(RUNS.c.id == run_id, RUNS.c.status == "running").values(**values))
        if result.rowcount == 1:
            return
        status = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
        if status is None:
            raise RunClosedError(f"unknown run {run_id} (deleted, or never started)")
        raise RunClosedError(f"run {run_id} is finished ({status}); it takes no more rows")

    @staticmethod
    def _run_row(conn: Connection, run_id: str) -> Mapping[str, Any]:
        """The run's columns its tallies need (time, names, status, people so far)."""
        columns = ("id", "created_at", "campaign", "location", "source", "status", "people")
        return conn.execute(sa.select(*(RUNS.c[c] for c in columns)).where(RUNS.c.id == run_id)).mappings().one()

    # -- writing

    def start_run(
        self,
        source: str,
        *,
        campaign: str | None = None,
        location: str | None = None,
        tags: Iterable[str] = (),
        model_version: str = "",
        created_at: datetime | None = None,
    ) -> str:
        """Record a new run (status ``running``) and return its id (32 hex digits).

        Its lease starts now: store something (rows, live seconds) at least every ``lease_s``
        seconds, or ``renew_lease``, until ``finish_run``; else it is taken for abandoned."""
        self._maybe_retention()
        self._maybe_sweep()
        values = run_record(
            source, campaign=campaign, location=location, tags=tags, model_version=model_version, created_at=created_at
        )
        self._transaction(lambda conn: conn.execute(RUNS.insert().values(**values)), "starting a run")
        return values["id"]

    def add_rows(self, run_id: str, rows: Iterable[Mapping], *, labels: Sequence[str] | None = None) -> int:
        """Store rows of the per-face table for a running run, in one transaction; returns how many.

        Probabilities are the row's keys that are not table columns (or only ``labels``,
        or a row's own ``emotions`` dict). ``files`` counts the distinct file names of this call.
        Each face row without a ``track_id`` (a photo's face) is a person, stored with it; rows
        with one (a video's samples) make their people when the run finishes ``ok``."""
        with self._failing_run(run_id):
            records = [face_record(run_id, row, labels, i) for i, row in enumerate(rows)]
            files = len({r["file"] for r in records})
            faces = sum(r["status"] == "ok" for r in records)
            photos = [_photo_person(r) for r in records if people_of.is_face_row(r) and r["track_id"] is None]

            no_face = sum(r["status"] == "no_face" for r in records)
            times = [r["time"] for r in records if r["time"] is not None]

            def work(conn: Connection) -> int:
                errors = len(records) - faces - no_face
                self._claim(conn, run_id, files, faces, samples=faces, no_face=no_face, errors=errors, times=times)
                if records:
                    conn.execute(FACES.insert(), records)
                run = self._run_row(conn, run_id) if faces or photos else None  # read once for both
                if faces:  # the samples' tallies, at the run's time plus their media time
                    tallies = face_tallies(run, records)
                    if tallies:
                        conn.execute(TALLIES.insert(), tallies)
                self._insert_people(conn, run_id, photos, relative=True, run=run)
                return len(records)

            return self._transaction(work, "storing rows")

    def _insert_people(
        self,
        conn: Connection,
        run_id: str,
        people: Sequence[Any],
        *,
        relative: bool,
        run: Mapping[str, Any] | None = None,
    ) -> int:
        """Number and store ``people`` for a run whose row this transaction holds (``_claim``);
        ``run``: its ``_run_row`` when the caller has already read it in this transaction."""
        if not people:
            return 0
        run = run or self._run_row(conn, run_id)
        records = [
            person_record(run_id, person, i, number=run["people"] + i, origin=run["created_at"], relative=relative)
            for i, person in enumerate(people)
        ]
        conn.execute(PEOPLE.insert(), records)
        conn.execute(TALLIES.insert(), person_tallies(run, records))
        conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(people=RUNS.c.people + len(records)))
        return len(records)

    def add_people(self, run_id: str, people: Iterable[Any]) -> int:
        """Store people of a running run in one transaction (a live session's finished tracks);
        returns how many. Each is a ``people.Person`` or a dict of its fields; its times are
        points in time (datetimes, POSIX seconds), a missing one is the run's start."""
        return self.add_live_seconds(run_id, (), people=people)

    @contextlib.contextmanager
    def _failing_run(self, run_id: str) -> Iterator[None]:
        """A write that fails marks its run failed (with the reason) before the error goes on:
        no run is left half written and unmarked, whoever the caller."""
        try:
            yield
        except RunClosedError:
            raise
        except StoreError as exc:
            with contextlib.suppress(StoreError):  # e.g. the server is gone: the first error is the news
                self.finish_run(run_id, "failed", f"storing failed: {exc}", if_running=True)
            raise

    def renew_lease(self, run_id: str) -> None:
        """Renew a running run's lease without storing anything (a writer between long steps)."""
        self._transaction(lambda conn: self._claim(conn, run_id), "renewing a run's lease")

    def finish_run(self, run_id: str, status: str = "ok", error: str = "", *, if_running: bool = False) -> str:
        """Mark a run ``ok`` or ``failed`` (with the error text); returns the status it has now.
        With ``if_running`` a run that is already finished is left as it is (a failure keeps
        its first reason, an abandoned run stays failed)."""
        if status not in ("ok", "failed"):
            raise StoreError(f"a run finishes 'ok' or 'failed', not {status!r}")
        check_run_id(run_id)
        now = utc_now()
        values = {"status": status, "error": storable_text(error or "")[:ERROR_MAX], "finished_at": now}
        where = [RUNS.c.id == run_id] + ([RUNS.c.status == "running"] if if_running else [])

        def work(conn: Connection) -> str:
            if conn.execute(RUNS.update().where(*where).values(**values, heartbeat_at=now)).rowcount == 1:
                # The tallies' copy of the status: readers pick finished runs' tallies by it.
                conn.execute(TALLIES.update().where(TALLIES.c.run_id == run_id).values(status=status))
                if status == "ok":
                    self._track_people(conn, run_id)
                return status
            found = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
            if found is None:
                raise RunClosedError(f"unknown run {run_id} (deleted, or never started)")
            return str(found)

        return self._transaction(work, "finishing a run")

    def _track_people(self, conn: Connection, run_id: str) -> None:
        """A finishing run's tracked face rows (a video's) as people: one per file and track id
        with enough samples, except the tracks whose person was already handed in."""
        query = (
            sa.select(FACES.c.file, FACES.c.face, FACES.c.track_id, FACES.c.time, FACES.c.status)
            .add_columns(FACES.c.emotion, FACES.c.confidence, FACES.c.emotions, FACES.c.uncertain)
            .where(FACES.c.run_id == run_id, FACES.c.track_id.is_not(None), FACES.c.status == "ok")
            .order_by(FACES.c.id)
        )
        rows = conn.execute(query).mappings().all()
        if not rows:
            return
        handed_in = sa.select(PEOPLE.c.file, PEOPLE.c.track_id).where(
            PEOPLE.c.run_id == run_id, PEOPLE.c.track_id.is_not(None)
        )
        known = {(file, track_id) for file, track_id in conn.execute(handed_in)}
        found = people_of.track_people(rows, self.person_min_samples)
        self._insert_people(conn, run_id, [p for p in found if (p.file, p.track_id) not in known], relative=True)

    @contextlib.contextmanager
    def run(self, source: str, **run_fields: Any) -> Iterator[RunHandle]:
        """``with store.run("batch", campaign=...) as run: run.add(rows)``: ok on exit; on an
        exception the run is marked failed with its text (rows so far kept) and it is re-raised."""
        handle = RunHandle(self, self.start_run(source, **run_fields))
        try:
            yield handle
        except BaseException as exc:
            with contextlib.suppress(StoreError):  # the writer's own error is the one to report
                self.finish_run(handle.id, "failed", error_text(exc), if_running=True)
            raise
        # A run already failed by a write the caller chose to survive stays failed.
        handle.status = self.finish_run(handle.id, "ok", if_running=True)

    def save_rows(self, source: str, rows: Iterable[Mapping], **run_fields: Any) -> str:
        """A whole run in one call: start, rows, finish; returns the id of the run, stored ``ok``."""
        labels = run_fields.pop("labels", None)
        with self.run(source, **run_fields) as run:
            run.add(rows, labels=labels)
        if run.status != "ok":  # e.g. taken for abandoned between its rows and its finish
            raise RunClosedError(f"run {run.id} was marked {run.status} before it could finish")
        return run.id

    def add_live_seconds(self, run_id: str, seconds: Iterable[Mapping], *, people: Iterable[Any] = ()) -> int:
        """Per-second aggregates of a live session: ``{"second": datetime (UTC), "faces": n,
        "counts": {label: n}}`` each, and the ``people`` whose tracks ended (as ``add_people``),
        in one transaction; returns how many seconds (or, without any, people) were stored.
        A second's ``faces`` are face-seconds: they count in the run's samples."""
        with self._failing_run(run_id):
            records = [second_record(run_id, item, i) for i, item in enumerate(seconds)]
            persons = list(people)
            # Checked before anything is written, as rows are (numbered again in the transaction).
            origin = utc_now()
            for i, person in enumerate(persons):
                person_record(run_id, person, i, number=i, origin=origin, relative=False)

            def work(conn: Connection) -> int:
                self._claim(conn, run_id, samples=sum(r["faces"] for r in records))
                run = self._run_row(conn, run_id) if records or persons else None  # read once for both
                if records:
                    conn.execute(LIVE_SECONDS.insert(), records)
                    tallies = second_tallies(run, records)
                    if tallies:
                        conn.execute(TALLIES.insert(), tallies)
                added = self._insert_people(conn, run_id, persons, relative=False, run=run)
                return len(records) or added

            return self._transaction(work, "storing live seconds" if records or not persons else "storing people")

    def record_alert(
        self,
        *,
        kind: str,
        message: str,
        payload: Mapping[str, Any],
        delivered: bool,
        run_id: str | None = None,
        error: str = "",
        at: datetime | None = None,
    ) -> int:
        """Store an alert (what was sent, whether it arrived); returns its id."""
        values = alert_record(
            kind=kind, message=message, payload=payload, delivered=delivered, run_id=run_id, error=error, at=at
        )

        def work(conn: Connection) -> int:
            if run_id is not None:
                check_run_id(run_id)
                if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                    raise RunClosedError(f"unknown run {run_id} (deleted, or never started)")
            return int(conn.execute(ALERTS.insert().values(**values)).inserted_primary_key[0])

        return self._transaction(work, "recording an alert")

    # -- deleting

    def _delete_runs(self, where: sa.ColumnElement[bool], doing: str) -> int:
        def work(conn: Connection) -> int:
            ids = list(conn.execute(sa.select(RUNS.c.id).where(where)).scalars())
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for table in CHILDREN:  # explicit, whatever the foreign keys do
                    conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
                conn.execute(RUNS.delete().where(RUNS.c.id.in_(chunk)))
            return len(ids)

        return self._transaction(work, doing)

    def delete_run(self, run_id: str) -> int:
        """Delete a run with its rows, live seconds and alerts; 1, or 0 when there is no such run."""
        if not is_run_id(run_id):
            return 0
        return self._delete_runs(RUNS.c.id == run_id, "deleting a run")

    def delete_campaign(self, campaign: str) -> int:
        """Delete every run of a campaign (rows included); returns how many runs."""
        name = clean_name(campaign, "campaign")
        if name is None:
            raise StoreError("name the campaign to delete")
        return self._delete_runs(RUNS.c.campaign == name, "deleting a campaign")

    def apply_retention(self, days: int | float) -> int:
        """Delete runs created more than ``days`` days ago (0 or less: none); returns how many.
        Abandoned runs are marked failed first (``fail_abandoned_runs``)."""
        self.fail_abandoned_runs()
        if not days or days <= 0:
            return 0
        cutoff = utc_now() - timedelta(days=float(days))
        return self._delete_runs(RUNS.c.created_at < cutoff, "applying the retention")

    # -- reading

    def get_run(self, run_id: str) -> dict | None:
        """One run as a dict (the columns of ``runs()``), or None."""
        if not is_run_id(run_id):
            return None
        frame = self._runs_frame(RUNS.c.id == run_id)
        return None if frame.empty else frame.iloc[0].to_dict()

    def runs(
        self,
        *,
        campaign: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        limit: int | None = None,
        location: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Runs of every status (or of ``status``), newest first (columns ``RUN_COLUMNS``);
        ``since`` inclusive, ``until`` exclusive."""
        where = queries.run_filters(
            campaign=campaign, location=location, source=source, since=since, until=until, status=status
        )
        return self._runs_frame(sa.and_(sa.true(), *where), limit)

    def _runs_frame(self, where: sa.ColumnElement[bool], limit: int | None = None) -> pd.DataFrame:
        return queries.runs_frame(self._read_rows(queries.runs_query(where, limit), "reading runs"))

    def results(
        self,
        *,
        campaign: str | Sequence[str] | None = None,
        location: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
    ) -> pd.DataFrame:
        """One row per stored face/file row with its run's columns, oldest run first.

        Only runs that finished ``ok`` count, unless asked: ``include_running`` adds the runs
        still being written (``running`` with a live lease), ``include_unfinished`` every run
        (running, abandoned and failed ones with the rows they stored); ``run_id`` alike.
        Columns: RESULT_RUN_COLUMNS, RESULT_FACE_COLUMNS, one per label (in the order the
        models gave them; the configured labels when nothing is stored), RESULT_TAIL_COLUMNS.
        ``at`` is the run's time plus the row's media ``time`` (video, live), else the run's time.
        Time filters apply to the run's time."""
        where = queries.run_filters(
            campaign=campaign, location=location, source=source, since=since, until=until, run_id=run_id
        )
        where += self._finished(include_unfinished, include_running)
        return queries.results_frame(self._read_rows(queries.results_query(where), "reading results"))

    def people(
        self,
        *,
        campaign: str | Sequence[str] | None = None,
        location: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
    ) -> pd.DataFrame:
        """One row per person seen, with its run's columns, oldest run first; the filters and
        switches of ``results()`` (finished runs only unless asked; time filters on the run's time).

        Columns: RESULT_RUN_COLUMNS, PEOPLE_COLUMNS (``first_seen``/``last_seen`` UTC, ``samples``,
        ``dwell_s``: none for a photo), one per label (the person's mean probabilities), then
        ``status`` (always ``ok``) and ``at`` (first seen), so the trends count it like face rows."""
        where = queries.run_filters(
            campaign=campaign, location=location, source=source, since=since, until=until, run_id=run_id
        )
        where += self._finished(include_unfinished, include_running)
        return queries.people_frame(self._read_rows(queries.people_query(where), "reading people"))

    def live_seconds(
        self,
        *,
        run_id: str | None = None,
        since: Any = None,
        until: Any = None,
        include_unfinished: bool = False,
        include_running: bool = False,
    ) -> pd.DataFrame:
        """Per-second aggregates of live sessions: run_id, second (UTC), faces, one count per label.
        Of finished (``ok``) sessions unless asked, as ``results()``."""
        query = queries.live_seconds_query(
            run_id=run_id, since=since, until=until, runs_where=self._finished(include_unfinished, include_running)
        )
        return queries.live_seconds_frame(self._read_rows(query, "reading live seconds"))

    def _selected_runs(self, filters: Mapping[str, Any], include_running: bool) -> list[sa.ColumnElement[bool]]:
        """The conditions on runs of the run counters below: the filters of ``runs()`` with
        ``since``/``until`` on the run's start, and the finished runs (``include_unfinished`` in
        ``filters``: every run; ``include_running``: also those being written)."""
        wanted = dict(filters)
        include_unfinished = bool(wanted.pop("include_unfinished", False))
        where = queries.run_filters(**{**dict.fromkeys(("campaign", "location", "source", "since", "until")), **wanted})
        return where + self._finished(include_unfinished, include_running)

    def run_totals(self, *, include_running: bool = False, **filters: Any) -> pd.DataFrame:
        """The selected runs per model version, summed in the database: ``model_version`` (``""``
        when none), ``runs``, ``files``, ``people``. ``filters``: those of ``runs()`` (campaign,
        location, source, since, until on the run's start, run_id) and ``include_unfinished``."""
        where = self._selected_runs(filters, include_running)
        query = (
            sa.select(RUNS.c.model_version, sa.func.count(), sa.func.sum(RUNS.c.files), sa.func.sum(RUNS.c.people))
            .where(sa.and_(sa.true(), *where))
            .group_by(RUNS.c.model_version)
        )
        found = self._read(lambda conn: conn.execute(query).all(), "counting runs")
        rows = [(v or "", int(n), int(f or 0), int(p or 0)) for v, n, f, p in found]
        return pd.DataFrame(rows, columns=["model_version", "runs", "files", "people"])

    def file_outcomes(self, *, include_running: bool = False, **filters: Any) -> dict[str, int]:
        """How many files of the selected runs (as ``run_totals``) had no face, and how many failed:
        ``{"no_face": n, "error": n}``, summed from the runs' counters."""
        where = self._selected_runs(filters, include_running)
        query = sa.select(sa.func.sum(RUNS.c.no_face), sa.func.sum(RUNS.c.errors)).where(sa.and_(sa.true(), *where))
        no_face, errors = self._read(lambda conn: conn.execute(query).one(), "counting files without faces")
        return {"no_face": int(no_face or 0), "error": int(errors or 0)}

    def version(self, running_every: float = 5.0) -> str:
        """A key that changes whenever what the store counts may have: a run added, deleted, grown
        or finished (the runs' count, latest times and summed counts), and every ``running_every``
        seconds while a run is being written (a live session adds seconds as it goes). One
        aggregate query over the runs, whatever their number: a cache key for the views."""
        columns = (RUNS.c.files, RUNS.c.faces, RUNS.c.samples, RUNS.c.people)
        totals = sa.select(
            sa.func.count(),
            sa.func.max(RUNS.c.created_at),
            sa.func.max(RUNS.c.finished_at),
            sa.func.sum(sa.case((RUNS.c.status == "ok", 1), else_=0)),
            *(sa.func.sum(c) for c in columns),
        )
        fresh = utc_now() - timedelta(seconds=self.lease_s)
        running = sa.select(RUNS.c.id).where(RUNS.c.status == "running", RUNS.c.heartbeat_at >= fresh)

        def work(conn: Connection) -> list[str]:
            key = [str(v) for v in conn.execute(totals).one()]
            active = sorted(conn.execute(running).scalars())
            return key + ([*active, str(int(time.time() // running_every))] if active else [])

        return hashlib.sha256("|".join(self._read(work, "reading the store's version")).encode()).hexdigest()

    def _run_where(
        self, campaign: Any, location: Any, source: Any, run_id: Any, include_unfinished: bool, include_running: bool
    ) -> list[sa.ColumnElement[bool]]:
        """The conditions on runs of the readers below (their time filters apply to rows)."""
        where = queries.run_filters(
            campaign=campaign, location=location, source=source, since=None, until=None, run_id=run_id
        )
        return where + self._finished(include_unfinished, include_running)

    def tallies(
        self,
        unit: str = "person",
        *,
        campaign: str | Sequence[str | None] | None = None,
        location: str | Sequence[str | None] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
        include_uncertain: bool = True,
        min_confidence: float | None = None,
        bucket: str = "hour",
        by: Sequence[str] = queries.TALLY_KEYS,
    ) -> pd.DataFrame:
        """How many people (``unit="person"``) or samples (``"sample"``) were seen per UTC hour,
        campaign, location, source, label and doubt, summed over runs in the database.

        ``bucket="day"`` sums the hours of each UTC day (``hour`` is then the day's start),
        ``bucket="all"`` sums over time (``hour`` is then the first hour counted), and ``by``
        names the run columns kept apart (any of campaign, location, source; the others are
        summed over and come back as ``""``): a view asks for just what it shows (days alone for
        a chart over time, campaigns and sources over all time for a comparison), so the
        database returns a few thousand rows, not one per run-hour.

        Columns ``TALLY_COLUMNS``: ``hour`` (the hour's start, UTC), ``campaign`` and ``location``
        (``""`` when none), ``source``, ``emotion``, ``uncertain`` (bool) and ``n``; one row per
        distinct combination. Runs are chosen as in ``results()`` (finished ``ok`` only unless
        asked); ``since`` (inclusive) and ``until`` (exclusive) apply to the hour, i.e. to when a
        face was seen, not to the run's time. ``include_uncertain=False`` leaves out the faces and
        people the engine found doubtful.

        Read from the tallies, so its cost follows hours and runs, not rows: one covering index
        read in the order of the sums (days; campaigns and sources), no join. ``min_confidence``
        counts only the people or face rows with ``confidence >= min_confidence``: at one of
        ``CONFIDENCE_BANDS`` (0.5, 0.6, 0.7, 0.8, 0.9) from the tallies' counts at that band, at
        any other from the rows themselves (reading every selected row). Live seconds keep no
        confidence, so a live session's face-seconds are left out of samples then."""
        unit = queries.check_unit(unit)
        bucket, by = queries.check_bucket(bucket), queries.check_keys(by)
        band = None
        if min_confidence is not None:
            if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real):
                raise StoreError(f"min_confidence must be a number, not {min_confidence!r}")
            if float(min_confidence) not in CONFIDENCE_BANDS:  # counted from the rows
                where = self._run_where(campaign, location, source, run_id, include_unfinished, include_running)
                query = queries.counted_query(
                    unit, where, since, until, include_uncertain, min_confidence, self.dialect, bucket, by
                )
                rows = self._read(lambda conn: conn.execute(query).all(), "counting rows")
                return queries.tallies_frame(rows, hour_in_seconds=True)
            band = float(min_confidence)
        where = queries.name_filters(TALLIES, campaign=campaign, location=location, source=source, run_id=run_id)
        statuses = None if include_unfinished else ("ok",)
        fresh = sa.and_(RUNS.c.status == "running", RUNS.c.heartbeat_at >= utc_now() - timedelta(seconds=self.lease_s))

        def work(conn: Connection) -> list:
            # The runs being written join in only when there are some (a live session, mostly).
            running = None
            if include_running and not include_unfinished:
                if conn.execute(sa.select(RUNS.c.id).where(fresh).limit(1)).first() is not None:
                    running = sa.select(RUNS.c.id).where(fresh)
            query = queries.tallies_query(
                unit,
                where,
                since,
                until,
                include_uncertain,
                self.dialect,
                bucket,
                by,
                band=band,
                statuses=statuses,
                running=running,
                campaign_filtered=campaign is not None,
            )
            return conn.execute(query).all()

        return queries.tallies_frame(self._read(work, "reading tallies"))

    def filter_options(self) -> dict[str, Any]:
        """What the views' filters offer, from finished runs: ``campaigns`` and ``locations``
        (sorted names, then None when some run has none), ``sources`` (sorted), and ``first``
        and ``last``: the first and last hour tallied (UTC datetimes; None when nothing is)."""
        ok = RUNS.c.status == "ok"

        def work(conn: Connection) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for key, column in (("campaigns", RUNS.c.campaign), ("locations", RUNS.c.location)):
                names = set(conn.execute(sa.select(column).where(ok).distinct()).scalars())
                found[key] = sorted(n for n in names if n is not None) + ([None] if None in names else [])
            found["sources"] = sorted(conn.execute(sa.select(RUNS.c.source).where(ok).distinct()).scalars())
            # The hour index from either end, to the first tally of a finished run.
            finished = sa.exists().where(RUNS.c.id == TALLIES.c.run_id, ok)
            edge = sa.select(TALLIES.c.hour).where(finished).limit(1)
            first = conn.execute(edge.order_by(TALLIES.c.hour)).scalar()
            last = conn.execute(edge.order_by(TALLIES.c.hour.desc())).scalar()
            found["first"] = None if first is None else as_utc(first)
            found["last"] = None if last is None else as_utc(last)
            return found

        return self._read(work, "reading the filter options")

    def count_results(
        self,
        *,
        campaign: str | Sequence[str | None] | None = None,
        location: str | Sequence[str | None] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
    ) -> int:
        """How many rows ``page_results`` pages through (``since``/``until`` on each row's ``at``)."""
        where = self._run_where(campaign, location, source, run_id, include_unfinished, include_running)

        def work(conn: Connection) -> int:
            if since is None and until is None:  # every run wholly in: their counters
                return int(conn.execute(queries.rows_query(where)).scalar() or 0)
            inside, across = queries.split_spans(self._run_spans(conn, where), since, until)
            total = sum(span.rows for span in inside)  # runs wholly in the range: their counters
            for start in range(0, len(across), 500):  # the others row by row
                ids = [span.run_id for span in across[start : start + 500]]
                chosen = queries.results_where([*where, RUNS.c.id.in_(ids)], since, until, self.dialect)
                total += int(conn.execute(queries.count_query(FACES, chosen)).scalar_one())
            return total

        return self._read(work, "counting results")

    def _newest_runs(self, conn: Connection, where: Sequence[sa.ColumnElement[bool]], k: int) -> list[str] | None:
        """``runs_of_top_rows`` of every selected run, read newest first a few at a time: the
        first pages need the newest runs only (None: all of them)."""
        size = 256
        while True:
            found = conn.execute(queries.newest_spans_query(where, self.dialect, size)).all()
            spans = [
                queries.RunSpan(run_id, int(rows), float(first), float(last)) for run_id, rows, first, last in found
            ]
            chosen = queries.runs_of_top_rows(spans, [], k)
            if chosen is not None or len(spans) < size:  # decided, or every run was read
                return chosen
            size *= 8

    def _run_spans(self, conn: Connection, where: Sequence[sa.ColumnElement[bool]]) -> list[queries.RunSpan]:
        return queries.run_spans(conn.execute(queries.run_spans_query(where, self.dialect)).all())

    def page_results(
        self,
        *,
        campaign: str | Sequence[str | None] | None = None,
        location: str | Sequence[str | None] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> pd.DataFrame:
        """One page of face rows, newest first (by ``at``, then by id, descending): the columns of
        ``results()`` (one per label of the models of the page's runs), only that page read.
        Runs are chosen as in ``results()``; ``since``/``until`` apply to each row's ``at``."""
        if offset < 0 or limit < 0:
            raise StoreError(f"a page needs offset >= 0 and limit >= 0, not {offset} and {limit}")
        where = self._run_where(campaign, location, source, run_id, include_unfinished, include_running)

        def work(conn: Connection) -> pd.DataFrame:
            if limit == 0:
                return queries.results_frame([])
            # Only the runs that can hold the page's rows are sorted (the newest, mostly).
            if since is None and until is None:
                chosen = self._newest_runs(conn, where, offset + limit)
            else:
                inside, across = queries.split_spans(self._run_spans(conn, where), since, until)
                chosen = queries.runs_of_top_rows(inside, across, offset + limit)
            picked = where if chosen is None else [*where, RUNS.c.id.in_(chosen)]
            conditions = queries.results_where(picked, since, until, self.dialect)
            ids = list(conn.execute(queries.page_ids_query(conditions, self.dialect, offset, limit)).scalars())
            rows = conn.execute(queries.rows_by_id_query(ids, self.dialect)).mappings().all() if ids else []
            # The label columns of the page's runs' models, in the order results() meets them.
            runs_on_page = [RUNS.c.id.in_({r["run_id"] for r in rows})]
            labels = queries.labels_of_runs(conn.execute(queries.labels_query(FACES, runs_on_page)).all())
            return queries.results_frame(rows, labels)

        return self._read(work, "reading a page of results")

    def iter_results(
        self,
        *,
        campaign: str | Sequence[str | None] | None = None,
        location: str | Sequence[str | None] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
        chunk_rows: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """The rows of ``results()`` in frames of at most ``chunk_rows`` rows, runs oldest first
        (rows of a chunk in the order stored), each chunk read in its own transaction: memory
        stays flat however many rows there are. ``since``/``until`` apply to each row's ``at``. Every chunk has
        the same columns: the labels of the selected runs' models, decided before the first."""
        where = self._run_where(campaign, location, source, run_id, include_unfinished, include_running)
        base = queries.results_query(queries.results_where(where, since, until, self.dialect))

        def runs(conn: Connection) -> list[tuple[str, int]]:
            spans = self._run_spans(conn, where)
            inside, across = queries.split_spans(spans, since, until)
            chosen = {span.run_id for span in [*inside, *across]}
            return [(span.run_id, span.rows) for span in spans if span.run_id in chosen]

        yield from self._chunks(FACES, where, runs, base, queries.results_frame, chunk_rows, "reading results")

    def iter_people(
        self,
        *,
        campaign: str | Sequence[str | None] | None = None,
        location: str | Sequence[str | None] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
        include_unfinished: bool = False,
        include_running: bool = False,
        chunk_rows: int = 50_000,
    ) -> Iterator[pd.DataFrame]:
        """The rows of ``people()`` in chunks, as ``iter_results``; ``since``/``until`` apply to
        when each person was first seen (its ``at``)."""
        where = self._run_where(campaign, location, source, run_id, include_unfinished, include_running)
        seen = queries.time_range(PEOPLE.c.first_seen, since, until, seconds=False)
        base = queries.people_query([*where, *seen])

        def runs(conn: Connection) -> list[tuple[str, int]]:
            query = sa.select(RUNS.c.id, RUNS.c.people).where(sa.and_(sa.true(), *where))
            return [(run_id, int(n)) for run_id, n in conn.execute(query.order_by(RUNS.c.created_at, RUNS.c.id))]

        yield from self._chunks(PEOPLE, where, runs, base, queries.people_frame, chunk_rows, "reading people")

    def _chunks(
        self,
        table: sa.Table,
        run_where: Sequence[sa.ColumnElement[bool]],
        runs_of: Callable[[Connection], list[tuple[str, int]]],
        base: sa.Select,
        frame_of: Callable[..., pd.DataFrame],
        chunk_rows: int,
        doing: str,
    ) -> Iterator[pd.DataFrame]:
        """``base``'s rows in frames of at most ``chunk_rows``: runs (``runs_of``: the selected
        ones, oldest first, with how many rows each may have) are taken in groups of about a
        chunk's rows, so each query reads through the run index what it returns; a group's rows
        come by id (keyset), each chunk in its own short transaction."""
        if chunk_rows < 1:
            raise StoreError(f"chunk_rows must be at least 1, not {chunk_rows}")
        labels_query = queries.labels_query(table, run_where)

        def plan(conn: Connection) -> tuple[list[str], list[list[str]]]:
            return queries.labels_of_runs(conn.execute(labels_query).all()), queries.run_groups(
                runs_of(conn), chunk_rows
            )

        labels, groups = self._read(plan, doing)
        for group in groups:
            chosen = base.where(RUNS.c.id.in_(group))  # on runs: the planner starts from these
            after = None
            while True:
                rows = self._read_rows(queries.chunk_query(chosen, table, after, chunk_rows), doing)
                if rows:
                    yield frame_of(rows, labels)
                if len(rows) < chunk_rows:
                    break
                after = rows[-1]["row_id"]

    def _finished(self, include_unfinished: bool, include_running: bool) -> list[sa.ColumnElement[bool]]:
        fresh_since = utc_now() - timedelta(seconds=self.lease_s)
        return queries.finished_filter(
            include_unfinished=include_unfinished,
            include_running=include_running,
            fresh_since=fresh_since,
            dialect=self.dialect,
        )

    def alerts(self, *, since: Any = None, until: Any = None, run_id: str | None = None) -> pd.DataFrame:
        """Recorded alerts, oldest first (columns ``ALERT_COLUMNS``; ``payload`` is a dict)."""
        query = queries.alerts_query(since=since, until=until, run_id=run_id)
        return queries.alerts_frame(self._read_rows(query, "reading alerts"))

    def _distinct(self, column: sa.Column, doing: str) -> list[str]:
        query = sa.select(column).where(column.is_not(None)).distinct()
        # Sorted here: the database's order depends on its collation.
        return sorted(self._read(lambda conn: list(conn.execute(query).scalars()), doing))

    def campaigns(self) -> list[str]:
        """Every campaign name with at least one run, sorted."""
        return self._distinct(RUNS.c.campaign, "reading campaigns")

    def locations(self) -> list[str]:
        """Every location name with at least one run, sorted."""
        return self._distinct(RUNS.c.location, "reading locations")


def _photo_person(record: Mapping) -> Any:
    """A photo's face row as its person, keeping the row's doubt when the person does not say."""
    person = people_of.photo_person(record)
    if getattr(person, "uncertain", None) is None and record.get("uncertain") is not None:
        return {**person.as_row(), "uncertain": record["uncertain"]}
    return person


# --- One store per URL per process --------------------------------------------------------

_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def _forget_stores_in_child() -> None:
    """After fork (multiprocessing, Ray workers): the parent's pooled connections are not ours
    to use or close; the child opens its own."""
    global _STORES_LOCK
    _STORES_LOCK = threading.Lock()  # another thread may have held it at the fork
    for store in _STORES.values():
        store.engine.dispose(close=False)
    _STORES.clear()


os.register_at_fork(after_in_child=_forget_stores_in_child)


def open_store(url: str | None = None) -> Store:
    """The process's ``Store`` for ``url`` (default ``FER_DATABASE_URL``): opened, migrated and
    retention-applied once, then shared (one connection pool per URL)."""
    key = str(config.DATABASE_URL if url is None else url).strip()
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = Store(key)
        return store
