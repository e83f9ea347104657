"""Corrected shares and campaign tests for the dashboard's pages, counted per person (no Streamlit here).

Every share, correction and comparison counts *people*: a face in a photo is one person, and
someone followed through a video or by the live camera is one person with their averaged
label. Their counts come from the store's person tallies (``Store.tallies(unit="person")``,
summed in the database); each person is one independent unit, so the correction
(``src.analytics.quantify.quantify_counts``) and the test (``src.analytics.compare.compare_counts``)
need nothing but the counts per label. The error model was measured on single faces; a
tracked person's averaged label is right more often than one face's, so for them the
correction is on the cautious side.

``corrected`` and ``compare_pair`` return the analytics' own results (``src/app/cache.py``
caches them); the sentences a manager reads (``plain_test_verdict``, ``not_corrected``,
``threshold_note``) and the details a data scientist reads (``pair_details``,
``provenance_lines``) are made here, so every page says the same.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from src import config
from src.analytics import compare, groups, quantify

CORRECTION_SENTENCE = (
    "Corrected for the mix-ups the model is known to make on real photos; "
    "each range holds the true share 19 times in 20."
)
MAX_CAMPAIGNS = 5  # every pair of them is tested: 10 tests at most


def not_corrected(reason: str) -> str:
    """The one sentence shown instead of corrected shares, with why (``reason``: lower case, no full stop)."""
    return f"These shares are as the model read them, not corrected for its known mix-ups: {reason}."


# --- corrected shares -----------------------------------------------------------------------


@dataclass(frozen=True)
class Correctable:
    """What of a grouping can be corrected: ``{bucket: emotions}`` for ``quantify(groups=...)``,
    and the buckets left out because they depend on a confidence threshold."""

    groups: dict[str, tuple[str, ...]]
    skipped: tuple[str, ...]
    thresholds: tuple[groups.Group, ...]


def correctable(grouping: groups.Grouping, class_names: Sequence[str] = config.EMOTIONS) -> Correctable:
    """The buckets of ``grouping`` a correction applies to.

    A group counted only above a confidence cannot be corrected (the error model has no
    confidences), and neither can the ``other`` bucket of such a grouping (its complement).
    """
    full = quantify.group_map(grouping, class_names)
    sure = tuple(g for g in grouping.groups if g.min_confidence is not None)
    skipped = [g.name for g in sure]
    if sure and grouping.other and grouping.other in full and grouping.other not in skipped:
        skipped.append(grouping.other)
    return Correctable({k: v for k, v in full.items() if k not in skipped}, tuple(skipped), sure)


def threshold_note(fit: Correctable) -> str:
    """The plain sentence saying which groups cannot be corrected and why ("" when all can)."""
    if not fit.skipped:
        return ""
    sure = "; ".join(f"“{g.name}” counts only faces at least {g.min_confidence:.0%} sure" for g in fit.thresholds)
    others = [name for name in fit.skipped if name not in {g.name for g in fit.thresholds}]
    also = f", and “{others[0]}” is what the groups leave" if others else ""
    names = " and ".join(f"“{name}”" for name in fit.skipped)
    return (
        f"{sure}{also}: the model's error model knows nothing of confidence, so {names} "
        f"cannot be corrected and {'is' if len(fit.skipped) == 1 else 'are'} left out here."
    )


def corrected(
    counts: Mapping[str, int], error_model, buckets: Mapping[str, Sequence[str]] | None = None
) -> tuple[quantify.Quantification | None, str]:
    """``quantify_counts`` of these people (``{label: n}``), or None and why not in plain words
    (labels the error model lacks)."""
    try:
        return quantify.quantify_counts(dict(counts), error_model, groups=buckets), ""
    except ValueError as exc:
        return None, f"the error model cannot read these results ({exc})"


def raw_frame(counts: Mapping[str, int], buckets: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """``Quantification.frame()``'s table with the shares as read only (corrected and range NaN),
    for when there is nothing to correct with; ``counts`` is ``{label: people}``."""
    n = int(sum(counts.values()))
    share = {label: (counts.get(label, 0) / n if n else math.nan) for label in config.EMOTIONS}
    rows = [("emotion", label, value) for label, value in share.items()]
    for name, members in (buckets or {}).items():
        rows.append(("group", name, sum(counts.get(m, 0) for m in set(members)) / n if n else math.nan))
    frame = pd.DataFrame(rows, columns=["kind", "label", "raw"])
    return frame.assign(corrected=math.nan, low=math.nan, high=math.nan)


# --- campaign tests -------------------------------------------------------------------------


def _words(grouping: groups.Grouping) -> str:
    return f"{grouping.name} mix" if grouping.name in ("emotion", "sentiment") else f"mix of “{grouping.name}” groups"


def compared_buckets(grouping: groups.Grouping, class_names: Sequence[str] = config.EMOTIONS) -> dict | None:
    """What a campaign test counts: the emotions (None), or the grouping's buckets, thresholds dropped."""
    return None if grouping.name == "emotion" else quantify.group_map(grouping, class_names)


