"""Corrected shares and people-based campaign tests for the dashboard's pages (no Streamlit here).

The correction (``src.analytics.quantify``) and the test (``src.analytics.compare``) read
*samples*: one label per face the model read (a photo's face, a video's sampled frame, a live
face-second), each with its *cluster*, the person or photo it belongs to, so that repeated
samples of one person count for less than as many people. The stored rows carry that for
photos (the photo) and videos (the track); live seconds are counts without track ids, so
``sample_clusters`` hands each live face-second to a person of the same session who was in
view then (``Store.people``: first and last seen), preferring one with the same label.

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

import numpy as np
import pandas as pd

from src import config
from src.analytics import compare, groups, quantify, trends
from src.analytics.people import LIVE_FILE

CORRECTION_SENTENCE = (
    "Corrected for the mix-ups the model is known to make on real photos; "
    "each range holds the true share 19 times in 20."
)
MAX_CAMPAIGNS = 5  # every pair of them is tested: 10 tests at most


def not_corrected(reason: str) -> str:
    """The one sentence shown instead of corrected shares, with why (``reason``: lower case, no full stop)."""
    return f"These shares are as the model read them, not corrected for its known mix-ups: {reason}."


# --- clusters -------------------------------------------------------------------------------


def sample_clusters(rows: pd.DataFrame, people: pd.DataFrame | None = None) -> pd.Series:
    """The cluster of each sample row (index of ``rows``): whom or what its label belongs to.

    A tracked row (video, ``track_id`` set) belongs to its track; a live face-second to a
    person of its session seen at that second (``people``: ``Store.people`` rows, of any
    selection that holds those sessions), else to the nearest one in time, else to itself
    (a session without people: its faces were too brief to be anyone); any other row to its
    photo (run and file).
    """
    if rows.empty:
        return pd.Series([], index=rows.index, dtype=object)
    run = rows["run_id"].astype(str) if "run_id" in rows else pd.Series("", index=rows.index)
    file = rows["file"].fillna("").astype(str) if "file" in rows else pd.Series("", index=rows.index)
    out = run + "|photo|" + file
    if "track_id" in rows:
        track = pd.to_numeric(rows["track_id"], errors="coerce")
        tracked = track.notna()
        out[tracked] = run[tracked] + "|track|" + file[tracked] + "|" + track[tracked].astype("int64").astype(str)
    live = file == LIVE_FILE
    if live.any():
        out[live] = _live_clusters(rows[live], people)
    return out


def _live_clusters(rows: pd.DataFrame, people: pd.DataFrame | None) -> pd.Series:
    """Each live face-second's person: seen at that second, with its label if one of them has it,
    spread over them when several fit (two happy faces in one second are two people)."""
    out = pd.Series("", index=rows.index, dtype=object)
    at = trends.prepare(rows)["at"]
    if people is not None and len(people):
        live = people[(people["file"] == LIVE_FILE) & people["first_seen"].notna()]
    else:
        live = None
    for run_id, part in rows.groupby(rows["run_id"].astype(str), sort=False):
        seconds = at[part.index].dt.floor("s")
        mine = live[live["run_id"].astype(str) == run_id] if live is not None else None
        if mine is None or mine.empty:
            out[part.index] = (
                run_id + "|second|" + seconds.astype(str) + "|" + part.groupby(seconds).cumcount().astype(str)
            )
            continue
        first = mine["first_seen"].dt.floor("s").to_numpy("datetime64[ns]")[None, :]
        last = mine["last_seen"].dt.ceil("s").to_numpy("datetime64[ns]")[None, :]
        when = seconds.to_numpy("datetime64[ns]")[:, None]
        covers = (when >= first) & (when <= last)
        same = part["emotion"].astype(str).to_numpy()[:, None] == mine["emotion"].astype(str).to_numpy()[None, :]
        rank = 2 * covers + (covers & same)  # in view with the same label, in view, then nearest
        gap = np.minimum(np.abs(when - first), np.abs(when - last)).astype("timedelta64[s]").astype(float)
        best = rank.max(axis=1, keepdims=True)
        order = np.lexsort((gap, -rank), axis=1)  # per row: the best fitting person first
        fitting = np.maximum((rank == best).sum(axis=1), 1)
        fitting = np.where(best[:, 0] == 0, 1, fitting)  # nobody in view: the nearest one only
        nth = part.groupby([seconds, part["emotion"]]).cumcount().to_numpy() % fitting
        chosen = order[np.arange(len(part)), nth]
        ids = mine["person"].astype(str).to_numpy()
        out[part.index] = [f"{run_id}|person|{ids[i]}" for i in chosen]
    return out


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


def face_samples(rows: pd.DataFrame, people: pd.DataFrame | None = None) -> tuple[list[str], list[str]]:
    """The labels and clusters (``sample_clusters``) of the face rows of ``rows``."""
    faces = trends.face_rows(trends.prepare(rows))
    if faces.empty:
        return [], []
    return faces["emotion"].astype(str).tolist(), sample_clusters(faces, people).tolist()


def corrected(
    labels: Sequence[str], clusters: Sequence[str], error_model, buckets: Mapping[str, Sequence[str]] | None = None
) -> tuple[quantify.Quantification | None, str]:
    """``quantify`` of these samples, or None and why not in plain words (labels the error model lacks)."""
    try:
        return quantify.quantify(list(labels), error_model, clusters=list(clusters), groups=buckets), ""
    except ValueError as exc:
        return None, f"the error model cannot read these results ({exc})"


def raw_frame(labels: Sequence[str], buckets: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """``Quantification.frame()``'s table with the shares as read only (corrected and range NaN),
    for when there is nothing to correct with."""
    counts = pd.Series(list(labels), dtype=object).value_counts()
    n = int(counts.sum())
    share = {label: (counts.get(label, 0) / n if n else math.nan) for label in config.EMOTIONS}
    rows = [("emotion", label, value) for label, value in share.items()]
    for name, members in (buckets or {}).items():
        rows.append(("group", name, sum(counts.get(m, 0) for m in set(members)) / n if n else math.nan))
    frame = pd.DataFrame(rows, columns=["kind", "label", "raw"])
    return frame.assign(corrected=math.nan, low=math.nan, high=math.nan)


# --- campaign tests -------------------------------------------------------------------------


def _words(grouping: groups.Grouping) -> str:
    return f"{grouping.name} mix" if grouping.name in ("emotion", "sentiment") else f"mix of “{grouping.name}” groups"


Samples = tuple[tuple[str, ...], tuple[str, ...]]  # labels, and the cluster of each


def campaign_samples(rows: pd.DataFrame, people: pd.DataFrame | None, campaigns: Sequence[str]) -> dict[str, Samples]:
    """Each campaign's (labels, clusters) of its face rows; names as ``trends.campaign_label`` lists them."""
    faces = trends.face_rows(trends.prepare(rows))
    if faces.empty:
        return {name: ((), ()) for name in campaigns}
    names = trends.campaign_names(faces["campaign"])
    clusters = sample_clusters(faces, people)
    return {
        name: (tuple(faces.loc[names == name, "emotion"].astype(str)), tuple(clusters[names == name]))
        for name in campaigns
    }


