"""Trends from the store's tallies: time buckets, groupings with and without thresholds, Wilson
intervals, campaigns, KPIs, the filters, and the exports streamed chunk by chunk."""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from src import config
from src.analytics import trends
from src.analytics.groups import Group, Grouping

CLASSES = config.EMOTIONS
EMOTION = trends.emotion_grouping(CLASSES)
SENTIMENT = trends.sentiment_grouping()


def tally(hour: str, emotion: str, n: int, campaign: str = "A", source: str = "batch", **extra) -> dict:
    """One row of ``Store.tallies``: ``n`` people (or samples) of ``emotion`` seen in ``hour``."""
    return {
        "hour": pd.Timestamp(hour, tz="UTC"),
        "campaign": campaign,
        "location": extra.get("location", ""),
        "source": source,
        "emotion": emotion,
        "uncertain": extra.get("uncertain", False),
        "n": n,
    }


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(trends.TALLY_COLUMNS))


def test_buckets_hour_day_and_iso_week():
    at = pd.Series(pd.to_datetime(["2026-03-01 23:40", "2026-03-02 00:10", "2026-03-08 23:59"], utc=True))
    assert trends.bucket_start(at, "hour").dt.hour.tolist() == [23, 0, 23]
    assert trends.bucket_start(at, "day").dt.day.tolist() == [1, 2, 8]
    # ISO weeks start on Monday: Sunday 1 March belongs to the week of Monday 23 February.
    weeks = trends.bucket_start(at, "week")
    assert weeks.dt.strftime("%Y-%m-%d").tolist() == ["2026-02-23", "2026-03-02", "2026-03-02"]
    assert (weeks.dt.day_of_week == 0).all()
    with pytest.raises(ValueError, match="bucket must be one of hour, day, week"):
        trends.bucket_start(at, "month")


def test_shares_over_time_sum_the_hours_of_each_period_and_list_every_label():
    people = frame(
        tally("2026-03-02 09:00", "happy", 1),
        tally("2026-03-02 10:00", "happy", 1, campaign="B"),
        tally("2026-03-02 11:00", "sad", 1),
        tally("2026-03-02 12:00", "surprise", 1),
        tally("2026-03-03 09:00", "angry", 1),
        tally("2026-03-03 09:00", "", 4),  # an unlabelled tally counts nowhere
    )
    long = trends.shares_over_time(people, EMOTION, "day")
    assert len(long) == 2 * len(CLASSES)
    first = long[long["period"] == pd.Timestamp("2026-03-02", tz="UTC")].set_index("label")
    assert first.loc["happy", "faces"] == 2 and first.loc["happy", "share"] == 0.5
    assert first.loc["disgust", "faces"] == 0 and first["total"].eq(4).all()
    assert first["share"].sum() == pytest.approx(1.0)
    assert list(first.index) == list(CLASSES)  # the grouping's order

    sentiment = trends.shares_over_time(people, SENTIMENT, "week").set_index("label")
    assert sentiment["faces"].to_dict() == {"positive": 2, "neutral": 1, "negative": 2}
    assert trends.shares_over_time(people.iloc[:0], EMOTION).empty


def test_a_threshold_group_counts_from_the_tallies_of_people_sure_enough():
    """*delighted* = happy at least 0.7 sure; *other* takes what no group counts: the happy people
    below the threshold and every emotion in no group."""
    grouping = Grouping(
        "moods", (Group("frustrated", ("angry", "sad")), Group("delighted", ("happy",), 0.7)), other="other"
    )
    people = frame(
        tally("2026-03-02 09:00", "happy", 5),
        tally("2026-03-02 09:00", "sad", 2),
        tally("2026-03-02 09:00", "neutral", 3),
        tally("2026-03-03 09:00", "happy", 4),
    )
    sure = frame(tally("2026-03-02 09:00", "happy", 3), tally("2026-03-02 09:00", "sad", 1))
    assert trends.confidence_thresholds(grouping, SENTIMENT) == (0.7,)
    counts, totals = trends.bucket_counts(people, grouping, sure={0.7: sure})
    assert counts.iloc[0].to_dict() == {"frustrated": 2, "delighted": 3, "other": (9 - 3) + 3}
    assert int(totals.iloc[0]) == 14
    per_day = trends.shares_over_time(people, grouping, "day", {0.7: sure}).set_index(["period", "label"])
    assert per_day.loc[(pd.Timestamp("2026-03-03", tz="UTC"), "other"), "faces"] == 4  # none sure enough
    with pytest.raises(ValueError, match="at least 0.7 sure"):
        trends.bucket_counts(people, grouping)


