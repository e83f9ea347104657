"""Honest two-campaign comparisons: people seen many times, and the model's mistakes, allowed for.

A chi-square test on sample rows treats every row as an independent face with a true label.
Video and live rows repeat the same people, whose expressions (and the model's readings of
them) hang together, so that test cries "differ" far more often than its 5%:
``bench/bench_compare.py`` measures it.

Here each row carries a *cluster* id: the person (track) it shows, or its photo.

* The test is a second-order Rao-Scott test (F form) of the labels' mix between the two
  campaigns: Pearson's chi-square, rescaled by the design effects that the clusters'
  covariance gives (``rao_scott``). Each campaign's people are its sampling units, so the
  denominator degrees of freedom are the people counted, not the rows.
* It runs on the model's labels, not on corrected shares: when two campaigns have the same
  true mix, the same model gives them the same expected mix of labels, so a gap in labels
  is evidence of a gap in expressions, and the correction (the same for both) would add
  noise, not evidence. This assumes the model errs alike in both (similar cameras and light).
* The correction decides how a difference is *described*: the gap of each emotion (or group)
  between the campaigns' corrected mixes, with a range from draws that share one error-model
  draw between the two campaigns (its uncertainty largely cancels in a gap) and count each
  campaign's repeated samples at their effective number (``src.analytics.quantify``).

The product counts people (``compare_counts``): each person, a photo's face or someone followed
through a video or by the live camera with their averaged label, is one unit, so the two
campaigns' people counts are all the test needs, and Rao-Scott reduces to Pearson's
chi-square (``pearson``). ``compare`` with per-sample cluster ids stays for samples.

Verdicts are plain sentences: "The campaigns differ: more happy faces in A (...)", "No clear
difference ...", "Too few people to tell ...".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from src import config
from src.analytics.quantify import (
    BURN_IN,
    CHAINS,
    PRIOR_MIX,
    SWEEPS,
    ConfusionCounts,
    cluster_counts,
    cluster_covariance,
    confusion_draws,
    count_vector,
    design_effect,
    effective_counts,
    label_indices,
    posterior,
)

ALPHA = 0.05
MIN_PEOPLE = 10  # per campaign: below this the clusters' covariance, and so the test, is not to be trusted
WIDE_GAP = 0.15  # "no clear difference" adds a caution when a gap this large could go unseen


@dataclass(frozen=True)
class RaoScott:
    """A second-order Rao-Scott test of one mix between two samples of clusters.

    ``statistic`` is F on (``df1``, ``df2``) degrees of freedom; ``pearson`` and
    ``pearson_p`` are the naive chi-square that treats every row as independent;
    ``design_effect`` is the mean of the eigenvalue design effects.
    """

    statistic: float
    df1: float
    df2: float
    p_value: float
    pearson: float
    pearson_p: float
    design_effect: float


@dataclass(frozen=True)
class Gap:
    """One label's share in each campaign (corrected when an error model was given) and their gap A - B."""

    label: str
    share_a: float
    share_b: float
    difference: float
    low: float
    high: float


@dataclass(frozen=True)
class CampaignTest:
    """Do two campaigns differ in their mix? The test, the gaps, and the verdict in plain words.

    ``testable`` is False with too few people (then ``differs``, ``test`` are None).
    ``corrected`` says whether the gaps allow for the model's mistakes.
    """

    names: tuple[str, str]
    labels: tuple[str, ...]
    faces: tuple[int, int]
    people: tuple[int, int]
    testable: bool
    differs: bool | None
    test: RaoScott | None
    corrected: bool
    gaps: tuple[Gap, ...]
    verdict: str


