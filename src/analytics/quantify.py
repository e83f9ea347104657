"""Error-aware shares: the true emotion mix of a selection, corrected for the model's known mistakes.

The model reads a face right less than half the time on real photos, and its mistakes are
systematic (surprise read as angry, disgust read as neutral), so the share of faces
*labelled* happy is a biased estimate of the share that *are* happy. This module estimates
the true shares (quantification) from the labels and an error model: the confusion counts
``counts[true, predicted]`` measured on held-back real photos (``src.training.error_model``
builds and loads them; any object with ``class_names`` and ``counts`` will do).

Method (``bayes``, the default): a Bayesian adjusted classify-and-count. The selection's
labels are multinomial with probabilities ``C.T @ pi`` (``C = P(predicted | true)``).
Each of many chains draws its own confusion matrix from ``Dirichlet(counts + 1/2)`` row by
row (the uncertainty of the error model itself), starts at that matrix's maximum-likelihood
mix, and then alternates between assigning the selection's labels to true classes and
drawing the mix from ``Dirichlet(1 + assigned)`` (data augmentation). The corrected share is
the mean over draws of the share of the selection's faces assigned to each true class; the
interval is the central ``level`` range of those draws. Group shares (sentiment, custom
groups: sums of emotions) come from the same draws.

``acc`` is the plain adjusted classify-and-count: the maximum-likelihood mix on the simplex
(EM on the confusion matrix, which never leaves it, unlike an unconstrained inverse),
with a percentile bootstrap over the selection's clusters and Dirichlet draws of the
confusion rows. ``bench/bench_quantify.py`` compares them on held-back ExpW photos (error
model from one half, 600 campaigns of 100 faces from the other; mean absolute error per
emotion): raw 0.070, ``bayes`` 0.053 with 96% of its 95% intervals holding the truth,
``acc`` 0.087 (worse than raw: with ~70 calibration faces per class the inverse amplifies
their noise), Saerens' EM on recalibrated probabilities 0.066. The Bayesian mean shrinks an
uncertain correction instead of amplifying it; hence the default. Even a confusion matrix
known exactly (counted on the campaigns' own half) gives 0.041: with a model right on 44% of
real faces, 100 labels cannot pin a mix down much better.

The product counts *people* (``quantify_counts``): label counts, e.g. summed from the store's
person tallies, where each person is one independent unit (design effect 1): a photo's face,
or someone followed through a video or by the live camera, labelled by the average of their
samples. The error model was measured on single faces; a tracked person's averaged label is
right more often than one face's, so for them the correction is on the cautious side.

Repeated samples (``quantify`` with ``clusters``): rows of one person (a video or live track)
or of one photo are a *cluster*. Their labels are correlated, so they carry less information than as many
independent faces. With ``clusters`` the counts are scaled down to the effective number of
faces ``n / deff`` (Kish), with ``deff`` the mean design effect of the label shares
estimated from the clusters (``design_effect``), before the correction runs.

Groups with a ``min_confidence`` threshold cannot be corrected (the error model has no
confidences); ``group_map`` counts their emotions whatever the confidence.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

METHODS = ("bayes", "acc")
LEVEL = 0.95
PRIOR_MIX = 1.0  # Dirichlet(1) on the true mix: every mix equally likely before the data
PRIOR_CONFUSION = 0.5  # Jeffreys pseudo-count per confusion cell: a never-seen mistake is rare, not impossible
CHAINS = 200
SWEEPS = 40
BURN_IN = 10
EM_STEPS = 400
BOOTSTRAP = 2000


class ConfusionCounts(Protocol):
    """What the correction needs of an error model (``src.training.error_model.ErrorModel`` has it)."""

    class_names: Sequence[str]
    counts: np.ndarray  # counts[true, predicted]


@dataclass(frozen=True)
class Confusion:
    """A plain error model: ``counts[true, predicted]`` over ``class_names`` (tests, benchmarks)."""

    class_names: tuple[str, ...]
    counts: np.ndarray


@dataclass(frozen=True)
class Share:
    """One label's share of a selection: as labelled (``raw``), corrected, and the corrected range."""

    label: str
    raw: float
    corrected: float
    low: float
    high: float


