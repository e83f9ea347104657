"""The results store's aggregates, pages and streams (src/analytics/store/) on SQLite, PostgreSQL
and MariaDB: tallies written with the rows they count, ``filter_options``, ``count_results``,
``page_results``, ``iter_results``/``iter_people``, revision 0004 carrying stored data over, and
revision 0005's tallies keyed for reading without a join (confidence bands, days, the run's
columns and status) and per-run row counters.

Every figure is checked against the readers that read every row (``results()``, ``people()``,
``live_seconds()``) on a small mixed store, so the tallies can never drift from the rows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from db_servers import empty_database, new_database

from src.analytics.store import (
    CONFIDENCE_BANDS,
    FACES,
    MIGRATIONS_DIR,
    PEOPLE,
    RUNS,
    TALLIES,
    TALLY_COLUMNS,
    Store,
    StoreError,
)

BACKENDS = ("sqlite", "postgresql", "mariadb")
T0 = datetime(2026, 3, 2, 9, 58, 30, tzinfo=UTC)  # the video below runs into the next hour


@pytest.fixture(scope="module")
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


MODEL_LABELS = ("happy", "sad", "angry", "fear")


def row(file: str, emotion: str | None, confidence: float = 0.8, **extra) -> dict:
    """A per-face row as the engine writes it (probabilities as label columns, in the model's order)."""
    if emotion is None:
        return {"file": file, "status": "no_face", **extra}
    rest = (1 - confidence) / (len(MODEL_LABELS) - 1)
    probs = {label: confidence if label == emotion else rest for label in MODEL_LABELS}
    return {"file": file, "emotion": emotion, "confidence": confidence, **probs, **extra}


def fill_mixed(store: Store) -> dict[str, str]:
    """Photos (one doubtful face, one faceless file), a video whose tracks cross an hour, a live
    session with seconds across an hour and people, a run still running and a failed one."""
    ids = {}
    photos = [
        {**row("g.jpg", "happy", 0.9), "face": 0},
        {**row("g.jpg", "sad", 0.55), "face": 1, "uncertain": True},
        {**row("h.jpg", "angry", 0.7), "face": 0, "uncertain": False},
        row("empty.png", None),
    ]
    ids["batch"] = store.save_rows("batch", photos, campaign="spring", location="Lyon", created_at=T0)
    video = [
        {**row("v.mp4", "happy" if t < 60 else "sad", 0.6 + t / 1000), "time": float(t), "track_id": k}
        for t in range(0, 120, 10)
        for k in (1, 2)
    ]
    video[3]["uncertain"] = True
    ids["video"] = store.save_rows("video", video, campaign="spring", created_at=T0 + timedelta(minutes=1))
    with store.run("live", location="Paris", created_at=T0 + timedelta(hours=2)) as run:
        start = datetime(2026, 3, 2, 12, 59, 58, tzinfo=UTC)
        run.add_live_seconds(
            [{"second": start + timedelta(seconds=i), "faces": 2, "counts": {"happy": 1, "fear": 1}} for i in range(4)]
        )
        people = [
            {"kind": "track", "file": "(live camera)", "emotion": "happy", "confidence": 0.7, "track_id": 1}
            | {"first_seen": start, "last_seen": start + timedelta(seconds=3), "samples": 4, "uncertain": False},
            {"kind": "track", "file": "(live camera)", "emotion": "fear", "confidence": 0.4, "track_id": 2}
            | {"first_seen": start + timedelta(seconds=2), "samples": 2, "uncertain": True},
        ]
        run.add_people(people)
        ids["live"] = run.id
    ids["running"] = store.start_run("batch", campaign="autumn", created_at=T0)
    store.add_rows(ids["running"], [row("r.jpg", "happy")])
    with pytest.raises(RuntimeError), store.run("photo", campaign="autumn", created_at=T0) as failed:
        failed.add([row("f.jpg", "sad")])
        raise RuntimeError("crash")
    ids["failed"] = failed.id
    return ids


def tally_counts(frame: pd.DataFrame, *, with_doubt: bool = False) -> Counter:
    keys = ["hour", "campaign", "location", "source", "emotion"] + (["uncertain"] if with_doubt else [])
    return Counter({tuple(k): int(n) for k, n in frame.groupby(keys)["n"].sum().items() if n})


def expected(store: Store, unit: str, min_confidence: float | None = None, **switches) -> Counter:
    """The counts ``tallies`` must give, from the readers of every row."""
    found: Counter = Counter()
    if unit == "person":
        people = store.people(**switches)
        if min_confidence is not None:
            people = people[people["confidence"] >= min_confidence]
        for _, p in people.iterrows():
            found[(p["at"].floor("h"), p["campaign"], p["location"], p["source"], p["emotion"])] += 1
        return found
    rows = store.results(**switches)
    rows = rows[(rows["status"] == "ok") & (rows["emotion"] != "")]
    if min_confidence is not None:
        rows = rows[rows["confidence"] >= min_confidence]
    for _, r in rows.iterrows():
        found[(r["at"].floor("h"), r["campaign"], r["location"], r["source"], r["emotion"])] += 1
    if min_confidence is None:
        runs = store.runs().set_index("run_id")
        seconds = store.live_seconds(**switches)
        for _, s in seconds.iterrows():
            run = runs.loc[s["run_id"]]
            for label in seconds.columns[3:]:
                if s[label]:
                    found[(s["second"].floor("h"), run["campaign"], run["location"], run["source"], label)] += s[label]
    return found


# --- Tallies ------------------------------------------------------------------------------


def test_tallies_equal_the_counts_of_every_row(store):
    fill_mixed(store)
    for unit in ("sample", "person"):
        for switches in ({}, {"include_running": True}, {"include_unfinished": True}):
            got = store.tallies(unit, **switches)
            assert tuple(got.columns) == TALLY_COLUMNS
            assert tally_counts(got) == expected(store, unit, **switches), (unit, switches)
    samples = store.tallies("sample")
    assert str(samples["hour"].dt.tz) == "UTC" and samples["n"].dtype == "int64" and samples["uncertain"].dtype == bool
    assert set(samples["hour"]) == {pd.Timestamp(f"2026-03-02 {h}:00", tz="UTC") for h in (9, 10, 12, 13)}
    # One row per combination, summed in the database.
    assert not samples.duplicated(list(TALLY_COLUMNS[:-1])).any()
    assert samples["n"].sum() == 3 + 24 + 8  # photo faces, video samples, live face-seconds
    people = store.tallies()  # people by default
    assert people["n"].sum() == 3 + 2 + 2  # photo faces, video tracks, live tracks


def test_uncertain_faces_and_people_are_tallied_apart_and_can_be_left_out(store):
    ids = fill_mixed(store)
    samples = store.tallies("sample")
    assert samples.loc[samples["uncertain"], "n"].sum() == 2  # a photo face and a video sample
    sure = store.tallies("sample", include_uncertain=False)
    assert not sure["uncertain"].any() and sure["n"].sum() == samples["n"].sum() - 2
    people = store.tallies("person")
    doubtful = people[people["uncertain"]]
    assert sorted(zip(doubtful["source"], doubtful["emotion"])) == [("batch", "sad"), ("live", "fear")]
    assert store.tallies("person", include_uncertain=False)["n"].sum() == people["n"].sum() - 2
    with store.engine.connect() as conn:  # the flags are stored with the rows: None when not said
        flags = conn.execute(
            sa.select(FACES.c.file, FACES.c.face, FACES.c.uncertain).where(FACES.c.run_id == ids["batch"])
        ).all()
    assert {(f, face): u for f, face, u in flags} == {
        ("g.jpg", 0): None,
        ("g.jpg", 1): True,
        ("h.jpg", 0): False,
        ("empty.png", None): None,
    }


def test_tallies_filter_like_the_readers_with_times_on_the_hour(store):
    ids = fill_mixed(store)

    def total(unit="sample", **filters) -> int:
        return int(store.tallies(unit, **filters)["n"].sum())

    assert total(campaign="spring") == 3 + 24
    assert total(campaign=["spring", None]) == 3 + 24 + 8
    assert total(campaign=[None]) == 8
    assert total(location="Lyon") == 3 and total(location=["Paris"]) == 8
    assert total(source=["video", "live"]) == 24 + 8 and total(source="batch") == 3
    assert total(run_id=ids["video"]) == 24 and total(run_id=ids["running"]) == 0
    assert total(run_id=ids["running"], include_running=True) == 1
    # The video starts at 09:59:30 and runs two minutes: 10:00 holds its samples from 30 s on.
    assert total(source="video", since="2026-03-02T10:00:00Z") == 2 * 9
    assert total(source="video", until=datetime(2026, 3, 2, 10, tzinfo=UTC)) == 2 * 3
    assert total(since="2026-03-02T13:00:00Z", until="2026-03-02T14:00:00Z") == 4  # live seconds 13:00:00-01
    assert total("person", campaign="autumn", include_unfinished=True) == 2  # the running and failed runs' photos
    with pytest.raises(StoreError, match="unknown unit 'faces'"):
        store.tallies("faces")
    with pytest.raises(StoreError, match="unknown source"):
        store.tallies(source="webcam")


def test_min_confidence_counts_the_rows_themselves(store):
    fill_mixed(store)
    for unit in ("sample", "person"):
        for threshold in (0.0, 0.6, 0.65):
            got = store.tallies(unit, min_confidence=threshold)
            assert tuple(got.columns) == TALLY_COLUMNS and str(got["hour"].dt.tz) == "UTC"
            assert tally_counts(got) == expected(store, unit, min_confidence=threshold), (unit, threshold)
    # Without a threshold the people's counts are the tallies'; samples lose the live seconds.
    assert tally_counts(store.tallies("person", min_confidence=0.0), with_doubt=True) == tally_counts(
        store.tallies("person"), with_doubt=True
    )
    with pytest.raises(StoreError, match="min_confidence must be a number"):
        store.tallies("person", min_confidence="high")
    sure = store.tallies("sample", min_confidence=0.0, include_uncertain=False)
    assert sure["n"].sum() == 3 + 24 - 2 and not sure["uncertain"].any()
    assert store.tallies("sample", min_confidence=0.0, source="video", since="2026-03-02T10:00:00Z")["n"].sum() == 18
    # Time bounds apply to the hour, as on the tallies, whatever the minutes of the bounds.
    for since, until in (("2026-03-02T09:30:00Z", "2026-03-02T12:59:59Z"), ("2026-03-02T10:00:00Z", None)):
        for unit in ("sample", "person"):
            counted = store.tallies(unit, min_confidence=0.0, since=since, until=until)
            tallied = store.tallies(unit, since=since, until=until)
            if unit == "sample":
                tallied = tallied[tallied["source"] != "live"]
            assert tally_counts(counted) == tally_counts(tallied), (unit, since, until)


def test_days_and_fewer_keys_sum_the_hourly_tallies(store):
    fill_mixed(store)
    for unit in ("sample", "person"):
        for threshold in (None, 0.6):
            hourly = store.tallies(unit, min_confidence=threshold)
            if threshold is not None and unit == "sample":
                hourly = hourly[hourly["source"] != "live"]  # the counted samples have no live seconds
            for by in ((), ("campaign",), ("campaign", "location", "source")):
                daily = store.tallies(unit, min_confidence=threshold, bucket="day", by=by)
                assert tuple(daily.columns) == TALLY_COLUMNS and str(daily["hour"].dt.tz) == "UTC"
                assert set(daily["hour"]) <= {pd.Timestamp("2026-03-02", tz="UTC")}
                assert not daily.duplicated(list(TALLY_COLUMNS[:-1])).any()  # summed in the database
                folded = hourly.assign(hour=hourly["hour"].dt.floor("D"))
                for key in set(("campaign", "location", "source")) - set(by):
                    folded[key] = ""
                assert tally_counts(daily, with_doubt=True) == tally_counts(folded, with_doubt=True), (unit, by)
    with pytest.raises(StoreError, match="unknown bucket 'week'"):
        store.tallies(bucket="week")
    with pytest.raises(StoreError, match="unknown tally key 'emotion'"):
        store.tallies(by=("emotion",))


def test_a_campaign_filter_per_day_or_hour_sums_the_same_tallies(store):
    """On SQLite these are read through the campaigns index (a subquery); every backend must
    give what the unfiltered per-campaign read gives for those campaigns, running runs included."""
    ids = fill_mixed(store)
    for unit in ("sample", "person"):
        for bucket in ("day", "hour"):
            for threshold in (None, 0.6):
                every = store.tallies(
                    unit, bucket=bucket, by=("campaign",), include_running=True, min_confidence=threshold
                )
                for chosen in (["spring"], ["spring", None], ["autumn"]):
                    names = {c or "" for c in chosen}
                    want = every[every["campaign"].isin(names)].assign(campaign="")
                    got = store.tallies(
                        unit, campaign=chosen, bucket=bucket, by=(), include_running=True, min_confidence=threshold
                    )
                    assert tuple(got.columns) == TALLY_COLUMNS
                    assert not got.duplicated(list(TALLY_COLUMNS[:-1])).any()
                    assert tally_counts(got, with_doubt=True) == tally_counts(want, with_doubt=True), (
                        unit,
                        bucket,
                        chosen,
                    )
    assert store.tallies("sample", campaign="autumn", run_id=ids["running"], include_running=True)["n"].sum() == 1


def test_run_totals_file_outcomes_and_version_are_counted_in_the_database(store):
    before = store.version()
    ids = fill_mixed(store)
    runs = store.runs()
    finished = runs[runs["status"] == "ok"]
    totals = store.run_totals()
    assert totals["runs"].sum() == len(finished) and totals["people"].sum() == finished["people"].sum()
    assert totals["files"].sum() == finished["files"].sum()
    assert store.run_totals(include_running=True)["runs"].sum() == len(finished) + 1  # the running run
    assert store.run_totals(include_unfinished=True)["runs"].sum() == len(runs)
    assert store.run_totals(campaign="spring", source="batch")["runs"].sum() == 1
    assert store.run_totals(since=T0 + timedelta(hours=1))["runs"].sum() == 1  # the live run started later
    assert store.file_outcomes() == {"no_face": 1, "error": 0}  # the batch's empty.png
    assert store.file_outcomes(source="video") == {"no_face": 0, "error": 0}
    version = store.version()
    assert version != before and store.version() == version  # moves with the runs, stable otherwise
    store.delete_run(ids["video"])
    assert store.version() != version


def test_deleting_runs_deletes_their_tallies(store):
    ids = fill_mixed(store)
    with store.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(TALLIES)).scalar_one()
        of_video = conn.execute(
            sa.select(sa.func.count()).select_from(TALLIES).where(TALLIES.c.run_id == ids["video"])
        ).scalar_one()
    assert of_video > 0
    store.delete_run(ids["video"])
    store.delete_campaign("autumn")
    with store.engine.connect() as conn:
        left = set(conn.execute(sa.select(TALLIES.c.run_id).distinct()).scalars())
        after = conn.execute(sa.select(sa.func.count()).select_from(TALLIES)).scalar_one()
    assert left == {ids["batch"], ids["live"]} and after < before - of_video + 1
    assert tally_counts(store.tallies("sample")) == expected(store, "sample")


