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


def test_demo_faces_are_read_with_the_models_known_mistakes():
    """Each true emotion is read as READ_AS says (the deployed model's confusion on web photos), so
    the error model that corrects the dashboard's shares fits the demo's labels."""
    import numpy as np

    from src import config
    from src.analytics.demo import READ_AS, _Reader

    read = _Reader(seed=7, k=len(config.EMOTIONS))
    expected = READ_AS / READ_AS.sum(axis=1, keepdims=True)
    for emotion in range(len(config.EMOTIONS)):
        seen = np.bincount([read(emotion) for _ in range(4000)], minlength=len(config.EMOTIONS)) / 4000
        assert np.abs(seen - expected[emotion]).max() < 0.03, config.EMOTIONS[emotion]
    # Labels of another count are read as they are (no confusion known for them).
    assert [_Reader(seed=7, k=3)(e) for e in range(3)] == [0, 1, 2]


def test_the_demo_store_reads_more_angry_faces_than_its_campaigns_hold(tmp_path):
    """Angry is the model's most over-called label on real photos: the demo's read angry share is
    above every campaign's true one (the mean of its profile's start and end), as on real data."""
    from src.analytics.demo import PROFILES

    with Store(f"sqlite:///{(tmp_path / 'demo.db').as_posix()}") as store:
        fill_demo_store(store, now=datetime(2026, 12, 2, 12, tzinfo=UTC))
        tallies = store.tallies("person", bucket="all", by=())
    angry = tallies.loc[tallies["emotion"] == "angry", "n"].sum() / tallies["n"].sum()
    assert angry > max((begin[0] + end[0]) / 2 for begin, end in PROFILES.values())
