"""The results store (src/analytics/store/) on real databases: SQLite, PostgreSQL and MariaDB.

The same suite runs on each backend (``db_url`` is parametrised): PostgreSQL and MariaDB are
real servers started in a temporary folder by tests/db_servers.py, and every test gets a
fresh, empty database. The CLI's ``predict --store`` and ``runs`` commands close the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from db_servers import empty_database, new_database
from PIL import Image
from sqlalchemy.engine import make_url
from support import free_port

from src import config
from src.analytics.store import (
    ALERTS,
    FACES,
    LIVE_SECONDS,
    MIGRATIONS_DIR,
    PEOPLE,
    RUNS,
    SOURCES,
    Store,
    StoreError,
    open_store,
)
from src.cli import main
from src.engine.faces import Box
from src.engine.manifest import read_manifest
from src.engine.results import FaceResult, ImageResult

ROOT = Path(__file__).resolve().parents[2]
LABELS = config.EMOTIONS
BACKENDS = ("sqlite", "postgresql", "mariadb")


@pytest.fixture(scope="session")
def shared_databases() -> dict[str, str]:
    return {}


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, shared_databases) -> str:
    """An empty database on each backend (``db_servers.empty_database``)."""
    return empty_database(request, tmp_path, shared_databases)


@pytest.fixture(params=BACKENDS)
def new_db_url(request, tmp_path) -> str:
    """A database created for this test only: nothing in it, not even tables."""
    return new_database(request, tmp_path)


@pytest.fixture
def store(db_url):
    opened = Store(db_url)
    yield opened
    opened.close()


def face(emotion: str, *, box=(10, 20, 30, 40), labels=LABELS) -> FaceResult:
    probs = {label: 0.01 for label in labels}
    probs[emotion] = 1 - 0.01 * (len(labels) - 1)
    return FaceResult(box=Box(*box), emotions=probs, emotion=emotion, confidence=probs[emotion])


def rows_of(*results: ImageResult, labels=LABELS) -> list[dict]:
    """The CLI's per-face rows, made by the real ImageResult.rows."""
    return [row for result in results for row in result.rows(labels)]


def sample_rows(prefix: str = "img", n_faces: int = 2) -> list[dict]:
    return rows_of(
        ImageResult(f"{prefix}_group.jpg", [face("happy"), face("angry", box=(50, 60, 70, 80))][:n_faces]),
        ImageResult(f"{prefix}_empty.png", status="no_face"),
        ImageResult(f"{prefix}_broken.jpg", status="error", error="cannot identify image file"),
    )


def table_rows(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


# --- Schema -------------------------------------------------------------------------------


def test_migrations_create_the_schema_from_empty_and_reopening_changes_nothing(new_db_url):
    db_url = new_db_url
    first = Store(db_url)
    try:
        tables = set(sa.inspect(first.engine).get_table_names())
        assert {"runs", "faces", "live_seconds", "people", "alerts", "alembic_version"} <= tables
        indexed = {tuple(ix["column_names"]) for ix in sa.inspect(first.engine).get_indexes("runs")}
        assert {("created_at",), ("campaign", "created_at"), ("source", "created_at")} <= indexed
        assert ("status", "heartbeat_at") in indexed  # revision 0002: the sweep for abandoned runs
        for table in (RUNS, FACES, LIVE_SECONDS, PEOPLE, ALERTS):  # the migrations and the code agree
            found = [c["name"] for c in sa.inspect(first.engine).get_columns(table.name)]
            assert found == list(table.c.keys()), table.name
        run_id = first.save_rows("batch", sample_rows(), campaign="kept")
    finally:
        first.close()
    second = Store(db_url)  # upgrade head again: a no-op that keeps the data
    try:
        with second.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()]
        assert second.runs()["run_id"].tolist() == [run_id]
        assert len(second.results()) == 4
    finally:
        second.close()
    expected = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}[db_url.split(":")[0].split("+")[0]]
    assert second.dialect == expected


# --- Writing and reading runs -------------------------------------------------------------


def test_a_run_round_trips_with_its_rows_and_counts(store):
    run_id = store.start_run("batch", campaign="Spring", location="Lyon", tags=["a", "b", "a"], model_version="v2")
    assert len(run_id) == 32
    assert store.get_run(run_id)["status"] == "running"
    assert store.add_rows(run_id, sample_rows()) == 4
    store.finish_run(run_id)

    runs = store.runs()
    assert len(runs) == 1
    run = runs.iloc[0]
    assert (run["source"], run["campaign"], run["location"], run["tags"]) == ("batch", "Spring", "Lyon", ["a", "b"])
    assert (run["model_version"], run["status"], run["error"], run["files"], run["faces"]) == ("v2", "ok", "", 3, 2)
    assert run["run_time"].tzinfo is not None and run["finished_at"] >= run["run_time"]

    df = store.results()
    assert list(df.columns) == [
        *("run_id", "run_time", "source", "campaign", "location", "tags", "model_version"),
        *("file", "face", "x", "y", "w", "h", "emotion", "confidence", "sentiment"),
        *LABELS,
        *("status", "error", "time", "track_id", "at"),
    ]
    assert df["file"].tolist() == ["img_group.jpg", "img_group.jpg", "img_empty.png", "img_broken.jpg"]
    assert df["status"].tolist() == ["ok", "ok", "no_face", "error"]
    assert df["emotion"].tolist() == ["happy", "angry", "", ""]
    assert df["sentiment"].tolist() == ["positive", "negative", "", ""]
    assert df["error"].tolist()[-1] == "cannot identify image file"
    assert df.loc[1, ["face", "x", "y", "w", "h"]].tolist() == [1, 50, 60, 70, 80]
    assert df["x"].isna().tolist() == [False, False, True, True]
    assert df.loc[0, "happy"] == pytest.approx(0.94) and df.loc[0, "angry"] == pytest.approx(0.01)
    assert df["confidence"].tolist()[:2] == pytest.approx([0.94, 0.94])
    assert (df["at"] == df["run_time"]).all() and str(df["run_time"].dt.tz) == "UTC"


def test_video_and_live_rows_keep_media_time_and_track_ids(store):
    rows = sample_rows("clip", 1)[:1]
    rows = [{**rows[0], "time": 12.5, "track_id": 3}, {**rows[0], "face": 1, "time": 13.25, "track_id": 4}]
    run_id = store.save_rows("video", rows, campaign="clips")
    df = store.results(run_id=run_id)
    assert df["time"].tolist() == [12.5, 13.25] and df["track_id"].tolist() == [3, 4]
    assert (df["at"] - df["run_time"]).dt.total_seconds().tolist() == [12.5, 13.25]


def test_a_model_with_other_labels_is_stored_as_it_is(store):
    labels = ("pos", "neg")
    rows = rows_of(ImageResult("a.jpg", [face("pos", labels=labels)]), labels=labels)
    store.save_rows("api", rows, model_version="binary-1")
    df = store.results()
    assert [c for c in df.columns if c in ("pos", "neg", *LABELS)] == ["pos", "neg"]
    assert df.loc[0, "pos"] == pytest.approx(0.99) and df.loc[0, "sentiment"] == "neutral"  # unknown label


def test_odd_names_round_trip_exactly(store):
    long_name = "📷" * 300 + "é" * 700 + ".jpg"
    files = ["=cmd|' /C calc'!A0.jpg", "<b>bold</b> & <script>.png", "emoji 😀🎉 名前.jpg", long_name, "+sum(1).jpg"]
    rows = rows_of(*(ImageResult(name, [face("sad")]) for name in files))
    campaign, location = '=HYPERLINK("http://x")😀', "<img src=x onerror=alert(1)>"
    tags = ["-2+3", "@tag", "🎉", "x" * 255]
    run_id = store.save_rows("batch", rows, campaign=campaign, location=location, tags=tags, model_version="v2 🚀")
    df = store.results(run_id=run_id)
    assert df["file"].tolist() == files
    assert (df["campaign"].unique().tolist(), df["location"].unique().tolist()) == ([campaign], [location])
    assert df.loc[0, "tags"] == tags and df.loc[0, "model_version"] == "v2 🚀"
    assert store.campaigns() == [campaign] and store.locations() == [location]
    assert store.runs(campaign=campaign)["run_id"].tolist() == [run_id]
    # Undecodable file-name bytes (surrogate escapes) are stored as \xNN, like the CLI prints them.
    undecodable = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")
    store.save_rows("cli", rows_of(ImageResult(undecodable, status="no_face")))
    assert "caf\\xe9.jpg" in store.results(source="cli")["file"].tolist()