def test_filter_options_come_from_finished_runs(store):
    empty = store.filter_options()
    assert empty == {"campaigns": [], "locations": [], "sources": [], "first": None, "last": None}
    fill_mixed(store)
    options = store.filter_options()
    assert options["campaigns"] == ["spring", None]  # autumn's runs did not finish
    assert options["locations"] == ["Lyon", "Paris", None]
    assert options["sources"] == ["batch", "live", "video"]
    assert options["first"] == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert options["last"] == datetime(2026, 3, 2, 13, tzinfo=UTC)


def test_confidence_bands_count_like_the_rows(store):
    """At a band edge ``min_confidence`` reads the tallies' band counts: the same counts as the
    rows with ``confidence >= min_confidence``, whatever the filters, shape and doubt."""
    fill_mixed(store)
    for unit in ("sample", "person"):
        for band in CONFIDENCE_BANDS:
            for switches in ({}, {"include_running": True}, {"include_unfinished": True}):
                got = store.tallies(unit, min_confidence=band, **switches)
                assert tally_counts(got) == expected(store, unit, min_confidence=band, **switches), (unit, band)
            sure = store.tallies(unit, min_confidence=band, include_uncertain=False)
            assert not sure["uncertain"].any()
            everything = store.tallies(unit, min_confidence=band)
            assert sure["n"].sum() == everything.loc[~everything["uncertain"], "n"].sum()
            daily = store.tallies(unit, min_confidence=band, bucket="day", by=("campaign",), campaign="spring")
            assert daily["n"].sum() == store.tallies(unit, min_confidence=band, campaign="spring")["n"].sum()
    # 0.7 exactly is sure enough (the batch's h.jpg face, the live person); live seconds never are.
    assert store.tallies("person", min_confidence=0.7, source="live")["n"].sum() == 1
    assert store.tallies("sample", min_confidence=0.5, source="live").empty


