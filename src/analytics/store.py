"""Results store: every analysis run and its per-face rows, in SQLite, PostgreSQL or MySQL/MariaDB.

One module persists results, so the dashboard, the API and the CLI read the same history:

* ``Store(url)`` opens the database at a SQLAlchemy URL (default ``FER_DATABASE_URL``, else a
  git-ignored SQLite file ``outputs/results.db``), brings its schema to the newest Alembic
  revision (``src/analytics/migrations/``, run from here: no alembic.ini) and applies the retention
  (``FER_RETENTION_DAYS``). ``open_store()`` keeps one ``Store`` (one connection pool) per URL
  per process.
* A *run* is one analysis (a photo, a batch, a video, a live session, an API call, a CLI
  job): source, campaign, location, tags, model version, status (running/ok/failed) and
  counts. Its rows are the CLI's per-face rows (``ImageResult.rows``): probabilities are
  kept as a JSON object ``{label: p}``, so models with other labels fit too. Live sessions
  store per-second aggregates, never frames. Alerts are stored with what was sent.
  Images are never stored.
* Every write is one transaction. A write that fails marks its run ``failed`` with the
  reason, and so does a ``Store.run()`` block that raises; the rows written before stay.
  Concurrent writers are safe on every backend (SQLite: WAL, a busy timeout and ``BEGIN
  IMMEDIATE`` for writes; deadlocks and lock timeouts are retried), and forked processes
  open their own connections.
* Names (files, campaigns, tags) are stored exactly as given, once made valid Unicode
  (``sanitize.text``); neutralising formulas is for CSV output, not for storage.

Readers return pandas DataFrames with UTC, timezone-aware times. Problems (bad URL, server
down, unknown run, bad rows) raise ``StoreError`` with a message fit for a user.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from src import config
from src.analytics.groups import sentiment_of
from src.common import sanitize

SOURCES = ("photo", "batch", "video", "live", "api", "cli")
RUN_STATUSES = ("running", "ok", "failed")
ROW_STATUSES = ("ok", "no_face", "error")
NAME_MAX = 255  # campaign, location, tag, model version: indexed columns (utf8mb4 on MySQL)
LABEL_MAX = 64
TAGS_MAX = 100
ERROR_MAX = 10_000  # characters of an error text kept
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
CONNECT_TIMEOUT_S = 10
RETENTION_EVERY_S = 3600  # a long-lived process re-applies the retention at most this often
WRITE_ATTEMPTS = 6

RUN_COLUMNS = (
    "run_id",
    "run_time",
    "finished_at",
    "source",
    "campaign",
    "location",
    "tags",
    "model_version",
    "status",
    "error",
    "files",
    "faces",
)
RESULT_RUN_COLUMNS = ("run_id", "run_time", "source", "campaign", "location", "tags", "model_version")
RESULT_FACE_COLUMNS = ("file", "face", "x", "y", "w", "h", "emotion", "confidence", "sentiment")
RESULT_TAIL_COLUMNS = ("status", "error", "time", "track_id", "at")
ALERT_COLUMNS = ("alert_id", "at", "run_id", "kind", "message", "payload", "delivered", "error")
_INT_COLUMNS = ("face", "x", "y", "w", "h", "track_id")
# Row keys that are not class probabilities (every other key of a row is one).
_ROW_KEYS = frozenset(
    {"file", "face", "x", "y", "w", "h", "emotion", "confidence", "sentiment", "status", "error"}
    | {"time", "time_s", "track_id", "frame", "emotions", "run_id"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUN_ID = re.compile(r"[0-9a-f]{32}")

T = TypeVar("T")


class StoreError(Exception):
    """A problem with the results store, worded for the person who can fix it."""


class RunClosedError(StoreError):
    """The run is unknown (never started, deleted) or finished: it takes no more rows."""


# --- Schema -------------------------------------------------------------------------------
# The tables as the code reads and writes them; src/analytics/migrations/ creates them (keep in step).


class UTCDateTime(sa.TypeDecorator):
    """Naive UTC in the database (every backend alike), timezone-aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        return None if value is None else _as_utc(value).replace(tzinfo=None)

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
_CHILDREN = (FACES, LIVE_SECONDS, ALERTS)


# --- Values in ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: Any) -> datetime:
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


