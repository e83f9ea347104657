"""Trends over stored results: filters, time buckets, Wilson intervals, the chi-square verdict, KPIs, exports."""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from src import config
from src.analytics import trends

CLASSES = config.EMOTIONS
EMOTION = trends.emotion_grouping(CLASSES)
SENTIMENT = trends.sentiment_grouping()


def face(at: str, emotion: str, campaign: str | None = "A", location: str = "", source: str = "batch", **extra) -> dict:
    """One row of the store's results table (the columns trends reads, and a few more)."""
    row = {
        "run_id": extra.pop("run_id", 1),
        "source": source,
        "campaign": campaign,
        "location": location,
        "tags": extra.pop("tags", ""),
        "file": extra.pop("file", "a.jpg"),
        "face": 0,
        "emotion": emotion,
        "confidence": 0.8,
        "status": "ok",
        "error": "",
        "at": pd.Timestamp(at, tz="UTC"),
    }
    row.update({c: (0.8 if c == emotion else 0.2 / 6) for c in CLASSES})
    row.update(extra)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def mix(campaign: str, at: str, counts: dict[str, int]) -> list[dict]:
    return [face(at, e, campaign) for e, n in counts.items() for _ in range(n)]


def test_filters_by_campaign_location_source_and_dates():
    df = frame(
        [
            face("2026-03-02 10:00", "happy", "A", "Paris", "batch"),
            face("2026-03-03 23:59", "sad", "B", "Lyon", "video"),
            face("2026-03-04 00:00", "angry", None, "Paris", "live"),
            face("2026-03-10 12:00", "happy", "", "", "photo"),
        ]
    )
    assert trends.filter_results(df)["emotion"].tolist() == ["happy", "sad", "angry", "happy"]
    assert trends.filter_results(df, campaigns=["B"])["emotion"].tolist() == ["sad"]
    # Rows saved without a campaign (None or "") are one choice.
    assert len(trends.filter_results(df, campaigns=[trends.NO_CAMPAIGN])) == 2
    assert trends.filter_results(df, locations=["Paris"], sources=["live"])["emotion"].tolist() == ["angry"]
    # A date for "until" includes that whole (UTC) day.
    picked = trends.filter_results(df, since=date(2026, 3, 3), until=date(2026, 3, 3))
    assert picked["emotion"].tolist() == ["sad"]
    assert trends.filter_results(df, since=datetime(2026, 3, 4, tzinfo=UTC))["emotion"].tolist() == [
        "angry",
        "happy",
    ]
    options = trends.filter_options(df)
    assert options.campaigns == sorted(["A", "B", trends.NO_CAMPAIGN])
    assert options.locations == ["Lyon", "Paris"] and options.sources == ["batch", "live", "photo", "video"]
    assert (options.first, options.last) == (date(2026, 3, 2), date(2026, 3, 10))


def test_naive_and_other_zone_timestamps_are_read_as_utc():
    df = frame([face("2026-03-02 10:00", "happy"), face("2026-03-02 10:00", "sad")])
    df["at"] = [pd.Timestamp("2026-03-02 23:30"), pd.Timestamp("2026-03-03 00:30", tz="Europe/Paris")]
    out = trends.shares_over_time(df, EMOTION, "day")
    assert out["period"].unique().tolist() == [pd.Timestamp("2026-03-02", tz="UTC")]


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


def test_shares_over_time_count_only_faces_and_list_every_label():
    rows = [
        face("2026-03-02 09:00", "happy"),
        face("2026-03-02 10:00", "happy"),
        face("2026-03-02 11:00", "sad"),
        face("2026-03-02 12:00", "surprise"),
        face("2026-03-03 09:00", "angry"),
        # A file without a face and a failed one are rows of the table, not faces.
        face("2026-03-03 09:00", "", status="no_face"),
        face("2026-03-03 09:00", "", status="error", error="not an image"),
    ]
    long = trends.shares_over_time(frame(rows), EMOTION, "day")
    assert len(long) == 2 * len(CLASSES)
    first = long[long["period"] == pd.Timestamp("2026-03-02", tz="UTC")].set_index("label")
    assert first.loc["happy", "faces"] == 2 and first.loc["happy", "share"] == 0.5
    assert first.loc["disgust", "faces"] == 0 and first["total"].eq(4).all()
    assert first["share"].sum() == pytest.approx(1.0)

    sentiment = trends.shares_over_time(frame(rows), SENTIMENT, "week").set_index("label")
    assert sentiment["faces"].to_dict() == {"positive": 2, "neutral": 1, "negative": 2}
    assert trends.shares_over_time(frame(rows[-2:]), EMOTION).empty