def test_names_compare_exactly_case_and_emoji_included(store):
    for name in ("Spring", "spring", "😀", "😁", "Café", "Cafe"):
        store.save_rows("photo", sample_rows(), campaign=name)
    assert store.campaigns() == sorted(["Spring", "spring", "😀", "😁", "Café", "Cafe"])
    for name in ("Spring", "😀", "Cafe"):
        assert store.runs(campaign=name)["campaign"].tolist() == [name]
        assert set(store.results(campaign=name)["campaign"]) == {name}


def test_bad_names_and_rows_are_refused_with_clear_messages(store):
    with pytest.raises(StoreError, match="unknown source 'webcam'"):
        store.start_run("webcam")
    with pytest.raises(StoreError, match="campaign is 256 characters long; the limit is 255"):
        store.start_run("batch", campaign="c" * 256)
    with pytest.raises(StoreError, match="control characters"):
        store.start_run("batch", location="two\nlines")
    run_id = store.start_run("batch")
    with pytest.raises(StoreError, match=r"row 1: confidence='high' is not a number"):
        store.add_rows(run_id, [sample_rows()[0], {**sample_rows()[0], "confidence": "high"}])
    with pytest.raises(StoreError, match="row 0: status 'maybe'"):
        store.add_rows(run_id, [{**sample_rows()[0], "status": "maybe"}])
    with pytest.raises(StoreError, match="row 0: x=1e\\+20 is out of range"):
        store.add_rows(run_id, [{**sample_rows()[0], "x": 1e20}])
    assert table_rows(store, "faces") == 0  # a refused batch stores nothing of itself
    run = store.get_run(run_id)  # and fails its run, keeping the first reason
    assert (run["status"], run["error"]) == ("failed", "storing failed: row 1: confidence='high' is not a number")
    with pytest.raises(StoreError, match="unknown run 0123456789abcdef0123456789abcdef"):
        store.add_rows("0123456789abcdef0123456789abcdef", sample_rows())
    with pytest.raises(StoreError, match="unknown run 'nope'"):
        store.finish_run("nope")


# --- Transactions and concurrency ---------------------------------------------------------


def test_a_writer_that_raises_leaves_a_failed_run_with_its_rows_so_far(store):
    with pytest.raises(RuntimeError, match="disk on fire"):
        with store.run("batch", campaign="crash") as run:
            run.add(sample_rows("first"))
            raise RuntimeError("disk on fire")
    stored = store.get_run(run.id)
    assert (stored["status"], stored["error"]) == ("failed", "RuntimeError: disk on fire")
    kept = store.results(run_id=run.id, include_unfinished=True)
    assert len(kept) == 4 and kept["file"].str.startswith("first_").all()
    with pytest.raises(StoreError, match="is finished \\(failed\\); it takes no more rows"):
        store.add_rows(run.id, sample_rows())

    # A bad batch: the batch is not stored at all, the run is marked failed with the reason.
    with pytest.raises(StoreError, match="row 2"):
        with store.run("batch") as run:
            run.add(sample_rows("good"))
            run.add([*sample_rows("bad")[:2], {"file": "x.jpg", "face": "first"}])
    stored = store.get_run(run.id)
    assert (stored["status"], stored["error"]) == (
        "failed",
        "storing failed: row 2: face='first' is not a whole number",
    )
    assert stored["files"] == 3 and stored["faces"] == 2
    kept = store.results(run_id=run.id, include_unfinished=True)  # a failed run's rows: only when asked
    assert len(kept) == 4 and kept["file"].str.startswith("good_").all()
    assert store.results(run_id=run.id).empty

    run_id = store.save_rows("api", sample_rows())
    assert store.get_run(run_id)["status"] == "ok"

    # A caller that survives a failed write does not turn its run back to ok.
    with store.run("live") as run:
        with pytest.raises(StoreError):
            run.add_live_seconds([{"second": "yesterday-ish"}])
    assert store.get_run(run.id)["status"] == "failed"
    store.finish_run(run.id, "ok")  # an explicit finish is obeyed
    assert store.get_run(run.id)["status"] == "ok"


