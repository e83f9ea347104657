"""Project Summary's saved results: people seen, the positive share week on week (as read
and corrected), the busiest campaign, and demo data to load or remove; counted from the store's
tallies (summed in the database), so the page reads no stored row.

It reads the two small shapes the History view reads (``cache.tallies``): people and samples per
day over every campaign for the totals and the weeks, and people per campaign and source over
all time for the busiest campaign; with History's default filters, so each page finds what the
other read in the cache."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from src.analytics import persist, trends
from src.app import cache, demo_data, shares
from src.common.sanitize import markdown_literal


def saved_results() -> None:
    """Headline numbers of the results store: people seen, positive share week on week (as read and
    corrected), busiest campaign."""
    st.subheader("Saved results")
    store, error = cache.results_store()
    if store is None:
        st.caption(f"The results store could not be opened ({markdown_literal(error or '')}).")
        return
    try:
        version = cache.store_version(store)
        total_runs, demo = cache.run_census(version)
        everything = trends.store_filters()  # History's filters when none is picked: the same cache entries
        people = cache.tallies(version, "person", everything, bucket="day", by=())
        k = trends.kpis(people, cache.tallies(version, "sample", everything, bucket="day", by=()))
        # The busiest campaign over all time; its samples are not shown, so none are read for it.
        ever = trends.kpis(cache.tallies(version, "person", everything, bucket="all"), trends.empty_tallies())
    except Exception as exc:
        st.caption(f"The results store could not be read ({markdown_literal(persist.failure(exc))}).")
        return
    if not k.faces:
        st.caption(
            "No results saved yet. Turn on *Save results* in Emotion Detection (on by default for batches, "
            "videos and the live camera) and these numbers fill in, or load demo data to see them filled."
        )
        demo_data.button(
            "Load demo data",
            "demo_load",
            lambda: demo_data.load(store),
            "Adds made-up runs of three invented campaigns, tagged demo, to the results store; "
            "remove them again in one click.",
        )
        return
    if demo:
        st.warning(
            f"**Demo data**: {'all' if len(demo) == total_runs else f'{len(demo):,} of the'} {total_runs:,} saved "
            "runs are made up, so the numbers below and in History & trends are not real results.",
            icon=":material/science:",
        )
        demo_data.button(
            "Remove demo data",
            "demo_remove",
            lambda: demo_data.remove(store),  # the runs read again when clicked
            "Deletes the demo runs only; your own results stay.",
        )
    cols = st.columns(3)
    cols[0].metric(
        "People seen",
        f"{k.people or 0:,}",
        help=f"{k.samples:,} samples (face rows and live face-seconds). A face in a photo is one person; "
        "someone followed through a video or by the live camera is one person however long they stay.",
    )
    this_week = f"{k.positive_this_week:.0%}" if k.positive_this_week is not None else "—"
    change = f"{100 * k.positive_change:+.0f} pts vs last week" if k.positive_change is not None else None
    cols[1].metric(
        "Positive people this week",
        this_week,
        change,
        help=(
            f"Share of this ISO week's people (UTC, from Monday) who look happy: {k.people_this_week or 0:,} people; "
            + (
                f"last week {k.positive_last_week:.0%} of {k.people_last_week or 0:,}."
                if k.positive_last_week is not None
                else "none last week."
            )
        ),
    )
    cols[2].metric(
        "Busiest campaign",
        # A metric's value is rendered as Markdown: the user's name goes in escaped.
        markdown_literal(ever.busiest_campaign) if ever.busiest_campaign is not None else "—",
        f"{ever.busiest_people or 0:,} people" if ever.busiest_campaign is not None else None,
        delta_color="off",
        delta_arrow="off",
        help="The campaign with the most people seen, all time.",
    )
    corrected_positive(people)


def corrected_positive(people) -> None:
    """This week's positive share of people corrected for the model's known mix-ups, with its range,
    in one line (``people``: the person tallies, per day or hour)."""
    week = trends.iso_week_start(pd.Timestamp.now(tz="UTC"))
    people = trends.clean_tallies(people)
    people = people[(people["hour"] >= week) & (people["hour"] < week + pd.Timedelta(days=7))]
    counts = trends.label_counts(people)
    if not counts:
        return
    positive = {"positive": shares.correctable(trends.sentiment_grouping()).groups["positive"]}
    result, reason = cache.corrected_shares(counts, positive)
    if result is None:
        st.caption(shares.not_corrected(reason))
        return
    share = result.group("positive")
    st.caption(
        f"Positive this week, corrected for the mix-ups the model is known to make on real photos: "
        f"**{share.corrected:.0%}** (the true share lies between {share.low:.0%} and {share.high:.0%}, "
        "19 times in 20)."
    )
