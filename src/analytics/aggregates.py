"""Aggregations behind the dashboard: result tables, emotion, sentiment and group shares, campaigns.

Everything here works on the one-row-per-face table of the CLI schema
(``ImageResult.rows``) so the app, the CLI and downloads agree on the numbers.
No streamlit and no TensorFlow: these are plain pandas functions with unit tests.

Sentiment is the default grouping of ``src.analytics.groups`` (``groups.sentiment()``); the custom
groupings of the groups file (``groups.active().custom``) add columns to the summaries,
the campaign table, ``with_groups`` (the per-face table for display and CSV; ``export_frame``
adds the campaign and location a download needs) and the JSON export. Functions that take
``groupings=None`` use those; pass ``()`` for none. Existing columns keep their names and
order: group columns only ever come after them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from src.analytics import groups
from src.analytics.groups import SENTIMENT_BUCKETS, sentiment_of
from src.common import sanitize
from src.engine.results import INT_COLUMNS, table_columns


class _HasRows(Protocol):
    file: str
    status: str
    error: str

    def rows(self, class_names: Sequence[str]) -> list[dict]: ...


def results_frame(results: Iterable[_HasRows], class_names: Sequence[str]) -> pd.DataFrame:
    """One row per face (or per failed/faceless file) in the CLI column order, numbers typed."""
    rows = [row for res in results for row in res.rows(class_names)]
    df = pd.DataFrame(rows, columns=list(table_columns(class_names)))
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("confidence", *class_names):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("file", "emotion", "status", "error"):
        df[col] = df[col].fillna("").astype(str)
    return df


def faces_only(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are real faces (status ok)."""
    return df[(df["status"] == "ok") & (df["emotion"] != "")]