def test_concurrent_writers_lose_no_row(store):
    """8 threads x 50 faces each, into a shared run and into a run of their own, in small
    transactions that interleave: every row and every count must arrive."""
    threads, faces_each, per_call = 8, 50, 5
    shared = store.start_run("live", campaign="shared")
    barrier = threading.Barrier(threads)
    own: dict[int, str] = {}
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            barrier.wait()
            own[k] = store.start_run("batch", campaign=f"thread-{k}")
            for start in range(0, faces_each, per_call):
                faces = [face("happy", box=(k, i, 10, 10)) for i in range(start, start + per_call)]
                rows = rows_of(ImageResult(f"t{k}_{start}.jpg", faces))
                store.add_rows(shared, rows)
                store.add_rows(own[k], rows)
            store.finish_run(own[k])
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    store.finish_run(shared)
    shared_rows = store.results(run_id=shared)
    assert len(shared_rows) == threads * faces_each
    assert set(zip(shared_rows["x"], shared_rows["y"])) == {(k, i) for k in range(threads) for i in range(faces_each)}
    run = store.get_run(shared)
    assert (run["faces"], run["files"]) == (threads * faces_each, threads * faces_each // per_call)
    for k in range(threads):
        assert len(store.results(campaign=f"thread-{k}")) == faces_each
        assert store.get_run(own[k])["faces"] == faces_each
    assert table_rows(store, "faces") == 2 * threads * faces_each


def test_open_store_gives_one_store_per_url_across_threads(db_url):
    found: list[Store] = []
    workers = [threading.Thread(target=lambda: found.append(open_store(db_url))) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    try:
        assert len(found) == 8 and len({id(s) for s in found}) == 1
        assert open_store(db_url) is found[0]
    finally:
        found[0].close()
    assert open_store(db_url) is not found[0]  # closed stores are forgotten
    open_store(db_url).close()


def _write_in_child(url: str, k: int) -> str:
    return open_store(url).save_rows("batch", sample_rows(f"p{k}"), campaign="forked")


def test_forked_processes_write_through_their_own_connections(db_url):
    """Processes forked from one holding a store (multiprocessing, Ray workers) open their own."""
    import multiprocessing

    parent = open_store(db_url)
    before = parent.save_rows("batch", sample_rows(), campaign="parent")
    try:
        with multiprocessing.get_context("fork").Pool(3) as pool:
            ids = pool.starmap(_write_in_child, [(db_url, k) for k in range(3)])
        assert set(parent.runs(campaign="forked")["run_id"]) == set(ids)
        assert parent.save_rows("batch", sample_rows()) != before  # the parent's pool still works
        assert len(parent.results()) == 5 * 4
    finally:
        parent.close()


# --- Nothing lost silently: failed commits, a SQLite file removed or replaced --------------


def _fail_commits(monkeypatch, store: Store, which: set[int]) -> list[int]:
    """Make the commits numbered in ``which`` (1 = the next one) fail in the driver, as a
    server that drops the connection or a full disk would; returns the commit counter."""
    dialect = store.engine.dialect
    real, seen = dialect.do_commit, [0]

    def commit(dbapi_connection) -> None:
        seen[0] += 1
        if seen[0] in which:
            raise dialect.loaded_dbapi.OperationalError("commit failed: no space left on device")
        real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_commit", commit)
    return seen


def test_a_failed_commit_is_an_error_never_a_run_id(store, monkeypatch):
    # save_rows commits three times: the run, its rows, its finish. Fail each in turn.
    _fail_commits(monkeypatch, store, {1})
    with pytest.raises(StoreError, match="commit failed: no space left on device"):
        store.save_rows("api", sample_rows(), campaign="c1")
    assert store.runs(campaign="c1").empty  # the run was never stored

    _fail_commits(monkeypatch, store, {2})
    with pytest.raises(StoreError, match="commit failed: no space left on device"):
        store.save_rows("api", sample_rows(), campaign="c2")
    run = store.runs(campaign="c2").iloc[0]
    assert run["status"] == "failed" and "commit failed" in run["error"]
    assert len(store.results(campaign="c2", include_unfinished=True)) == 0 == table_rows(store, "faces")

    _fail_commits(monkeypatch, store, {3})
    with pytest.raises(StoreError, match="commit failed: no space left on device"):
        store.save_rows("api", sample_rows(), campaign="c3")
    # Its rows are in, but the run never finished: it is no result, and its lease will run out.
    assert store.runs(campaign="c3")["status"].tolist() == ["running"]
    assert store.results(campaign="c3").empty and len(store.results(campaign="c3", include_unfinished=True)) == 4

    monkeypatch.undo()
    run_id = store.save_rows("api", sample_rows(), campaign="c4")
    assert store.get_run(run_id)["status"] == "ok"


def test_writes_fail_once_the_sqlite_folder_is_deleted_under_an_open_store(tmp_path):
    """Issue 19: with the folder deleted, pooled connections kept writing to the deleted file,
    and 9 of 17 API writes got a run id that was gone on restart."""
    folder = tmp_path / "store"
    url = f"sqlite:///{(folder / 'results.db').as_posix()}"
    store = Store(url)
    try:
        before = store.save_rows("api", sample_rows())
        running = store.start_run("live")
        results: list[BaseException | str] = []

        def write() -> None:
            try:
                results.append(store.save_rows("api", sample_rows()))
            except BaseException as exc:  # the expected outcome, checked below
                results.append(exc)

        # Warm the pool with several connections, as a busy server would have.
        workers = [threading.Thread(target=store.runs) for _ in range(4)]
        [w.start() for w in workers]
        [w.join(30) for w in workers]
        shutil.rmtree(folder)
        workers = [threading.Thread(target=write) for _ in range(17)]
        [w.start() for w in workers]
        [w.join(60) for w in workers]
        assert len(results) == 17 and all(isinstance(r, StoreError) for r in results), results
        assert "the database file was removed or replaced" in str(results[0])
        for call in (
            lambda: store.start_run("api"),
            lambda: store.add_rows(running, sample_rows()),
            lambda: store.add_live_seconds(running, _seconds(datetime.now(UTC), 1)),
            lambda: store.record_alert(kind="k", message="m", payload={}, delivered=True),
            lambda: store.runs(),
            lambda: store.results(),
        ):
            with pytest.raises(StoreError, match="removed or replaced"):
                call()
        assert not folder.exists()  # nothing recreated the folder or the file
    finally:
        store.close()
    reopened = Store(url)  # a restart opens a new, empty database
    try:
        assert reopened.runs().empty and reopened.get_run(before) is None
    finally:
        reopened.close()


def test_writes_fail_once_the_sqlite_file_is_replaced(tmp_path):
    path = tmp_path / "results.db"
    store = Store(f"sqlite:///{path.as_posix()}")
    try:
        store.save_rows("api", sample_rows(), campaign="original")
        with Store(f"sqlite:///{(tmp_path / 'other.db').as_posix()}") as other:
            other.save_rows("batch", sample_rows(), campaign="backup")
        for suffix in ("-wal", "-shm"):  # a restore moves a whole database in
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp_path / "other.db", path)
        with pytest.raises(StoreError, match="removed or replaced while this process had it open"):
            store.save_rows("api", sample_rows())
        with pytest.raises(StoreError, match="removed or replaced"):
            store.campaigns()
    finally:
        store.close()
    with Store(f"sqlite:///{path.as_posix()}") as reopened:
        assert reopened.campaigns() == ["backup"]


# --- Leases: runs left running by a process that died are marked failed -------------------

# A writer process: starts a run, stores a row every 0.1 s (each renews the lease) until killed.
_WRITER = """
import sys, time
from src.analytics.store import Store
store = Store(sys.argv[1])
run_id = store.start_run("cli", campaign="killed")
store.add_rows(run_id, [{"file": "first.jpg", "status": "no_face"}])
print(run_id, flush=True)
while True:
    time.sleep(0.1)
    store.add_rows(run_id, [{"file": "next.jpg", "status": "no_face"}])
"""


def test_a_run_whose_writer_was_killed_is_marked_failed_once_its_lease_expires(db_url, monkeypatch):
    lease = 2.0
    monkeypatch.setattr(config, "RUN_LEASE_S", lease)  # FER_RUN_LEASE_S
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, db_url], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        run_id = child.stdout.readline().strip()
        assert len(run_id) == 32, f"the writer did not start (exit {child.poll()})"
        time.sleep(lease + 0.5)
        with Store(db_url) as store:  # a writer that is alive keeps its run, however long it runs
            assert store.get_run(run_id)["status"] == "running"
            assert store.results(campaign="killed", include_running=True)["run_id"].unique().tolist() == [run_id]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
    with Store(db_url) as store:  # killed a moment ago: its lease still runs
        assert store.get_run(run_id)["status"] == "running"
    time.sleep(lease + 0.2)
    with Store(db_url) as store:
        run = store.get_run(run_id)
        assert run["status"] == "failed"
        assert re.fullmatch(
            r"abandoned: the process that wrote it stopped \(no heartbeat since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)",
            run["error"],
        )
        assert run["finished_at"] == run["heartbeat_at"] and run["files"] >= 2
        assert store.results(campaign="killed").empty  # its partial rows are no result
        assert store.results(campaign="killed", include_running=True).empty
        assert len(store.results(campaign="killed", include_unfinished=True)) == run["files"]
        assert store.runs(status="failed")["run_id"].tolist() == [run_id]


def test_a_long_lived_store_marks_abandoned_runs_as_runs_start_and_on_retention(db_url):
    with Store(db_url, lease_s=0.5) as store:
        kept = store.start_run("live")
        lost = store.start_run("live")
        abandoned_later = store.start_run("batch")
        time.sleep(0.3)
        store.renew_lease(kept)  # a writer between long steps
        store.add_rows(abandoned_later, sample_rows())
        time.sleep(0.3)
        assert store.start_run("api")  # a lease has passed since the last look: look again
        assert store.get_run(lost)["status"] == "failed" and store.get_run(kept)["status"] == "running"
        with pytest.raises(StoreError, match=r"is finished \(failed\); it takes no more rows"):
            store.add_rows(lost, sample_rows())  # the dead writer's run takes nothing more
        time.sleep(0.6)
        assert store.apply_retention(0) == 0  # retention passes look too
        assert store.get_run(abandoned_later)["status"] == "failed"
        assert store.get_run(abandoned_later)["error"].startswith("abandoned: ")
        assert store.fail_abandoned_runs() == 0
        with pytest.raises(StoreError, match="must be a positive number of seconds"):
            Store(db_url, lease_s=0)