def compared_buckets(grouping: groups.Grouping, class_names: Sequence[str] = config.EMOTIONS) -> dict | None:
    """What a campaign test counts: the emotions (None), or the grouping's buckets, thresholds dropped."""
    return None if grouping.name == "emotion" else quantify.group_map(grouping, class_names)


def compare_pair(
    a: Samples, b: Samples, names: tuple[str, str], buckets: Mapping[str, Sequence[str]] | None, error_model=None
) -> compare.CampaignTest:
    """Two campaigns' samples tested with people (and photos) as the unit; gaps corrected with an
    error model. Raises ``ValueError`` when the buckets share an emotion (no single test of the mix applies)."""
    class_names = tuple(error_model.class_names) if error_model is not None else tuple(config.EMOTIONS)
    return compare.compare(
        list(a[0]),
        list(b[0]),
        class_names,
        clusters_a=list(a[1]),
        clusters_b=list(b[1]),
        error_model=error_model,
        groups=buckets,
        names=names,
        unit="people",
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
            f"{test.people[0]:,} and {test.people[1]:,} (photos and people followed over time), "
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
    parts = [
        f"{a} against {b}: {test.people[0]:,} + {test.people[1]:,} photos and tracked people "
        f"({test.faces[0]:,} + {test.faces[1]:,} samples)"
    ]
    if test.test is not None and not math.isnan(test.test.p_value):
        t = test.test
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
        "matrix, each with its own chain); repeated samples of one person or photo are counted at their "
        "effective number (Kish design effect). Campaign tests: second-order Rao-Scott, photos and tracked people "
        "as the unit."
    )
    return lines