def _text(value: Any) -> str:
    """Free text (file names, errors, messages) as storable Unicode: surrogate escapes become
    ``\\xNN`` (sanitize.text) and NUL, which PostgreSQL refuses in text, ``\\x00``."""
    return sanitize.text(str(value)).replace("\x00", "\\x00")


def _name(value: Any, what: str) -> str | None:
    """A campaign, location, tag or model version: stripped, one line, at most NAME_MAX characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"the {what} must be text, not {type(value).__name__}")
    value = sanitize.text(value).strip()
    if not value:
        return None
    if _CONTROL.search(value):
        raise StoreError(f"the {what} {sanitize.line(value)!r} holds control characters (line breaks, tabs...)")
    if len(value) > NAME_MAX:
        raise StoreError(f"the {what} is {len(value)} characters long; the limit is {NAME_MAX}")
    return value


def _tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        tag = _name(tag, "tag")
        if tag is not None and tag not in out:
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise StoreError(f"{len(out)} tags; the limit is {TAGS_MAX} per run")
    return out


def _names(value: Any, what: str) -> list[str | None] | None:
    """A filter value: one name or several (None = no filter; "" = runs without one)."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return [_name(v, what) for v in values]


def _source(source: Any) -> str:
    if source not in SOURCES:
        raise StoreError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    return source


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _int(value: Any, what: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise StoreError(f"{what}={value!r} is not a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what}={value!r} is not a whole number") from None
    if not number.is_integer():
        raise StoreError(f"{what}={value!r} is not a whole number")
    if not -(2**31) <= number < 2**31:  # the columns are 32-bit on every backend
        raise StoreError(f"{what}={value!r} is out of range")
    return int(number)


def _float(value: Any, what: str) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise StoreError(f"{what}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise StoreError(f"{what}={value!r} is not a finite number")
    return number


def _label(value: Any, what: str = "emotion") -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} label {value!r} is not text")
    if len(value) > LABEL_MAX:
        raise StoreError(f"{what} label {value[:40]!r}... is longer than {LABEL_MAX} characters")
    return value


def _face_record(run_id: str, row: Any, labels: Sequence[str] | None, index: int) -> dict:
    """One stored face row from a row of the CLI's per-face table (see the module docstring)."""
    if not isinstance(row, Mapping):
        raise StoreError(f"row {index}: expected a dict of the per-face table, got {type(row).__name__}")
    where = f"row {index}"
    file = row.get("file")
    if _blank(file):
        raise StoreError(f"{where}: no file name")
    status = row.get("status") or "ok"
    if status not in ROW_STATUSES:
        raise StoreError(f"{where}: status {status!r} is not one of {', '.join(ROW_STATUSES)}")
    given = row.get("emotions")
    if isinstance(given, Mapping):
        candidates = dict(given)
    elif labels is not None:
        candidates = {label: row.get(label) for label in labels}
    else:
        candidates = {k: v for k, v in row.items() if k not in _ROW_KEYS}
    emotions: dict[str, float] = {}
    for key, value in candidates.items():
        if _blank(value):
            continue
        label = _label(key, f"{where}: class")
        emotions[label] = _float(value, f"{where}: {key}")
    emotion = _label(row.get("emotion"), f"{where}: emotion")
    time_value = row.get("time", row.get("time_s"))
    return {
        "run_id": run_id,
        "file": _text(file),
        "face": _int(row.get("face"), f"{where}: face"),
        "x": _int(row.get("x"), f"{where}: x"),
        "y": _int(row.get("y"), f"{where}: y"),
        "w": _int(row.get("w"), f"{where}: w"),
        "h": _int(row.get("h"), f"{where}: h"),
        "emotion": emotion,
        "confidence": _float(row.get("confidence"), f"{where}: confidence"),
        "sentiment": sentiment_of(emotion) if emotion else None,
        "emotions": emotions or None,
        "status": status,
        "error": _text(row.get("error") or "")[:ERROR_MAX],
        "time": _float(time_value, f"{where}: time"),
        "track_id": _int(row.get("track_id"), f"{where}: track_id"),
    }


def _second_record(run_id: str, item: Any, index: int) -> dict:
    if not isinstance(item, Mapping):
        raise StoreError(f"live second {index}: expected a dict with second, faces, counts")
    if item.get("second") is None:
        raise StoreError(f"live second {index}: no 'second' time")
    counts = item.get("counts") or {}
    if not isinstance(counts, Mapping):
        raise StoreError(f"live second {index}: counts must be a dict {{label: n}}")
    clean = {}
    for label, n in counts.items():
        clean[_label(label, f"live second {index}: class")] = _int(n, f"live second {index}: counts[{label}]") or 0
    return {
        "run_id": run_id,
        "second": _as_utc(item["second"]),
        "faces": _int(item.get("faces"), f"live second {index}: faces") or 0,
        "counts": clean,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def error_text(exc: BaseException) -> str:
    """How a run's failure is recorded: the exception's type and message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- URLs and engines ---------------------------------------------------------------------

_DRIVERS = {"sqlite": ("sqlite", "pysqlite"), "postgresql": ("postgresql", "psycopg"), "mysql": ("mysql", "pymysql")}
# Accepted URL schemes (postgres:// is Heroku's) and the dialect each one means.
_BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
EXAMPLE_URLS = (
    "sqlite:///PATH/results.db, postgresql+psycopg://USER:PASSWORD@HOST:5432/DB "
    "or mysql+pymysql://USER:PASSWORD@HOST:3306/DB"
)


def _hide(text: str) -> str:
    """A URL fit to print: the password replaced by ***."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", text)


def parse_url(raw: str | URL) -> tuple[URL, str]:
    """The URL to connect with (our drivers filled in) and its dialect: sqlite, postgresql or mysql."""
    text = str(raw).strip() if not isinstance(raw, URL) else raw.render_as_string(hide_password=False)
    if not text:
        raise StoreError(f"no database URL: set FER_DATABASE_URL, e.g. {EXAMPLE_URLS}")
    try:
        url = make_url(text)
    except ArgumentError:
        raise StoreError(f"{_hide(text)!r} is not a database URL; expected e.g. {EXAMPLE_URLS}") from None
    name, _, driver = url.drivername.partition("+")
    dialect = _BACKENDS.get(name)
    if dialect is None:
        raise StoreError(f"unsupported database {name!r} in {_hide(text)!r}; use {EXAMPLE_URLS}")
    backend, ours = _DRIVERS[dialect]
    if driver not in ("", ours):
        raise StoreError(f"database driver {driver!r} is not installed for {dialect}; use {backend}+{ours}://...")
    url = url.set(drivername=f"{backend}+{ours}")
    if dialect == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})  # emoji need 4-byte UTF-8
    if dialect == "sqlite" and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        try:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the SQLite file {url.database}: {exc.strerror}") from None
    return url, dialect