@dataclass(frozen=True)
class Quantification:
    """Raw and corrected shares of one selection, per emotion and per group, with what they rest on.

    ``faces`` counts the selection's faces, ``clusters`` its people or photos (equal to
    ``faces`` without cluster ids), ``effective_faces`` what the repeated samples are worth
    as independent faces. Shares are NaN for an empty selection. ``explanation`` is the plain
    sentence to show beside corrected shares; ``warnings`` lists what limits them.
    """

    method: str
    level: float
    faces: int
    clusters: int
    effective_faces: float
    emotions: tuple[Share, ...]
    groups: tuple[Share, ...] = ()
    explanation: str = ""
    warnings: tuple[str, ...] = ()
    draws: np.ndarray = field(default=None, repr=False, compare=False)  # (draws, classes) true-share draws

    def emotion(self, label: str) -> Share:
        return _find(self.emotions, label)

    def group(self, name: str) -> Share:
        return _find(self.groups, name)

    def frame(self) -> pd.DataFrame:
        """Long table ``kind, label, raw, corrected, low, high`` (kind: emotion or group)."""
        rows = [("emotion", *_row(s)) for s in self.emotions] + [("group", *_row(s)) for s in self.groups]
        return pd.DataFrame(rows, columns=["kind", "label", "raw", "corrected", "low", "high"])


def _row(share: Share) -> tuple:
    return share.label, share.raw, share.corrected, share.low, share.high


def _find(shares: Sequence[Share], label: str) -> Share:
    for share in shares:
        if share.label == label:
            return share
    raise KeyError(label)


# --- inputs -----------------------------------------------------------------------------------


def label_indices(predicted, class_names: Sequence[str]) -> np.ndarray:
    """Class indices of the selection's labels: strings, or an (N, classes) probability array (top class)."""
    if isinstance(predicted, np.ndarray) and predicted.ndim == 2:
        if predicted.shape[1] != len(class_names):
            raise ValueError(
                f"probabilities have {predicted.shape[1]} columns, the error model {len(class_names)} classes"
            )
        return predicted.argmax(axis=1) if len(predicted) else np.zeros(0, np.int64)
    index = {name: i for i, name in enumerate(class_names)}
    labels = list(predicted)
    unknown = sorted({str(x) for x in labels if x not in index})
    if unknown:
        raise ValueError(f"labels {', '.join(unknown)} are not classes of the error model ({', '.join(class_names)})")
    return np.fromiter((index[x] for x in labels), np.int64, len(labels))


def cluster_counts(indices: np.ndarray, clusters: Sequence[Hashable] | None, k: int) -> np.ndarray:
    """(clusters, classes) label counts per cluster; each face its own cluster without ids."""
    n = len(indices)
    if clusters is None:
        ids = np.arange(n)
    else:
        if len(clusters) != n:
            raise ValueError(f"{len(clusters)} cluster ids for {n} faces")
        ids = pd.factorize(pd.Series(list(clusters), dtype=object))[0]
    table = np.zeros((ids.max() + 1 if n else 0, k), np.int64)
    np.add.at(table, (ids, indices), 1)
    return table


def design_effect(table: np.ndarray) -> float:
    """Mean design effect of the label shares of clustered faces (``cluster_counts`` rows).

    For each label with a share strictly between 0 and 1: the variance of its share under
    the clusters (the usual linearised ratio-estimator variance) over its variance were
    the faces independent. 1 when every cluster is one face; never below 1 (repeated
    samples are not assumed to be worth more than independent ones); the number of faces
    when there is a single cluster.
    """
    sizes = table.sum(axis=1)
    n, g = int(sizes.sum()), len(table)
    if n == 0 or sizes.max() <= 1:
        return 1.0
    if g < 2:
        return float(n)
    shares = table.sum(axis=0) / n
    clustered = np.diag(cluster_covariance(table))
    inside = (shares > 0) & (shares < 1)
    if not inside.any():
        return 1.0
    simple = shares[inside] * (1 - shares[inside]) / n
    return float(min(max(np.mean(clustered[inside] / simple), 1.0), n))


def cluster_covariance(table: np.ndarray) -> np.ndarray:
    """Covariance of the label shares of clustered faces (linearised; ``cluster_counts`` rows)."""
    sizes = table.sum(axis=1)
    n, g = sizes.sum(), len(table)
    shares = table.sum(axis=0) / n
    resid = table - sizes[:, None] * shares[None, :]
    return g / max(g - 1, 1) * resid.T @ resid / n**2


def effective_counts(counts: np.ndarray, deff: float) -> np.ndarray:
    """``counts / deff`` as whole faces (largest remainders), at least one face when there were any."""
    total = counts.sum()
    if total == 0 or deff <= 1:
        return counts.astype(np.int64)
    target = max(1, int(round(total / deff)))
    exact = counts * target / total
    out = np.floor(exact).astype(np.int64)
    out[np.argsort(exact - out)[::-1][: target - out.sum()]] += 1
    return out


