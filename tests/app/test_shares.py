"""The dashboard's corrected shares and people-based campaign tests: counts per person, sentences, details."""

from __future__ import annotations

import numpy as np
import pytest

from src.analytics import compare, groups, trends
from src.analytics.quantify import Confusion
from src.app import shares

NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def confusion(right: float = 0.7, per_class: int = 200) -> Confusion:
    k = len(NAMES)
    rates = np.full((k, k), (1 - right) / (k - 1))
    np.fill_diagonal(rates, right)
    return Confusion(NAMES, np.round(rates * per_class))


def test_corrected_shares_and_what_is_left_out():
    counts = {"happy": 60, "neutral": 30, "sad": 10}  # people per label
    result, reason = shares.corrected(counts, confusion(), {"positive": ("happy",)})
    assert reason == "" and result.group("positive").raw == pytest.approx(0.6)
    assert result.faces == result.clusters == 100 and result.effective_faces == 100  # each person one unit
    table = shares.share_table(result, "group")
    assert table.columns.tolist() == ["label", "as read", "corrected", "from", "to"]
    assert result.group("positive").low <= result.group("positive").corrected <= result.group("positive").high
    result, reason = shares.corrected({"contempt": 1}, confusion())
    assert result is None and "contempt" in reason
    raw = shares.raw_frame(counts, {"positive": ("happy",)})
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

    def campaign(mix, people: int) -> dict[str, int]:
        """People per label, each person one label (a tracked person's averaged one)."""
        return dict(zip(NAMES, (int(n) for n in rng.multinomial(people, mix))))

    sentiment = trends.sentiment_grouping()
    buckets = shares.compared_buckets(sentiment, NAMES)
    differ = shares.compare_pair(campaign(mix_a, 80), campaign(mix_b, 80), ("A", "B"), buckets, confusion())
    text = shares.plain_test_verdict(differ, sentiment)
    assert differ.differs and text.startswith("“A” and “B” really differ in their sentiment mix: the positive share")
    for jargon in ("Rao-Scott", "p <", "p =", "chi-square"):
        assert jargon not in text
    details = shares.pair_details(differ)
    assert "Pearson chi-square" in details and "“A” against “B”: 80 + 80 people" in details
    few = shares.compare_pair(campaign(mix_a, 4), campaign(mix_b, 30), ("C", "D"), buckets)
    assert not few.testable
    assert shares.plain_test_verdict(few, sentiment).startswith("Too few people to tell whether “C” and “D” differ")
    assert shares.pairs(["A", "B", "C"]) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert compare.MIN_PEOPLE > 4
