"""What a stakeholder report says, built once from the results store and the error model.

``build_report(store, selection, error_model, model)`` reads the selection's tallies
(``Store.tallies``, summed in the database: people per label, and samples and face-seconds),
its runs, and returns a typed ``Report``: counts, raw and corrected shares with 95% ranges (``src.analytics.quantify``),
the comparison of every pair of campaigns (``src.analytics.compare``), the method and its
limits in plain sentences, and what the figures rest on (the model, the error model). The
HTML and PDF renderers (``html``, ``pdf``) only lay it out, so both say the same.

The error model is passed in, never loaded here: analytics may not import training; the
entry points (CLI, API, dashboard) load it with ``src.training.error_model.load_error_model``
and describe the model with ``ModelFacts.from_manifest``. Without an error model, or with
labels it does not know, shares are shown as labelled and the report says so.

Units: each person is one vote and one independent unit, with their label (a tracked
person's label is the top of the mean of their samples' probabilities), so the correction
and the test need the people counts alone (``quantify_counts``, ``compare_counts``). The
error model was measured on single faces; a tracked person's averaged label is right more
often, so for them the correction is on the cautious side.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from src import config
from src.analytics import groups
from src.analytics.compare import CampaignTest, compare_counts
from src.analytics.quantify import ConfusionCounts, explain, group_map, quantify_counts
from src.analytics.trends import NO_CAMPAIGN, clean_tallies, label_counts

MAX_PAIRS = 10  # comparisons in one report: every pair of up to five campaigns
LEVEL = 0.95
PHOTO_KIND = "photo"


class EmptySelection(ValueError):
    """The selection holds no people: there is nothing to report (str says which selection)."""


# --- What is asked ---------------------------------------------------------------------------


def parse_when(text: str) -> date | datetime:
    """``YYYY-MM-DD`` as a date, else an ISO 8601 time; a ValueError saying what is expected."""
    text = text.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None


def _utc(value: datetime | date | str | None, *, end_of_day: bool = False) -> datetime | None:
    """A time in UTC (naive = UTC); a plain date is its midnight, or the next midnight with ``end_of_day``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = parse_when(value)
    if not isinstance(value, datetime):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Which stored results a report covers: runs of these campaigns (empty: every campaign),
    locations and sources (empty: all), people first seen (runs started) from ``since``
    (inclusive) to ``until`` (exclusive), UTC. A campaign or location ``""`` is the runs saved
    without one."""

    campaigns: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_uncertain: bool = True  # False: the faces and people the engine found doubtful stay out

    @classmethod
    def of(
        cls,
        campaigns: Sequence[str] | None = None,
        locations: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        include_uncertain: bool = True,
    ) -> Selection:
        """A selection from loose values: ``NO_CAMPAIGN`` means ``""``; a plain date for
        ``until`` includes that whole day (as the dashboard's date filter); repeats dropped."""

        def names(values: Sequence[str] | None) -> tuple[str, ...]:
            out = ["" if v in (None, NO_CAMPAIGN) else str(v).strip() for v in values or ()]
            return tuple(dict.fromkeys(out))

        return cls(
            campaigns=names(campaigns),
            locations=tuple(dict.fromkeys(str(v).strip() for v in locations or ())),
            sources=tuple(dict.fromkeys(sources or ())),
            since=_utc(since),
            until=_utc(until, end_of_day=True),
            include_uncertain=bool(include_uncertain),
        )

    def store_kwargs(self) -> dict[str, Any]:
        """The filters of ``Store.people``, ``Store.results`` and ``Store.runs``."""
        return {
            "campaign": list(self.campaigns) or None,
            "location": list(self.locations) or None,
            "source": list(self.sources) or None,
            "since": self.since,
            "until": self.until,
        }


def campaign_label(name: object) -> str:
    """A campaign as the report names it: as typed, or ``NO_CAMPAIGN``."""
    return NO_CAMPAIGN if name is None or (isinstance(name, float) and math.isnan(name)) or name == "" else str(name)


# --- What the figures rest on ------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    """The model the error model describes: a plain name, its version id, the weights' sha256,
    and its accuracy on lab crops (FER2013 PrivateTest), when known."""

    name: str
    version: str
    sha256: str = ""
    lab_accuracy: float | None = None

    @classmethod
    def from_manifest(
        cls, manifest: Mapping[str, Any] | None, plain_name: str, version: str | None = None
    ) -> ModelFacts:
        """From a model manifest (``src.engine.manifest.read_manifest``); ``plain_name`` is
        ``src.training.model_card.plain_name(manifest)``, passed in (analytics may not import training)."""
        manifest = manifest or {}
        metrics = manifest.get("metrics") if isinstance(manifest.get("metrics"), Mapping) else {}
        lab = metrics.get("private_test_accuracy")
        return cls(
            name=plain_name,
            version=str(version or manifest.get("version") or "unversioned"),
            sha256=str(manifest.get("sha256") or ""),
            lab_accuracy=float(lab) if isinstance(lab, (int, float)) else None,
        )


@dataclass(frozen=True)
class Provenance:
    """Where the error model comes from: data, how many faces, when, and for which model file."""

    dataset: str
    split: str
    photos: int
    faces: int
    labelled_faces: int
    created: str
    model_file: str
    model_sha256: str
    accuracy: float | None  # share of the labelled faces read right, a missed face counted wrong
    matches_model: bool | None  # measured on the weights the report names (None: cannot tell; False: unused)

    @classmethod
    def of(cls, error_model: ConfusionCounts, model: ModelFacts | None) -> Provenance:
        counts = np.asarray(error_model.counts, dtype=float)
        missed = np.asarray(getattr(error_model, "missed", np.zeros(len(counts))), dtype=float)
        faces = int(counts.sum())
        labelled = faces + int(missed.sum())
        sha = str(getattr(error_model, "model_sha256", "") or "")
        return cls(
            dataset=str(getattr(error_model, "dataset", "") or "labelled faces"),
            split=str(getattr(error_model, "split", "") or ""),
            photos=int(getattr(error_model, "photos", 0) or 0),
            faces=faces,
            labelled_faces=labelled,
            created=str(getattr(error_model, "created", "") or "")[:10],
            model_file=str(getattr(error_model, "model_file", "") or ""),
            model_sha256=sha,
            accuracy=float(np.trace(counts) / labelled) if labelled else None,
            matches_model=(sha == model.sha256) if sha and model is not None and model.sha256 else None,
        )


# --- The figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareRow:
    """One label's share of people: as the model labelled them (``raw``) and corrected for its
    mistakes with the 95% range (None when the report is uncorrected)."""

    label: str
    raw: float
    corrected: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Counts:
    """What a selection holds. ``samples`` are face observations of photos and videos (a photo's
    face, one per face per sampled video frame); ``face_seconds`` those of the live camera."""

    runs: int
    people: int
    samples: int
    face_seconds: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class Figures:
    """One campaign's (or the whole selection's) counts and shares."""

    name: str
    counts: Counts
    emotions: tuple[ShareRow, ...]
    sentiment: tuple[ShareRow, ...]
    warnings: tuple[str, ...] = ()

    def units_sentence(self) -> str:
        """What the ranges count, in words."""
        return (
            f"The ranges count each of the {self.counts.people:,} people as one independent unit. The error model "
            "was measured on single faces; people followed over time are labelled by the average of their "
            "samples, which is right more often, so for them the correction is on the cautious side."
        )


@dataclass(frozen=True)
class Comparison:
    """Two campaigns compared by sentiment and by emotion, with the verdicts in plain words."""

    names: tuple[str, str]
    sentiment: CampaignTest
    emotions: CampaignTest


@dataclass(frozen=True)
class Report:
    """Everything a report shows; the renderers lay it out and add nothing."""

    title: str
    created: datetime
    selection: Selection
    selection_lines: tuple[tuple[str, str], ...]
    total: Figures
    campaigns: tuple[Figures, ...]  # each campaign of the selection, when there are two or more
    comparisons: tuple[Comparison, ...]
    comparison_note: str
    corrected: bool
    correction_sentence: str
    method: tuple[tuple[str, str], ...]  # (heading, plain paragraph)
    model: ModelFacts | None
    run_models: tuple[str, ...]  # model versions stamped on the selection's runs
    provenance: Provenance | None
    notes: tuple[str, ...] = field(default=())

    @property
    def emotion_labels(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.total.emotions)

    @property
    def sentiment_labels(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.total.sentiment)

    def period(self) -> str:
        """The span of the selection's runs in words (UTC days)."""
        first, last = self.total.counts.first, self.total.counts.last
        if first is None or last is None:
            return "no runs"
        a, b = f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"
        return f"{a} (UTC)" if a == b else f"{a} to {b} (UTC)"