def test_runs_left_running_before_leases_existed_are_marked_failed_after_the_upgrade(new_db_url):
    """A database at revision 0001 (no heartbeat column) holding a run a crash left running."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(new_db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    long_ago = datetime(2026, 1, 5, 9, 30)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            common = {"source": "cli", "tags": "[]", "model_version": "v1", "error": "", "files": 1, "faces": 0}
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, created_at, finished_at, source, tags, model_version, status, error, files,"
                    " faces) VALUES (:id, :created_at, :finished_at, :source, :tags, :model_version, :status, :error,"
                    " :files, :faces)"
                ),
                [
                    {**common, "id": "a" * 32, "created_at": long_ago, "finished_at": None, "status": "running"},
                    {**common, "id": "b" * 32, "created_at": long_ago, "finished_at": long_ago, "status": "ok"},
                ],
            )
    finally:
        engine.dispose()
    with Store(new_db_url) as store:
        crashed, done = store.get_run("a" * 32), store.get_run("b" * 32)
        assert crashed["status"] == "failed"
        assert (
            crashed["error"]
            == "abandoned: the process that wrote it stopped (no heartbeat since 2026-01-05 09:30:00 UTC)"
        )
        assert done["status"] == "ok" and done["heartbeat_at"] == done["finished_at"]


# --- Readers count finished runs only, unless asked ---------------------------------------


def test_readers_leave_out_runs_that_did_not_finish_unless_asked(store):
    now = datetime.now(UTC)
    done = store.save_rows("batch", sample_rows("done"))
    with pytest.raises(RuntimeError):
        with store.run("batch") as failed_run:
            failed_run.add(sample_rows("failed"))
            raise RuntimeError("crash")
    writing = store.start_run("live")
    store.add_rows(writing, sample_rows("writing"))
    store.add_live_seconds(writing, _seconds(now, 2))
    stale = store.start_run("live")
    store.add_rows(stale, sample_rows("stale"))
    store.add_live_seconds(stale, _seconds(now, 3))
    live_done = store.start_run("live")
    store.add_live_seconds(live_done, _seconds(now, 4))
    store.finish_run(live_done)
    with store.engine.begin() as conn:  # a writer that stopped an hour ago, not yet swept
        conn.execute(RUNS.update().where(RUNS.c.id == stale).values(heartbeat_at=now - timedelta(hours=1)))

    def runs_of(frame) -> set[str]:
        return set(frame["run_id"])

    assert runs_of(store.results()) == {done}
    assert runs_of(store.results(include_running=True)) == {done, writing}
    assert runs_of(store.results(include_unfinished=True)) == {done, failed_run.id, writing, stale}
    assert store.results(run_id=failed_run.id).empty  # naming a run does not widen the filter
    assert runs_of(store.live_seconds()) == {live_done}
    assert runs_of(store.live_seconds(include_running=True)) == {live_done, writing}
    assert runs_of(store.live_seconds(include_unfinished=True)) == {live_done, writing, stale}
    assert len(store.live_seconds(run_id=writing, include_running=True)) == 2
    assert len(store.runs()) == 5  # the list of runs shows every status
    assert runs_of(store.runs(status="running")) == {writing, stale}
    assert runs_of(store.runs(status=["ok", "failed"])) == {done, failed_run.id, live_done}
    with pytest.raises(StoreError, match="unknown run status 'done'"):
        store.runs(status="done")


# --- People beside the samples ------------------------------------------------------------


@pytest.fixture(scope="module")
def drifting_clip_rows(tmp_path_factory) -> list[dict]:
    """The issue's clip, analysed for real: a 44 px face drifting at 60 px/s for 5 s, sampled
    every 0.5 s through src/streams/video.py with the bundled detector and model (as
    tests/engine/test_tracking.py builds it), as the dashboard's store rows (persist.video_rows)."""
    import cv2
    from skimage import data as skdata

    from src.analytics import persist
    from src.engine.inference import get_recognizer
    from src.streams import video

    context = cv2.cvtColor(skdata.astronaut()[40:190, 150:300], cv2.COLOR_RGB2BGR)
    side = round(150 * 44 / 97)
    patch = cv2.resize(context, (side, side), interpolation=cv2.INTER_AREA)
    path, fps = tmp_path_factory.mktemp("clip") / "drift.avi", 10.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    for i in range(int(5 * fps)):
        frame = np.full((360, 640, 3), 140, np.uint8)
        x = round(40 + 60 * i / fps)
        frame[140 : 140 + side, x : x + side] = patch
        writer.write(frame)
    writer.release()
    recognizer = get_recognizer()
    faces = video.analyze_video(recognizer, path).faces
    return persist.video_rows(faces, "drift.avi", recognizer.class_names)


def test_a_photo_with_three_faces_is_three_people(store):
    photo = ImageResult(
        "group.jpg", [face("happy"), face("sad", box=(50, 60, 70, 80)), face("happy", box=(90, 9, 40, 40))]
    )
    run_id = store.save_rows("photo", rows_of(photo, ImageResult("empty.png", status="no_face")), campaign="Shop")
    run = store.get_run(run_id)
    assert (run["faces"], run["samples"], run["people"]) == (3, 3, 3)
    people = store.people()
    assert people["person"].tolist() == [0, 1, 2] and people["face"].tolist() == [0, 1, 2]
    assert people["emotion"].tolist() == ["happy", "sad", "happy"] and set(people["kind"]) == {"photo"}
    assert people["sentiment"].tolist() == ["positive", "negative", "positive"]
    assert (people["samples"] == 1).all() and people["dwell_s"].isna().all() and people["track_id"].isna().all()
    assert (people["first_seen"] == people["run_time"]).all() and (people["at"] == people["first_seen"]).all()
    assert people.loc[1, "sad"] == pytest.approx(0.94) and people["campaign"].tolist() == ["Shop"] * 3
    assert list(people.columns) == [
        *("run_id", "run_time", "source", "campaign", "location", "tags", "model_version"),
        *("person", "kind", "file", "face", "track_id", "first_seen", "last_seen", "samples", "dwell_s"),
        *("emotion", "confidence", "sentiment", *LABELS, "status", "at"),
    ]
    # Rows added in several calls keep numbering their people.
    with store.run("batch") as run:
        run.add(rows_of(ImageResult("a.jpg", [face("angry")])))
        run.add(rows_of(ImageResult("b.jpg", [face("fear"), face("happy")])))
    assert store.people(run_id=run.id)["person"].tolist() == [0, 1, 2]
    assert store.get_run(run.id)["people"] == 3


def test_a_clip_of_one_drifting_face_is_one_person(store, drifting_clip_rows):
    rows = drifting_clip_rows
    assert len(rows) >= 9 and {r["track_id"] for r in rows} == {0}  # found in (nearly) every sample
    glitch = {**rows[0], "track_id": 7, "time": 2.0, "x": 500}  # a one-sample track: a detector glitch
    saved = persist_save("video", [*rows, glitch], store, campaign="Clips")
    run = store.get_run(saved)
    assert (run["samples"], run["people"]) == (len(rows) + 1, 1)  # the glitch stays a sample
    person = store.people(run_id=saved).iloc[0]
    times = [r["time"] for r in rows]
    assert (person["kind"], person["file"], person["track_id"], person["samples"]) == (
        "track",
        "drift.avi",
        0,
        len(rows),
    )
    assert person["dwell_s"] == pytest.approx(max(times) - min(times) + 0.5)  # 5.0 s when seen in all 10
    assert (person["first_seen"] - person["run_time"]).total_seconds() == pytest.approx(min(times))
    assert (person["last_seen"] - person["run_time"]).total_seconds() == pytest.approx(max(times))
    probs = np.mean([[r[label] for label in LABELS] for r in rows], axis=0)
    assert person[list(LABELS)].to_numpy(float) == pytest.approx(probs)
    assert person["emotion"] == LABELS[int(np.argmax(probs))] and person["confidence"] == pytest.approx(probs.max())
    assert len(store.results(run_id=saved)) == len(rows) + 1


def persist_save(source: str, rows: list[dict], store: Store, **fields) -> str:
    from src.analytics import persist

    saved = persist.save_rows(store, source, rows, **persist.run_fields(fields.get("campaign"), fields.get("location")))
    assert saved.ok, saved.error
    return saved.run_id