def test_over_all_time_sums_every_hour(store):
    fill_mixed(store)
    for unit in ("sample", "person"):
        for threshold in (None, 0.7, 0.65):
            hourly = store.tallies(unit, min_confidence=threshold, include_running=True)
            for by in ((), ("campaign", "source"), ("location",)):
                whole = store.tallies(unit, bucket="all", by=by, min_confidence=threshold, include_running=True)
                assert tuple(whole.columns) == TALLY_COLUMNS and str(whole["hour"].dt.tz) == "UTC"
                assert not whole.duplicated(list(TALLY_COLUMNS[1:-1])).any()
                folded = hourly.copy()
                for key in set(("campaign", "location", "source")) - set(by):
                    folded[key] = ""
                keys = ["campaign", "location", "source", "emotion", "uncertain"]
                want = folded.groupby(keys).agg(first=("hour", "min"), n=("n", "sum"))
                got = whole.set_index(keys).sort_index()
                assert got["n"].to_dict() == want["n"].to_dict(), (unit, threshold, by)
                assert got["hour"].to_dict() == want["first"].to_dict(), (unit, threshold, by)


def test_tallies_follow_their_run_from_running_to_finished_or_abandoned(store):
    ids = fill_mixed(store)

    def statuses() -> dict[str, set[str]]:
        with store.engine.connect() as conn:
            found: dict[str, set[str]] = {}
            for run_id, status in conn.execute(sa.select(TALLIES.c.run_id, TALLIES.c.status).distinct()):
                found.setdefault(run_id, set()).add(status)
            return found

    assert statuses()[ids["running"]] == {"running"} and statuses()[ids["failed"]] == {"failed"}
    assert statuses()[ids["video"]] == {"ok"}  # its people were made as it finished: ok too
    assert store.tallies("sample", campaign="autumn", include_running=True)["n"].sum() == 1
    # Its writer died: once the lease has passed the run is failed, its tallies with it.
    with store.engine.begin() as conn:
        conn.execute(
            RUNS.update().where(RUNS.c.id == ids["running"]).values(heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert store.tallies("sample", campaign="autumn", include_running=True).empty
    assert store.fail_abandoned_runs() == 1
    assert statuses()[ids["running"]] == {"failed"}
    assert store.tallies("sample", campaign="autumn", include_running=True).empty
    assert store.tallies("sample", campaign="autumn", include_unfinished=True)["n"].sum() == 2
    # A run finished ok counts by default from then on; a finished run marked failed no longer.
    live = store.start_run("live", campaign="autumn")
    store.add_live_seconds(live, [{"second": T0, "faces": 1, "counts": {"sad": 1}}])
    assert store.tallies("sample", campaign="autumn").empty
    assert store.tallies("sample", campaign="autumn", include_running=True)["n"].sum() == 1
    store.finish_run(live)
    assert store.tallies("sample", campaign="autumn")["n"].sum() == 1
    store.finish_run(live, "failed", "found broken later")
    assert store.tallies("sample", campaign="autumn").empty


def counters(store: Store) -> dict[str, tuple]:
    with store.engine.connect() as conn:
        query = sa.select(RUNS.c.id, RUNS.c.faces, RUNS.c.no_face, RUNS.c.errors, RUNS.c.first_time, RUNS.c.last_time)
        return {run_id: tuple(values) for run_id, *values in conn.execute(query)}


def test_the_run_counters_equal_the_rows_they_count(store):
    ids = fill_mixed(store)
    broken = [{"file": "x.jpg", "status": "error", "error": "cannot read"}, row("y.jpg", None)]
    ids["broken"] = store.save_rows("batch", [*broken, row("z.jpg", "sad")], campaign="spring", created_at=T0)

    def check() -> None:
        rows = store.results(include_unfinished=True)
        found = counters(store)
        for run_id, run_rows in rows.groupby("run_id"):
            status = run_rows["status"].value_counts()
            times = run_rows["time"].dropna()
            assert found[run_id][:3] == (status.get("ok", 0), status.get("no_face", 0), status.get("error", 0))
            assert found[run_id][3:] == ((times.min(), times.max()) if len(times) else (None, None)), run_id
        assert set(found) >= set(rows["run_id"])
        for switches in ({}, {"include_running": True}, {"include_unfinished": True}, {"campaign": "spring"}):
            assert store.count_results(**switches) == len(store.results(**switches)), switches
        finished = store.results()
        assert store.file_outcomes() == {
            "no_face": int((finished["status"] == "no_face").sum()),
            "error": int((finished["status"] == "error").sum()),
        }

    check()
    assert store.file_outcomes() == {"no_face": 2, "error": 1}
    store.delete_run(ids["broken"])
    check()
    assert store.file_outcomes() == {"no_face": 1, "error": 0}
    # Rows added in several writes: the counters add up, the media times widen.
    with store.run("video", campaign="spring", created_at=T0) as run:
        run.add([{**row("w.mp4", "happy"), "time": 5.0, "track_id": 0}, row("gone.mp4", None)])
        run.add([{**row("w.mp4", "sad"), "time": 2.5, "track_id": 0}, {**row("w.mp4", "sad"), "time": 9.0}])
    assert counters(store)[run.id] == (3, 1, 0, 2.5, 9.0)
    check()
    assert store.apply_retention(1) > 0  # T0 is long gone: every run goes, its counters with it
    assert counters(store) == {} and store.count_results(include_unfinished=True) == 0


# --- Pages and streams --------------------------------------------------------------------


def test_page_results_are_newest_first_and_read_one_page(store):
    fill_mixed(store)
    everything = store.results()
    order = everything.assign(rank=range(len(everything))).sort_values(["at", "rank"], ascending=False)
    assert store.count_results() == len(everything) == 28
    pages = [store.page_results(offset=k, limit=10) for k in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 8]
    paged = pd.concat(pages, ignore_index=True)
    assert list(paged.columns) == list(everything.columns)
    assert paged["at"].is_monotonic_decreasing
    # Equal times (two tracks per video frame, a photo's faces) come newest row first.
    expected_order = order[["file", "face", "track_id", "at"]].reset_index(drop=True)
    assert paged[["file", "face", "track_id", "at"]].equals(expected_order)
    assert store.page_results(offset=28).empty and len(store.page_results(limit=0)) == 0
    since = "2026-03-02T10:00:00Z"
    later = store.page_results(since=since, limit=100)
    assert store.count_results(since=since) == len(later) == 18
    assert (later["at"] >= pd.Timestamp(since)).all()
    assert store.count_results(until=since, campaign="spring") == 4 + 6
    assert store.count_results(include_unfinished=True) == 30
    with pytest.raises(StoreError):
        store.page_results(offset=-1)


def test_pages_found_from_run_spans_match_a_full_sort(store):
    """Many runs whose videos overlap in time, photos at equal times and faceless files: every
    page, with and without time bounds, is the slice of all rows sorted newest first."""
    rng = np.random.default_rng(7)
    for k in range(12):
        start = T0 + timedelta(minutes=int(rng.integers(0, 90)))
        if k % 3:
            times = sorted(rng.uniform(0, 600, size=int(rng.integers(1, 12))).round(1))
            rows = [{**row("v.mp4", "happy", 0.7), "time": float(t), "track_id": 0} for t in times]
        else:
            rows = [row(f"p{i}.jpg", "sad", 0.6) for i in range(int(rng.integers(1, 5)))] + [row("none.png", None)]
        store.save_rows("video" if k % 3 else "batch", rows, created_at=start, campaign=f"c{k % 2}")
    everything = store.results()
    ranked = everything.assign(rank=range(len(everything))).sort_values(["at", "rank"], ascending=False)
    key = ["run_id", "file", "time", "at"]
    for since, until, campaign in (
        (None, None, None),
        (T0 + timedelta(minutes=30), None, None),
        (None, T0 + timedelta(minutes=50), "c1"),
        (T0 + timedelta(minutes=20), T0 + timedelta(minutes=70), None),
    ):
        chosen = ranked
        if since is not None:
            chosen = chosen[chosen["at"] >= pd.Timestamp(since)]
        if until is not None:
            chosen = chosen[chosen["at"] < pd.Timestamp(until)]
        if campaign is not None:
            chosen = chosen[chosen["campaign"] == campaign]
        filters = {"since": since, "until": until, "campaign": campaign}
        assert store.count_results(**filters) == len(chosen)
        for offset, limit in ((0, 1), (0, 7), (5, 9), (len(chosen) - 3, 10)):
            page = store.page_results(offset=max(0, offset), limit=limit, **filters)
            want = chosen.iloc[max(0, offset) : max(0, offset) + limit]
            got = page[key].reset_index(drop=True)
            # Values, not units: pandas picks a page's time unit from its own values.
            want_rows = want[key].reset_index(drop=True)
            pd.testing.assert_frame_equal(got, want_rows, check_dtype=False, obj=f"{filters} {offset}")


def test_iter_results_and_people_stream_the_readers_rows_in_chunks(store):
    fill_mixed(store)
    for read, stream in ((store.results, store.iter_results), (store.people, store.iter_people)):
        for switches in ({}, {"include_unfinished": True}, {"campaign": "spring"}):
            whole = read(**switches)
            chunks = list(stream(chunk_rows=5, **switches))
            assert all(len(c) <= 5 for c in chunks) and {tuple(c.columns) for c in chunks} == {tuple(whole.columns)}
            streamed = pd.concat(chunks, ignore_index=True)
            key = ["run_id", "file", "face", "track_id", "at"]
            assert (
                streamed.sort_values(key).reset_index(drop=True).equals(whole.sort_values(key).reset_index(drop=True))
            )
    assert list(store.iter_results(run_id="0" * 32)) == []
    late = pd.concat(store.iter_results(since="2026-03-02T10:00:00Z"))
    assert len(late) == 18
    seen = pd.concat(store.iter_people(until="2026-03-02T12:00:00Z"))
    assert len(seen) == 5 and set(seen["source"]) == {"batch", "video"}


# --- Revision 0004 ------------------------------------------------------------------------


def test_the_migration_and_the_code_agree_on_the_new_columns_and_indexes(store):
    inspector = sa.inspect(store.engine)
    for table in (TALLIES, FACES, PEOPLE, RUNS):
        assert [c["name"] for c in inspector.get_columns(table.name)] == list(table.c.keys()), table.name
    indexed = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("tallies")}
    assert indexed["ix_tallies_run_id_unit"][:2] == ["run_id", "unit"] and indexed["ix_tallies_hour"] == ["hour"]
    # Revision 0005: the readers' GROUP BYs follow these, at most 16 columns each (MySQL).
    assert indexed["ix_tallies_days"][:5] == ["unit", "status", "day", "emotion", "uncertain"]
    assert indexed["ix_tallies_campaigns"][:6] == ["unit", "status", "campaign", "source", "emotion", "uncertain"]
    # Revision 0006: per hour too; the index of rows that are not faces had no reader left.
    assert indexed["ix_tallies_hours"][:5] == ["unit", "status", "hour", "emotion", "uncertain"]
    assert all(len(indexed[name]) <= 16 for name in ("ix_tallies_days", "ix_tallies_campaigns", "ix_tallies_hours"))
    faces = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("faces")}
    assert faces["ix_faces_run_id_time"] == ["run_id", "time"] and "ix_faces_run_id" not in faces
    assert "ix_faces_not_ok" not in faces


