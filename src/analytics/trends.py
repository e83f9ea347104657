"""Trends over stored results, from the store's tallies: shares over time, campaigns side by side,
the headline KPIs, and the exports streamed chunk by chunk.

``Store.tallies(unit="person"|"sample")`` returns counts per UTC hour, campaign, location,
source, label and doubt (``TALLY_COLUMNS``), summed in the database: a few thousand rows
however many faces were stored. Everything here works on them, in plain pandas, so every
number on History & trends, the Project Summary and ``/v1/summary`` is unit tested and no view
reads the stored rows to chart them.

The unit is the person: a face in a photo is one person, someone followed through a video or by
the live camera is one person with their averaged label (``unit="person"`` tallies). Samples
(a photo's face, a video's face per sampled frame, a live face-second) are a secondary count.

People are counted under a *grouping* (``src.analytics.groups``): the seven emotions, the
sentiment grouping in force, or a custom grouping of the groups file; a person counts in every
group they belong to, and shares are of all people. A group with a ``min_confidence`` counts
from ``Store.tallies(min_confidence=t)`` (``confidence_thresholds`` lists the ``t`` a grouping
needs): the tallies' counts at a confidence band (0.5 ... 0.9), the rows at any other threshold.
Campaigns are shown with 95% Wilson intervals on
each share; whether they differ is ``src.analytics.compare.compare_counts``'s to say. The long
tables' count column is named ``faces`` whatever the tallies count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from src import config
from src.analytics import groups
from src.analytics.groups import Grouping
from src.common import sanitize

BUCKETS = ("hour", "day", "week")
NO_CAMPAIGN = "(no campaign)"  # how runs saved without a campaign are listed and charted
Z95 = 1.959963984540054  # two-sided 95% normal quantile


def emotion_grouping(class_names: Sequence[str] = config.EMOTIONS) -> Grouping:
    """Each emotion its own group: the top emotion as it is."""
    return Grouping("emotion", tuple(groups.Group(e, (e,)) for e in class_names), partition=True, other="")


def sentiment_grouping() -> Grouping:
    """The sentiment grouping in force (the groups file's, or the built-in one)."""
    return groups.sentiment()


# --- names and times ---------------------------------------------------------------


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC (naive ones are taken to be UTC already), same index."""
    return pd.to_datetime(values, utc=True, errors="coerce")


def campaign_label(name: object) -> str:
    """How a campaign is listed: its name as typed, or ``NO_CAMPAIGN`` when there is none."""
    if name is None or (isinstance(name, float) and math.isnan(name)) or str(name) == "":
        return NO_CAMPAIGN
    return str(name)


def campaign_names(campaign: pd.Series) -> pd.Series:
    """``campaign_label`` of a campaign column (``""`` for none), vectorised."""
    return campaign.where(campaign != "", NO_CAMPAIGN)


def _day_start(value: date | datetime | str | None) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class FilterOptions:
    """What the History filters offer (``filter_options``): names as stored, and the date span."""

    campaigns: list[str]
    locations: list[str]
    sources: list[str]
    first: date | None
    last: date | None


# --- shares over time -------------------------------------------------------------


def bucket_start(at: pd.Series, bucket: str) -> pd.Series:
    """The start of each timestamp's hour, UTC day or ISO week (Monday 00:00 UTC)."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    at = _utc(at)
    if bucket == "hour":
        return at.dt.floor("h")
    day = at.dt.floor("D")
    if bucket == "day":
        return day
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D")


# --- campaigns ----------------------------------------------------------------------


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (stays inside 0..1, sane for small n).

    (nan, nan) without observations.
    """
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --- KPIs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreKpis:
    """Headline numbers of the store for the Project Summary (``kpis``; shares None without people).

    ``people``, ``people_this_week``, ``people_last_week``, the positive shares, the busiest
    campaign and ``busiest_people`` count people; ``faces``, ``faces_this_week``,
    ``faces_last_week`` and ``busiest_faces`` count samples (a photo's faces, a video's face
    rows, live face-seconds)."""

    faces: int
    campaigns: int
    positive_this_week: float | None
    positive_last_week: float | None
    faces_this_week: int
    faces_last_week: int
    busiest_campaign: str | None
    busiest_faces: int
    people: int | None = None
    people_this_week: int | None = None
    people_last_week: int | None = None
    busiest_people: int | None = None

    @property
    def samples(self) -> int:
        """What ``faces`` counts, by its name: samples (face rows and live face-seconds)."""
        return self.faces

    @property
    def positive_change(self) -> float | None:
        """This week's positive share minus last week's, in share points (None unless both exist)."""
        if self.positive_this_week is None or self.positive_last_week is None:
            return None
        return self.positive_this_week - self.positive_last_week


def iso_week_start(now: datetime | pd.Timestamp) -> pd.Timestamp:
    """Monday 00:00 UTC of the ISO week holding ``now``."""
    ts = pd.Timestamp(now)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    day = ts.floor("D")
    return day - pd.Timedelta(days=day.weekday())


# --- tallies: counts summed in the database ---------------------------------------------
#
# ``Store.tallies(unit=...)`` returns counts per UTC hour, campaign, location, source, emotion and
# doubt (``TALLY_COLUMNS``), summed in SQL: a few thousand rows however many faces were stored.
# Everything below works on them, so no view reads the stored rows to chart or test them.

TALLY_COLUMNS = ("hour", "campaign", "location", "source", "emotion", "uncertain", "n")
CLEAN = "tallies_clean"  # the attrs mark of a frame ``clean_tallies`` made
Sure = Mapping[float, pd.DataFrame]  # {min_confidence: tallies of the people at least that sure}


def empty_tallies() -> pd.DataFrame:
    """A tallies frame without rows (the columns and types of ``Store.tallies``)."""
    return pd.DataFrame(
        {
            "hour": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{c: pd.Series([], dtype=object) for c in ("campaign", "location", "source", "emotion")},
            "uncertain": pd.Series([], dtype=bool),
            "n": pd.Series([], dtype="int64"),
        }
    )


def clean_tallies(tallies: pd.DataFrame | None) -> pd.DataFrame:
    """Tallies with blank names as ``""``, UTC hours, integer counts and no unlabelled rows.

    The result is marked (``attrs``), and a marked frame (or a part of one) is returned as it is:
    the views clean their tallies once, however many functions read them."""
    if tallies is not None and tallies.attrs.get(CLEAN):
        return tallies
    if tallies is None or tallies.empty:
        out = empty_tallies()
    else:
        out = tallies.copy()
        out["hour"] = _utc(out["hour"])
        for col in ("campaign", "location", "source", "emotion"):
            out[col] = out[col].fillna("").astype(str) if col in out else ""
        out["uncertain"] = out["uncertain"].fillna(False).astype(bool) if "uncertain" in out else False
        out["n"] = pd.to_numeric(out["n"], errors="coerce").fillna(0).astype("int64")
        out = out[(out["emotion"] != "") & (out["n"] > 0)].reset_index(drop=True)
    out.attrs[CLEAN] = True
    return out


def confidence_thresholds(*groupings: Grouping) -> tuple[float, ...]:
    """The distinct ``min_confidence`` of these groupings' groups: one ``Store.tallies(min_confidence=t)``
    query each gives what those groups count."""
    return tuple(
        sorted({g.min_confidence for grouping in groupings for g in grouping.groups if g.min_confidence is not None})
    )


def label_counts(tallies: pd.DataFrame) -> dict[str, int]:
    """``{emotion: n}`` of tallies, largest first (what ``quantify_counts`` and ``compare_counts`` read)."""
    if tallies is None or tallies.empty:
        return {}
    counts = tallies.groupby("emotion")["n"].sum().sort_values(ascending=False, kind="stable")
    return {str(k): int(v) for k, v in counts.items() if v > 0}


def _wide(tallies: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Counts per key of ``by`` (rows) and emotion (columns); one row (index 0) without keys."""
    if not by:
        counts = tallies.groupby("emotion")["n"].sum()
        return pd.DataFrame([counts.to_numpy("int64")], columns=counts.index, index=[0])
    return tallies.pivot_table(index=list(by), columns="emotion", values="n", aggfunc="sum", fill_value=0).astype(
        "int64"
    )


def bucket_counts(
    tallies: pd.DataFrame, grouping: Grouping, by: Sequence[str] = (), sure: Sure | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """How many are in each bucket of ``grouping`` per key of ``by``, and how many there are in all.

    Returns (one column per bucket, in the grouping's order; the totals), both indexed by the
    keys of ``by`` (a single row 0 without keys). A group with a ``min_confidence`` counts from
    ``sure[min_confidence]`` (``Store.tallies(min_confidence=...)`` with the same filters), and
    the ``other`` bucket takes what no group counts; a ValueError when such tallies are missing.
    """
    tallies = clean_tallies(tallies)
    if tallies.empty:
        index = pd.MultiIndex.from_arrays([[] for _ in by], names=list(by)) if len(by) > 1 else None
        index = index if index is not None else pd.Index([], name=by[0] if by else None)
        return pd.DataFrame({b: pd.Series([], dtype="int64") for b in grouping.buckets}, index=index), pd.Series(
            [], index=index, dtype="int64"
        )
    wide = _wide(tallies, by)
    zero = pd.Series(0, index=wide.index, dtype="int64")
    sure_wide: dict[float, pd.DataFrame] = {}
    for threshold in confidence_thresholds(grouping):
        if sure is None or threshold not in sure:
            raise ValueError(f"the counts of people at least {threshold:g} sure are needed for this grouping")
        part = clean_tallies(sure[threshold])
        sure_wide[threshold] = (
            _wide(part, by).reindex(index=wide.index, columns=wide.columns, fill_value=0)
            if len(part)
            else pd.DataFrame(0, index=wide.index, columns=wide.columns)
        )

    def column(frame: pd.DataFrame, emotion: str) -> pd.Series:
        return frame[emotion] if emotion in frame else zero

    out: dict[str, pd.Series] = {}
    for group in grouping.groups:
        source = wide if group.min_confidence is None else sure_wide[group.min_confidence]
        out[group.name] = sum((column(source, e) for e in set(group.emotions)), zero)
    if grouping.other:
        none = zero
        for emotion in wide.columns:
            holders = [g for g in grouping.groups if emotion in g.emotions]
            if any(g.min_confidence is None for g in holders):
                continue  # always in a group
            if holders:  # in a group only when sure enough: the others are nowhere
                lowest = min(g.min_confidence for g in holders)
                none = none + wide[emotion] - column(sure_wide[lowest], emotion)
            else:
                none = none + wide[emotion]
        out[grouping.other] = out.get(grouping.other, zero) + none
    counts = pd.DataFrame({b: out[b].astype("int64") for b in grouping.buckets}, index=wide.index)
    return counts, wide.sum(axis=1).astype("int64")


def _order_labels(long: pd.DataFrame, grouping: Grouping, first: str) -> pd.DataFrame:
    order = {label: i for i, label in enumerate(grouping.buckets)}
    return long.sort_values([first, "label"], key=lambda col: col.map(order) if col.name == "label" else col)


def shares_over_time(
    tallies: pd.DataFrame, grouping: Grouping, bucket: str = "day", sure: Sure | None = None
) -> pd.DataFrame:
    """Long table ``period, label, faces, total, share``: every bucket of ``grouping`` in every period
    (``bucket``: hour, UTC day or ISO week) with counts. ``faces`` counts what the tallies count
    (people for ``unit="person"``); ``total`` is all of the period's (also those in no group), so
    overlapping groups' shares can add up to more than 1. ``sure``: see ``bucket_counts``."""
    columns = ["period", "label", "faces", "total", "share"]
    tallies = clean_tallies(tallies)
    if tallies.empty:
        return pd.DataFrame(columns=columns)

    def with_period(frame: pd.DataFrame) -> pd.DataFrame:
        frame = clean_tallies(frame)
        return frame.assign(period=bucket_start(frame["hour"], bucket)) if len(frame) else frame.assign(period=[])

    counts, totals = bucket_counts(
        with_period(tallies), grouping, ["period"], {t: with_period(f) for t, f in (sure or {}).items()}
    )
    long = counts.rename_axis("period").reset_index().melt(id_vars="period", var_name="label", value_name="faces")
    long["total"] = long["period"].map(totals).astype("int64")
    long["share"] = long["faces"] / long["total"]
    long = long[long["total"] > 0]
    return _order_labels(long, grouping, "period").reset_index(drop=True)[columns]


def campaign_shares(
    tallies: pd.DataFrame, grouping: Grouping, campaigns: Sequence[str] | None = None, sure: Sure | None = None
) -> pd.DataFrame:
    """Long table ``campaign, label, faces, total, share, low, high`` (95% Wilson interval).

    ``campaigns`` picks and orders them (``NO_CAMPAIGN`` for those saved without one); by default
    every campaign with counts, the busiest first."""
    columns = ["campaign", "label", "faces", "total", "share", "low", "high"]

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        frame = clean_tallies(frame)
        return frame.assign(campaign=campaign_names(frame["campaign"]))

    tallies = named(tallies)
    counts, totals = bucket_counts(tallies, grouping, ["campaign"], {t: named(f) for t, f in (sure or {}).items()})
    if campaigns is None:
        campaigns = list(totals.sort_values(ascending=False, kind="stable").index)
    rows = []
    for name in campaigns:
        total = int(totals.get(name, 0))
        for label in grouping.buckets:
            k = int(counts.at[name, label]) if name in counts.index else 0
            low, high = wilson_interval(k, total)
            rows.append([name, label, k, total, k / total if total else math.nan, low, high])
    return pd.DataFrame(rows, columns=columns)


def campaign_label_counts(tallies: pd.DataFrame, campaigns: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{campaign: {emotion: n}}`` for ``campaigns`` (names as ``campaign_label`` lists them)."""
    tallies = clean_tallies(tallies)
    names = campaign_names(tallies["campaign"])
    return {name: label_counts(tallies[names == name]) for name in campaigns}


def filter_options(options: Mapping) -> FilterOptions:
    """``Store.filter_options()`` as the filters offer it: campaigns as ``campaign_label`` lists them
    (``NO_CAMPAIGN`` for runs saved without one), UTC dates of the first and last tally."""

    def day(value) -> date | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
            return None
        ts = pd.Timestamp(value)
        if pd.isna(ts):
            return None
        return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).date()

    campaigns = sorted(dict.fromkeys(campaign_label(c) for c in options.get("campaigns") or ()))
    return FilterOptions(
        campaigns=campaigns,
        locations=sorted(str(v) for v in options.get("locations") or () if v),
        sources=sorted(str(v) for v in options.get("sources") or () if v),
        first=day(options.get("first")),
        last=day(options.get("last")),
    )


def store_filters(
    *,
    campaigns: Iterable[str] = (),
    locations: Iterable[str] = (),
    sources: Iterable[str] = (),
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> dict:
    """The History filters (``filter_results``'s arguments) as ``Store.tallies`` keyword arguments:
    ``NO_CAMPAIGN`` is ``""``; a plain date for ``until`` includes that whole day (the store's
    ``until`` is exclusive)."""
    campaigns, locations, sources = list(campaigns), list(locations), list(sources)
    end = _day_start(until)
    if end is not None and not isinstance(until, datetime):
        end += pd.Timedelta(days=1)
    return {
        "campaign": ["" if c == NO_CAMPAIGN else c for c in campaigns] or None,
        "location": locations or None,
        "source": sources or None,
        "since": None if _day_start(since) is None else _day_start(since).to_pydatetime(),
        "until": None if end is None else end.to_pydatetime(),
    }


def kpis(people: pd.DataFrame, samples: pd.DataFrame, now: datetime | None = None) -> StoreKpis:
    """The headline numbers from person and sample tallies of the same selection: people and samples all time,
    this ISO week and last (UTC), the positive share of people each week, and the busiest campaign
    by people (runs saved without a campaign are not a campaign), with its samples."""
    people, samples = clean_tallies(people), clean_tallies(samples)
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    this_week = iso_week_start(now)
    last_week = this_week - pd.Timedelta(days=7)

    def week(frame: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
        return frame[(frame["hour"] >= start) & (frame["hour"] < start + pd.Timedelta(days=7))]

    def positive(frame: pd.DataFrame) -> float | None:
        counts, totals = bucket_counts(frame, sentiment_grouping())
        total = int(totals.sum())
        return float(counts["positive"].sum() / total) if total else None

    named = people[people["campaign"] != ""]
    per_campaign = named.groupby("campaign")["n"].sum().sort_values(ascending=False, kind="stable")
    per_campaign = per_campaign[per_campaign > 0]
    busiest = str(per_campaign.index[0]) if len(per_campaign) else None
    now_part, before_part = week(people, this_week), week(people, last_week)
    return StoreKpis(
        faces=int(samples["n"].sum()),
        campaigns=int(len(per_campaign)),
        positive_this_week=positive(now_part),
        positive_last_week=positive(before_part),
        faces_this_week=int(week(samples, this_week)["n"].sum()),
        faces_last_week=int(week(samples, last_week)["n"].sum()),
        busiest_campaign=busiest,
        busiest_faces=int(samples.loc[samples["campaign"] == busiest, "n"].sum()) if busiest is not None else 0,
        people=int(people["n"].sum()),
        people_this_week=int(now_part["n"].sum()),
        people_last_week=int(before_part["n"].sum()),
        busiest_people=int(per_campaign.iloc[0]) if busiest is not None else 0,
    )


# --- exports ----------------------------------------------------------------------


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Lists (tags) as comma-separated text, so every writer sees one value per cell."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
    return out


def csv_chunks(chunks: Iterable[pd.DataFrame]) -> Iterator[bytes]:
    """``csv_bytes`` of frames given chunk by chunk (``Store.iter_results``), the header once: a
    download streams in constant memory however many rows there are. No chunk: no bytes."""
    first = True
    for chunk in chunks:
        if first or len(chunk):
            text = sanitize.csv_frame(_flat(chunk)).to_csv(index=False, header=first, date_format="%Y-%m-%dT%H:%M:%S%z")
            first = False
            yield text.encode("utf-8")


def _arrow_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns as nullable text or booleans, so every chunk has one Parquet schema
    (a chunk whose column is all None would otherwise be typed null)."""
    out = _flat(df).reset_index(drop=True)
    for col in out.columns:
        if out[col].dtype == object:
            values = out[col].dropna()
            if len(values) and values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
                out[col] = out[col].astype("boolean")
            else:
                out[col] = out[col].astype("string")
    return out


def write_parquet(chunks: Iterable[pd.DataFrame], file) -> int:
    """The chunks as one Parquet file written to ``file`` (a path or binary file), one row group
    per chunk; returns the rows written. Text exactly as stored, types kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, schema, rows = None, None, 0
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(_arrow_ready(chunk), preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(file, schema)
            elif not len(chunk):
                continue
            writer.write_table(table.cast(schema))
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return rows
