"""Demo data on the Project Summary: loaded into an empty store, removed without touching real runs."""

from __future__ import annotations

from src import config
from src.analytics.store import open_store
from src.app import demo_data


def test_remove_deletes_the_demo_runs_only(tmp_path):
    store = open_store(f"sqlite:///{(tmp_path / 'results.db').as_posix()}")
    assert demo_data.demo_run_ids(store.runs()) == []
    added = demo_data.load(store)
    row = dict(file="a.jpg", face=0, emotion="happy", confidence=0.9, **dict.fromkeys(config.EMOTIONS, 0.1))
    tagged = store.save_rows("batch", [row], campaign="Spring ad A", tags=["demo"])  # real, though tagged demo
    assert len(demo_data.demo_run_ids(store.runs())) == added
    assert demo_data.remove(store) == added
    assert store.runs()["run_id"].tolist() == [tagged]