def rao_scott(table_a: np.ndarray, table_b: np.ndarray) -> RaoScott | None:
    """Second-order Rao-Scott F test that two clustered samples share one label mix.

    ``table_a``/``table_b``: (clusters, labels) counts (``quantify.cluster_counts``). Labels
    no row has are dropped; None when fewer than two labels are left or a campaign has no rows.
    """
    a, b = table_a.sum(axis=0), table_b.sum(axis=0)
    keep = (a + b) > 0
    n_a, n_b = a.sum(), b.sum()
    if keep.sum() < 2 or n_a == 0 or n_b == 0:
        return None
    table_a, table_b = table_a[:, keep], table_b[:, keep]
    observed = np.vstack([a[keep], b[keep]]).astype(float)
    pearson = float(stats.chi2_contingency(observed, correction=False).statistic)
    k = observed.shape[1]
    pooled = observed.sum(axis=0) / observed.sum()
    # Covariance of p_a - p_b were the rows independent and the mixes equal, against the clusters' own (k-1 labels).
    simple = (1 / n_a + 1 / n_b) * (np.diag(pooled) - np.outer(pooled, pooled))[:-1, :-1]
    clustered = (cluster_covariance(table_a) + cluster_covariance(table_b))[:-1, :-1]
    deffs = np.real(np.linalg.eigvals(np.linalg.solve(simple, clustered)))
    deffs = np.clip(deffs, 0, None)
    total, squares = deffs.sum(), (deffs**2).sum()
    pearson_p = float(stats.chi2.sf(pearson, k - 1))
    if total <= 0:
        return RaoScott(math.nan, math.nan, math.nan, math.nan, pearson, pearson_p, 0.0)
    scale, df1 = squares / total, total**2 / squares
    df2 = df1 * max(len(table_a) + len(table_b) - 2, 1)
    statistic = pearson / scale / df1
    return RaoScott(
        float(statistic),
        float(df1),
        float(df2),
        float(stats.f.sf(statistic, df1, df2)),
        pearson,
        pearson_p,
        float(total / (k - 1)),
    )


def _buckets(
    groups: Mapping[str, Sequence[str]] | None, class_names: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Labels to test and (classes, labels) 0/1 membership; groups must not share an emotion."""
    if not groups:
        return tuple(class_names), np.eye(len(class_names))
    index = {name: i for i, name in enumerate(class_names)}
    member = np.zeros((len(class_names), len(groups)))
    for g, (name, emotions) in enumerate(groups.items()):
        unknown = [e for e in emotions if e not in index]
        if unknown:
            raise ValueError(f"group {name!r} names {', '.join(unknown)}, not classes ({', '.join(class_names)})")
        member[[index[e] for e in set(emotions)], g] = 1
    if (member.sum(axis=1) > 1).any():
        shared = [class_names[i] for i in np.flatnonzero(member.sum(axis=1) > 1)]
        raise ValueError(
            f"{', '.join(shared)} belong to more than one group: a test of the mix needs each emotion in one group at most"
        )
    return tuple(groups), member


def compare(
    a,
    b,
    class_names: Sequence[str] | None = None,
    *,
    clusters_a: Sequence[Hashable] | None = None,
    clusters_b: Sequence[Hashable] | None = None,
    error_model: ConfusionCounts | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    names: tuple[str, str] = ("A", "B"),
    alpha: float = ALPHA,
    unit: str = "people",
    seed: int = 0,
) -> CampaignTest:
    """Test whether campaigns ``a`` and ``b`` differ in their mix, and say how, in plain words.

    ``a``/``b``: each face's label (strings) or (N, classes) probabilities. ``clusters_*``: a
    person (track) or photo id per face; without them every face is its own person.
    ``error_model``: corrects the gaps for the model's mistakes (its classes are the classes).
    ``groups``: test a grouping's mix (``{name: emotions}``, no emotion in two groups; faces
    whose emotion is in none are left out) instead of the emotions. ``unit`` names the
    clusters in the verdict ("people", "photos").
    """
    class_names = tuple(error_model.class_names if error_model is not None else class_names or config.EMOTIONS)
    labels, member = _buckets(groups, class_names)
    k = len(class_names)
    idx_a, idx_b = label_indices(a, class_names), label_indices(b, class_names)
    emotion_tables = [cluster_counts(i, c, k) for i, c in ((idx_a, clusters_a), (idx_b, clusters_b))]
    # The test counts groups; faces whose emotion is in no group leave it, and people left without faces too.
    tables = [t @ member for t in emotion_tables]
    tables = [t[t.sum(axis=1) > 0] for t in tables]
    faces = (int(tables[0].sum()), int(tables[1].sum()))
    people = (len(tables[0]), len(tables[1]))
    gaps = _gaps(emotion_tables, member, error_model, labels, seed)
    test = rao_scott(*tables) if min(people) >= MIN_PEOPLE else None
    return _decide(names, labels, faces, people, test, gaps, error_model is not None, groups, alpha, unit)


def pearson(counts_a: np.ndarray, counts_b: np.ndarray) -> RaoScott | None:
    """The test of ``rao_scott`` when every cluster is one person: Pearson's chi-square on the
    two campaigns' label counts (design effect 1), in the same form (``statistic`` = chi-square
    over its degrees of freedom, ``df2`` infinite). None as ``rao_scott``."""
    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    keep = (a + b) > 0
    if keep.sum() < 2 or a.sum() == 0 or b.sum() == 0:
        return None
    observed = np.vstack([a[keep], b[keep]])
    chi2 = float(stats.chi2_contingency(observed, correction=False).statistic)
    dof = int(keep.sum()) - 1
    p = float(stats.chi2.sf(chi2, dof))
    return RaoScott(chi2 / dof, float(dof), math.inf, p, chi2, p, 1.0)


def compare_counts(
    counts_a: Mapping[str, int] | Sequence[int] | np.ndarray,
    counts_b: Mapping[str, int] | Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    error_model: ConfusionCounts | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    names: tuple[str, str] = ("A", "B"),
    alpha: float = ALPHA,
    unit: str = "people",
    seed: int = 0,
) -> CampaignTest:
    """``compare`` of two campaigns given as label counts of people (``{label: n}`` or vectors in
    the class order), e.g. summed from ``Store.tallies(unit="person")``: each person one
    independent unit, so the Rao-Scott test is Pearson's chi-square (``pearson``). Same verdicts."""
    class_names = tuple(error_model.class_names if error_model is not None else class_names or config.EMOTIONS)
    labels, member = _buckets(groups, class_names)
    vectors = [count_vector(c, class_names) for c in (counts_a, counts_b)]
    tested = [v @ member for v in vectors]
    people = (int(tested[0].sum()), int(tested[1].sum()))
    gaps = _count_gaps(vectors, member, error_model, labels, seed)
    return _decide(names, labels, people, people, pearson(*tested), gaps, error_model is not None, groups, alpha, unit)


