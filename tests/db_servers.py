"""Real PostgreSQL and MariaDB servers for tests, started by session fixtures and stopped after.

Each server gets a fresh data directory under a temporary folder and listens only on a
unix socket in that folder (no TCP port at all), so nothing outside the test run can
reach it and no port can clash. ``server.new_database()`` returns the SQLAlchemy URL of a
new empty database, so every test starts from nothing.

The binaries come from Debian's ``postgresql`` (``/usr/lib/postgresql/<version>/bin``, not
on PATH) and ``mariadb-server`` packages; when they are missing the tests that need them are
skipped with the package to install. PostgreSQL refuses to run as root, so under root it
runs as the ``postgres`` system user (created by the package) in a folder it owns. The
servers never outlive the test process: they get SIGKILL if it dies.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
SEARCH_PATH = (*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/usr/bin", "/usr/local/sbin")


def _which(*names: str) -> Path | None:
    for name in names:
        for folder in SEARCH_PATH:
            path = Path(folder) / name
            if folder and path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def postgres_bin() -> Path | None:
    """The folder holding initdb and postgres: PATH first, then Debian's versioned folders, newest first."""
    found = _which("initdb")
    if found and (found.parent / "postgres").is_file():
        return found.parent

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    return next((b for b in versions if (b / "initdb").is_file() and (b / "postgres").is_file()), None)


def _die_with_parent() -> None:
    """In the server's process: SIGKILL when the test process goes (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class DatabaseServer:
    """A running server: ``new_database()`` gives the URL of a fresh empty database."""

    kind: str  # "postgresql" | "mariadb"
    root: Path
    process: subprocess.Popen
    socket_dir: Path
    log: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def new_database(self) -> str:
        name = f"fer_test_{next(self._names)}"
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(host=str(self.socket_dir), user="fer", dbname="postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
            return f"postgresql+psycopg://fer@/{name}?host={self.socket_dir}"
        import pymysql

        conn = pymysql.connect(unix_socket=str(self.socket_dir / "mysqld.sock"), user="root")
        try:
            conn.cursor().execute(f"CREATE DATABASE {name}")  # the server's default collation, as a DBA would
        finally:
            conn.close()
        return f"mysql+pymysql://root@localhost/{name}?unix_socket={self.socket_dir / 'mysqld.sock'}"

    def stop(self) -> None:
        if self.process.poll() is None:
            # Throw-away data, so no checkpoint: SIGQUIT is PostgreSQL's immediate shutdown;
            # MariaDB's SIGTERM skips flushing with --innodb-fast-shutdown=3 (below).
            self.process.send_signal(signal.SIGQUIT if self.kind == "postgresql" else signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_ready(server: DatabaseServer, connect) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            server.stop()
            pytest.fail(f"{server.kind} exited with code {server.process.returncode}:\n{_tail(server.log)}")
        try:
            connect()
            return
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"{server.kind} did not accept connections in {START_TIMEOUT_S} s:\n{_tail(server.log)}")
            time.sleep(0.1)


def _run(cmd: list[str], log: Path, what: str, **kwargs) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=START_TIMEOUT_S, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{_tail(log)}")


def start_postgres() -> DatabaseServer:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    as_user: dict = {}
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL refuses to run as root and there is no 'postgres' user to run it as")
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    root = Path(tempfile.mkdtemp(prefix="fer-test-pg-"))
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    log = root / "server.log"
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"}
    common = {"cwd": root, "env": env, **as_user}
    _run(
        [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "fer", "-A", "trust", "-E", "UTF8"]
        + ["--locale=C", "--no-sync", "--no-instructions"],
        log,
        "initdb",
        **common,
    )
    settings = {
        "listen_addresses": "",  # unix socket only
        "unix_socket_directories": str(root),
        "fsync": "off",  # a throw-away cluster: durability buys nothing here
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "16MB",
    }
    args = [str(bin_dir / "postgres"), "-D", str(root / "data")]
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    with open(log, "ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **common)
    server = DatabaseServer("postgresql", root, process, root, log)

    def connect() -> None:
        import psycopg

        psycopg.connect(host=str(root), user="fer", dbname="postgres", connect_timeout=2).close()

    _wait_ready(server, connect)
    return server


def start_mariadb() -> DatabaseServer:
    daemon = _which("mariadbd", "mysqld")
    install = _which("mariadb-install-db", "mysql_install_db")
    if daemon is None or install is None:
        pytest.skip("MariaDB is not installed (Debian: apt-get install -y mariadb-server)")
    root = Path(tempfile.mkdtemp(prefix="fer-test-mariadb-"))
    log = root / "server.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    _run(
        [str(install), "--no-defaults", f"--datadir={root / 'data'}", *user]
        + ["--auth-root-authentication-method=normal", "--skip-test-db"],
        log,
        "mariadb-install-db",
        cwd=root,
    )
    args = [
        str(daemon),
        "--no-defaults",
        f"--datadir={root / 'data'}",
        f"--socket={root / 'mysqld.sock'}",
        "--skip-networking",  # unix socket only
        f"--pid-file={root / 'mysqld.pid'}",
        f"--log-error={log}",
        f"--tmpdir={root}",
        *user,
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=8M",
        "--innodb-flush-log-at-trx-commit=0",  # a throw-away server: durability buys nothing here
        "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
        "--innodb-fast-shutdown=3",
        "--innodb-buffer-pool-dump-at-shutdown=0",
        "--innodb-buffer-pool-load-at-startup=0",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
    ]
    with open(root / "stdout.log", "ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=root, preexec_fn=_die_with_parent)
    server = DatabaseServer("mariadb", root, process, root, log)

    def connect() -> None:
        import pymysql

        pymysql.connect(unix_socket=str(root / "mysqld.sock"), user="root", connect_timeout=2).close()

    _wait_ready(server, connect)
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DatabaseServer]:
    server = start_mariadb()
    try:
        yield server
    finally:
        server.stop()


# --- Databases for the store tests --------------------------------------------------------


def empty_database(request, tmp_path: Path, shared: dict[str, str]) -> str:
    """An empty results database on the backend ``request.param`` (sqlite, postgresql, mariadb):
    a new SQLite file; on the servers one database per module (``shared`` keeps its URL), emptied
    before each test (creating and migrating one per test costs ~1 s on MariaDB)."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    url = shared.get(request.param)
    if url is None:
        url = shared[request.param] = _server(request).new_database()
        return url
    import sqlalchemy as sa

    from src.analytics.store.schema import CHILDREN, RUNS

    engine = sa.create_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names())
        with engine.begin() as conn:
            for table in (*CHILDREN, RUNS):
                if table.name in present:
                    conn.execute(table.delete())
    finally:
        engine.dispose()
    return url


def new_database(request, tmp_path: Path) -> str:
    """A results database created for this test only: nothing in it, not even tables."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    return _server(request).new_database()


def _server(request) -> DatabaseServer:
    return request.getfixturevalue("postgres_server" if request.param == "postgresql" else "mariadb_server")