def test_wilson_interval_matches_the_textbook_and_stays_in_range():
    low, high = trends.wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # Newcombe (1998)'s worked example
    assert trends.wilson_interval(0, 5)[0] == 0.0 and trends.wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in trends.wilson_interval(0, 0))


def test_campaign_shares_with_intervals_busiest_first():
    rows = mix("Ad A", "2026-03-02", {"happy": 6, "sad": 2}) + mix("Ad B", "2026-03-02", {"happy": 1, "sad": 1})
    rows += [face("2026-03-02", "neutral", None)]
    long = trends.campaign_shares(frame(rows), SENTIMENT)
    assert long["campaign"].unique().tolist() == ["Ad A", "Ad B", trends.NO_CAMPAIGN]
    a = long[long["campaign"] == "Ad A"].set_index("label")
    assert a.loc["positive", "share"] == 0.75 and a.loc["positive", "total"] == 8
    assert a.loc["positive", "low"] < 0.75 < a.loc["positive", "high"]
    assert (round(a.loc["positive", "low"], 4), round(a.loc["positive", "high"], 4)) == tuple(
        round(v, 4) for v in trends.wilson_interval(6, 8)
    )
    picked = trends.campaign_shares(frame(rows), EMOTION, ["Ad B", "nobody"])
    assert picked["campaign"].unique().tolist() == ["Ad B", "nobody"]
    assert picked[picked["campaign"] == "nobody"]["share"].isna().all()


def test_chi_square_finds_a_real_difference():
    a = {"happy": 60, "neutral": 30, "sad": 10}
    b = {"happy": 25, "neutral": 35, "sad": 40}
    df = frame(mix("Ad A", "2026-03-02", a) + mix("Ad B", "2026-03-03", b))
    result = trends.compare_campaigns(df, ["Ad A", "Ad B"], EMOTION)
    assert result.testable and result.differs
    # The labels no campaign has (angry, disgust, fear, surprise) are left out of the test.
    expected = chi2_contingency([[60, 10, 30], [25, 40, 35]], correction=False)
    assert result.statistic == pytest.approx(expected.statistic) and result.dof == 2
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.verdict.startswith("“Ad A” and “Ad B” really differ in their emotion mix")
    assert "p < 0.001" in result.verdict
    assert result.table.loc["Ad A", "happy"] == 60 and result.table.loc["Ad B", "angry"] == 0


def test_chi_square_says_no_clear_difference_for_the_same_mix():
    same = {"happy": 40, "neutral": 40, "sad": 20}
    df = frame(mix("A", "2026-03-02", same) + mix("B", "2026-03-02", {"happy": 38, "neutral": 42, "sad": 20}))
    result = trends.compare_campaigns(df, ["A", "B"], SENTIMENT)
    assert result.testable and result.differs is False and result.p_value > 0.5
    assert result.verdict.startswith("No clear difference in the sentiment mix between “A” and “B”")


def test_chi_square_refuses_counts_too_small_for_it():
    df = frame(mix("A", "2026-03-02", {"happy": 3, "sad": 1}) + mix("B", "2026-03-02", {"happy": 1, "sad": 3}))
    result = trends.compare_campaigns(df, ["A", "B"], EMOTION)
    assert not result.testable and result.differs is None and result.p_value is None
    assert "Too few faces" in result.verdict and "4 in “A”, 4 in “B”" in result.verdict
    assert "fewer groups (sentiment)" in result.verdict
    assert "fewer groups" not in trends.compare_campaigns(df, ["A", "B"], SENTIMENT).verdict


@pytest.mark.parametrize(
    "campaigns, rows, message",
    [
        (["A"], mix("A", "2026-03-02", {"happy": 9}), "Pick at least two campaigns"),
        (["A", "Z"], mix("A", "2026-03-02", {"happy": 9}), "No faces to compare for “Z”"),
        (
            ["A", "B"],
            mix("A", "2026-03-02", {"sad": 9}) + mix("B", "2026-03-02", {"sad": 9}),
            "has the same emotion, so",
        ),
    ],
)
def test_chi_square_edge_cases_explain_themselves(campaigns, rows, message):
    result = trends.compare_campaigns(frame(rows), campaigns, EMOTION)
    assert not result.testable and message in result.verdict


