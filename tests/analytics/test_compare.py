"""Two-campaign comparisons with people seen many times: the Rao-Scott test and the verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from src.analytics.compare import MIN_PEOPLE, compare, rao_scott
from src.analytics.quantify import Confusion, cluster_counts

NAMES = ("angry", "happy", "neutral")
MIX = np.array([0.2, 0.4, 0.4])


def people(mix, count: int, samples: int, rng, kappa: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and person ids: each person has their own tendencies around ``mix`` (low kappa: people differ more)."""
    tendency = rng.dirichlet(kappa * np.asarray(mix) * 3, size=count)
    ids = np.repeat(np.arange(count), samples)
    cut = tendency[ids].cumsum(axis=1)
    return (rng.random(len(ids))[:, None] > cut).sum(axis=1), ids


def test_without_clusters_it_is_pearsons_chi_square():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    test = rao_scott(cluster_counts(a, None, 3), cluster_counts(b, None, 3))
    assert test.design_effect == pytest.approx(1.0, abs=0.05)
    assert test.p_value == pytest.approx(test.pearson_p, abs=0.02)


def test_false_alarms_stay_near_alpha_where_the_naive_test_cries_wolf():
    rng = np.random.default_rng(1)
    naive = new = 0
    reps = 300
    for _ in range(reps):
        tables = [cluster_counts(*people(MIX, 30, 10, rng), 3) for _ in range(2)]
        test = rao_scott(*tables)
        naive += test.pearson_p < 0.05
        new += test.p_value < 0.05
    assert naive / reps > 0.3
    assert new / reps <= 0.08


def test_a_real_difference_is_found_and_described():
    rng = np.random.default_rng(2)
    a, ids_a = people([0.1, 0.7, 0.2], 40, 5, rng, kappa=5)
    b, ids_b = people([0.1, 0.2, 0.7], 40, 5, rng, kappa=5)
    result = compare(
        [NAMES[i] for i in a],
        [NAMES[i] for i in b],
        NAMES,
        clusters_a=ids_a,
        clusters_b=ids_b,
        names=("Spring", "Autumn"),
    )
    assert result.testable and result.differs
    assert result.verdict.startswith("The campaigns differ: more")
    assert "“Spring”" in result.verdict and "40 + 40 people" in result.verdict
    gap = {g.label: g for g in result.gaps}
    assert gap["happy"].difference > 0.2 and gap["happy"].low > 0
    assert result.people == (40, 40) and result.faces == (200, 200)
    assert not result.corrected


def test_same_mix_gives_no_clear_difference():
    rng = np.random.default_rng(3)
    a, ids_a = people(MIX, 30, 10, rng)
    b, ids_b = people(MIX, 30, 10, rng)
    result = compare(a[:, None] == np.arange(3), b[:, None] == np.arange(3), NAMES, clusters_a=ids_a, clusters_b=ids_b)
    assert result.testable and not result.differs
    assert result.verdict.startswith("No clear difference")


def test_too_few_people_to_tell():
    labels = ["happy", "angry", "neutral"] * 20
    result = compare(labels, labels, NAMES, clusters_a=[i % 4 for i in range(60)], clusters_b=None)
    assert not result.testable and result.differs is None
    assert result.verdict.startswith("Too few people to tell")
    assert f"at least {MIN_PEOPLE}" in result.verdict


def test_corrected_gaps_with_an_error_model_and_groups():
    rng = np.random.default_rng(4)
    model = Confusion(NAMES, np.array([[80, 10, 10], [30, 60, 10], [30, 10, 60]]))
    a = [NAMES[i] for i in rng.choice(3, 300, p=[0.3, 0.6, 0.1])]
    b = [NAMES[i] for i in rng.choice(3, 300, p=[0.3, 0.1, 0.6])]
    result = compare(a, b, error_model=model, groups={"pleased": ("happy",), "other": ("angry", "neutral")})
    assert result.corrected and result.labels == ("pleased", "other")
    pleased = result.gaps[0]
    # The model reads happy faces as angry, so the corrected gap is wider than the labelled one.
    assert pleased.difference > 0.6 and pleased.low > 0.3  # labelled: 0.6 against 0.1
    assert result.differs and "more pleased faces in “A”" in result.verdict


def test_edge_cases_say_what_is_wrong():
    same = ["happy"] * 30
    result = compare(same, same, NAMES)
    assert not result.testable and "same emotion" in result.verdict
    with pytest.raises(ValueError, match="more than one group"):
        compare(same, same, NAMES, groups={"x": ("happy",), "y": ("happy", "angry")})
    empty = compare([], ["happy"] * 30, NAMES)
    assert not empty.testable and empty.verdict.startswith("Too few")
    assert all(np.isnan(g.difference) for g in empty.gaps)


def test_people_counts_are_tested_with_pearsons_chi_square():
    """Each person one unit: the Rao-Scott test is Pearson's, on the counts alone."""
    from scipy.stats import chi2_contingency

    from src.analytics.compare import compare_counts, pearson

    a, b = {"angry": 10, "happy": 40, "neutral": 30}, {"angry": 15, "happy": 15, "neutral": 50}
    expected = chi2_contingency(np.array([[10, 40, 30], [15, 15, 50]]), correction=False)
    result = compare_counts(a, b, NAMES, names=("Spring", "Autumn"))
    assert result.testable and result.differs and result.people == (80, 80)
    assert result.test.pearson == pytest.approx(expected.statistic) and result.test.p_value == pytest.approx(
        expected.pvalue
    )
    assert result.test.design_effect == 1.0 and result.test.df1 == 2
    assert "chi-square" in result.verdict and "80 + 80 people" in result.verdict and "“Spring”" in result.verdict
    gap = {g.label: g for g in result.gaps}
    assert gap["happy"].difference > 0.2 and gap["happy"].low > 0
    # The same people given one by one, each their own cluster: the clustered test agrees.
    labels_a = [n for n, k in zip(NAMES, [10, 40, 30]) for _ in range(k)]
    labels_b = [n for n, k in zip(NAMES, [15, 15, 50]) for _ in range(k)]
    clustered = compare(labels_a, labels_b, NAMES)
    assert clustered.test.p_value == pytest.approx(result.test.p_value, rel=0.2)
    few = compare_counts({"happy": 3}, b, NAMES)
    assert not few.testable and few.verdict.startswith("Too few people to tell: 3 in")
    same = compare_counts({"happy": 20}, {"happy": 30}, NAMES)
    assert not same.testable and "No mix to compare" in same.verdict
    assert pearson(np.array([0, 5, 0]), np.array([0, 0, 0])) is None
    grouped = compare_counts(a, b, NAMES, groups={"bad": ("angry",), "good": ("happy",)})
    assert grouped.people == (50, 30)  # neutral people are in no group: out of the test