def with_sentiment(df: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``sentiment`` column after ``confidence`` (blank for rows without a face)."""
    out = df.copy()
    sentiment = [sentiment_of(e) if e else "" for e in out["emotion"]]
    out.insert(out.columns.get_loc("confidence") + 1, "sentiment", sentiment)
    return out


def emotion_counts(df: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """Faces per top emotion, every class listed (zeros too), with its share of all faces."""
    faces = faces_only(df)
    counts = faces["emotion"].value_counts().reindex(list(class_names), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "emotion": list(class_names),
            "faces": counts.to_numpy().astype(int),
            "share": counts.to_numpy() / total if total else 0.0,
        }
    )


def sentiment_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Faces per sentiment (positive, neutral, negative) with shares: ``groups.counts`` of the sentiment grouping."""
    counts = groups.counts(df, groups.sentiment()).set_index("group").reindex(list(SENTIMENT_BUCKETS), fill_value=0)
    total = int(groups.faces_mask(df).sum())
    faces = counts["faces"].to_numpy().astype(int)
    return pd.DataFrame(
        {
            "sentiment": list(SENTIMENT_BUCKETS),
            "faces": faces,
            "share": faces / total if total else 0.0,
        }
    )


def _custom(groupings: Iterable[groups.Grouping] | None) -> tuple[groups.Grouping, ...]:
    return groups.active().custom if groupings is None else tuple(groupings)


def with_groups(df: pd.DataFrame, groupings: Iterable[groups.Grouping] | None = None) -> pd.DataFrame:
    """The table with group columns after all others: for a partition grouping one column
    (named after it) holding the face's group; otherwise one true/false column per group
    (and ``other``). Rows that are not faces are blank. Column names never clash with the
    table's: a taken name becomes ``grouping: group`` (see ``groups.column_names``)."""
    out = df.copy()
    taken = set(out.columns)
    chosen = _custom(groupings)
    faces = groups.faces_mask(df)
    partitions = [g for g in chosen if g.partition]
    overlapping = [g for g in chosen if not g.partition]
    names = groups.column_names(overlapping, taken | {g.name for g in partitions})
    for grouping in chosen:
        if grouping.partition:
            column = _free(grouping.name, taken)
            out[column] = groups.labels(df, grouping).where(faces, "")
            taken.add(column)
            continue
        member = groups.memberships(df, grouping)
        for bucket in grouping.buckets:
            column = names[(grouping.name, bucket)]
            out[column] = member[bucket].astype("boolean").where(faces, pd.NA)
            taken.add(column)
    return out


def export_frame(
    df: pd.DataFrame,
    campaign: str | Sequence[str] | None = None,
    location: str | Sequence[str] | None = None,
    groupings: Iterable[groups.Grouping] | None = None,
) -> pd.DataFrame:
    """The per-face table as the dashboard exports it: what its table shows (``with_sentiment``,
    then the custom group columns of ``with_groups``) with ``campaign`` and ``location`` first.

    Each of ``campaign`` and ``location`` is one value for every row or one value per row
    (a batch that grew across locations); None leaves its column out. Group columns never
    take either name (``with_groups`` renames a clashing group).
    """
    out = df.copy()
    given = [(column, value) for column, value in (("campaign", campaign), ("location", location)) if value is not None]
    for position, (column, value) in enumerate(given):
        values = [value] * len(out) if isinstance(value, str) else list(value)
        if len(values) != len(out):
            raise ValueError(f"{column}: {len(values)} values for {len(out)} rows")
        out.insert(position, column, pd.Series(values, index=out.index, dtype=object))
    return with_groups(with_sentiment(out), groupings)


def _free(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _per_grouping(df: pd.DataFrame, groupings, frame_of, columns: list[str]) -> pd.DataFrame:
    """``frame_of(df, grouping)`` for every chosen grouping, stacked with a ``grouping`` column first."""
    parts = [frame_of(df, g).assign(grouping=g.name)[columns] for g in _custom(groupings)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def group_counts(df: pd.DataFrame, groupings: Iterable[groups.Grouping] | None = None) -> pd.DataFrame:
    """Faces per group in long form (``grouping``, ``group``, ``faces``, ``share`` of all faces) for charts."""
    return _per_grouping(df, groupings, groups.counts, ["grouping", "group", "faces", "share"])


def group_scores(df: pd.DataFrame, groupings: Iterable[groups.Grouping] | None = None) -> pd.DataFrame:
    """Mean soft score per group over the faces (``grouping``, ``group``, ``score``): smooth, for trends."""
    return _per_grouping(df, groupings, groups.mean_soft_scores, ["grouping", "group", "score"])


def _group_shares(df: pd.DataFrame, chosen: Sequence[groups.Grouping], taken: Iterable[str]) -> dict[str, float]:
    """{column label: share of faces} for every bucket of ``chosen`` (labels as ``groups.column_names``)."""
    names = groups.column_names(chosen, taken)
    shares: dict[str, float] = {}
    for grouping in chosen:
        counts = groups.counts(df, grouping)
        for bucket, share in zip(counts["group"], counts["share"]):
            shares[names[(grouping.name, bucket)]] = float(share)
    return shares


def net_sentiment(df: pd.DataFrame) -> float | None:
    """Share of positive minus share of negative faces, in points from -100 to +100 (None without faces).

    Read like a net promoter score: above zero, smiles outnumber negative expressions.
    """
    sc = sentiment_counts(df).set_index("sentiment")["faces"]
    total = int(sc.sum())
    if not total:
        return None
    return round(100.0 * (sc["positive"] - sc["negative"]) / total, 1)


@dataclass(frozen=True)
class BatchSummary:
    """Headline numbers of one batch of photos."""

    files: int
    faces: int
    no_face: int
    errors: int
    dominant: str | None
    dominant_share: float | None
    negative_share: float | None
    net_sentiment: float | None
    # Share of faces per custom group ({column label: share}; empty without faces).
    group_shares: dict[str, float] = field(default_factory=dict)


def summarize(df: pd.DataFrame, groupings: Iterable[groups.Grouping] | None = None) -> BatchSummary:
    faces = faces_only(df)
    per_file = df.drop_duplicates("file")
    dominant = share = neg = None
    if len(faces):
        counts = faces["emotion"].value_counts()
        dominant, share = str(counts.index[0]), float(counts.iloc[0] / len(faces))
        neg = float(sentiment_counts(df).set_index("sentiment").loc["negative", "share"])
    return BatchSummary(
        files=int(per_file["file"].nunique()),
        faces=int(len(faces)),
        no_face=int((per_file["status"] == "no_face").sum()),
        errors=int((per_file["status"] == "error").sum()),
        dominant=dominant,
        dominant_share=share,
        negative_share=neg,
        net_sentiment=net_sentiment(df),
        group_shares=_group_shares(df, _custom(groupings), ()) if len(faces) else {},
    )


def campaign_long(batches: Mapping[str, pd.DataFrame], class_names: Sequence[str]) -> pd.DataFrame:
    """Emotion shares of each named batch in long form (batch, emotion, faces, share) for charts."""
    parts = []
    for name, df in batches.items():
        counts = emotion_counts(df, class_names)
        counts.insert(0, "batch", name)
        parts.append(counts)
    if not parts:
        return pd.DataFrame(columns=["batch", "emotion", "faces", "share"])
    return pd.concat(parts, ignore_index=True)


def campaign_table(
    batches: Mapping[str, pd.DataFrame],
    class_names: Sequence[str],
    groupings: Iterable[groups.Grouping] | None = None,
) -> pd.DataFrame:
    """One row per named batch: photos, faces, % per emotion, % positive/negative, net sentiment,
    then % per custom group (``"<group> %"``)."""
    chosen = _custom(groupings)
    rows = []
    for name, df in batches.items():
        summary = summarize(df)
        emotions = emotion_counts(df, class_names).set_index("emotion")["share"]
        sentiments = sentiment_counts(df).set_index("sentiment")["share"]
        row: dict[str, object] = {"batch": name, "photos": summary.files, "faces": summary.faces}
        row.update({f"{e} %": round(100 * float(emotions[e]), 1) for e in class_names})
        row.update(
            {
                "positive %": round(100 * float(sentiments["positive"]), 1),
                "negative %": round(100 * float(sentiments["negative"]), 1),
                "net sentiment": summary.net_sentiment,
            }
        )
        taken = {c.removesuffix(" %") for c in row}
        row.update({f"{label} %": round(100 * share, 1) for label, share in _group_shares(df, chosen, taken).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def result_record(res, groupings: Iterable[groups.Grouping] | None = None) -> dict:
    """One file's result as a JSON-ready object: status, error, size and its faces (box,
    probabilities, top emotion, sentiment, and ``groups``: {grouping: [its groups the face is in]})."""
    chosen = _custom(groupings)

    def face_groups(face) -> dict[str, list[str]]:
        return {g.name: list(g.buckets_of(face.emotion, round(face.confidence, 4))) for g in chosen}

    return {
        "file": res.file,
        "status": res.status,
        "error": res.error,
        "width": res.width,
        "height": res.height,
        "faces": [dict(f.to_dict(), sentiment=sentiment_of(f.emotion), groups=face_groups(f)) for f in res.faces],
    }


def results_json(
    results: Iterable, class_names: Sequence[str], groupings: Iterable[groups.Grouping] | None = None
) -> str:
    """All results as JSON: one ``result_record`` per file."""
    out = [result_record(res, groupings) for res in results]
    return json.dumps({"class_names": list(class_names), "results": out}, indent=2)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as a CSV download, with formula-like text cells neutralised (``sanitize.csv_frame``)."""
    out = sanitize.csv_frame(df)
    # Group columns are named by users: a header cell is a cell too.
    out.columns = [sanitize.csv_cell(str(c)) for c in out.columns]
    return out.to_csv(index=False).encode("utf-8")