def group_map(grouping, class_names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """A ``src.analytics.groups.Grouping`` as ``{bucket: emotions}`` for ``quantify(groups=...)``.

    Emotions in none of its groups go to its ``other`` bucket (a group of its own, or the
    group ``other`` names); ``min_confidence`` thresholds are dropped (see the module docstring).
    """
    mapping = {g.name: [e for e in g.emotions if e in class_names] for g in grouping.groups}
    left = [e for e in class_names if not any(e in members for members in mapping.values())]
    if grouping.other and left:
        mapping.setdefault(grouping.other, []).extend(left)
    return {name: tuple(members) for name, members in mapping.items()}


def _group_matrix(groups: Mapping[str, Sequence[str]] | None, class_names: Sequence[str]) -> np.ndarray:
    groups = groups or {}
    index = {name: i for i, name in enumerate(class_names)}
    matrix = np.zeros((len(class_names), len(groups)))
    for g, (name, members) in enumerate(groups.items()):
        unknown = [m for m in members if m not in index]
        if unknown:
            raise ValueError(f"group {name!r} names {', '.join(unknown)}, not classes ({', '.join(class_names)})")
        for member in set(members):
            matrix[index[member], g] = 1.0
    return matrix


# --- the estimators ---------------------------------------------------------------------------


def confusion_draws(counts: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of ``P(predicted | true)``, each row from ``Dirichlet(counts_row + 1/2)``."""
    gamma = rng.standard_gamma(np.broadcast_to(counts + PRIOR_CONFUSION, (size, *counts.shape)))
    return gamma / gamma.sum(axis=2, keepdims=True)


def ml_mix(counts: np.ndarray, confusion: np.ndarray, steps: int = EM_STEPS) -> np.ndarray:
    """Maximum-likelihood true mix(es) for label ``counts`` (..., k) under ``confusion`` (..., k, k), by EM.

    EM keeps the mix on the simplex; shares it drives below 1e-6 are set to 0 (they tend to 0).
    """
    counts = np.asarray(counts, float)
    mix = np.full(np.broadcast_shapes(counts.shape, confusion.shape[:-1]), 1.0 / confusion.shape[-1])
    total = np.maximum(counts.sum(axis=-1, keepdims=True), 1e-300)
    for step in range(steps):
        expected = (mix[..., None, :] @ confusion)[..., 0, :]  # P(label) under the current mix
        ratio = counts / np.maximum(expected, 1e-300)
        updated = mix * (confusion @ ratio[..., :, None])[..., 0] / total
        if step % 25 == 24 and np.abs(updated - mix).max() < 1e-9:
            mix = updated
            break
        mix = updated
    mix = np.where(mix < 1e-6, 0.0, mix)
    return mix / np.maximum(mix.sum(axis=-1, keepdims=True), 1e-300)


def posterior(
    counts: np.ndarray, confusions: np.ndarray, rng: np.random.Generator, sweeps: int = SWEEPS, burn_in: int = BURN_IN
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the selection's true shares and of the population mix, one chain per confusion draw.

    ``counts`` (k,) are the (effective) label counts; ``confusions`` (chains, k, k). Returns
    ``(shares, mixes)``, each (chains * (sweeps - burn_in), k): ``shares`` the part of these
    faces assigned to each true class, ``mixes`` the mix they were drawn from (what a
    comparison of campaigns needs).
    """
    counts = np.asarray(counts, np.int64)
    chains, k = confusions.shape[0], confusions.shape[1]
    total = counts.sum()
    # Each chain starts at its own matrix's ML mix, nudged off the boundary so every class can be assigned faces.
    mix = 0.98 * ml_mix(np.broadcast_to(counts, (chains, k)), confusions) + 0.02 / k
    shares, mixes = [], []
    for sweep in range(sweeps):
        joint = mix[:, :, None] * confusions
        joint /= joint.sum(axis=1, keepdims=True)
        assigned = np.zeros((chains, k), np.int64)
        for j in np.flatnonzero(counts):
            assigned += rng.multinomial(counts[j], joint[:, :, j])
        gamma = rng.standard_gamma(PRIOR_MIX + assigned)
        mix = gamma / gamma.sum(axis=1, keepdims=True)
        if sweep >= burn_in:
            shares.append(assigned / total)
            mixes.append(mix)
    return np.concatenate(shares), np.concatenate(mixes)


def _acc_draws(
    table: np.ndarray | None,
    counts: np.ndarray,
    confusion_counts: np.ndarray,
    rng: np.random.Generator,
    size: int = BOOTSTRAP,
) -> np.ndarray:
    """Bootstrap draws of the ML mix: clusters (``table`` rows; None: every person its own) resampled,
    confusion rows drawn from their counts."""
    if table is None or table.sum(axis=1).max() <= 1:  # one face per cluster: resampling them is a multinomial draw
        n = int(counts.sum())
        resampled = rng.multinomial(n, counts / n, size=size)
    else:
        g = len(table)
        resampled = np.concatenate(
            [rng.multinomial(g, np.full(g, 1.0 / g), size=min(100, size - i)) @ table for i in range(0, size, 100)]
        )
    return ml_mix(resampled, confusion_draws(confusion_counts, size, rng))


def _smoothed(counts: np.ndarray) -> np.ndarray:
    counts = counts + PRIOR_CONFUSION
    return counts / counts.sum(axis=1, keepdims=True)


# --- the public entry point -------------------------------------------------------------------


def _checked(error_model: ConfusionCounts, method: str, level: float) -> tuple[tuple[str, ...], np.ndarray]:
    """The error model's class names and confusion counts, or a ValueError for a bad call."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    class_names = tuple(error_model.class_names)
    confusion_counts = np.asarray(error_model.counts, dtype=float)
    k = len(class_names)
    if confusion_counts.shape != (k, k) or (confusion_counts < 0).any() or not np.isfinite(confusion_counts).all():
        raise ValueError(f"the error model's counts must be a {k}x{k} table of non-negative numbers")
    return class_names, confusion_counts


def count_vector(counts: Mapping[str, int] | Sequence[int] | np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """Label counts as a vector over ``class_names``: a ``{label: count}`` mapping (labels outside the
    classes raise a ValueError, zero counts of them are ignored) or a sequence in the classes' order."""
    if isinstance(counts, Mapping):
        index = {name: i for i, name in enumerate(class_names)}
        unknown = sorted(str(label) for label, n in counts.items() if label not in index and n)
        if unknown:
            raise ValueError(
                f"labels {', '.join(unknown)} are not classes of the error model ({', '.join(class_names)})"
            )
        out = np.zeros(len(class_names), np.int64)
        for label, n in counts.items():
            if label in index:
                out[index[label]] += int(n)
    else:
        out = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(out) != len(class_names):
            raise ValueError(f"{len(out)} counts for {len(class_names)} classes")
    if (out < 0).any():
        raise ValueError("counts must not be negative")
    return out


def quantify_counts(
    counts: Mapping[str, int] | Sequence[int] | np.ndarray,
    error_model: ConfusionCounts,
    groups: Mapping[str, Sequence[str]] | None = None,
    method: str = "bayes",
    level: float = LEVEL,
    seed: int = 0,
) -> Quantification:
    """Raw and corrected shares of a selection given as label counts, each one independent person.

    ``counts``: how many people carry each label (``{label: n}``, or a vector in the error
    model's class order), e.g. summed from ``Store.tallies(unit="person")``. Every person is
    one unit (design effect 1): a photo's face, or someone followed through a video or by the
    live camera, labelled by the average of their samples. Otherwise as ``quantify``.
    """
    class_names, confusion_counts = _checked(error_model, method, level)
    vector = count_vector(counts, class_names)
    return _estimate(
        class_names,
        confusion_counts,
        vector,
        vector,
        None,
        len_clusters=int(vector.sum()),
        deff=1.0,
        groups=groups,
        method=method,
        level=level,
        seed=seed,
        error_model=error_model,
    )


def quantify(
    predicted,
    error_model: ConfusionCounts,
    clusters: Sequence[Hashable] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    method: str = "bayes",
    level: float = LEVEL,
    seed: int = 0,
) -> Quantification:
    """Raw and corrected shares of one selection.

    ``predicted``: the faces' labels (strings) or their (N, classes) probabilities (the top
    class counts, as the app counts faces). ``clusters``: one person, track or photo id per
    face (repeated samples of one person count for less). ``groups``: ``{name: emotions}``
    (``group_map`` turns a grouping into one). Seeded: the same call gives the same figures.
    Raises ``ValueError`` for labels or groups outside the error model's classes, a
    malformed error model or an unknown method; an empty selection gives NaN shares. Without
    ``clusters`` this is ``quantify_counts`` of the labels' counts.
    """
    class_names, confusion_counts = _checked(error_model, method, level)
    indices = label_indices(predicted, class_names)
    if clusters is None:
        counts = np.bincount(indices, minlength=len(class_names)).astype(np.int64)
        return quantify_counts(counts, error_model, groups=groups, method=method, level=level, seed=seed)
    table = cluster_counts(indices, clusters, len(class_names))
    counts = table.sum(axis=0)
    deff = design_effect(table) if counts.sum() else 1.0
    return _estimate(
        class_names,
        confusion_counts,
        counts,
        effective_counts(counts, deff),
        table,
        len_clusters=len(table),
        deff=deff,
        groups=groups,
        method=method,
        level=level,
        seed=seed,
        error_model=error_model,
    )


def _estimate(
    class_names: tuple[str, ...],
    confusion_counts: np.ndarray,
    counts: np.ndarray,
    effective: np.ndarray,
    table: np.ndarray | None,
    *,
    len_clusters: int,
    deff: float,
    groups: Mapping[str, Sequence[str]] | None,
    method: str,
    level: float,
    seed: int,
    error_model: ConfusionCounts,
) -> Quantification:
    """The correction of label ``counts`` (``effective``: what they are worth as independent faces)."""
    k = len(class_names)
    grouping = _group_matrix(groups, class_names)
    group_names = tuple((groups or {}).keys())
    n = int(counts.sum())
    warnings = _warnings(confusion_counts, class_names)
    explanation = explain(error_model, level)
    if n == 0:
        nan = float("nan")
        empty = tuple(Share(name, nan, nan, nan, nan) for name in class_names)
        empty_groups = tuple(Share(name, nan, nan, nan, nan) for name in group_names)
        return Quantification(
            method,
            level,
            0,
            0,
            0.0,
            empty,
            empty_groups,
            explanation,
            ("No faces in this selection: there are no shares to correct.", *warnings),
            np.zeros((0, k)),
        )
    rng = np.random.default_rng(seed)
    if method == "bayes":
        draws, _ = posterior(effective, confusion_draws(confusion_counts, CHAINS, rng), rng)
        point = draws.mean(axis=0)
    else:
        draws = _acc_draws(table, counts, confusion_counts, rng)
        point = ml_mix(counts, _smoothed(confusion_counts))
    raw = counts / n
    emotions = _shares(class_names, raw, point, draws, level)
    group_shares = _shares(group_names, raw @ grouping, point @ grouping, draws @ grouping, level)
    return Quantification(
        method, level, n, len_clusters, round(n / deff, 1), emotions, group_shares, explanation, warnings, draws
    )


def _shares(labels: Sequence[str], raw, point, draws: np.ndarray, level: float) -> tuple[Share, ...]:
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], axis=0) if len(labels) else ([], [])
    return tuple(
        Share(label, float(r), float(p), float(min(lo, p)), float(max(hi, p)))
        for label, r, p, lo, hi in zip(labels, raw, point, low, high)
    )