def _tracked(file: str, track_id: int, times, emotion: str = "happy") -> list[dict]:
    probs = {label: 0.01 for label in LABELS} | {emotion: 0.94}
    return [
        {"file": file, "face": 0, "emotion": emotion, "confidence": 0.94, **probs, "time": t, "track_id": track_id}
        for t in times
    ]


def test_video_people_are_made_when_the_run_finishes_ok(store):
    run_id = store.start_run("video", campaign="Clips")
    store.add_rows(run_id, _tracked("a.mp4", 0, [0.0, 0.5]) + _tracked("b.mp4", 0, [0.0, 0.5, 1.0], "sad"))
    store.add_rows(run_id, _tracked("a.mp4", 0, [1.0, 1.5]) + _tracked("a.mp4", 1, [1.5]))
    assert store.get_run(run_id)["people"] == 0  # tracks may go on in the next call
    assert store.people(include_running=True).empty
    store.finish_run(run_id)
    people = store.people(run_id=run_id)
    # One person per file and track id (track 0 of two videos are two people); one sample is none.
    assert list(zip(people["file"], people["track_id"], people["samples"])) == [("a.mp4", 0, 4), ("b.mp4", 0, 3)]
    assert people["dwell_s"].tolist() == pytest.approx([2.0, 1.5])
    assert people["emotion"].tolist() == ["happy", "sad"]
    assert (store.get_run(run_id)["samples"], store.get_run(run_id)["people"]) == (8, 2)
    store.finish_run(run_id, if_running=True)  # finishing again adds nobody
    assert len(store.people(run_id=run_id)) == 2

    with pytest.raises(RuntimeError):
        with store.run("video") as failed:
            failed.add(_tracked("c.mp4", 0, [0.0, 0.5, 1.0]))
            raise RuntimeError("decoder crashed")
    assert store.get_run(failed.id)["people"] == 0  # a failed run's samples stay samples
    assert store.people(include_unfinished=True)["run_id"].unique().tolist() == [run_id]


def test_people_min_samples_is_a_setting(db_url):
    with Store(db_url, person_min_samples=1) as store:
        run_id = store.save_rows("video", _tracked("a.mp4", 0, [0.0]) + _tracked("a.mp4", 1, [0.5]))
        assert store.get_run(run_id)["people"] == 2
    with Store(db_url, person_min_samples=3) as store:
        run_id = store.save_rows("video", _tracked("a.mp4", 0, [0.0, 0.5]) + _tracked("a.mp4", 1, [0.0, 0.5, 1.0]))
        assert store.people(run_id=run_id)["track_id"].tolist() == [1]


def _live_recording(store: Store, seconds: float = 15.0) -> str:
    """One face in front of the (fake) live camera for ``seconds`` at 5 fps, recorded as the
    dashboard records it; returns the run's id."""
    from live_support import fake_session, feed

    from src.analytics import persist

    session, recognizer, _ = fake_session("happy")
    recorder = persist.LiveRecorder("Desk", "Lyon", "v3")
    start = 1_773_000_000.0
    for k in range(int(seconds)):
        feed(session, recognizer, "happy", start + k, 1.0)
        assert recorder.error == ""
        recorder.flush(store, session.stats, session.labels, now=start + k + 1.2)
    recorder.flush(store, session.stats, session.labels, now=start + seconds + 0.5, final=True)
    run_id = recorder.run_id
    recorder.finish(store)
    return run_id


def test_a_live_session_with_one_face_for_15_seconds_is_one_person_and_15_face_seconds(store):
    run_id = _live_recording(store, 15.0)
    run = store.get_run(run_id)
    assert (run["source"], run["status"], run["samples"], run["people"]) == ("live", "ok", 15, 1)
    assert store.live_seconds(run_id=run_id)["faces"].sum() == 15  # face-seconds
    person = store.people(run_id=run_id).iloc[0]
    # Detected every 3rd frame at 5 fps: 25 detections 0.6 s apart, from 0 to 14.4 s.
    assert (person["kind"], person["file"], person["samples"], person["emotion"]) == (
        "track",
        "(live camera)",
        25,
        "happy",
    )
    assert person["dwell_s"] == pytest.approx(15.0)
    assert person["first_seen"] == pd.Timestamp(1_773_000_000, unit="s", tz="UTC")
    assert (person["last_seen"] - person["first_seen"]).total_seconds() == pytest.approx(14.4)
    assert person["confidence"] == pytest.approx(0.9, abs=1e-6)


def test_live_people_are_stored_as_their_tracks_end(store):
    from live_support import fake_session, feed

    from src.analytics import persist

    session, recognizer, detector = fake_session("sad")
    recorder = persist.LiveRecorder("Desk")
    t = feed(session, recognizer, "sad", 2_000.0, 4.0)  # someone for 4 s
    detector.boxes = []
    t = feed(session, recognizer, "sad", t, 3.0)  # gone: the tracker lets go after ~1.6 s
    recorder.flush(store, session.stats, session.labels, now=t)
    assert store.get_run(recorder.run_id)["people"] == 1  # stored while the camera still runs
    detector.boxes = [(40, 40, 90, 90)]
    t = feed(session, recognizer, "happy", t, 0.2)  # a glitch: one detection
    detector.boxes = []
    t = feed(session, recognizer, "happy", t, 3.0)
    detector.boxes = [(400, 200, 80, 80)]
    t = feed(session, recognizer, "happy", t, 2.0)  # someone else, still there at the stop
    assert session.snapshot(t).people == 2
    recorder.flush(store, session.stats, session.labels, now=t + 1, final=True)
    recorder.finish(store)
    people = store.people(run_id=store.runs()["run_id"].iloc[0])
    assert people["emotion"].tolist() == ["sad", "happy"] and people["person"].tolist() == [0, 1]
    assert people["samples"].tolist() == [7, 4] and recorder.people_saved == 2
    assert store.runs().iloc[0]["people"] == 2


def test_people_are_checked_before_anything_is_stored(store):
    run_id = store.start_run("live")
    good = {"kind": "track", "file": "(live camera)", "emotion": "happy", "first_seen": 10.0, "last_seen": 12.0}
    assert store.add_people(run_id, [good]) == 1
    bad = [
        ({**good, "kind": "crowd"}, "person 1: kind 'crowd' is not one of photo, track"),
        ({**good, "emotion": ""}, "person 1: no emotion"),
        ({**good, "last_seen": 9.0}, "person 1: last seen before first seen"),
        ({**good, "samples": 0}, "person 1: samples=0"),
        ({**good, "dwell_s": -1}, "person 1: dwell_s=-1.0 is negative"),
        ({**good, "probabilities": {"happy": "lots"}}, "person 1: happy='lots' is not a number"),
    ]
    for person, message in bad:
        with pytest.raises(StoreError, match=re.escape(message)):
            store.add_people(run_id, [good, person])
        run_id = store.start_run("live")  # the failed write failed its run
    assert store.people(include_unfinished=True)["emotion"].tolist() == ["happy"]


def test_deleting_a_run_deletes_its_people(store):
    run_id = store.save_rows("photo", sample_rows())
    other = store.save_rows("photo", sample_rows("other"))
    assert table_rows(store, "people") == 4
    store.delete_run(run_id)
    assert table_rows(store, "people") == 2 and set(store.people()["run_id"]) == {other}


