"""Trends over stored results: shares over time, campaign comparison, weekly KPIs, exports.

Works on the per-face table that ``src.analytics.store`` returns from ``Store.results()`` (the
``ImageResult.rows`` columns plus ``run_id``, ``run_time``, ``source``, ``campaign``,
``location``, ``tags``, ``model_version``, ``time``, ``track_id`` and ``at``, the UTC
time of the face). Plain pandas and scipy, no streamlit, so every number on the
History & trends view is unit tested.

Faces are counted under a *grouping* (``src.analytics.groups``): the seven emotions, the sentiment
grouping in force, or a custom grouping of the groups file; a face counts in every group
it belongs to, and shares are of all faces. Campaigns are compared with 95% Wilson
intervals on each share and a chi-square test of independence on the counts, run only
when every face is in at most one group (else no single test applies) and the counts are
large enough for it (Cochran's rule); otherwise the verdict says why not.

The live camera is stored as per-second aggregates (``Store.live_seconds``);
``live_rows`` turns them into rows of the same table, one per face in view per second,
so a live session counts in the trends like the photos of the same moments.

Those rows are *samples*: a video has one per face per sampled frame and the live camera
one per face-second, so one person in front of the camera for 15 s is 15 of them. To count
*people*, pass the people table (``Store.people``, ``persist.history_people``: one row per
person, a photo's face or a video or live track, with its label and ``at`` = first seen)
instead: it has the columns these functions read, so shares over time and the campaign
comparison then count each person once (a track by its label; photos one vote each), and
``kpis(rows, people=people)`` counts people seen and the busiest campaign by people. The
long tables' count column is named ``faces`` whatever it counts; ``unit(df)`` says what that is.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from src import config
from src.analytics import groups
from src.analytics.groups import Grouping
from src.analytics.people import LIVE_FILE  # the file name of rows made from live seconds
from src.common import sanitize

BUCKETS = ("hour", "day", "week")
NO_CAMPAIGN = "(no campaign)"  # how faces saved without a campaign are listed and charted
ALPHA = 0.05
Z95 = 1.959963984540054  # two-sided 95% normal quantile


def emotion_grouping(class_names: Sequence[str] = config.EMOTIONS) -> Grouping:
    """Each emotion its own group: the top emotion as it is."""
    return Grouping("emotion", tuple(groups.Group(e, (e,)) for e in class_names), partition=True, other="")


def sentiment_grouping() -> Grouping:
    """The sentiment grouping in force (the groups file's, or the built-in one)."""
    return groups.sentiment()


def exclusive(member: pd.DataFrame) -> bool:
    """Whether every face is in at most one group (a chi-square test needs that)."""
    return bool((member.sum(axis=1) <= 1).all()) if len(member.columns) else True


# --- reading the table ------------------------------------------------------------


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC (naive ones are taken to be UTC already), same index."""
    return pd.to_datetime(values, utc=True, errors="coerce")


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``at`` as UTC timestamps and blank text columns (campaign, ...) as ``""``."""
    out = df.copy()
    out["at"] = _utc(out["at"] if "at" in out else pd.Series(pd.NaT, index=out.index))
    for col in ("campaign", "location", "source", "emotion", "status"):
        out[col] = out[col].fillna("").astype(str) if col in out else ""
    return out


def live_rows(seconds: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Live seconds (``Store.live_seconds``) as result rows: one per face counted in a second.

    Each row takes its run's source, campaign, location, tags and model version, ``at`` =
    its second, ``file`` = ``LIVE_FILE``; it has an emotion but no box, confidence or
    probabilities (a group with a minimum confidence does not count them).
    """
    columns = ["run_id", "run_time", "source", "campaign", "location", "tags", "model_version"]
    columns += ["file", "emotion", "confidence", "status", "error", "at"]
    if seconds.empty:
        return pd.DataFrame(columns=columns)
    labels = [c for c in seconds.columns if c not in ("run_id", "second", "faces")]
    long = seconds.melt(id_vars=["run_id", "second"], value_vars=labels, var_name="emotion", value_name="n")
    long = long[long["n"] > 0]
    rows = long.loc[long.index.repeat(long["n"].astype(int))].reset_index(drop=True)
    info = runs.set_index("run_id")[[c for c in columns[1:7] if c in runs]]
    rows = rows.join(info, on="run_id")
    rows = rows.assign(file=LIVE_FILE, confidence=np.nan, status="ok", error="", at=rows["second"])
    return rows.reindex(columns=columns)


def combine(results: pd.DataFrame, live: pd.DataFrame) -> pd.DataFrame:
    """The results table and the live rows in one table, in time order."""
    parts = [part for part in (results, live) if len(part)]
    if not parts:
        return results
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return out.sort_values("at", kind="stable", ignore_index=True)


UNITS = {"faces": "face", "people": "person", "samples": "sample"}  # what a table counts, plural: singular


def unit(df: pd.DataFrame) -> str:
    """What a row of ``df`` is, in words: ``people`` for the people table (``Store.people``,
    which has a ``person`` column), else ``faces`` (face rows, and samples of videos and live)."""
    return "people" if "person" in df.columns else "faces"


def face_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are faces (status ok, an emotion), leaving out faceless or failed files."""
    if df.empty:
        return df
    status = df["status"].fillna("").astype(str) if "status" in df else pd.Series("ok", index=df.index)
    emotion = df["emotion"].fillna("").astype(str)
    return df[(status == "ok") & (emotion != "")]


def campaign_label(name: object) -> str:
    """How a campaign is listed: its name as typed, or ``NO_CAMPAIGN`` when there is none."""
    if name is None or (isinstance(name, float) and math.isnan(name)) or str(name) == "":
        return NO_CAMPAIGN
    return str(name)


def campaign_names(campaign: pd.Series) -> pd.Series:
    """``campaign_label`` of a prepared table's campaign column, vectorised."""
    return campaign.where(campaign != "", NO_CAMPAIGN)


def _day_start(value: date | datetime | str | None) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def filter_results(
    df: pd.DataFrame,
    *,
    campaigns: Iterable[str] = (),
    locations: Iterable[str] = (),
    sources: Iterable[str] = (),
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> pd.DataFrame:
    """Rows matching every given filter; an empty filter keeps everything.

    ``campaigns`` may hold ``NO_CAMPAIGN`` for rows saved without one. ``since`` and
    ``until`` are UTC; a plain date for ``until`` includes that whole day.
    """
    out = prepare(df)
    keep = pd.Series(True, index=out.index)
    campaigns, locations, sources = list(campaigns), list(locations), list(sources)
    if campaigns:
        keep &= campaign_names(out["campaign"]).isin(campaigns)
    if locations:
        keep &= out["location"].isin(locations)
    if sources:
        keep &= out["source"].isin(sources)
    start = _day_start(since)
    if start is not None:
        keep &= out["at"] >= start
    end = _day_start(until)
    if end is not None:
        if not isinstance(until, datetime):  # a date: up to the end of that day
            end += pd.Timedelta(days=1)
            keep &= out["at"] < end
        else:
            keep &= out["at"] <= end
    return out[keep]


@dataclass(frozen=True)
class FilterOptions:
    """What the filters can offer for a results table: names as stored, and the date span."""

    campaigns: list[str]
    locations: list[str]
    sources: list[str]
    first: date | None
    last: date | None


def filter_options(df: pd.DataFrame) -> FilterOptions:
    out = prepare(df)
    at = out["at"].dropna() if len(out) else pd.Series([], dtype="datetime64[ns, UTC]")
    return FilterOptions(
        campaigns=sorted(campaign_names(pd.Series(out["campaign"].unique(), dtype=object))),
        locations=sorted(v for v in out["location"].unique() if v),
        sources=sorted(v for v in out["source"].unique() if v),
        first=at.min().date() if len(at) else None,
        last=at.max().date() if len(at) else None,
    )


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


def memberships(faces: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """One boolean column per bucket of ``grouping`` for face rows (``groups.memberships``)."""
    if "confidence" not in faces:
        faces = faces.assign(confidence=np.nan)
    return groups.memberships(faces, grouping)


def shares_over_time(df: pd.DataFrame, grouping: Grouping, bucket: str = "day") -> pd.DataFrame:
    """Long table ``period, label, faces, total, share``: every bucket in every period with faces.

    ``total`` is all faces of the period (also those in no group), so a share is "of the
    faces seen then"; overlapping groups' shares can add up to more than 1.
    """
    columns = ["period", "label", "faces", "total", "share"]
    faces = face_rows(prepare(df))
    faces = faces[faces["at"].notna()]
    if faces.empty:
        return pd.DataFrame(columns=columns)
    period = bucket_start(faces["at"], bucket)
    counts = memberships(faces, grouping).astype(int).groupby(period).sum()
    totals = period.value_counts().reindex(counts.index)
    long = counts.rename_axis("period").reset_index().melt(id_vars="period", var_name="label", value_name="faces")
    long["total"] = long["period"].map(totals).astype(int)
    long["share"] = long["faces"] / long["total"]
    order = {label: i for i, label in enumerate(grouping.buckets)}
    long = long.sort_values(["period", "label"], key=lambda col: col.map(order) if col.name == "label" else col)
    return long.reset_index(drop=True)[columns]


# --- campaign comparison ----------------------------------------------------------


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


def campaign_shares(df: pd.DataFrame, grouping: Grouping, campaigns: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table ``campaign, label, faces, total, share, low, high`` (95% Wilson interval).

    ``campaigns`` picks and orders them (names as ``campaign_label`` lists them);
    by default every campaign with faces, the busiest first.
    """
    columns = ["campaign", "label", "faces", "total", "share", "low", "high"]
    faces = face_rows(prepare(df))
    names = campaign_names(faces["campaign"])
    if campaigns is None:
        campaigns = list(names.value_counts().index)
    member = memberships(faces, grouping)
    rows = []
    for name in campaigns:
        inside = (names == name).to_numpy(bool)
        counts = member[inside].sum(axis=0).astype(int)
        total = int(inside.sum())
        for label, k in counts.items():
            low, high = wilson_interval(int(k), total)
            rows.append([name, label, int(k), total, k / total if total else math.nan, low, high])
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Comparison:
    """The chi-square test of independence between campaigns and labels, and its verdict.

    ``testable`` is False when the counts are too small for the test (then ``differs``,
    ``statistic`` and ``p_value`` are None); ``verdict`` says the outcome in plain words.
    """

    campaigns: tuple[str, ...]
    table: pd.DataFrame  # faces: one row per campaign, one column per label
    testable: bool
    differs: bool | None
    statistic: float | None
    p_value: float | None
    dof: int | None
    verdict: str


def _names(campaigns: Sequence[str]) -> str:
    quoted = [f"“{c}”" for c in campaigns]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def compare_campaigns(
    df: pd.DataFrame, campaigns: Sequence[str], grouping: Grouping, alpha: float = ALPHA
) -> Comparison:
    """Do these campaigns differ in their mix of ``grouping`` labels? (chi-square, ``alpha`` level)

    Labels that no selected campaign has are left out, and so are faces in no group. The
    test needs each face in one group only: groups that overlap in these faces get a
    verdict saying so. It is run only when every expected count is at least 1 and at most
    a fifth of them are under 5 (Cochran's rule); below that its p-value is unreliable,
    and the verdict says more faces (or a grouping with fewer groups, such as sentiment)
    are needed.
    """
    from scipy.stats import chi2_contingency

    campaigns = tuple(dict.fromkeys(campaigns))
    long = campaign_shares(df, grouping, campaigns)
    table = (
        long.pivot(index="campaign", columns="label", values="faces").reindex(index=campaigns, columns=grouping.buckets)
        if len(long)
        else pd.DataFrame(0, index=list(campaigns), columns=list(grouping.buckets))
    )
    table = table.fillna(0).astype(int)
    # "emotion mix", "sentiment mix", or "mix of “custom” groups" (a user's name, quoted).
    mix = f"{grouping.name} mix" if grouping.name in ("emotion", "sentiment") else f"mix of “{grouping.name}” groups"
    bucket = "emotion" if grouping.name == "emotion" else "group"
    many = unit(df)  # faces, or people for the people table
    one = UNITS[many]

    def untestable(reason: str) -> Comparison:
        return Comparison(campaigns, table, False, None, None, None, None, reason)

    if len(campaigns) < 2:
        return untestable("Pick at least two campaigns to compare.")
    faces = face_rows(prepare(df))
    chosen = faces[campaign_names(faces["campaign"]).isin(campaigns)]
    empty = [c for c in campaigns if not (long[long["campaign"] == c]["total"] > 0).any()]
    if empty:
        return untestable(f"No {many} to compare for {_names(empty)} with these filters.")
    if not exclusive(memberships(chosen, grouping)):
        return untestable(
            f"Some {many} are in more than one of these groups, so no single test of the mix applies; "
            "compare each group's interval in the chart instead (or make the grouping a partition)."
        )
    used = table.loc[:, table.sum(axis=0) > 0]
    if used.shape[1] < 2:
        return untestable(
            f"Every {one} {'has the same emotion' if bucket == 'emotion' else 'is in the same group'}, so there is no mix to compare."
        )
    observed = used.to_numpy(dtype=float)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    if expected.min() < 1 or (expected < 5).mean() > 0.2:
        sizes = ", ".join(f"{int(table.loc[c].sum())} in {_names([c])}" for c in campaigns)
        hint = " or a grouping with fewer groups (sentiment)" if len(grouping.buckets) > 3 else ""
        return untestable(
            f"Too few {many} to test whether the {mix} differs ({sizes}): the chi-square test "
            f"needs about 5 expected {many} per {bucket} and campaign. Collect more {many}{hint}."
        )
    result = chi2_contingency(observed, correction=False)
    statistic, p_value, dof = float(result.statistic), float(result.pvalue), int(result.dof)
    differs = p_value < alpha
    figures = f"chi-square {statistic:.1f}, {dof} degrees of freedom, {_p(p_value)}"
    if differs:
        verdict = (
            f"{_names(campaigns)} really differ in their {mix} ({figures}): a difference this large "
            f"would arise by chance less than {alpha:.0%} of the time."
        )
    else:
        verdict = (
            f"No clear difference in the {mix} between {_names(campaigns)} ({figures}): "
            f"the gaps are within what chance produces with this many {many}."
        )
    return Comparison(campaigns, table, True, differs, statistic, p_value, dof, verdict)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# --- KPIs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreKpis:
    """Headline numbers of the store for the Project Summary (shares None without faces).

    ``faces``, ``faces_this_week``, ``faces_last_week`` and ``busiest_faces`` count the rows of
    the table given: samples (a photo's faces, a video's face rows, live face-seconds). The
    ``people`` fields are None unless ``kpis`` was given the people table; then the positive
    shares and the busiest campaign are per person too."""

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


def kpis(df: pd.DataFrame, now: datetime | None = None, people: pd.DataFrame | None = None) -> StoreKpis:
    """Samples (faces) analysed, positive share this ISO week vs last (UTC), and the busiest campaign.

    With ``people`` (the people table of the same runs, ``Store.people``), people seen too,
    and the positive shares and the busiest campaign count people: one person in front of
    the camera for a minute is one person, not 60 face-seconds. The busiest campaign is the
    one with the most of them, all time; rows saved without a campaign are not a campaign.
    """
    faces = face_rows(prepare(df))
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    this_week = iso_week_start(now)
    last_week = this_week - pd.Timedelta(days=7)

    sentiment = sentiment_grouping()

    def positive(part: pd.DataFrame) -> float | None:
        return float(memberships(part, sentiment)["positive"].mean()) if len(part) else None

    def weeks(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        at = rows["at"] if len(rows) else pd.Series([], dtype="datetime64[ns, UTC]")
        return rows[(at >= this_week) & (at < this_week + timedelta(days=7))], rows[
            (at >= last_week) & (at < this_week)
        ]

    def per_campaign(rows: pd.DataFrame) -> pd.Series:
        named = rows[rows["campaign"] != ""] if len(rows) else rows
        return named["campaign"].value_counts() if len(named) else pd.Series([], dtype=int)

    current, previous = weeks(faces)
    samples = per_campaign(faces)
    persons = face_rows(prepare(people)) if people is not None else None
    basis = persons if persons is not None else faces  # what the shares and the busiest campaign count
    counts = per_campaign(basis)
    now_part, before_part = weeks(basis)
    busiest = str(counts.index[0]) if len(counts) else None
    return StoreKpis(
        faces=int(len(faces)),
        campaigns=int(len(counts)),
        positive_this_week=positive(now_part),
        positive_last_week=positive(before_part),
        faces_this_week=int(len(current)),
        faces_last_week=int(len(previous)),
        busiest_campaign=busiest,
        busiest_faces=int(samples.get(busiest, 0)) if busiest is not None else 0,
        people=None if persons is None else int(len(persons)),
        people_this_week=None if persons is None else int(len(now_part)),
        people_last_week=None if persons is None else int(len(before_part)),
        busiest_people=None if persons is None else int(counts.iloc[0]) if len(counts) else 0,
    )


# --- exports ----------------------------------------------------------------------


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Lists (tags) as comma-separated text, so every writer sees one value per cell."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v)
    return out


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The rows as CSV, text cells formula-neutralised (``sanitize.csv_frame``), times in ISO 8601."""
    return sanitize.csv_frame(_flat(df)).to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").encode("utf-8")


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """The rows as a Parquet file (pyarrow), types kept; text exactly as stored."""
    buf = io.BytesIO()
    _flat(df).reset_index(drop=True).to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()
