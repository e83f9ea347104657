"""Error-aware shares on synthetic data: a known confusion matrix and a known mix."""

from __future__ import annotations

import numpy as np
import pytest

from src.analytics.groups import builtin_sentiment
from src.analytics.quantify import (
    Confusion,
    cluster_counts,
    design_effect,
    effective_counts,
    group_map,
    ml_mix,
    quantify,
    quantify_counts,
)

NAMES = ("angry", "happy", "neutral")
# P(predicted | true): angry is mostly right, happy and neutral are often read as angry.
RATES = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.3, 0.1, 0.6]])


def labels_of(true: np.ndarray, rng: np.random.Generator, rates: np.ndarray = RATES) -> list[str]:
    cut = rates[true].cumsum(axis=1)
    return [NAMES[i] for i in (rng.random(len(true))[:, None] > cut).sum(axis=1)]


def measured(rng: np.random.Generator, per_class: int = 300) -> Confusion:
    """An error model counted on ``per_class`` labelled faces per class."""
    true = np.repeat(np.arange(3), per_class)
    counts = np.zeros((3, 3), int)
    np.add.at(counts, (true, [NAMES.index(x) for x in labels_of(true, rng)]), 1)
    return Confusion(NAMES, counts)


def campaign(mix, faces: int, rng) -> tuple[list[str], np.ndarray]:
    true = np.repeat(np.arange(3), np.round(np.array(mix) * faces).astype(int))
    return labels_of(true, rng), np.bincount(true, minlength=3) / len(true)


@pytest.mark.parametrize("method", ["bayes", "acc"])
def test_corrected_shares_are_closer_to_the_truth_than_raw(method):
    rng = np.random.default_rng(0)
    labels, truth = campaign([0.1, 0.6, 0.3], 2000, rng)
    result = quantify(labels, measured(rng, per_class=1000), method=method)
    raw = np.array([s.raw for s in result.emotions])
    corrected = np.array([s.corrected for s in result.emotions])
    assert np.abs(corrected - truth).mean() < 0.5 * np.abs(raw - truth).mean()
    assert corrected.sum() == pytest.approx(1.0)
    assert all(s.low <= s.corrected <= s.high for s in result.emotions)
    assert result.faces == result.clusters == 2000 and result.effective_faces == 2000
    assert "it reads 30% of happy faces as angry" in result.explanation
    assert "95 times in 100" in result.explanation


def test_intervals_cover_the_truth_in_a_seeded_simulation():
    rng = np.random.default_rng(1)
    hits = []
    for seed in range(25):
        model = measured(rng, per_class=120)
        labels, truth = campaign([0.2, 0.5, 0.3], 150, rng)
        result = quantify(labels, model, seed=seed)
        hits += [s.low - 1e-9 <= t <= s.high + 1e-9 for s, t in zip(result.emotions, truth)]
    assert np.mean(hits) >= 0.85


def test_the_maximum_likelihood_mix_inverts_an_exact_confusion():
    counts = np.array([0.2, 0.5, 0.3]) @ RATES * 1000
    np.testing.assert_allclose(ml_mix(counts, RATES, steps=5000), [0.2, 0.5, 0.3], atol=1e-3)


def test_groups_come_from_the_same_draws():
    rng = np.random.default_rng(2)
    labels, _ = campaign([0.2, 0.5, 0.3], 200, rng)
    groups = {"bad": ("angry",), "not bad": ("happy", "neutral")}
    result = quantify(labels, measured(rng), groups=groups)
    bad, rest = result.group("bad"), result.group("not bad")
    assert bad.raw == pytest.approx(result.emotion("angry").raw)
    assert rest.corrected == pytest.approx(result.emotion("happy").corrected + result.emotion("neutral").corrected)
    assert bad.corrected + rest.corrected == pytest.approx(1.0)
    assert bad.low <= bad.corrected <= bad.high
    assert list(result.frame()["kind"]) == ["emotion"] * 3 + ["group"] * 2


def test_sentiment_grouping_maps_every_emotion_once():
    names = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    mapping = group_map(builtin_sentiment(), names)
    assert mapping["positive"] == ("happy",)
    assert sorted(e for members in mapping.values() for e in members) == sorted(names)


def test_repeated_samples_of_one_person_count_for_less():
    rng = np.random.default_rng(3)
    model = measured(rng)
    # 20 people, each seen 10 times with the same label: 10 samples hold one person's worth.
    people = [NAMES[i % 3] for i in range(20)]
    labels = [label for label in people for _ in range(10)]
    clusters = [p for p in range(20) for _ in range(10)]
    alone = quantify(labels, model)
    grouped = quantify(labels, model, clusters=clusters)
    assert grouped.clusters == 20 and grouped.faces == 200
    assert 15 <= grouped.effective_faces <= 25
    width = [s.high - s.low for s in grouped.emotions]
    assert all(w > v.high - v.low for w, v in zip(width, alone.emotions))