def _warnings(counts: np.ndarray, class_names: Sequence[str]) -> tuple[str, ...]:
    out = []
    totals = counts.sum(axis=1)
    empty = [name for name, total in zip(class_names, totals) if total == 0]
    if empty:
        out.append(
            f"The error model holds no {', '.join(empty)} faces, so how the model reads them is unknown "
            "and their corrected shares are little more than a guess (see the ranges)."
        )
    rates = counts[totals > 0] / totals[totals > 0, None]
    if len(rates) == len(class_names) and np.linalg.matrix_rank(rates, tol=1e-6) < len(class_names):
        same = [
            f"{class_names[i]} and {class_names[j]}"
            for i in range(len(rates))
            for j in range(i + 1, len(rates))
            if np.abs(rates[i] - rates[j]).sum() < 1e-6
        ]
        which = f" ({'; '.join(same)} are read alike)" if same else ""
        out.append(
            f"The model's mistakes make some expressions indistinguishable{which}: how their faces split "
            "between them cannot be told, so their ranges are wide."
        )
    return tuple(out)


def explain(error_model: ConfusionCounts, level: float = LEVEL) -> str:
    """The plain sentence that goes beside corrected shares."""
    counts = np.asarray(error_model.counts, dtype=float)
    names = list(error_model.class_names)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    np.fill_diagonal(rates, 0)
    example = ""
    if rates.max() > 0:
        true, pred = np.unravel_index(np.argmax(rates), rates.shape)
        example = f" (it reads {rates[true, pred]:.0%} of {names[true]} faces as {names[pred]}, for instance)"
    describe = getattr(error_model, "describe", None)
    measured = describe() if callable(describe) else f"measured on {int(counts.sum()):,} labelled faces"
    return (
        f"Corrected shares undo the model's known mix-ups{example}, {measured}; "
        f"each range holds the true share {round(level * 100)} times in 100, allowing for chance "
        "both in these faces and in that measurement."
    )