def test_the_upgrade_to_people_carries_stored_runs_over(new_db_url):
    """A database at revision 0002 holding a batch, a video with two tracks and a one-sample
    glitch, a video still running and a live session: 0003 fills samples and people."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(new_db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    when = datetime(2026, 2, 3, 10, 0)
    runs = {"batch": "b" * 32, "video": "c" * 32, "running": "d" * 32, "live": "e" * 32}
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            common = {"created_at": when, "tags": "[]", "model_version": "v2", "error": "", "files": 1}
            for name, run_id in runs.items():
                status = "running" if name == "running" else "ok"
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (id, created_at, source, tags, model_version, status, error, files, faces,"
                        " heartbeat_at) VALUES (:id, :created_at, :source, :tags, :model_version, :status, :error,"
                        " :files, :faces, :created_at)"
                    ),
                    {
                        **common,
                        "id": run_id,
                        "source": "video" if name == "running" else name,
                        "status": status,
                        "faces": {"batch": 2, "video": 6, "running": 2, "live": 0}[name],
                    },
                )

            def face_row(run_id, emotion, time=None, track=None, probs=None, status="ok"):
                conn.execute(
                    sa.text(
                        "INSERT INTO faces (run_id, file, face, emotion, confidence, sentiment, emotions, status,"
                        " error, time, track_id) VALUES (:run_id, :file, 0, :emotion, 0.8, :sentiment, :emotions,"
                        " :status, '', :time, :track)"
                    ),
                    {
                        "run_id": run_id,
                        "file": "f",
                        "emotion": emotion,
                        "status": status,
                        "time": time,
                        "track": track,
                        "sentiment": "negative" if emotion == "sad" else "positive",
                        "emotions": json.dumps(probs) if probs else None,
                    },
                )

            face_row(runs["batch"], "happy", probs={"happy": 0.8, "sad": 0.2})
            face_row(runs["batch"], "sad")
            face_row(runs["batch"], None, status="no_face")
            for k, t in enumerate((0.0, 0.5, 1.0)):
                face_row(
                    runs["video"], "happy" if k else "sad", t, 0, {"happy": 0.6 if k else 0.3, "sad": 0.4 if k else 0.7}
                )
            face_row(runs["video"], "sad", 1.0, 1, {"sad": 0.9, "happy": 0.1})
            face_row(runs["video"], "sad", 1.5, 1, {"sad": 0.7, "happy": 0.3})
            face_row(runs["video"], "happy", 0.5, 2, {"happy": 1.0})  # one sample: no person
            face_row(runs["running"], "happy", 0.0, 0)
            face_row(runs["running"], "happy", 0.5, 0)
            conn.execute(
                sa.text("INSERT INTO live_seconds (run_id, second, faces, counts) VALUES (:r, :s, :f, '{}')"),
                [{"r": runs["live"], "s": when + timedelta(seconds=i), "f": 2} for i in range(5)],
            )
    finally:
        engine.dispose()
    with Store(new_db_url) as store:
        counts = {name: (store.get_run(i)["samples"], store.get_run(i)["people"]) for name, i in runs.items()}
        assert counts == {"batch": (2, 2), "video": (6, 2), "running": (2, 0), "live": (10, 0)}
        video = store.people(run_id=runs["video"])
        assert video["track_id"].tolist() == [0, 1] and video["samples"].tolist() == [3, 2]
        assert video["emotion"].tolist() == ["happy", "sad"] and video["happy"].tolist() == pytest.approx([0.5, 0.2])
        assert video["dwell_s"].tolist() == pytest.approx([1.5, 1.0])
        assert video["first_seen"].tolist() == [
            pd.Timestamp(when, tz="UTC"),
            pd.Timestamp(when, tz="UTC") + pd.Timedelta(seconds=1),
        ]
        batch = store.people(run_id=runs["batch"])
        assert batch["kind"].tolist() == ["photo", "photo"] and batch["emotion"].tolist() == ["happy", "sad"]
        assert batch["happy"].iloc[0] == pytest.approx(0.8) and pd.isna(batch["happy"].iloc[1])
        store.finish_run(runs["running"])  # a run left running: its tracks become people when it finishes
        assert store.get_run(runs["running"])["people"] == 1


def test_fill_demo_store_shows_people_against_samples(store):
    from src.analytics.demo import fill_demo_store, people_against_samples

    assert fill_demo_store(store, weeks=1, now=datetime(2026, 3, 11, 12, tzinfo=UTC)) > 0
    runs = store.runs()
    assert (runs["status"] == "ok").all() and (runs["people"] > 0).all()
    by_source = runs.groupby("source")[["people", "samples"]].sum()
    assert by_source.loc["batch", "people"] == by_source.loc["batch", "samples"]  # a photo's face: both
    assert by_source.loc["video", "samples"] > 3 * by_source.loc["video", "people"]
    assert by_source.loc["live", "samples"] > 10 * by_source.loc["live", "people"]
    assert len(store.people()) == runs["people"].sum()
    table = people_against_samples(runs)
    assert list(table.columns) == ["campaign", "source", "runs", "people", "samples"]
    assert table["people"].sum() == runs["people"].sum()


# --- Retention and deletion ---------------------------------------------------------------


def test_retention_deletes_only_runs_older_than_the_limit(db_url, monkeypatch):
    now = datetime.now(UTC)
    with Store(db_url) as store:
        old = store.save_rows("batch", sample_rows(), campaign="c", created_at=now - timedelta(days=40))
        store.add_live_seconds(live := store.start_run("live", created_at=now - timedelta(days=40)), _seconds(now, 2))
        store.record_alert(kind="negative", message="m", payload={}, delivered=True, run_id=live)
        store.finish_run(live)
        middle = store.save_rows("batch", sample_rows(), campaign="c", created_at=now - timedelta(days=10))
        new = store.save_rows("batch", sample_rows(), campaign="c")
    monkeypatch.setattr(config, "RETENTION_DAYS", 30)
    with Store(db_url) as store:  # applied on open
        assert set(store.runs()["run_id"]) == {middle, new}
        assert old not in set(store.results()["run_id"])
        assert store.live_seconds().empty and store.alerts().empty
        assert table_rows(store, "faces") == 8 and table_rows(store, "live_seconds") == 0
        assert store.apply_retention(0) == 0
        assert store.apply_retention(5) == 1
        assert store.runs()["run_id"].tolist() == [new]


def test_delete_by_run_and_by_campaign(store):
    a1 = store.save_rows("batch", sample_rows(), campaign="A")
    a2 = store.save_rows("photo", sample_rows(), campaign="A")
    b = store.save_rows("batch", sample_rows(), campaign="B")
    store.record_alert(kind="negative", message="m", payload={"n": 1}, delivered=False, run_id=a2)
    assert store.delete_run(a1) == 1
    assert store.delete_run(a1) == 0 and store.delete_run("not-a-run-id") == 0
    assert set(store.runs()["run_id"]) == {a2, b} and table_rows(store, "faces") == 8
    assert store.delete_campaign("A") == 1
    assert store.delete_campaign("A") == 0
    assert store.runs()["run_id"].tolist() == [b] and store.campaigns() == ["B"]
    assert table_rows(store, "faces") == 4 and table_rows(store, "alerts") == 0
    with pytest.raises(StoreError, match="name the campaign"):
        store.delete_campaign("  ")


# --- Filters ------------------------------------------------------------------------------


def test_filters_by_campaign_location_source_and_time(store):
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    ids = {
        "a_photo": store.save_rows("photo", sample_rows(), campaign="A", location="Paris", created_at=t0),
        "a_video": store.save_rows("video", sample_rows(), campaign="A", created_at=t0 + timedelta(days=1)),
        "b_batch": store.save_rows("batch", sample_rows(), campaign="B", location="Lyon", created_at=t0 + timedelta(2)),
        "none_cli": store.save_rows("cli", sample_rows(), created_at=t0 + timedelta(days=3)),
    }

    def runs(**filters) -> set[str]:
        return {k for k, v in ids.items() if v in set(store.runs(**filters)["run_id"])}

    assert runs() == set(ids)
    assert store.runs()["run_id"].tolist() == [ids[k] for k in ("none_cli", "b_batch", "a_video", "a_photo")]
    assert runs(campaign="A") == {"a_photo", "a_video"}
    assert runs(campaign=["A", "B"]) == {"a_photo", "a_video", "b_batch"}
    assert runs(campaign="") == {"none_cli"}
    assert runs(source="video") == {"a_video"} and runs(source=("photo", "cli")) == {"a_photo", "none_cli"}
    assert runs(since=t0 + timedelta(days=1)) == {"a_video", "b_batch", "none_cli"}  # since inclusive
    assert runs(until=t0 + timedelta(days=1)) == {"a_photo"}  # until exclusive
    assert runs(since=date(2026, 3, 2), until="2026-03-04") == {"a_video", "b_batch"}
    assert runs(since=datetime(2026, 3, 2, 13, 0)) == {"b_batch", "none_cli"}  # naive = UTC
    assert runs(campaign="A", source="photo") == {"a_photo"}
    assert len(store.runs(limit=2)) == 2

    def results(**filters) -> set[str]:
        got = set(store.results(**filters)["run_id"])
        return {k for k, v in ids.items() if v in got}

    assert results(campaign="B") == {"b_batch"} and results(location="Paris") == {"a_photo"}
    assert results(source="video", campaign="A") == {"a_video"}
    assert results(since=t0 + timedelta(hours=36), until=t0 + timedelta(days=10)) == {"b_batch", "none_cli"}
    assert results(run_id=[ids["a_photo"], ids["none_cli"]]) == {"a_photo", "none_cli"}
    assert results(campaign="nobody") == set()
    empty = store.results(campaign="nobody")
    assert empty.empty and {"run_id", "happy", "at"} <= set(empty.columns)
    assert store.locations() == ["Lyon", "Paris"]
    with pytest.raises(StoreError, match="unknown source"):
        store.runs(source="tv")
    with pytest.raises(StoreError, match="not a time"):
        store.results(since="last tuesday-ish")


# --- Live sessions and alerts -------------------------------------------------------------


def _seconds(start: datetime, n: int) -> list[dict]:
    return [
        {"second": start + timedelta(seconds=i), "faces": 2, "counts": {"happy": 1, "sad": i % 2, "neutral": 1 - i % 2}}
        for i in range(n)
    ]


def test_live_sessions_store_per_second_aggregates(store):
    start = datetime(2026, 5, 4, 10, 0, 0, 500000, tzinfo=UTC)
    run_id = store.start_run("live", location="Hall 1")
    assert store.add_live_seconds(run_id, _seconds(start, 3)) == 3
    assert store.add_live_seconds(run_id, []) == 0
    store.finish_run(run_id)
    df = store.live_seconds(run_id=run_id)
    assert df["second"].tolist() == [start + timedelta(seconds=i) for i in range(3)]  # microseconds kept
    assert df["faces"].tolist() == [2, 2, 2] and df["sad"].tolist() == [0, 1, 0] and df["happy"].sum() == 3
    assert len(store.live_seconds(since=start + timedelta(seconds=1))) == 2
    assert store.results(run_id=run_id).empty  # never per-frame rows
    with pytest.raises(StoreError, match="no more rows"):
        store.add_live_seconds(run_id, _seconds(start, 1))
    with pytest.raises(StoreError, match="live second 0: no 'second'"):
        store.add_live_seconds(store.start_run("live"), [{"faces": 1}])


def test_alerts_are_recorded_with_their_payload(store):
    run_id = store.start_run("live")
    t = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    payload = {"share": np.float32(0.75), "labels": ["angry", "sad"], "where": "Hall 😀 <b>", "n": np.int64(3)}
    first = store.record_alert(kind="negative", message="Negative 75%", payload=payload, delivered=True, at=t)
    second = store.record_alert(
        kind="negative",
        message="again",
        payload={},
        delivered=False,
        run_id=run_id,
        error="HTTP 503",
        at=t + timedelta(1),
    )
    assert second > first
    df = store.alerts()
    assert df["alert_id"].tolist() == [first, second]
    assert df.loc[0, "payload"] == {"share": 0.75, "labels": ["angry", "sad"], "where": "Hall 😀 <b>", "n": 3}
    assert df["delivered"].tolist() == [True, False] and df.loc[1, "error"] == "HTTP 503"
    assert df["run_id"].tolist() == ["", run_id] and df.loc[0, "at"] == t
    assert store.alerts(since=t + timedelta(hours=1))["alert_id"].tolist() == [second]
    assert store.alerts(until=t + timedelta(hours=1))["alert_id"].tolist() == [first]
    with pytest.raises(StoreError, match="unknown run"):
        store.record_alert(kind="x", message="", payload={}, delivered=True, run_id="f" * 32)
    with pytest.raises(StoreError, match="not JSON"):
        store.record_alert(kind="x", message="", payload={"f": object()}, delivered=True)


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "'not a url' is not a database URL; expected e.g. sqlite:///"),
        ("oracle://u:secret@host/db", "unsupported database 'oracle'"),
        ("postgresql+psycopg2://u@host/db", "database driver 'psycopg2' is not installed for postgresql"),
        ("  ", "no database URL: set FER_DATABASE_URL"),
    ],
)
def test_bad_urls_are_named(url, message):
    with pytest.raises(StoreError, match="^" + re.escape(message)) as caught:
        Store(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql", "postgres", "mariadb"])
def test_an_unreachable_server_is_a_clear_error(scheme):
    port = free_port()
    with pytest.raises(StoreError) as caught:
        Store(f"{scheme}://fer:secret@127.0.0.1:{port}/results")
    text = str(caught.value)
    assert text.startswith("cannot connect to the results database ") and f"127.0.0.1:{port}" in text
    assert "secret" not in text and "***" in text and "\n" not in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pa55word@127.0.0.1:abc/x", "'postgresql://u:***@127.0.0.1:abc/x' is not a database URL"),
        ("mysql://u:pa55word@127.0.0.1:99999/x", "port 99999 is out of range (1-65535)"),
        ("postgresql://u:pa55word@[::1/x", "is not a database URL"),
        ("sqlite://u:pa55word@host/results.db", "is not a SQLite URL"),
        ("mysql+pymysql://u:pa55word@127.0.0.1:1/x?no_such_option=1", "cannot connect to the results database"),
        ("postgresql+psycopg://u:pa55word@127.0.0.1:1/x?no_such_option=1", "invalid connection option"),
        ("mysql+pymysql://u:pa55word@127.0.0.1/x?connect_timeout=soon", "cannot use mysql+pymysql://u:***@"),
        ("mysql+pymysql://u:pa55word@127.0.0.1:1/x?port=abc", "cannot connect to the results database"),
        ("postgresql+psycopg2://u:pa55word@h/x", "database driver 'psycopg2' is not installed"),
    ],
)
def test_malformed_urls_are_store_errors_that_hide_the_password(url, message):
    with pytest.raises(StoreError, match=re.escape(message)) as caught:
        Store(url)
    text = str(caught.value)
    assert "pa55word" not in text and "\n" not in text


def test_a_malformed_url_makes_the_cli_print_one_line_and_exit_2():
    """Issue 19, defect 6: a bad port printed a traceback and exited 1."""
    env = {**os.environ, "FER_DATABASE_URL": "postgresql://u:pa55word@127.0.0.1:abc/x"}
    out = subprocess.run(
        [sys.executable, "-m", "src.cli", "runs", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 'postgresql://u:***@127.0.0.1:abc/x' is not a database URL")
    assert "pa55word" not in out.stderr


_QUERY_SECRETS = "password=S3cret-1&sslpassword=S3cret-2&PWD=S3cret-3&api_token=S3cret-4&Client_Secret=S3cret-5"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql+pymysql"])
def test_secrets_in_the_url_query_are_never_shown(scheme):
    """Issue 19, defect 7: postgresql://u:x@127.0.0.1:1/d?password=SECRET printed SECRET."""
    port = free_port()
    url = f"{scheme}://fer:userinfo-pw@127.0.0.1:{port}/d?{_QUERY_SECRETS}&application_name=shown"
    urls = [url, url.replace(f":{port}/", ":abc/"), url.replace(scheme, "oracle")]  # unreachable, unparseable, unknown
    for bad in urls:
        with pytest.raises(StoreError) as caught:
            Store(bad)
        text = str(caught.value)
        assert "S3cret" not in text and "userinfo-pw" not in text, text
        assert "password=***" in text and "application_name=shown" in text, text