def test_design_effect():
    singles = cluster_counts(np.array([0, 1, 2, 0]), None, 3)
    assert design_effect(singles) == 1.0
    same = cluster_counts(np.repeat([0, 1] * 10, 5), np.repeat(np.arange(20), 5), 3)
    assert design_effect(same) == pytest.approx(5 * 20 / 19)  # the clusters' variance with its g / (g - 1)
    one = cluster_counts(np.array([0, 1, 1]), ["p", "p", "p"], 3)
    assert design_effect(one) == 3.0
    np.testing.assert_array_equal(effective_counts(np.array([50, 30, 20]), 10.0), [5, 3, 2])
    assert effective_counts(np.array([1, 0, 0]), 50.0).sum() == 1


def test_probabilities_count_their_top_class():
    rng = np.random.default_rng(4)
    model = measured(rng)
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    by_probs = quantify(probs, model, seed=3)
    by_labels = quantify(["angry", "happy", "neutral"], model, seed=3)
    assert by_probs.frame().equals(by_labels.frame())


def test_empty_selection_gives_nan_shares_and_says_why():
    result = quantify([], Confusion(NAMES, np.eye(3) * 10))
    assert result.faces == 0
    assert all(np.isnan(s.corrected) and np.isnan(s.raw) for s in result.emotions)
    assert "No faces" in result.warnings[0]


def test_one_label_only_still_gives_shares():
    rng = np.random.default_rng(5)
    result = quantify(["happy"] * 50, measured(rng))
    assert result.emotion("happy").raw == 1.0
    assert sum(s.corrected for s in result.emotions) == pytest.approx(1.0)
    assert result.emotion("happy").corrected > 0.5


def test_singular_or_empty_confusion_warns_instead_of_crashing():
    # happy and neutral are read exactly alike: their split cannot be told.
    counts = np.array([[80, 10, 10], [20, 40, 40], [20, 40, 40]])
    result = quantify(["angry", "happy", "neutral"] * 20, Confusion(NAMES, counts))
    assert any("happy and neutral are read alike" in w for w in result.warnings)
    assert result.emotion("happy").high - result.emotion("happy").low > 0.3
    no_neutral = np.array([[80, 10, 10], [20, 70, 10], [0, 0, 0]])
    result = quantify(["angry", "happy"] * 20, Confusion(NAMES, no_neutral))
    assert any("no neutral faces" in w for w in result.warnings)
    assert sum(s.corrected for s in result.emotions) == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors():
    model = Confusion(NAMES, np.eye(3) * 10)
    with pytest.raises(ValueError, match="not classes of the error model"):
        quantify(["angry", "sad"], model)
    with pytest.raises(ValueError, match="method"):
        quantify(["angry"], model, method="magic")
    with pytest.raises(ValueError, match="3x3"):
        quantify(["angry"], Confusion(NAMES, np.ones((2, 2))))
    with pytest.raises(ValueError, match="names sad"):
        quantify(["angry"], model, groups={"blue": ("sad",)})
    with pytest.raises(ValueError, match="cluster ids"):
        quantify(["angry", "happy"], model, clusters=[1])


def test_same_seed_same_figures():
    rng = np.random.default_rng(6)
    model = measured(rng)
    labels, _ = campaign([0.3, 0.3, 0.4], 100, rng)
    assert quantify(labels, model, seed=9).frame().equals(quantify(labels, model, seed=9).frame())


def test_people_counts_are_corrected_like_as_many_independent_labels():
    """The product's path: label counts of people (each one unit) give the figures that the same
    labels one by one give, draw for draw."""
    rng = np.random.default_rng(5)
    labels, _ = campaign([0.2, 0.5, 0.3], 300, rng)
    model = measured(rng)
    counts = {name: labels.count(name) for name in NAMES}
    for method in ("bayes", "acc"):
        by_counts = quantify_counts(counts, model, groups={"bad": ("angry",)}, method=method, seed=3)
        one_by_one = quantify(labels, model, groups={"bad": ("angry",)}, method=method, seed=3)
        assert by_counts.frame().equals(one_by_one.frame())
        assert by_counts.faces == by_counts.clusters == 300 and by_counts.effective_faces == 300
    vector = quantify_counts([counts[n] for n in NAMES], model, seed=3)
    assert vector.frame().equals(quantify_counts(counts, model, seed=3).frame())
    assert quantify_counts({**counts, "contempt": 0}, model).faces == 300  # a label nobody has is no problem
    with pytest.raises(ValueError, match="contempt"):
        quantify_counts({"contempt": 2}, model)
    with pytest.raises(ValueError, match="2 counts for 3 classes"):
        quantify_counts([1, 2], model)
    empty = quantify_counts({}, model)
    assert empty.faces == 0 and np.isnan(empty.emotion("happy").corrected)
