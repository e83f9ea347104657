"""The results store's three backends (SQLite, PostgreSQL, MySQL/MariaDB): URLs and their drivers,
engines with each backend's connection settings, and how to read the errors their drivers raise.

Passwords never leave here in clear: the password of the URL and every query value whose key
names a secret (``password``, ``sslpassword``, ``pwd``, ``...token``, ...) show as ``***`` in
printable URLs and error messages, and the engine's own URL (its repr) holds no query secret:
those reach the driver as connection arguments. A URL that cannot be used, whatever is wrong
with it, is a ``StoreError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
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

# Query keys whose values are secrets (libpq's password/sslpassword, PyMySQL's passwd, ODBC's pwd,
# tokens of managed databases): hidden wherever a URL is shown.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
_HIDDEN = "FERHIDDEN7f3a"  # stands in for a secret while a URL is rendered, then becomes ***
_SHORTEST_SCRUBBED = 4  # shorter secrets are not searched for in drivers' messages (too many false hits)


def is_secret_key(key: str) -> bool:
    """Whether a URL query key holds a secret (password, passwd, pwd, sslpassword, ...token, ...secret...)."""
    return _SECRET_KEY.search(key) is not None


def printable_url(url: URL) -> str:
    """``url`` fit to print: its password and every secret query value shown as ``***``."""
    query = {key: _HIDDEN if is_secret_key(key) else value for key, value in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace(_HIDDEN, "***")


def _hide(text: str) -> str:
    """A URL given as text fit to print, parseable or not."""
    try:
        return printable_url(make_url(text))
    except Exception:
        text = re.sub(r"(//[^:/@?#]*:)[^?#]*@", r"\1***@", text)
        return re.sub(rf"([?&;][^=&;#]*(?:{_SECRET_KEY.pattern})[^=&;#]*=)[^&;#]*", r"\1***", text, flags=re.I)


def url_secrets(url: URL) -> list[str]:
    """The secret values in ``url`` (password, secret query values), to scrub from messages."""
    found = [url.password or ""]
    for key, value in url.query.items():
        if is_secret_key(key):
            found += [value] if isinstance(value, str) else list(value)
    return [str(v) for v in found if v and len(str(v)) >= _SHORTEST_SCRUBBED]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` (a driver's message) with every secret, as given or URL-encoded, replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote_plus(secret))):
            text = text.replace(form, "***")
    return text


def parse_url(raw: str | URL) -> tuple[URL, str]:
    """The URL to connect with (our drivers filled in; a SQLite file as an absolute path) and its
    dialect: sqlite, postgresql or mysql. Anything unusable raises ``StoreError``."""
    text = str(raw).strip() if not isinstance(raw, URL) else raw.render_as_string(hide_password=False)
    if not text:
        raise StoreError(f"no database URL: set FER_DATABASE_URL, e.g. {EXAMPLE_URLS}")
    try:
        url = make_url(text)
    except (ArgumentError, ValueError, TypeError) as exc:
        # SQLAlchemy raises ValueError when the port is not a number (its only int() conversion)
        why = " (its port is not a number)" if isinstance(exc, ValueError) else ""
        raise StoreError(f"{_hide(text)!r} is not a database URL{why}; expected e.g. {EXAMPLE_URLS}") from None
    shown = printable_url(url)
    if url.port is not None and not 0 < url.port < 65536:
        raise StoreError(f"{shown!r}: port {url.port} is out of range (1-65535)")
    name, _, driver = url.drivername.partition("+")
    dialect = _BACKENDS.get(name)
    if dialect is None:
        raise StoreError(f"unsupported database {name!r} in {shown!r}; use {EXAMPLE_URLS}")
    backend, ours = _DRIVERS[dialect]
    if driver not in ("", ours):
        raise StoreError(f"database driver {driver!r} is not installed for {dialect}; use {backend}+{ours}://...")
    url = url.set(drivername=f"{backend}+{ours}")
    if dialect == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})  # emoji need 4-byte UTF-8
    if dialect == "sqlite":
        if url.host or url.port or url.username or url.password:
            raise StoreError(f"{shown!r} is not a SQLite URL: a file is sqlite:////ABSOLUTE/PATH or sqlite:///RELATIVE")
        path = sqlite_file(url)
        if path is not None:
            # Absolute from here on: a later chdir must not point new connections at another file.
            url = url.set(database=path)
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of the SQLite file {path}: {exc.strerror}") from None
    return url, dialect


def sqlite_file(url: URL) -> str | None:
    """The absolute path of a SQLite URL's database file; None in memory or for a ``file:`` URI."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(os.path.expanduser(database))


# --- Engines ------------------------------------------------------------------------------


def make_engine(url: URL, dialect: str) -> Engine:
    """An engine for a ``parse_url`` result. On SQLite, a transaction run with the execution
    option ``WRITE_OPTION`` set takes the write lock when it begins. A URL the driver refuses
    (an unknown option, a bad value) raises ``StoreError`` here or on the first connection."""
    shown, secrets = printable_url(url), url_secrets(url)
    # Query secrets reach the driver as connection arguments (as SQLAlchemy would pass them), so
    # the engine's URL, shown by its repr and logs, holds none. SQLite has no password: dropped.
    hidden = {key: value for key, value in url.query.items() if is_secret_key(key)}
    url = url.difference_update_query(hidden)
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        if not url.database or url.database == ":memory:":
            kwargs["poolclass"] = StaticPool  # one in-memory database, not one per connection
    else:
        kwargs["pool_pre_ping"] = True  # servers drop idle connections (MySQL's wait_timeout)
        kwargs["connect_args"] = {**hidden, "connect_timeout": CONNECT_TIMEOUT_S}
        if dialect == "mysql":
            kwargs["pool_recycle"] = 3600
    try:
        engine = sa.create_engine(url, **kwargs)
    except Exception as exc:  # e.g. an option of the wrong type, an unknown driver
        raise StoreError(f"cannot use {shown}: {scrub(first_line(exc), secrets)}") from None

    def connect(dialect_, _record, cargs, cparams):
        # The driver's own errors become DBAPIErrors; anything else it raises for a bad URL
        # (PyMySQL: TypeError for an unknown option, ValueError for a bad port) would not.
        try:
            return dialect_.connect(*cargs, **cparams)
        except Exception as exc:
            if isinstance(exc, dialect_.loaded_dbapi.Error):
                raise
            raise StoreError(
                f"cannot connect to the results database {shown}: {scrub(first_line(exc), secrets)}"
            ) from None

    sa.event.listen(engine, "do_connect", connect)
    if dialect == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type when the message says nothing by itself."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return text if text and not isinstance(exc, (TypeError, ValueError, OSError)) else f"{type(exc).__name__}: {text}"


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