def _alembic_config():
    """Alembic pointed at the store's migrations; a test hands it its connection."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def test_the_upgrade_to_tallies_carries_stored_data_over(new_db_url):
    """A database at revision 0003 written by the store of that time (rows, a video's people,
    live seconds and people, a running run): 0004 tallies them as the store does now."""
    from alembic import command

    engine = sa.create_engine(new_db_url)
    cfg = _alembic_config()
    when = datetime(2026, 2, 3, 10, 59, 50)
    runs = {"batch": "b" * 32, "video": "c" * 32, "live": "e" * 32, "running": "d" * 32}
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
            for name, run_id in runs.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (id, created_at, source, campaign, tags, model_version, status, error,"
                        " files, faces, heartbeat_at, samples, people) VALUES (:id, :at, :source, :campaign, '[]',"
                        " 'v2', :status, '', 1, 0, :at, 0, 0)"
                    ),
                    {
                        "id": run_id,
                        "at": when,
                        "source": "batch" if name == "running" else name,
                        "campaign": "c" if name == "batch" else None,
                        "status": "running" if name == "running" else "ok",
                    },
                )
            faces = [
                (runs["batch"], "happy", None, None, "ok"),
                (runs["batch"], "sad", None, None, "ok"),
                (runs["batch"], None, None, None, "no_face"),
                *((runs["video"], "sad" if t > 5 else "happy", float(t), 0, "ok") for t in range(0, 20, 2)),
                (runs["running"], "happy", None, None, "ok"),
            ]
            conn.execute(
                sa.text(
                    "INSERT INTO faces (run_id, file, face, emotion, confidence, emotions, status, error, time,"
                    " track_id) VALUES (:r, 'f', 0, :e, 0.8, :p, :s, '', :t, :k)"
                ),
                [
                    {"r": r, "e": e, "t": t, "k": k, "s": s, "p": json.dumps({"happy": 0.8, "sad": 0.2}) if e else None}
                    for r, e, t, k, s in faces
                ],
            )
            conn.execute(
                sa.text("INSERT INTO live_seconds (run_id, second, faces, counts) VALUES (:r, :s, 2, :c)"),
                [
                    {"r": runs["live"], "s": when + timedelta(seconds=i), "c": json.dumps({"happy": 1, "fear": 1})}
                    for i in range(15)
                ],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO people (run_id, person, kind, file, first_seen, last_seen, samples, emotion,"
                    " confidence) VALUES (:r, :n, :kind, 'f', :at, :at, 1, :e, 0.7)"
                ),
                [
                    {"r": runs["batch"], "n": 0, "kind": "photo", "at": when, "e": "happy"},
                    {"r": runs["batch"], "n": 1, "kind": "photo", "at": when, "e": "sad"},
                    {"r": runs["video"], "n": 0, "kind": "track", "at": when, "e": "sad"},
                    {"r": runs["live"], "n": 0, "kind": "track", "at": when + timedelta(seconds=12), "e": "fear"},
                ],
            )
            cfg.attributes["tally_batch"] = 2  # several batches, as on a large store
            command.upgrade(cfg, "0004")
    finally:
        engine.dispose()
    with Store(new_db_url) as store:
        for unit in ("sample", "person"):
            for switches in ({}, {"include_unfinished": True}):
                assert tally_counts(store.tallies(unit, **switches)) == expected(store, unit, **switches)
        samples = store.tallies("sample")
        assert samples["n"].sum() == 2 + 10 + 30 and not samples["uncertain"].any()
        assert set(samples["hour"].dt.hour) == {10, 11}
        # Written by the store from now on, beside the carried-over ones.
        store.finish_run(runs["running"])
        assert store.tallies("sample", campaign=[None], source="batch")["n"].sum() == 1


def test_the_upgrade_to_0005_gives_what_the_store_writes(new_db_url):
    """A store written by the store (rows in several writes, a video's people, live seconds and
    people, running, failed and errored runs), taken back to 0004 and up again: 0005 tallies and
    counts its rows exactly as the writes did."""
    from alembic import command

    store = Store(new_db_url)
    fill_mixed(store)
    with store.run("batch", campaign="spring", location="Lyon", created_at=T0) as run:
        run.add([{"file": "x.jpg", "status": "error", "error": "cannot read"}, row("p.jpg", "fear", 0.95)])
        run.add([{**row("q.mp4", "sad", 0.81), "time": 3.0, "track_id": 1}])

    def snapshot(opened: Store) -> dict:
        found: dict = {"counters": counters(opened)}
        for unit in ("sample", "person"):
            for threshold in (None, *CONFIDENCE_BANDS, 0.65):
                for switches in ({}, {"include_running": True}, {"include_unfinished": True}):
                    got = opened.tallies(unit, min_confidence=threshold, **switches)
                    found[(unit, threshold, *switches)] = tally_counts(got, with_doubt=True)
        found["outcomes"] = opened.file_outcomes()
        found["rows"] = opened.count_results(include_unfinished=True)
        page = opened.page_results(limit=7)
        found["page"] = list(zip(page["run_id"], page["file"], page["at"]))
        with opened.engine.connect() as conn:
            sums = sa.select(
                TALLIES.c.run_id,
                TALLIES.c.hour,
                TALLIES.c.unit,
                TALLIES.c.emotion,
                TALLIES.c.uncertain,
                TALLIES.c.day,
                TALLIES.c.campaign,
                TALLIES.c.location,
                TALLIES.c.source,
                TALLIES.c.status,
                *(sa.func.sum(TALLIES.c[c]) for c in ("n", "n_50", "n_60", "n_70", "n_80", "n_90")),
            ).group_by(*(TALLIES.c[c] for c in ("run_id", "hour", "unit", "emotion", "uncertain", "day")))
            sums = sums.group_by(*(TALLIES.c[c] for c in ("campaign", "location", "source", "status")))
            found["tallies"] = {tuple(r[:10]): tuple(int(v) for v in r[10:]) for r in conn.execute(sums)}
        return found

    written = snapshot(store)
    store.close()
    engine = sa.create_engine(new_db_url)
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            cfg.attributes["tally_batch"] = 3  # several batches, as on a large store
            command.upgrade(cfg, "0005")
    finally:
        engine.dispose()
    with Store(new_db_url) as store:
        carried = snapshot(store)
    assert carried == written


def test_the_downgrade_drops_the_tallies(new_db_url):
    from alembic import command

    Store(new_db_url).close()
    engine = sa.create_engine(new_db_url)
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        inspector = sa.inspect(engine)
        assert not inspector.has_table("tallies")
        assert "uncertain" not in {c["name"] for c in inspector.get_columns("faces")}
    finally:
        engine.dispose()


def test_revision_0006_goes_down_and_up_again(new_db_url):
    from alembic import command

    Store(new_db_url).close()
    engine = sa.create_engine(new_db_url)
    cfg = _alembic_config()

    def indexes() -> tuple[set[str], set[str]]:
        inspector = sa.inspect(engine)
        return {ix["name"] for ix in inspector.get_indexes("tallies")}, {
            ix["name"] for ix in inspector.get_indexes("faces")
        }

    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        tallies, faces = indexes()
        assert "ix_tallies_hours" not in tallies and "ix_faces_not_ok" in faces
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        tallies, faces = indexes()
        assert "ix_tallies_hours" in tallies and "ix_faces_not_ok" not in faces
    finally:
        engine.dispose()