def _make_engine(url: URL, dialect: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        if not url.database or url.database == ":memory:":
            kwargs["poolclass"] = StaticPool  # one in-memory database, not one per connection
    else:
        kwargs["pool_pre_ping"] = True  # servers drop idle connections (MySQL's wait_timeout)
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if dialect == "mysql":
            kwargs["pool_recycle"] = 3600
    try:
        engine = sa.create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use {url.render_as_string(hide_password=True)}: {exc}") from None
    if dialect == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    # We issue BEGIN ourselves (below): pysqlite's implicit BEGIN would start writes as
    # readers, and two such writers fail with "database is locked" instead of waiting.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("fer_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _transient(exc: DBAPIError) -> bool:
    """A deadlock, lock timeout or busy database: the transaction was rolled back and may be retried."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):
        return True
    code = orig.args[0] if orig is not None and orig.args else None
    if code in (1205, 1213):  # MySQL: lock wait timeout, deadlock
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


# --- The store ----------------------------------------------------------------------------


@dataclass
class RunHandle:
    """The run of ``Store.run()``: its id, and ``add(rows)`` for its rows as they come."""

    store: Store
    id: str
    rows: int = 0
    seconds: int = 0

    def add(self, rows: Iterable[Mapping], *, labels: Sequence[str] | None = None) -> int:
        added = self.store.add_rows(self.id, rows, labels=labels)
        self.rows += added
        return added

    def add_live_seconds(self, seconds: Iterable[Mapping]) -> int:
        added = self.store.add_live_seconds(self.id, seconds)
        self.seconds += added
        return added


class Store:
    """The results database at one URL (see the module docstring). Thread-safe."""

    def __init__(self, url: str | None = None, *, retention_days: int | None = None):
        connect_url, self.dialect = parse_url(config.DATABASE_URL if url is None else url)
        self.url = connect_url.render_as_string(hide_password=True)  # safe to show
        self.engine = _make_engine(connect_url, self.dialect)
        self._writer = self.engine.execution_options(fer_write=True)
        self._retention_days = float(config.RETENTION_DAYS if retention_days is None else retention_days)
        self._retention_at: float | None = None  # monotonic time of the last pass
        try:
            self._migrate()
            self._maybe_retention()
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
        reason = detail[0] if detail else type(exc).__name__
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connect_error(exc):
            return StoreError(f"cannot connect to the results database {self.url}: {reason}")
        return StoreError(f"results database {self.url}: {doing} failed: {reason}")

    def _transaction(self, work: Callable[[Connection], T], doing: str, *, write: bool = True) -> T:
        engine = self._writer if write else self.engine
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if write and attempt + 1 < WRITE_ATTEMPTS and _transient(exc):
                    time.sleep(0.02 * 2**attempt * (1 + random.random()))
                    continue
                raise self._error(exc, doing) from exc
            except SQLAlchemyError as exc:
                raise self._error(exc, doing) from exc
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Connection], T], doing: str) -> T:
        return self._transaction(work, doing, write=False)

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

    def _claim(self, conn: Connection, run_id: str, files: int = 0, faces: int = 0) -> None:
        """Lock a running run's row (and add to its counts), or say why it cannot take rows.

        Updating the parent first serialises writers of one run: on MySQL, inserting children
        first (a shared lock through the foreign key) then updating would deadlock."""
        _check_run_id(run_id)
        result = conn.execute(
            RUNS.update()
            .where(RUNS.c.id == run_id, RUNS.c.status == "running")
            .values(files=RUNS.c.files + files, faces=RUNS.c.faces + faces)
        )
        if result.rowcount == 1:
            return
        status = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
        if status is None:
            raise RunClosedError(f"unknown run {run_id} (deleted, or never started)")
        raise RunClosedError(f"run {run_id} is finished ({status}); it takes no more rows")

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
        """Record a new run (status ``running``) and return its id (32 hex digits)."""
        self._maybe_retention()
        values = {
            "id": uuid.uuid4().hex,
            "created_at": _now() if created_at is None else _as_utc(created_at),
            "finished_at": None,
            "source": _source(source),
            "campaign": _name(campaign, "campaign"),
            "location": _name(location, "location"),
            "tags": _tags(tags),
            "model_version": _name(model_version, "model version") or "",
            "status": "running",
            "error": "",
            "files": 0,
            "faces": 0,
        }
        self._transaction(lambda conn: conn.execute(RUNS.insert().values(**values)), "starting a run")
        return values["id"]

    def add_rows(self, run_id: str, rows: Iterable[Mapping], *, labels: Sequence[str] | None = None) -> int:
        """Store rows of the per-face table for a running run, in one transaction; returns how many.

        Probabilities are the row's keys that are not table columns (or only ``labels``,
        or a row's own ``emotions`` dict). ``files`` counts the distinct file names of this call."""
        with self._failing_run(run_id):
            records = [_face_record(run_id, row, labels, i) for i, row in enumerate(rows)]
            files = len({r["file"] for r in records})
            faces = sum(r["status"] == "ok" for r in records)

            def work(conn: Connection) -> int:
                self._claim(conn, run_id, files, faces)
                if records:
                    conn.execute(FACES.insert(), records)
                return len(records)

            return self._transaction(work, "storing rows")

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

    def finish_run(self, run_id: str, status: str = "ok", error: str = "", *, if_running: bool = False) -> None:
        """Mark a run ``ok`` or ``failed`` (with the error text). With ``if_running`` a run that
        is already finished is left as it is (a failure keeps its first reason)."""
        if status not in ("ok", "failed"):
            raise StoreError(f"a run finishes 'ok' or 'failed', not {status!r}")
        _check_run_id(run_id)
        values = {"status": status, "error": _text(error or "")[:ERROR_MAX], "finished_at": _now()}
        where = [RUNS.c.id == run_id] + ([RUNS.c.status == "running"] if if_running else [])

        def work(conn: Connection) -> None:
            if conn.execute(RUNS.update().where(*where).values(**values)).rowcount == 1:
                return
            if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise RunClosedError(f"unknown run {run_id} (deleted, or never started)")

        self._transaction(work, "finishing a run")

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
        self.finish_run(handle.id, "ok", if_running=True)

    def save_rows(self, source: str, rows: Iterable[Mapping], **run_fields: Any) -> str:
        """A whole run in one call: start, rows, finish; returns the run id."""
        labels = run_fields.pop("labels", None)
        with self.run(source, **run_fields) as run:
            run.add(rows, labels=labels)
        return run.id

    def add_live_seconds(self, run_id: str, seconds: Iterable[Mapping]) -> int:
        """Per-second aggregates of a live session: ``{"second": datetime (UTC), "faces": n,
        "counts": {label: n}}`` each; returns how many were stored."""
        with self._failing_run(run_id):
            records = [_second_record(run_id, item, i) for i, item in enumerate(seconds)]

            def work(conn: Connection) -> int:
                self._claim(conn, run_id)
                if records:
                    conn.execute(LIVE_SECONDS.insert(), records)
                return len(records)

            return self._transaction(work, "storing live seconds")

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
        kind_value = _label(kind, "alert kind")
        if not kind_value:
            raise StoreError("an alert needs a kind")
        if not isinstance(payload, Mapping):
            raise StoreError(f"an alert payload must be a dict, not {type(payload).__name__}")
        try:
            payload_value = json.loads(json.dumps(dict(payload), default=_json_default, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"the alert payload is not JSON: {exc}") from None
        values = {
            "created_at": _now() if at is None else _as_utc(at),
            "run_id": run_id,
            "kind": kind_value,
            "message": _text(message or ""),
            "payload": payload_value,
            "delivered": bool(delivered),
            "error": _text(error or "")[:ERROR_MAX],
        }

        def work(conn: Connection) -> int:
            if run_id is not None:
                _check_run_id(run_id)
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
                for table in _CHILDREN:  # explicit, whatever the foreign keys do
                    conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
                conn.execute(RUNS.delete().where(RUNS.c.id.in_(chunk)))
            return len(ids)

        return self._transaction(work, doing)

    def delete_run(self, run_id: str) -> int:
        """Delete a run with its rows, live seconds and alerts; 1, or 0 when there is no such run."""
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            return 0
        return self._delete_runs(RUNS.c.id == run_id, "deleting a run")

    def delete_campaign(self, campaign: str) -> int:
        """Delete every run of a campaign (rows included); returns how many runs."""
        name = _name(campaign, "campaign")
        if name is None:
            raise StoreError("name the campaign to delete")
        return self._delete_runs(RUNS.c.campaign == name, "deleting a campaign")

    def apply_retention(self, days: int | float) -> int:
        """Delete runs created more than ``days`` days ago (0 or less: none); returns how many."""
        if not days or days <= 0:
            return 0
        cutoff = _now() - timedelta(days=float(days))
        return self._delete_runs(RUNS.c.created_at < cutoff, "applying the retention")

    # -- reading

    def get_run(self, run_id: str) -> dict | None:
        """One run as a dict (the columns of ``runs()``), or None."""
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
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
    ) -> pd.DataFrame:
        """Runs, newest first (columns ``RUN_COLUMNS``); ``since`` inclusive, ``until`` exclusive."""
        where = _filters(campaign=campaign, location=location, source=source, since=since, until=until)
        return self._runs_frame(sa.and_(sa.true(), *where), limit)

    def _runs_frame(self, where: sa.ColumnElement[bool], limit: int | None = None) -> pd.DataFrame:
        query = sa.select(RUNS).where(where).order_by(RUNS.c.created_at.desc(), RUNS.c.id)
        if limit is not None:
            query = query.limit(int(limit))
        rows = self._read(lambda conn: conn.execute(query).mappings().all(), "reading runs")
        records = [
            {
                "run_id": r["id"],
                "run_time": r["created_at"],
                "finished_at": r["finished_at"],
                "source": r["source"],
                "campaign": r["campaign"] or "",
                "location": r["location"] or "",
                "tags": list(r["tags"] or []),
                "model_version": r["model_version"],
                "status": r["status"],
                "error": r["error"],
                "files": int(r["files"]),
                "faces": int(r["faces"]),
            }
            for r in rows
        ]
        frame = pd.DataFrame(records, columns=list(RUN_COLUMNS))
        for column in ("run_time", "finished_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame.astype({"files": "int64", "faces": "int64"})

    def results(
        self,
        *,
        campaign: str | Sequence[str] | None = None,
        location: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        run_id: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One row per stored face/file row with its run's columns, oldest run first.

        Columns: RESULT_RUN_COLUMNS, RESULT_FACE_COLUMNS, one per label (in the order the
        models gave them; the configured labels when nothing is stored), RESULT_TAIL_COLUMNS.
        ``at`` is the run's time plus the row's media ``time`` (video, live), else the run's time.
        Time filters apply to the run's time."""
        where = _filters(campaign=campaign, location=location, source=source, since=since, until=until)
        if run_id is not None:
            ids = [run_id] if isinstance(run_id, str) else list(run_id)
            where.append(RUNS.c.id.in_(ids))
        query = (
            sa.select(
                RUNS.c.id.label("run_id"),
                RUNS.c.created_at,
                RUNS.c.source,
                RUNS.c.campaign,
                RUNS.c.location,
                RUNS.c.tags,
                RUNS.c.model_version,
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
        rows = self._read(lambda conn: conn.execute(query).mappings().all(), "reading results")
        labels: dict[str, None] = {}
        for r in rows:
            labels.update(dict.fromkeys(r["emotions"] or ()))
        label_list = list(labels) or list(config.EMOTIONS)
        records = []
        for r in rows:
            probs = r["emotions"] or {}
            record = {
                "run_id": r["run_id"],
                "run_time": r["created_at"],
                "source": r["source"],
                "campaign": r["campaign"] or "",
                "location": r["location"] or "",
                "tags": list(r["tags"] or []),
                "model_version": r["model_version"],
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

    def live_seconds(self, *, run_id: str | None = None, since: Any = None, until: Any = None) -> pd.DataFrame:
        """Per-second aggregates of live sessions: run_id, second (UTC), faces, one count per label."""
        where = []
        if run_id is not None:
            where.append(LIVE_SECONDS.c.run_id == run_id)
        if since is not None:
            where.append(LIVE_SECONDS.c.second >= _as_utc(since))
        if until is not None:
            where.append(LIVE_SECONDS.c.second < _as_utc(until))
        query = (
            sa.select(LIVE_SECONDS).where(sa.and_(sa.true(), *where)).order_by(LIVE_SECONDS.c.second, LIVE_SECONDS.c.id)
        )
        rows = self._read(lambda conn: conn.execute(query).mappings().all(), "reading live seconds")
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

    def alerts(self, *, since: Any = None, until: Any = None, run_id: str | None = None) -> pd.DataFrame:
        """Recorded alerts, oldest first (columns ``ALERT_COLUMNS``; ``payload`` is a dict)."""
        where = []
        if since is not None:
            where.append(ALERTS.c.created_at >= _as_utc(since))
        if until is not None:
            where.append(ALERTS.c.created_at < _as_utc(until))
        if run_id is not None:
            where.append(ALERTS.c.run_id == run_id)
        query = sa.select(ALERTS).where(sa.and_(sa.true(), *where)).order_by(ALERTS.c.created_at, ALERTS.c.id)
        rows = self._read(lambda conn: conn.execute(query).mappings().all(), "reading alerts")
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


def _check_run_id(run_id: Any) -> None:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RunClosedError(f"unknown run {sanitize.line(str(run_id))!r} (a run id is 32 hex digits)")


def _is_connect_error(exc: SQLAlchemyError) -> bool:
    """Whether the driver failed to reach the server at all (as opposed to a failing statement)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if type(orig).__module__.startswith("psycopg") and getattr(orig, "sqlstate", None) is None:
        return True  # psycopg's connection failures carry no SQLSTATE
    code = orig.args[0] if orig.args else None
    return code in (2002, 2003, 2005, 2006, 2013) or "unable to open database" in str(orig).lower()


def _filters(*, campaign: Any, location: Any, source: Any, since: Any, until: Any) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    for column, value, what in ((RUNS.c.campaign, campaign, "campaign"), (RUNS.c.location, location, "location")):
        names = _names(value, what)
        if names is not None:
            named = [n for n in names if n is not None]
            where.append(sa.or_(column.in_(named), column.is_(None)) if None in names else column.in_(named))
    if source is not None:
        sources = [source] if isinstance(source, str) else list(source)
        where.append(RUNS.c.source.in_([_source(s) for s in sources]))
    if since is not None:
        where.append(RUNS.c.created_at >= _as_utc(since))
    if until is not None:
        where.append(RUNS.c.created_at < _as_utc(until))
    return where


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