def test_three_campaigns_and_names_with_markup_kept_as_typed():
    name = "**Ad** <b>C</b> [x](http://t.invalid)"
    rows = []
    for campaign, happy in (("A", 50), ("B", 48), (name, 10)):
        rows += mix(campaign, "2026-03-02", {"happy": happy, "sad": 60 - happy})
    result = trends.compare_campaigns(frame(rows), ["A", "B", name], SENTIMENT)
    assert result.differs and result.dof == 2
    assert f"“{name}”" in result.verdict


def test_kpis_compare_iso_weeks_in_utc():
    now = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)  # a Wednesday: week of Monday 9 March
    rows = mix("Big", "2026-03-09 00:00", {"happy": 3, "sad": 1})  # this week: 75% positive
    rows += mix("Small", "2026-03-08 23:59", {"happy": 1, "neutral": 3})  # Sunday: last week, 25%
    rows += mix("Big", "2026-03-02 00:00", {"angry": 4})  # last week too
    rows += mix("", "2026-02-20", {"happy": 9})  # older, no campaign
    rows += [face("2026-03-10", "", "Small", status="no_face")]
    k = trends.kpis(frame(rows), now=now)
    assert k.faces == 21 and k.campaigns == 2
    assert k.faces_this_week == 4 and k.positive_this_week == 0.75
    assert k.faces_last_week == 8 and k.positive_last_week == 1 / 8
    assert k.positive_change == pytest.approx(0.625)
    assert (k.busiest_campaign, k.busiest_faces) == ("Big", 8)  # faces without a campaign are not one


def test_kpis_of_an_empty_store():
    empty = pd.DataFrame(columns=["campaign", "emotion", "status", "at"])
    k = trends.kpis(empty, now=datetime(2026, 3, 11, tzinfo=UTC))
    assert k.faces == 0 and k.busiest_campaign is None
    assert k.positive_this_week is None and k.positive_change is None


def test_csv_export_neutralises_formulas_and_parquet_keeps_types():
    rows = [
        face("2026-03-02 10:00", "happy", '=HYPERLINK("http://x")', "+33 Paris", tags=["vip", "@x"]),
        face("2026-03-02 11:00", "sad", "plain", "-", file="-2.jpg"),
    ]
    df = trends.filter_results(frame(rows))
    csv = pd.read_csv(io.BytesIO(trends.csv_bytes(df)), dtype=str, keep_default_na=False)
    assert csv["campaign"].tolist() == ['\'=HYPERLINK("http://x")', "plain"]
    assert csv["location"].tolist() == ["'+33 Paris", "'-"]
    assert csv["file"].tolist() == ["a.jpg", "'-2.jpg"]
    assert csv["tags"].tolist() == ["vip, @x", ""]
    assert csv["at"].tolist()[0] == "2026-03-02T10:00:00+0000"
    assert csv["confidence"].tolist()[0] == "0.8"

    back = pd.read_parquet(io.BytesIO(trends.parquet_bytes(df)))
    assert back["campaign"].tolist()[0] == '=HYPERLINK("http://x")'  # exact text: Parquet is not a spreadsheet
    assert str(back["at"].dtype).startswith("datetime64") and back["at"].dt.tz is not None
    assert back["confidence"].dtype == float and len(back) == 2


def test_custom_groups_count_with_their_confidence_threshold_and_other():
    from src.analytics import groups

    custom = groups.parse_lines("frustrated = angry + disgust + sad\ndelighted = happy (confidence >= 0.7)").get(
        "custom"
    )
    rows = [face("2026-03-02", "happy", confidence=0.9), face("2026-03-02", "happy", confidence=0.5)]
    rows += [face("2026-03-02", "sad"), face("2026-03-02", "neutral")]
    long = trends.shares_over_time(frame(rows), custom, "day").set_index("label")
    assert long.index.tolist() == ["frustrated", "delighted", "other"]
    assert long["faces"].to_dict() == {"frustrated": 1, "delighted": 1, "other": 2}
    assert long["total"].eq(4).all()


def test_overlapping_groups_get_no_chi_square():
    from src.analytics import groups

    overlapping = groups.parse_lines("unhappy = sad + angry\nlow = sad + neutral").get("custom")
    a = {"sad": 30, "angry": 30, "neutral": 30}
    b = {"sad": 10, "angry": 50, "neutral": 30}
    df = frame(mix("A", "2026-03-02", a) + mix("B", "2026-03-02", b))
    shares = trends.campaign_shares(df, overlapping).set_index(["campaign", "label"])
    assert shares.loc[("A", "unhappy"), "share"] + shares.loc[("A", "low"), "share"] > 1  # sad counts twice
    result = trends.compare_campaigns(df, ["A", "B"], overlapping)
    assert not result.testable and "more than one of these groups" in result.verdict
    # Disjoint groups with an "other" bucket are tested like any partition.
    disjoint = groups.parse_lines("unhappy = sad + angry").get("custom")
    assert trends.compare_campaigns(df, ["A", "B"], disjoint).testable


