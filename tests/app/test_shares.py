"""The dashboard's corrected shares and people-based campaign tests: clusters, sentences, details."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.analytics import compare, groups, trends
from src.analytics.people import LIVE_FILE
from src.analytics.quantify import Confusion
from src.app import shares

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def at(second: int) -> pd.Timestamp:
    return pd.Timestamp("2026-03-02 10:00", tz="UTC") + pd.Timedelta(seconds=second)


def test_photos_videos_and_live_seconds_each_belong_to_their_person_or_photo():
    rows = pd.DataFrame(
        [
            {"run_id": "p", "file": "a.jpg", "emotion": "happy", "at": at(0)},
            {"run_id": "p", "file": "a.jpg", "emotion": "sad", "at": at(0)},  # same photo
            {"run_id": "p", "file": "b.jpg", "emotion": "sad", "at": at(0)},
            {"run_id": "v", "file": "clip.mp4", "emotion": "happy", "at": at(0), "track_id": 3},
            {"run_id": "v", "file": "clip.mp4", "emotion": "sad", "at": at(0), "track_id": 3},
            {"run_id": "v", "file": "clip.mp4", "emotion": "sad", "at": at(0), "track_id": 4},
        ]
    ).assign(status="ok")
    clusters = shares.sample_clusters(rows)
    assert clusters[0] == clusters[1] != clusters[2]
    assert clusters[3] == clusters[4] != clusters[5] and clusters[3] != clusters[0]


def test_live_seconds_go_to_the_person_in_view_with_their_label():
    # Two people: 0 happy from second 0 to 9, 1 sad from second 5 to 14; a session without people.
    people = pd.DataFrame(
        {
            "run_id": ["live", "live"],
            "person": [0, 1],
            "file": [LIVE_FILE, LIVE_FILE],
            "emotion": ["happy", "sad"],
            "first_seen": [at(0), at(5)],
            "last_seen": [at(9), at(14)],
        }
    )
    rows = [{"run_id": "live", "emotion": "happy", "second": s} for s in range(10)]
    rows += [{"run_id": "live", "emotion": "sad", "second": s} for s in range(5, 15)]
    rows += [{"run_id": "live", "emotion": "sad", "second": 20}]  # after both left: the nearest
    rows += [{"run_id": "empty", "emotion": "happy", "second": s} for s in (0, 0, 1)]
    frame = pd.DataFrame(rows).assign(file=LIVE_FILE, status="ok")
    frame["at"] = frame["second"].map(at)
    clusters = shares.sample_clusters(frame, people)
    assert set(clusters[:10]) == {"live|person|0"} and set(clusters[10:21]) == {"live|person|1"}
    # Without people, each face-second is its own: two faces in one second are two.
    assert clusters[21:].nunique() == 3


def test_two_faces_with_one_label_in_one_second_are_spread_over_the_people_in_view():
    people = pd.DataFrame(
        {
            "run_id": ["r", "r"],
            "person": [0, 1],
            "file": [LIVE_FILE] * 2,
            "emotion": ["happy", "happy"],
            "first_seen": [at(0), at(0)],
            "last_seen": [at(4), at(4)],
        }
    )
    frame = pd.DataFrame({"run_id": "r", "emotion": "happy", "at": [at(s) for s in range(5) for _ in (0, 1)]})
    clusters = shares.sample_clusters(frame.assign(file=LIVE_FILE, status="ok"), people)
    assert clusters.value_counts().tolist() == [5, 5]


def confusion(right: float = 0.7, per_class: int = 200) -> Confusion:
    k = len(NAMES)
    rates = np.full((k, k), (1 - right) / (k - 1))
    np.fill_diagonal(rates, right)
    return Confusion(NAMES, np.round(rates * per_class))


def test_corrected_shares_and_what_is_left_out():
    labels = ["happy"] * 60 + ["neutral"] * 30 + ["sad"] * 10
    result, reason = shares.corrected(labels, [str(i) for i in range(100)], confusion(), {"positive": ("happy",)})
    assert reason == "" and result.group("positive").raw == pytest.approx(0.6)
    table = shares.share_table(result, "group")
    assert table.columns.tolist() == ["label", "as read", "corrected", "from", "to"]
    assert result.group("positive").low <= result.group("positive").corrected <= result.group("positive").high
    result, reason = shares.corrected(["contempt"], ["0"], confusion())
    assert result is None and "contempt" in reason
    raw = shares.raw_frame(labels, {"positive": ("happy",)})
    assert raw.set_index("label").loc["positive", "raw"] == pytest.approx(0.6) and raw["corrected"].isna().all()
    assert shares.not_corrected("the file is missing").endswith(
        "not corrected for its known mix-ups: the file is missing."
    )


def test_threshold_groups_and_their_other_bucket_cannot_be_corrected():
    grouping = groups.Grouping(
        "moods",
        (groups.Group("frustrated", ("angry", "sad")), groups.Group("delighted", ("happy",), 0.7)),
        other="other",
    )
    fit = shares.correctable(grouping, NAMES)
    assert fit.groups == {"frustrated": ("angry", "sad")} and fit.skipped == ("delighted", "other")
    note = shares.threshold_note(fit)
    assert "“delighted” counts only faces at least 70% sure" in note and "cannot be corrected" in note
    assert shares.threshold_note(shares.correctable(trends.sentiment_grouping(), NAMES)) == ""


def test_campaign_verdicts_are_plain_and_count_people():
    rng = np.random.default_rng(0)
    mix_a, mix_b = [0.05, 0, 0.05, 0.6, 0.1, 0.05, 0.15], [0.2, 0, 0.05, 0.2, 0.3, 0.05, 0.2]

    def campaign(mix, people: int, prefix: str):
        labels, clusters = [], []
        for p in range(people):
            label = rng.choice(NAMES, p=mix)
            labels += [str(label)] * 5  # each person seen five times
            clusters += [f"{prefix}{p}"] * 5
        return tuple(labels), tuple(clusters)

    sentiment = trends.sentiment_grouping()
    buckets = shares.compared_buckets(sentiment, NAMES)
    differ = shares.compare_pair(campaign(mix_a, 80, "a"), campaign(mix_b, 80, "b"), ("A", "B"), buckets, confusion())
    text = shares.plain_test_verdict(differ, sentiment)
    assert differ.differs and text.startswith("“A” and “B” really differ in their sentiment mix: the positive share")
    for jargon in ("Rao-Scott", "p <", "p =", "chi-square"):
        assert jargon not in text
    assert "Rao-Scott F" in shares.pair_details(differ) and "80 + 80 photos and tracked people" in shares.pair_details(
        differ
    )
    few = shares.compare_pair(campaign(mix_a, 4, "c"), campaign(mix_b, 30, "d"), ("C", "D"), buckets)
    assert not few.testable
    assert shares.plain_test_verdict(few, sentiment).startswith("Too few people to tell whether “C” and “D” differ")
    assert shares.pairs(["A", "B", "C"]) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert compare.MIN_PEOPLE > 4
