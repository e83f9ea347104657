"""The demo data (src/analytics/demo.py): the same store whatever the time of day it is made at,
so the tests and screenshots that read it do not change with the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from src.analytics.demo import fill_demo_store
from src.analytics.store import Store


def _live_sessions(tmp_path, hour: int) -> list:
    with Store(f"sqlite:///{(tmp_path / f'demo_{hour}.db').as_posix()}") as store:
        fill_demo_store(store, now=datetime(2026, 12, 2, hour, 30, tzinfo=UTC))
        live = store.runs(source="live").sort_values("campaign")
        return live[["campaign", "people", "samples"]].values.tolist()


def test_the_live_sessions_do_not_depend_on_the_hour_the_demo_is_made(tmp_path):
    # Batches later than "now" on the last day are skipped, so the earlier draws differ by hour.
    sessions = {hour: _live_sessions(tmp_path, hour) for hour in (8, 17)}
    assert sessions[8] == sessions[17] == [["Loyalty week", 16, 442], ["Spring ad B", 19, 497]]