def _decide(names, labels, faces, people, test, gaps, corrected: bool, groups, alpha: float, unit: str) -> CampaignTest:
    """The verdict of a comparison from its counts, test and gaps."""
    quoted = (f"“{names[0]}”", f"“{names[1]}”")
    if min(people) < MIN_PEOPLE:
        verdict = (
            f"Too few {unit} to tell: {people[0]} in {quoted[0]} and {people[1]} in {quoted[1]}; "
            f"a fair comparison needs at least {MIN_PEOPLE} in each."
        )
        return CampaignTest(names, labels, faces, people, False, None, None, corrected, gaps, verdict)
    if test is None or math.isnan(test.p_value):
        verdict = (
            f"No mix to compare: every face of {quoted[0]} and {quoted[1]} has the same "
            f"{'emotion' if not groups else 'group'}."
        )
        return CampaignTest(names, labels, faces, people, False, None, test, corrected, gaps, verdict)
    differs = test.p_value < alpha
    if math.isinf(test.df2):
        figures = f"chi-square {test.pearson:.1f}, {_p(test.p_value)}, counting {people[0]} + {people[1]} {unit}"
    else:
        figures = f"Rao-Scott F {test.statistic:.2f}, {_p(test.p_value)}, counting {people[0]} + {people[1]} {unit}"
    verdict = _differ_text(gaps, quoted, corrected, figures) if differs else _same_text(gaps, quoted, unit, figures)
    return CampaignTest(names, labels, faces, people, True, differs, test, corrected, gaps, verdict)