def test_live_seconds_become_one_row_per_face_in_view():
    runs = pd.DataFrame(
        {
            "run_id": ["r1"],
            "run_time": [pd.Timestamp("2026-03-02 10:00", tz="UTC")],
            "source": ["live"],
            "campaign": ["Desk"],
            "location": ["Lyon"],
            "tags": [[]],
            "model_version": ["v2"],
        }
    )
    seconds = pd.DataFrame(
        {
            "run_id": ["r1", "r1"],
            "second": pd.to_datetime(["2026-03-02 10:00:01", "2026-03-02 10:00:02"], utc=True),
            "faces": [2, 1],
            **{c: [0, 0] for c in CLASSES},
        }
    )
    seconds.loc[0, "happy"], seconds.loc[0, "sad"], seconds.loc[1, "happy"] = 1, 1, 1
    live = trends.live_rows(seconds, runs)
    assert sorted(live["emotion"]) == ["happy", "happy", "sad"]
    assert set(live["campaign"]) == {"Desk"} and set(live["file"]) == {trends.LIVE_FILE}
    assert live["at"].min() == pd.Timestamp("2026-03-02 10:00:01", tz="UTC")
    photos = frame([face("2026-03-02 09:00", "neutral", "Desk")])
    both = trends.combine(photos, live)
    assert both["emotion"].tolist()[0] == "neutral" and len(both) == 4
    assert trends.kpis(both, now=datetime(2026, 3, 3, tzinfo=UTC)).positive_this_week == 0.5
    assert trends.live_rows(seconds.iloc[:0], runs).empty


def person(at: str, emotion: str, campaign: str, number: int, **extra) -> dict:
    """One row of the store's people table (Store.people): a face row's columns and a ``person``."""
    return face(at, emotion, campaign, person=number, kind=extra.pop("kind", "photo"), samples=1, **extra)


def test_kpis_count_people_when_given_the_people_table():
    now = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
    # One person in front of the live camera for 15 s: 15 face-seconds, one person.
    samples = mix("Desk", "2026-03-10 10:00", {"happy": 15}) + mix("Shop", "2026-03-10 11:00", {"sad": 2, "happy": 1})
    people = [person("2026-03-10 10:00", "happy", "Desk", 0, kind="track", source="live")]
    people += [person("2026-03-10 11:00", e, "Shop", i) for i, e in enumerate(["sad", "sad", "happy"])]
    by_samples = trends.kpis(frame(samples), now=now)
    assert (by_samples.busiest_campaign, by_samples.busiest_faces, by_samples.people) == ("Desk", 15, None)
    k = trends.kpis(frame(samples), now=now, people=frame(people))
    assert (k.people, k.people_this_week, k.people_last_week) == (4, 4, 0)
    assert (k.busiest_campaign, k.busiest_people, k.busiest_faces) == ("Shop", 3, 3)
    assert k.faces == k.samples == 18 and k.faces_this_week == 18 and k.campaigns == 2
    assert k.positive_this_week == 0.5 and k.positive_last_week is None  # per person, not 16 of 18
    empty = trends.kpis(frame(samples).iloc[:0], now=now, people=frame(people).iloc[:0])
    assert (empty.people, empty.busiest_people, empty.busiest_campaign) == (0, 0, None)


def test_shares_and_the_campaign_test_count_each_person_once():
    people = frame(
        [person("2026-03-02 09:00", "happy", "A", i) for i in range(3)]
        + [person("2026-03-02 10:00", "sad", "B", i) for i in range(3)]
    )
    assert trends.unit(people) == "people" and trends.unit(frame([face("2026-03-02", "sad")])) == "faces"
    shares = trends.shares_over_time(people, SENTIMENT, "day").set_index("label")
    assert shares.loc["positive", "faces"] == 3 and shares.loc["positive", "total"] == 6
    result = trends.compare_campaigns(people, ["A", "B"], EMOTION)
    assert not result.testable and result.verdict.startswith("Too few people to test whether the emotion mix")
    assert "Collect more people" in result.verdict and "faces" not in result.verdict
    one = trends.compare_campaigns(people[people["campaign"] == "A"], ["A", "B"], EMOTION)
    assert one.verdict == "No people to compare for “B” with these filters."