def test_overlapping_groups_count_a_person_in_each():
    grouping = Grouping("overlap", (Group("bad", ("angry", "sad")), Group("low", ("sad", "neutral"))), other="")
    counts, totals = trends.bucket_counts(
        frame(tally("2026-03-02", "sad", 2), tally("2026-03-02", "happy", 1)), grouping
    )
    assert counts.iloc[0].to_dict() == {"bad": 2, "low": 2} and int(totals.iloc[0]) == 3


def test_wilson_interval_matches_the_textbook_and_stays_in_range():
    low, high = trends.wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # Newcombe (1998)'s worked example
    assert trends.wilson_interval(0, 5)[0] == 0.0 and trends.wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in trends.wilson_interval(0, 0))


def test_campaign_shares_with_intervals_busiest_first():
    people = frame(
        tally("2026-03-02", "happy", 6, "Ad A"),
        tally("2026-03-03", "sad", 2, "Ad A"),
        tally("2026-03-02", "happy", 1, "Ad B"),
        tally("2026-03-02", "sad", 1, "Ad B"),
        tally("2026-03-02", "neutral", 1, ""),
    )
    long = trends.campaign_shares(people, SENTIMENT)
    assert long["campaign"].unique().tolist() == ["Ad A", "Ad B", trends.NO_CAMPAIGN]
    a = long[long["campaign"] == "Ad A"].set_index("label")
    assert a.loc["positive", "share"] == 0.75 and a.loc["positive", "total"] == 8
    assert (a.loc["positive", "low"], a.loc["positive", "high"]) == pytest.approx(trends.wilson_interval(6, 8))
    picked = trends.campaign_shares(people, EMOTION, ["Ad B", "nobody"])
    assert picked["campaign"].unique().tolist() == ["Ad B", "nobody"]
    assert picked[picked["campaign"] == "nobody"]["share"].isna().all()
    assert trends.campaign_label_counts(people, ["Ad A", trends.NO_CAMPAIGN]) == {
        "Ad A": {"happy": 6, "sad": 2},
        trends.NO_CAMPAIGN: {"neutral": 1},
    }


def test_kpis_compare_iso_weeks_in_utc_and_count_people_beside_samples():
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)  # a Wednesday; its ISO week starts Monday 9 March
    people = frame(
        tally("2026-03-09 00:30", "happy", 3, "Spring"),
        tally("2026-03-10 10:00", "sad", 1, "Spring"),
        tally("2026-03-08 23:59", "happy", 1, "Autumn"),  # Sunday: last week
        tally("2026-03-03 10:00", "sad", 3, "Autumn"),
        tally("2026-03-04 10:00", "neutral", 9, ""),  # no campaign: not a campaign
    )
    # A live session of 2 people left 60 samples (face-seconds).
    samples = pd.concat([people, frame(tally("2026-03-10 11:00", "happy", 60, "Live"))], ignore_index=True)
    people = pd.concat([people, frame(tally("2026-03-10 11:00", "happy", 2, "Live"))], ignore_index=True)
    k = trends.kpis(people, samples, now=now)
    assert (k.people, k.faces, k.samples) == (19, 77, 77)
    assert (k.people_this_week, k.people_last_week) == (6, 13) and (k.faces_this_week, k.faces_last_week) == (64, 13)
    assert k.positive_this_week == pytest.approx(5 / 6) and k.positive_last_week == pytest.approx(1 / 13)
    assert k.positive_change == pytest.approx(5 / 6 - 1 / 13)
    assert (k.busiest_campaign, k.busiest_people, k.campaigns) == ("Autumn", 4, 3)
    assert k.busiest_faces == 4
    empty = trends.kpis(trends.empty_tallies(), trends.empty_tallies(), now=now)
    assert (empty.people, empty.faces, empty.campaigns, empty.busiest_campaign) == (0, 0, 0, None)
    assert empty.positive_this_week is None and empty.positive_change is None