def _gaps(tables, member: np.ndarray, error_model, labels, seed: int) -> tuple[Gap, ...]:
    """Each label's mix in A and B (posterior means) and the range of their gap A - B.

    Drawn on the emotions (``tables``: clusters x emotions), then summed into the labels; with
    an error model both campaigns use the same confusion draws, chain by chain.
    """
    return _count_gaps(
        [effective_counts(t.sum(axis=0), design_effect(t)) for t in tables], member, error_model, labels, seed
    )


def _count_gaps(counts, member: np.ndarray, error_model, labels, seed: int) -> tuple[Gap, ...]:
    """``_gaps`` of two campaigns' (effective) emotion counts."""
    if min(c.sum() for c in counts) == 0:
        nan = math.nan
        return tuple(Gap(label, nan, nan, nan, nan, nan) for label in labels)
    confusion = None if error_model is None else tuple(np.asarray(error_model.counts, float).ravel())
    mixes = [_mix_draws(tuple(int(x) for x in c), confusion, seed) @ member for c in counts]
    diff = mixes[0] - mixes[1]
    low, high = np.quantile(diff, [0.025, 0.975], axis=0)
    mean_a, mean_b = mixes[0].mean(axis=0), mixes[1].mean(axis=0)
    return tuple(
        Gap(label, float(x), float(y), float(x - y), float(lo), float(hi))
        for label, x, y, lo, hi in zip(labels, mean_a, mean_b, low, high)
    )


@functools.lru_cache(maxsize=256)
def _mix_draws(counts: tuple[int, ...], confusion: tuple[float, ...] | None, seed: int) -> np.ndarray:
    """Draws of one campaign's mix from its counts (corrected with the confusion counts, flattened).

    Every campaign gets the same confusion draws (``seed``), so the error model's uncertainty
    largely cancels in a gap, and its own chain seeded by its counts: a campaign compared with
    several others is drawn once, and the same in every pair."""
    vector = np.asarray(counts, np.int64)
    rng = np.random.default_rng([seed, *counts])
    if confusion is None:
        out = _dirichlet(PRIOR_MIX + vector, CHAINS * (SWEEPS - BURN_IN), rng)
    else:
        k = len(vector)
        confusions = confusion_draws(np.asarray(confusion).reshape(k, k), CHAINS, np.random.default_rng(seed))
        out = posterior(vector, confusions, rng)[1]
    out.setflags(write=False)  # cached: shared by every caller
    return out


def _dirichlet(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    gamma = rng.standard_gamma(np.broadcast_to(alpha, (size, len(alpha))))
    return gamma / gamma.sum(axis=1, keepdims=True)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _size(gap: Gap) -> float:
    """A gap's size to the point shown, so equal gaps (two groups mirror each other) go to the first label."""
    return round(abs(gap.difference), 3)


def _differ_text(gaps, quoted, corrected: bool, figures: str) -> str:
    how = "corrected for the model's mistakes" if corrected else "as labelled"
    clear = [g for g in gaps if g.low > 0 or g.high < 0]
    if clear:
        top = max(clear, key=_size)
        more = quoted[0] if top.difference > 0 else quoted[1]
        return (
            f"The campaigns differ: more {top.label} faces in {more} "
            f"({top.share_a:.0%} in {quoted[0]} against {top.share_b:.0%} in {quoted[1]}, {how}; {figures})."
        )
    top = max(gaps, key=_size)
    return (
        f"The campaigns differ in their mix ({figures}), but no single label stands out once chance "
        f"{'and the model’s mistakes are' if corrected else 'is'} allowed for; the largest gap is "
        f"{top.label}: {top.share_a:.0%} in {quoted[0]} against {top.share_b:.0%} in {quoted[1]}."
    )


def _same_text(gaps, quoted, unit: str, figures: str) -> str:
    text = (
        f"No clear difference between {quoted[0]} and {quoted[1]} ({figures}): "
        f"the gaps are within what chance produces with this many {unit}"
    )
    widest = max((max(abs(g.low), abs(g.high)) for g in gaps if not math.isnan(g.low)), default=0.0)
    if widest > WIDE_GAP:
        return f"{text}, though gaps of up to {widest:.0%} could go unseen with so few."
    return f"{text}."
