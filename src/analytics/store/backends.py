"""The results store's three backends (SQLite, PostgreSQL, MySQL/MariaDB): URLs and their drivers,
engines with each backend's connection settings, and how to read the errors their drivers raise.

Passwords never leave here in clear: printable URLs and error messages show ``***``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from src.analytics.store.errors import StoreError

CONNECT_TIMEOUT_S = 10
# The execution option that makes a SQLite transaction a writer's (BEGIN IMMEDIATE).
WRITE_OPTION = "fer_write"

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


# --- URLs ---------------------------------------------------------------------------------


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


# --- Engines ------------------------------------------------------------------------------


def make_engine(url: URL, dialect: str) -> Engine:
    """An engine for a ``parse_url`` result. On SQLite, a transaction run with the execution
    option ``WRITE_OPTION`` set takes the write lock when it begins."""
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
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# --- Driver errors ------------------------------------------------------------------------


def is_transient(exc: DBAPIError) -> bool:
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


def is_connect_error(exc: SQLAlchemyError) -> bool:
    """Whether the driver failed to reach the server at all (as opposed to a failing statement)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if type(orig).__module__.startswith("psycopg") and getattr(orig, "sqlstate", None) is None:
        return True  # psycopg's connection failures carry no SQLSTATE
    code = orig.args[0] if orig.args else None
    return code in (2002, 2003, 2005, 2006, 2013) or "unable to open database" in str(orig).lower()