def test_filters_as_the_store_takes_them_and_the_options_as_the_filters_offer_them():
    kwargs = trends.store_filters(
        campaigns=["A", trends.NO_CAMPAIGN], locations=["Lyon"], since=date(2026, 3, 3), until=date(2026, 3, 3)
    )
    assert kwargs["campaign"] == ["A", ""] and kwargs["location"] == ["Lyon"] and kwargs["source"] is None
    # A date for "until" includes that whole (UTC) day: the store's until is exclusive.
    assert (kwargs["since"], kwargs["until"]) == (datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    exact = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert trends.store_filters(until=exact)["until"] == exact
    assert trends.store_filters() == dict.fromkeys(("campaign", "location", "source", "since", "until"))
    options = trends.filter_options(
        {
            "campaigns": ["B", "A", None],
            "locations": ["Paris", None],
            "sources": ["video", "batch"],
            "first": datetime(2026, 3, 2, 10, tzinfo=UTC),
            "last": datetime(2026, 3, 10, 23, tzinfo=UTC),
        }
    )
    assert options.campaigns == sorted(["A", "B", trends.NO_CAMPAIGN]) and options.locations == ["Paris"]
    assert options.sources == ["batch", "video"] and (options.first, options.last) == (
        date(2026, 3, 2),
        date(2026, 3, 10),
    )
    assert trends.filter_options({"campaigns": [], "first": None, "last": None}).first is None


def test_tallies_from_a_real_store_leave_out_doubtful_people_when_asked(tmp_path):
    from src.analytics.store import Store

    with Store(f"sqlite:///{(tmp_path / 'r.db').as_posix()}") as store:
        rows = [
            {
                "file": f"{i}.jpg",
                "face": 0,
                "emotion": "happy" if i < 3 else "sad",
                "confidence": 0.9,
                "uncertain": i == 0,
            }
            for i in range(5)
        ]
        store.save_rows("batch", rows, campaign="A", created_at="2026-03-02 10:00")
        people = store.tallies("person")
        assert trends.label_counts(people) == {"sad": 2, "happy": 3}
        assert trends.label_counts(store.tallies("person", include_uncertain=False)) == {"happy": 2, "sad": 2}
        counts, _ = trends.bucket_counts(people, SENTIMENT)
        assert counts.iloc[0].to_dict() == {"positive": 3, "neutral": 0, "negative": 2}


def test_exports_stream_chunk_by_chunk_neutralise_formulas_and_keep_types(tmp_path):
    from src.analytics.store import Store

    rows = [
        {"file": "=cmd|' /C calc'!A0.jpg", "face": 0, "emotion": "happy", "confidence": 0.9},
        *({"file": f"{i}.jpg", "face": 0, "emotion": "sad", "confidence": 0.5} for i in range(4)),
        {"file": "x.txt", "status": "error", "error": "not an image"},
    ]
    with Store(f"sqlite:///{(tmp_path / 'r.db').as_posix()}") as store:
        store.save_rows("batch", rows, campaign="@campaign", tags=["-t", "ok"], created_at="2026-03-02 10:00")
        data = b"".join(trends.csv_chunks(store.iter_results(chunk_rows=2)))
        table = pd.read_csv(io.BytesIO(data))
        assert len(table) == 6 and data.count(b"run_id,") == 1  # three chunks, one header
        assert table["file"].iloc[0] == "'=cmd|' /C calc'!A0.jpg" and table["campaign"].eq("'@campaign").all()
        assert table["tags"].iloc[0] == "'-t, ok"
        path = tmp_path / "out.parquet"
        assert trends.write_parquet(store.iter_results(chunk_rows=2), path) == 6
        back = pd.read_parquet(path)
        assert back["file"].tolist() == [r["file"] for r in rows]  # text exactly as stored
        assert back["confidence"].iloc[0] == pytest.approx(0.9) and str(back["at"].dt.tz) == "UTC"
        assert back["campaign"].eq("@campaign").all() and back["tags"].iloc[0] == "-t, ok"
    assert list(trends.csv_chunks([])) == []