def compare_pair(
    a: Mapping[str, int],
    b: Mapping[str, int],
    names: tuple[str, str],
    buckets: Mapping[str, Sequence[str]] | None,
    error_model=None,
) -> compare.CampaignTest:
    """Two campaigns' people (``{label: n}``) tested, each person one unit; gaps corrected with an
    error model. Raises ``ValueError`` when the buckets share an emotion (no single test of the mix
    applies) or a label is not a class."""
    class_names = tuple(error_model.class_names) if error_model is not None else tuple(config.EMOTIONS)
    return compare.compare_counts(
        dict(a), dict(b), class_names, error_model=error_model, groups=buckets, names=names, unit="people"
    )


def pairs(campaigns: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs a comparison of ``campaigns`` tests: every one."""
    return list(itertools.combinations(campaigns, 2))


def _quoted(name: str) -> str:
    return f"“{name}”"


def plain_test_verdict(test: compare.CampaignTest, grouping: groups.Grouping) -> str:
    """One test's outcome in a manager's words: no statistic, no p-value (those go to the details)."""
    a, b = (_quoted(n) for n in test.names)
    mix = _words(grouping)
    if not test.testable:
        if test.test is None and min(test.people) >= compare.MIN_PEOPLE:
            return test.verdict  # every face in one group: already plain
        return (
            f"Too few people to tell whether {a} and {b} differ in their {mix}: "
            f"{test.people[0]:,} and {test.people[1]:,} (a face in a photo or someone followed over time is one), "
            f"and a fair comparison needs at least {compare.MIN_PEOPLE} in each."
        )
    how = "corrected for the model's known mix-ups" if test.corrected else "as the model read them"
    gaps = [g for g in test.gaps if not math.isnan(g.difference)]
    if test.differs:
        clear = [g for g in gaps if g.low > 0 or g.high < 0]
        if not clear:
            return (
                f"{a} and {b} really differ in their {mix}, though no single "
                f"{'emotion' if grouping.name == 'emotion' else 'group'} stands out once chance "
                f"{'and the model’s mistakes are' if test.corrected else 'is'} allowed for."
            )
        top = max(clear, key=lambda g: round(abs(g.difference), 3))
        more, less = (a, b) if top.difference > 0 else (b, a)
        high, low = max(top.share_a, top.share_b), min(top.share_a, top.share_b)
        return (
            f"{a} and {b} really differ in their {mix}: the {top.label} share is higher in {more} "
            f"({high:.0%} against {low:.0%} in {less}, {how})."
        )
    text = f"No clear difference in the {mix} between {a} and {b}: the gaps are within what chance produces"
    widest = max((max(abs(g.low), abs(g.high)) for g in gaps), default=0.0)
    if widest > compare.WIDE_GAP:
        return f"{text} with this many people, though gaps of up to {widest:.0%} could go unseen."
    return f"{text} with this many people."


def pair_details(test: compare.CampaignTest) -> str:
    """The figures behind one pair's verdict, with their exact names (Markdown; campaign names escaped by the caller)."""
    a, b = (_quoted(n) for n in test.names)
    parts = [f"{a} against {b}: {test.people[0]:,} + {test.people[1]:,} people"]
    if test.test is not None and not math.isnan(test.test.p_value):
        t = test.test
        if math.isinf(t.df2):  # people counts: every person one unit, Pearson's test
            parts.append(
                f"Pearson chi-square = {t.pearson:.2f} on {t.df1:.0f} degrees of freedom, {_p(t.p_value)} "
                "(each person one independent unit: the Rao-Scott test with a design effect of 1)"
            )
        else:
            parts.append(
                f"Rao-Scott F = {t.statistic:.2f} on ({t.df1:.1f}, {t.df2:.0f}) degrees of freedom, "
                f"{_p(t.p_value)}; design effect {t.design_effect:.1f}; the naive chi-square "
                f"that counts every sample as independent: {t.pearson:.1f}, {_p(t.pearson_p)}"
            )
    return "; ".join(parts) + "."


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def gaps_frame(test: compare.CampaignTest) -> pd.DataFrame:
    """One pair's shares per label and their gap with its 95% range, as a table."""
    rows = [
        {
            "label": g.label,
            test.names[0]: g.share_a,
            test.names[1]: g.share_b,
            "gap": g.difference,
            "gap from": g.low,
            "gap to": g.high,
        }
        for g in test.gaps
    ]
    return pd.DataFrame(rows)


# --- what the correction rests on -----------------------------------------------------------


def share_table(result: quantify.Quantification, kind: str) -> pd.DataFrame:
    """``label | as read | corrected | from | to`` of one kind of share (``emotion`` or ``group``)."""
    frame = result.frame()
    frame = frame[frame["kind"] == kind].drop(columns="kind")
    return frame.rename(columns={"raw": "as read", "low": "from", "high": "to"}).reset_index(drop=True)


def provenance_lines(error_model, deployed_sha256: str | None = None) -> list[str]:
    """What the error model was measured on, line by line (Markdown-safe: no user text)."""
    lines = [f"**Error model**: {error_model.describe()}."]
    faces, labelled = int(error_model.faces), int(getattr(error_model, "labelled_faces", error_model.faces))
    accuracy = error_model.accuracy() if hasattr(error_model, "accuracy") else float("nan")
    if labelled > faces:
        lines.append(
            f"**Faces**: {labelled:,} labelled, {faces:,} found by the detector and counted "
            f"({labelled - faces:,} missed faces never reach a share, so they are left out)."
        )
    if not math.isnan(accuracy):
        lines.append(f"**Model right on** {accuracy:.1%} of those faces: the mix-ups the correction undoes.")
    split = getattr(error_model, "split", "")
    if split:
        lines.append(f"**Held back**: {split}.")
    model_file, sha = getattr(error_model, "model_file", ""), getattr(error_model, "model_sha256", "")
    if model_file:
        runtime = getattr(error_model, "runtime", "")
        which = ""
        if deployed_sha256:
            which = " (the deployed model)" if sha == deployed_sha256 else " (not the deployed model's file)"
        lines.append(
            f"**Measured with** `{model_file}`{which}, sha256 `{sha[:12]}…`" + (f", {runtime}." if runtime else ".")
        )
    lines.append(
        f"**Method**: Bayesian adjusted classify-and-count ({quantify.CHAINS} draws of the confusion "
        "matrix, each with its own chain), counted per person: a face in a photo, or someone followed "
        "through a video or by the live camera with the average of their samples, each one independent unit. "
        "The error model was measured on single faces; a tracked person's averaged label is right more often, "
        "so for them the correction is on the cautious side. Campaign tests: Pearson's chi-square on the "
        "people counts (the Rao-Scott test with every person one unit)."
    )
    return lines
