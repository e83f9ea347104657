"""Groups applied to tables: memberships, labels, counts and soft scores of a per-face results
table (``src/analytics/aggregates.py``'s columns), unique column names, and a listing of a set."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from src.analytics.groups.model import Grouping, GroupSet


def faces_mask(df: pd.DataFrame) -> pd.Series:
    """The rows of a results table that are faces (status ok, with an emotion)."""
    return (df["status"] == "ok") & (df["emotion"] != "")


def memberships(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """One boolean column per bucket of ``grouping``, one row per row of ``df`` (non-faces all False)."""
    faces = faces_mask(df).to_numpy(bool)
    emotion = df["emotion"].astype(str)
    conf = pd.to_numeric(df["confidence"], errors="coerce").to_numpy(float)
    out: dict[str, np.ndarray] = {}
    for group in grouping.groups:
        hit = faces & emotion.isin(group.emotions).to_numpy(bool)
        if group.min_confidence is not None:
            with np.errstate(invalid="ignore"):
                hit &= conf >= group.min_confidence
        out[group.name] = hit
    none = faces & ~np.any(list(out.values()), axis=0) if out else faces
    if grouping.other:
        out[grouping.other] = out.get(grouping.other, np.zeros(len(df), bool)) | none
    return pd.DataFrame({b: out[b] for b in grouping.buckets}, index=df.index)


def labels(df: pd.DataFrame, grouping: Grouping) -> pd.Series:
    """Each row's first bucket (a partition's only one); ``""`` for non-faces and uncounted faces."""
    member = memberships(df, grouping)
    if member.empty or not len(member.columns):
        return pd.Series("", index=df.index, dtype=object)
    values = member.to_numpy(bool)
    names = np.array(member.columns, dtype=object)
    first = names[values.argmax(axis=1)]
    return pd.Series(np.where(values.any(axis=1), first, ""), index=df.index, dtype=object)


def counts(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Faces per bucket (``group``, ``faces``, ``share`` of all faces), in the grouping's order."""
    member = memberships(df, grouping)
    total = int(faces_mask(df).sum())
    faces = member.sum(axis=0).to_numpy(int) if len(member.columns) else np.zeros(0, int)
    return pd.DataFrame(
        {
            "group": list(member.columns),
            "faces": faces,
            "share": faces / total if total else 0.0,
        }
    )


def soft_scores(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Per row, each group's soft score: the sum of its members' probability columns.

    Works on any table with one probability column per label (the per-face table, the video
    timeline's mean probabilities); members without a column add nothing. NaN where the
    row has no probabilities.
    """
    out = {}
    for group in grouping.groups:
        cols = [e for e in group.emotions if e in df.columns]
        probs = df[cols].apply(pd.to_numeric, errors="coerce") if cols else pd.DataFrame(index=df.index)
        out[group.name] = probs.sum(axis=1, min_count=1) if cols else pd.Series(np.nan, index=df.index)
    return pd.DataFrame(out, index=df.index, columns=list(grouping.group_names))


def mean_soft_scores(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Each group's mean soft score over the faces of a results table (``group``, ``score``; NaN without faces)."""
    scores = soft_scores(df[faces_mask(df)], grouping)
    means = scores.mean(axis=0) if len(scores) else pd.Series(np.nan, index=scores.columns)
    return pd.DataFrame({"group": list(grouping.group_names), "score": means.to_numpy(float)})


def column_names(groupings: Iterable[Grouping], taken: Iterable[str] = ()) -> dict[tuple[str, str], str]:
    """A unique column name for each (grouping, bucket): the bucket's own name, or
    ``grouping: bucket`` when that is taken (by ``taken`` or another grouping's bucket)."""
    groupings = list(groupings)
    taken = set(taken)
    count: dict[str, int] = {}
    for g in groupings:
        for b in g.buckets:
            count[b] = count.get(b, 0) + 1
    names: dict[tuple[str, str], str] = {}
    for g in groupings:
        for b in g.buckets:
            name = b if count[b] == 1 and b not in taken else f"{g.name}: {b}"
            base, n = name, 2
            while name in taken:
                name, n = f"{base} ({n})", n + 1
            taken.add(name)
            names[(g.name, b)] = name
    return names


def describe(group_set: GroupSet) -> pd.DataFrame:
    """One row per group (grouping, group, emotions, min confidence, partition, other): for listings."""
    rows = [
        {
            "grouping": g.name,
            "group": x.name,
            "emotions": ", ".join(x.emotions),
            "min confidence": x.min_confidence,
            "partition": g.partition,
            "other": g.other,
        }
        for g in group_set.groupings
        for x in g.groups
    ]
    return pd.DataFrame(rows, columns=["grouping", "group", "emotions", "min confidence", "partition", "other"])