# --- Building it -------------------------------------------------------------------------------


def _counts(people: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> Counts:
    """People and samples from the tallies, runs and their span from the runs."""
    first = runs["run_time"].min() if len(runs) else None
    ends = runs["finished_at"].fillna(runs["run_time"]) if len(runs) else pd.Series(dtype="datetime64[ns, UTC]")
    last = ends.max() if len(runs) else None
    live = samples["source"] == "live"
    return Counts(
        runs=int(len(runs)),
        people=int(people["n"].sum()),
        samples=int(samples.loc[~live, "n"].sum()),
        face_seconds=int(samples.loc[live, "n"].sum()),
        first=None if first is None or pd.isna(first) else first.to_pydatetime(),
        last=None if last is None or pd.isna(last) else last.to_pydatetime(),
    )


def _raw_shares(counts: Mapping[str, int], class_names: Sequence[str], buckets: Mapping[str, Sequence[str]]):
    n = sum(counts.values())
    raw = {name: float(counts.get(name, 0)) / n if n else math.nan for name in class_names}
    emotions = tuple(ShareRow(name, raw[name]) for name in class_names)
    sentiment = tuple(ShareRow(b, sum(raw.get(e, 0.0) for e in members)) for b, members in buckets.items())
    return emotions, sentiment


def _figures(
    name: str,
    people: pd.DataFrame,
    samples: pd.DataFrame,
    runs: pd.DataFrame,
    error_model: ConfusionCounts | None,
    class_names: Sequence[str],
    buckets: Mapping[str, Sequence[str]],
) -> Figures:
    counts = label_counts(people)
    totals = _counts(people, samples, runs)
    if error_model is None:
        emotions, sentiment = _raw_shares(counts, class_names, buckets)
        return Figures(name, totals, emotions, sentiment)
    q = quantify_counts(counts, error_model, groups=buckets, level=LEVEL)
    emotions = tuple(ShareRow(s.label, s.raw, s.corrected, s.low, s.high) for s in q.emotions)
    sentiment = tuple(ShareRow(s.label, s.raw, s.corrected, s.low, s.high) for s in q.groups)
    return Figures(name, totals, emotions, sentiment, q.warnings)


def _compare(
    a: tuple[str, Mapping[str, int]],
    b: tuple[str, Mapping[str, int]],
    error_model: ConfusionCounts | None,
    class_names: Sequence[str],
    buckets: Mapping[str, Sequence[str]],
) -> Comparison:
    (name_a, counts_a), (name_b, counts_b) = a, b
    common = dict(error_model=error_model, names=(name_a, name_b), unit="people")
    return Comparison(
        (name_a, name_b),
        sentiment=compare_counts(counts_a, counts_b, class_names, groups=buckets, **common),
        emotions=compare_counts(counts_a, counts_b, class_names, **common),
    )


def _selection_lines(selection: Selection, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    def listed(values: Sequence[str], empty: str, blank: str) -> str:
        return ", ".join(blank if v == "" else v for v in values) if values else empty

    dates = "all dates"
    if selection.since or selection.until:
        start = f"{selection.since:%Y-%m-%d %H:%M}" if selection.since else "the first run"
        end = f"{selection.until:%Y-%m-%d %H:%M}" if selection.until else "the last run"
        dates = f"runs started from {start} to before {end} (UTC)"
    return (
        ("Campaigns", ", ".join(names) if names else "all campaigns"),
        ("Locations", listed(selection.locations, "all locations", "(no location)")),
        ("Sources", listed(selection.sources, "all sources", "")),
        ("Dates", dates),
    )


TITLE_CHARS = 80  # campaign names in a title; the selection lists them all in full


def _title(names: Sequence[str]) -> str:
    if len(names) == 1:
        name = names[0] if len(names[0]) <= TITLE_CHARS else names[0][: TITLE_CHARS - 1] + "…"
        return f"Emotion report: {name}"
    listed = f"{', '.join(names[:-1])} and {names[-1]}"
    if len(names) <= 3 and len(listed) <= TITLE_CHARS:
        return f"Emotion report: {listed}"
    return f"Emotion report: {len(names)} campaigns"


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0%}"


def accuracy_text(provenance: Provenance | None, model: ModelFacts | None) -> str:
    """Real-photo accuracy beside the lab one, in words."""
    if provenance is not None and provenance.accuracy is not None:
        text = (
            f"On real photos the model labels about {_pct(provenance.accuracy)} of faces right "
            f"({provenance.labelled_faces:,} held-back {provenance.dataset} faces; a face it missed counts as wrong)"
        )
    else:
        text = "Its accuracy on real photos has not been measured"
    lab = model.lab_accuracy if model is not None else None
    if lab is not None:
        text += (
            f"; on the lab-style crops of FER2013 it scores {_pct(lab)}. The lab figure overstates how it "
            "does on your cameras: judge it by the real-photo one"
        )
    return text + ". One face is often wrong; shares over many people are what it is for."


def method_text(report_corrected: bool, provenance: Provenance | None, model: ModelFacts | None) -> tuple:
    """The method and its limits, as (heading, paragraph) pairs in plain words."""
    out = [
        (
            "What is counted",
            "Each person counts once. A face in a photo is one person; someone followed through a video "
            "or in front of the live camera is one person too, however many samples (video frames, "
            "face-seconds) they left, and is labelled by the average of those samples.",
        )
    ]
    if report_corrected and provenance is not None:
        out.append(
            (
                "What the correction does",
                "The model mixes some expressions up in a systematic way (it reads many surprised faces as "
                "angry, and rarely says disgust), so the share of people it labels happy is not the share "
                "who look happy. The corrected share undoes these known mix-ups: it asks which true mix of "
                "expressions would most likely give the labels seen, given how the model read "
                f"{provenance.faces:,} faces of held-back {provenance.dataset} photos that people had "
                "labelled. The raw share is shown beside it.",
            )
        )
    else:
        out.append(
            (
                "No correction",
                "No error model is available for this model, so the shares are the model's labels as they "
                "are: they carry its systematic mistakes (surprise read as angry, disgust rarely seen) and "
                "have no range.",
            )
        )
    out.append(("How accurate the model is", accuracy_text(provenance, model)))
    out.append(
        (
            "Expressions, not feelings",
            "It estimates facial expressions, not what people feel: a smile is not happiness and a still "
            "face is not indifference. Tell people when it runs, and do not use it on employees or students.",
        )
    )
    out.append(
        (
            "Uncertainty",
            f"Each range is a {LEVEL:.0%} interval: it holds the true share about {round(LEVEL * 100)} times in 100, "
            "allowing both for chance in the people counted and for the uncertainty of the error model. "
            "Each person is one independent unit. Wide ranges call for more people before a decision. "
            "Ranges that overlap do not prove two campaigns alike: the comparison tests that, counting people "
            "(a chi-square test, each person one unit), and assumes the model errs alike in both campaigns "
            "(similar cameras and light). The error model was measured on single faces; people followed over "
            "time are labelled by the average of their samples, which is right more often, so for them the "
            "correction is on the cautious side."
            if report_corrected
            else "Without a correction there are no ranges here; the comparison still counts people "
            "(a chi-square test, each person one unit), not samples.",
        )
    )
    return tuple(out)


def build_report(
    store,
    selection: Selection,
    error_model: ConfusionCounts | None = None,
    model: ModelFacts | None = None,
    *,
    now: datetime | None = None,
) -> Report:
    """The report of ``selection`` in ``store`` (finished runs only).

    Raises ``EmptySelection`` when it holds no people; ``StoreError`` from the store passes through.
    """
    kwargs = selection.store_kwargs()
    # Days per campaign and source are all the report tells apart: the database sums the rest.
    counted = {
        **kwargs,
        "include_uncertain": selection.include_uncertain,
        "bucket": "day",
        "by": ("campaign", "source"),
    }
    people = clean_tallies(store.tallies("person", **counted))
    samples = clean_tallies(store.tallies("sample", **counted))
    runs = store.runs(status="ok", **kwargs)
    asked = [campaign_label(c) for c in selection.campaigns]
    if people.empty:
        what = ", ".join(f"“{n}”" for n in asked) if asked else "every campaign"
        raise EmptySelection(f"No people in this selection ({what}, with these filters): there is nothing to report.")
    class_names = tuple(error_model.class_names) if error_model is not None else tuple(config.EMOTIONS)
    notes: list[str] = []
    if error_model is not None and Provenance.of(error_model, model).matches_model is False:
        # As /v1/summary: another model's mistakes are not this one's.
        measured = getattr(error_model, "model_file", "") or "another file"
        notes.append(
            f"The error model at hand was measured on other weights ({measured}) than {model.name}, so the "
            "shares are shown as labelled, not corrected; build this model's with "
            "`python -m src.cli error-model --expw PATH`."
        )
        error_model = None
    unknown = sorted(set(people["emotion"]) - set(class_names))
    if error_model is not None and unknown:
        notes.append(
            f"Some people carry labels the error model does not know ({', '.join(unknown)}), so the shares "
            "are shown as labelled, not corrected."
        )
        error_model = None
    if error_model is None:
        class_names = tuple(dict.fromkeys([*config.EMOTIONS, *unknown]))
    buckets = group_map(groups.sentiment(), class_names)
    people = people.assign(campaign=people["campaign"].map(campaign_label))
    samples = samples.assign(campaign=samples["campaign"].map(campaign_label))
    runs = runs.assign(campaign=runs["campaign"].map(campaign_label))
    names = asked or sorted(people["campaign"].unique())
    total = _figures("All selected campaigns", people, samples, runs, error_model, class_names, buckets)
    per = []
    if len(names) > 1:
        for name in names:
            part = people[people["campaign"] == name]
            per.append(
                _figures(
                    name,
                    part,
                    samples[samples["campaign"] == name],
                    runs[runs["campaign"] == name],
                    error_model,
                    class_names,
                    buckets,
                )
            )
            if part.empty:
                notes.append(f"“{name}” has no people in this selection.")
    present = [n for n in names if (people["campaign"] == n).any()]
    pairs = list(itertools.combinations(present, 2))
    comparison_note = ""
    if len(pairs) > MAX_PAIRS:
        comparison_note = (
            f"{len(pairs)} pairs of campaigns: the first {MAX_PAIRS} (in the order the campaigns were "
            "given) are compared here; select fewer campaigns to compare the others."
        )
        pairs = pairs[:MAX_PAIRS]
    counts = {name: label_counts(people[people["campaign"] == name]) for name in present}
    comparisons = tuple(_compare((a, counts[a]), (b, counts[b]), error_model, class_names, buckets) for a, b in pairs)
    corrected = error_model is not None
    provenance = Provenance.of(error_model, model) if corrected else None
    run_models = tuple(sorted({str(v) for v in runs["model_version"].dropna() if str(v)}))
    if corrected and model is not None and run_models and set(run_models) != {model.version}:
        notes.append(
            f"The faces were read by {', '.join(run_models)}; the correction is that of {model.version}. "
            "Where they differ, corrected shares are an approximation."
        )
    notes.extend(total.warnings)
    return Report(
        title=_title(names),
        created=(now or datetime.now(UTC)).astimezone(UTC),
        selection=selection,
        selection_lines=_selection_lines(selection, names),
        total=total,
        campaigns=tuple(per),
        comparisons=comparisons,
        comparison_note=comparison_note,
        corrected=corrected,
        correction_sentence=explain(error_model, LEVEL) if corrected else "",
        method=method_text(corrected, provenance, model),
        model=model,
        run_models=run_models,
        provenance=provenance,
        notes=tuple(dict.fromkeys(notes)),
    )


def file_stem(report: Report) -> str:
    """A safe file name stem: ``emotion_report_YYYYMMDD`` (campaign names stay out of file names)."""
    return f"emotion_report_{report.created:%Y%m%d}"
