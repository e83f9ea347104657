"""Aggregations behind the dashboard: result tables, emotion and sentiment shares, campaigns.

Everything here works on the one-row-per-face table of the CLI schema
(``ImageResult.rows``) so the app, the CLI and downloads agree on the numbers.
No streamlit and no TensorFlow: these are plain pandas functions with unit tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from src import sanitize
from src.palette import SENTIMENT_ORDER, sentiment_of

# The per-face table of the CLI's CSV, the batch table and its downloads: these columns,
# one per label of the model, then the file's status and error.
BASE_COLUMNS = ("file", "face", "x", "y", "w", "h", "emotion", "confidence")
TAIL_COLUMNS = ("status", "error")
INT_COLUMNS = ("face", "x", "y", "w", "h")


def table_columns(class_names: Sequence[str]) -> tuple[str, ...]:
    """The per-face table's columns for a model with these labels."""
    return (*BASE_COLUMNS, *class_names, *TAIL_COLUMNS)


def file_row(file: str, status: str, error: str, class_names: Sequence[str]) -> dict:
    """The single row of a file without faces (no_face or error): blank but for file, status and error."""
    row = dict.fromkeys(table_columns(class_names), "")
    row.update(file=file, status=status, error=error)
    return row


class _HasRows(Protocol):
    file: str
    status: str
    error: str

    def rows(self, class_names: Sequence[str]) -> list[dict]: ...


@dataclass
class FailedFile:
    """A file that never reached the model (e.g. a broken archive), shaped like ``ImageResult``."""

    file: str
    error: str
    status: str = "error"
    width: int = 0
    height: int = 0
    faces: list = field(default_factory=list)

    def rows(self, class_names: Sequence[str]) -> list[dict]:
        return [file_row(self.file, self.status, self.error, class_names)]


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
    """Faces per sentiment (positive, neutral, negative) with shares."""
    faces = faces_only(df)
    labels = pd.Series([sentiment_of(e) for e in faces["emotion"]], dtype=object)
    counts = labels.value_counts().reindex(list(SENTIMENT_ORDER), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "sentiment": list(SENTIMENT_ORDER),
            "faces": counts.to_numpy().astype(int),
            "share": counts.to_numpy() / total if total else 0.0,
        }
    )


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


def summarize(df: pd.DataFrame) -> BatchSummary:
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


def campaign_table(batches: Mapping[str, pd.DataFrame], class_names: Sequence[str]) -> pd.DataFrame:
    """One row per named batch: photos, faces, % per emotion, % positive/negative, net sentiment."""
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
        rows.append(row)
    return pd.DataFrame(rows)


def result_record(res) -> dict:
    """One file's result as a JSON-ready object: status, error, size and its faces (box, probabilities, top emotion)."""
    return {
        "file": res.file,
        "status": res.status,
        "error": res.error,
        "width": res.width,
        "height": res.height,
        "faces": [dict(f.to_dict(), sentiment=sentiment_of(f.emotion)) for f in res.faces],
    }


def results_json(results: Iterable, class_names: Sequence[str]) -> str:
    """All results as JSON: one ``result_record`` per file."""
    out = [result_record(res) for res in results]
    return json.dumps({"class_names": list(class_names), "results": out}, indent=2)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as a CSV download, with formula-like text cells neutralised (``sanitize.csv_frame``)."""
    return sanitize.csv_frame(df).to_csv(index=False).encode("utf-8")