def test_a_store_opened_with_a_query_password_never_shows_it(db_url):
    url = make_url(db_url)
    if url.get_backend_name() == "mysql":  # a user that can only log in with the password
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE USER IF NOT EXISTS 'fer_pw'@'localhost' IDENTIFIED BY 'S3cret-pw'"))
            conn.execute(sa.text(f"GRANT ALL ON `{url.database}`.* TO 'fer_pw'@'localhost'"))
        engine.dispose()
        url = url.set(username="fer_pw")
    url = url.update_query_dict({"password": "S3cret-pw"}).render_as_string(hide_password=False)
    with Store(url) as store:
        run_id = store.save_rows("api", sample_rows())
        assert store.get_run(run_id)["status"] == "ok"
        for shown in (store.url, repr(store), repr(store.engine), str(store.engine.url)):
            assert "S3cret" not in shown, shown
        if store.dialect != "sqlite":  # SQLite has no password: dropped
            assert "password=***" in store.url


def test_an_unusable_sqlite_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder of the SQLite file"):
        Store(f"sqlite:///{blocker}/sub/results.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="results database .*junk.db: creating or upgrading the schema failed"):
        Store(f"sqlite:///{tmp_path / 'junk.db'}")


def test_the_default_url_is_a_sqlite_file_under_outputs_and_git_ignored():
    assert config.DATABASE_URL.startswith("sqlite:///")  # conftest points it at a temporary folder
    out = subprocess.run(
        [sys.executable, "-c", "from src import config; print(config.DATABASE_URL)"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == f"sqlite:///{(ROOT / 'outputs' / 'results.db').as_posix()}"
    for name in ("outputs/results.db", "outputs/results.db-wal", "outputs/results.db-shm"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name
    assert set(SOURCES) == {"photo", "batch", "video", "live", "api", "cli"}


# --- Command line: predict --store, runs list|delete|retention ----------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two photos of a face, a blank image and a text file posing as a JPEG."""
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("store_photos")
    Image.fromarray(skdata.astronaut()).save(root / "astronaut.jpg", quality=92)
    Image.fromarray(skdata.astronaut()).resize((256, 256)).save(root / "small 😀.jpg")
    Image.new("RGB", (160, 120), (200, 200, 200)).save(root / "blank.png")
    (root / "fake.jpg").write_text("not a photo")
    return root


@pytest.fixture
def cli_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
    monkeypatch.setattr(config, "DATABASE_URL", url)
    monkeypatch.setenv("FER_DATABASE_URL", url)
    yield url
    open_store(url).close()


def test_predict_store_saves_the_run_with_campaign_location_tags(photos, cli_db, capsys):
    args = ["predict", str(photos), "--store", "--campaign", "Launch 🚀", "--location", "=Paris", "--tag", "t1"]
    assert main([*args, "--tag", "<b>t2</b>"]) == 1  # fake.jpg could not be read (its row says why)
    out = capsys.readouterr()
    csv_rows = out.out.strip().splitlines()[1:]
    store = open_store(cli_db)
    run = store.runs().iloc[0]
    assert (run["source"], run["campaign"], run["location"], run["tags"]) == (
        "cli",
        "Launch 🚀",
        "=Paris",
        ["t1", "<b>t2</b>"],
    )
    assert run["status"] == "ok" and run["model_version"] == read_manifest(config.MODEL_FILE)["version"]
    assert f"stored run {run['run_id']} ({len(csv_rows)} rows)" in out.err
    df = store.results(run_id=run["run_id"])
    assert len(df) == len(csv_rows) and run["files"] == 4
    assert set(df["status"]) == {"ok", "no_face", "error"}
    assert "astronaut.jpg" in df.loc[df["status"] == "ok", "file"].map(lambda f: Path(f).name).tolist()
    assert df.loc[df["file"].str.endswith("fake.jpg"), "status"].tolist() == ["error"]


def test_predict_without_store_writes_nothing_and_store_options_need_it(photos, cli_db, capsys, tmp_path):
    assert main(["predict", str(photos / "blank.png")]) == 0
    assert not (tmp_path / "cli.db").exists()
    assert main(["predict", str(photos / "blank.png"), "--campaign", "x", "--tag", "y"]) == 2
    assert "--campaign, --tag only apply with --store" in capsys.readouterr().err
    assert main(["predict", str(photos / "blank.png"), "--store", "--campaign", "c" * 300]) == 2
    assert "the campaign is 300 characters long" in capsys.readouterr().err


def test_predict_store_with_an_unreachable_database_is_a_user_error(photos, monkeypatch, capsys):
    monkeypatch.setattr(config, "DATABASE_URL", f"postgresql+psycopg://u:pw@127.0.0.1:{free_port()}/x")
    assert main(["predict", str(photos / "blank.png"), "--store"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot connect to the results database")


def test_predict_store_that_crashes_midway_leaves_a_failed_run_with_the_rows_so_far(photos, cli_db, capsys):
    """A real crash: the output device is full, after the first chunk was stored."""
    assert main(["predict", str(photos), "--store", "--output", "/dev/full"]) == 74
    err = capsys.readouterr().err
    assert "error: No space left on device" in err and "Traceback" not in err
    stored = re.search(r"stored run (\w+) marked failed, with the (\d+) rows stored before", err)
    assert stored
    run = open_store(cli_db).get_run(stored[1])
    assert run["status"] == "failed" and "No space left on device" in run["error"]
    assert len(open_store(cli_db).results(run_id=run["run_id"], include_unfinished=True)) == int(stored[2]) >= 4


def test_runs_list_delete_and_retention(cli_db, capsys, monkeypatch):
    store = open_store(cli_db)
    old = store.save_rows("batch", sample_rows(), campaign="Old", created_at=datetime.now(UTC) - timedelta(days=9))
    keep = store.save_rows("video", sample_rows(), campaign="=Keep <b>", tags=["a", "b"])
    gone = [store.save_rows("photo", sample_rows(), campaign="Gone") for _ in range(2)]

    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["run_id", "started", "(UTC)", "source", "status", "files"]
    assert len(out) == 5 and out[1].startswith(gone[1]) and out[-1].startswith(old)
    assert "=Keep <b>" in out[3] and "a,b" in out[3]
    assert main(["runs", "list", "--campaign", "Gone", "--source", "photo"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["runs", "list", "--format", "csv", "--source", "video"]) == 0
    assert "'=Keep" in capsys.readouterr().out  # CSV cells are neutralised
    assert main(["runs", "list", "--source", "tv"]) == 2
    assert "unknown source 'tv'" in capsys.readouterr().err

    assert main(["runs", "delete", keep]) == 0
    assert capsys.readouterr().out.startswith(f"deleted run {keep} (video, started ")
    assert main(["runs", "delete", keep]) == 2
    assert f"error: no run '{keep}'" in capsys.readouterr().err
    assert main(["runs", "delete", "--campaign", "Gone"]) == 0
    assert capsys.readouterr().out.strip() == "deleted 2 runs of campaign 'Gone' (6 files, 4 people, 4 samples)"
    assert main(["runs", "delete", "--campaign", "Gone"]) == 2
    assert main(["runs", "delete"]) == 2
    capsys.readouterr()

    monkeypatch.setattr(config, "RETENTION_DAYS", 0)
    assert main(["runs", "retention"]) == 0
    assert "retention is off" in capsys.readouterr().out
    monkeypatch.setattr(config, "RETENTION_DAYS", 30)
    assert main(["runs", "retention"]) == 0
    assert capsys.readouterr().out.startswith("deleted 0 runs older than 30 days")
    monkeypatch.setattr(config, "RETENTION_DAYS", 7)
    assert main(["runs", "retention"]) == 0
    assert capsys.readouterr().out.startswith("deleted 1 run older than 7 days")
    assert store.runs().empty
