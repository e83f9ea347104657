"""The History & trends tab: results saved from every tab, the command line and the API, filtered
and charted over time per emotion, sentiment or custom grouping, counting people (a face in a
photo, someone followed through a video or by the live camera) with the samples beside them; the
shares corrected for the model's known mix-ups with their 95% ranges; the campaign comparison
(every campaign of one kind of source by default), tested with people as the unit, its verdict in
plain words and the test behind it for data scientists; the samples a page at a time with
downloads streamed from the store, deletion of runs and campaigns, and the emotion-groups editor
(an example, a form, and the line syntax for those who prefer it).

Everything counted comes from the store's tallies (``Store.tallies``: people or samples summed in
the database and cached on the filters, in two small shapes: per day or hour for the chart, per
campaign and source over the whole span for the figures and comparisons), so opening the tab or
changing a filter reads no stored row; the table reads one page of rows, and a download reads
them in chunks when it is clicked.
"""

from __future__ import annotations

import dataclasses
import tempfile

import pandas as pd
import streamlit as st

from src import config
from src.analytics import compare, groups, persist, trends
from src.app import cache, demo_data, plots, report_view, shares
from src.app.detection.common import sync_selection
from src.common.sanitize import markdown_literal

SOURCE_NAMES = {
    "photo": "Photos",
    "batch": "Batch",
    "video": "Video file",
    "live": "Live camera",
    "api": "API",
    "cli": "Command line",
}
TABLE_COLUMNS = ["at", "source", "campaign", "location", "file", "face", "emotion", "confidence", "sentiment"]
TABLE_COLUMNS += ["time", "track_id", "model_version", "run_id"]
PAGE_ROWS = 200  # samples a page of the table (a page is read and drawn on every filter change)
RUN_CHOICES = 200  # runs the deletion offers, newest first


def _groupings() -> dict[str, tuple[str, str, groups.Grouping]]:
    """{key: (what the selector shows, chart colours, grouping)}: emotions, sentiment, then the custom groupings."""
    out = {
        "emotion": ("Emotions", "emotion", trends.emotion_grouping(config.EMOTIONS)),
        "sentiment": ("Sentiment (positive / neutral / negative)", "sentiment", trends.sentiment_grouping()),
    }
    for i, grouping in enumerate(groups.active().custom):
        # The name is user data; selector options are plain text.
        out[f"custom-{i}"] = (f"Groups: {grouping.name} ({', '.join(grouping.buckets)})", "custom", grouping)
    return out


def _history_filters(options: trends.FilterOptions) -> dict:
    """The filter widgets; returns the filters (``trends.store_filters``'s keyword arguments), whether
    doubtful faces count, and the view's choices."""
    c1, c2, c3 = st.columns(3)
    campaigns = c1.multiselect("Campaigns", options.campaigns, key="history_campaigns", placeholder="all")
    locations = c2.multiselect("Locations", options.locations, key="history_locations", placeholder="all")
    sources = c3.multiselect(
        "Sources",
        options.sources,
        key="history_sources",
        placeholder="all",
        format_func=lambda s: SOURCE_NAMES.get(s, s),
    )
    d1, d2, d3 = st.columns([1.2, 1, 1.3], vertical_alignment="bottom")
    span = d1.date_input(
        "Dates (UTC)",
        value=(),  # empty: every date; new results always show up
        key="history_dates",
        help=f"Saved results span {options.first} to {options.last}. Leave empty for all of them.",
    )
    picked = list(span) if isinstance(span, (tuple, list)) else [span]
    since, until = (picked + [None, None])[:2]
    until = until or since  # one day picked: that day
    bucket = d2.segmented_control("Per", trends.BUCKETS, default="day", key="history_bucket", required=True)
    choices = _groupings()
    # Sentiment by default: three groups read at a glance over time and need the fewest people to compare.
    key = d3.selectbox(
        "Count people by", list(choices), index=1, format_func=lambda k: choices[k][0], key="history_grouping"
    )
    label, kind, grouping = choices[key or "emotion"]
    doubtful = st.toggle(
        "Leave out doubtful faces",
        key="history_leave_out_doubtful",
        help="Faces whose label is unreliable (tiny, blurred, or read with little confidence), and the "
        "people labelled from them, stay out of every count, share and comparison below. The samples "
        "table and the downloads keep them.",
    )
    return {
        "filters": dict(campaigns=campaigns, locations=locations, sources=sources, since=since, until=until),
        "include_uncertain": not doubtful,
        "bucket": bucket or "day",
        "grouping": grouping,
        "kind": kind,
    }


def _history_kpis(people, samples, runs: int) -> None:
    """People, samples, runs, campaigns and the positive share of people, of the filtered tallies."""
    cols = st.columns(5)
    cols[0].metric(
        "People",
        f"{int(people['n'].sum()):,}",
        help="A face in a photo is one person; someone followed through a video or by the live camera "
        "is one person however long they stay.",
    )
    cols[1].metric(
        "Samples",
        f"{int(samples['n'].sum()):,}",
        help="Faces the model read: one per face in a photo, per sampled video frame and per live face-second.",
    )
    cols[2].metric("Runs", f"{runs:,}")
    cols[3].metric("Campaigns", f"{trends.campaign_names(people['campaign']).nunique():,}")
    counts, totals = trends.bucket_counts(people, trends.sentiment_grouping())
    total = int(totals.sum())
    positive = counts["positive"].sum() / total if total else None
    cols[4].metric("Positive people", f"{positive:.0%}" if positive is not None else "—")


KINDS = {"photo": "Photos & batches", "video": "Video files", "live": "Live camera", "all": "All sources"}


def _kinds(tallies) -> pd.Series:
    """Each tally's kind of source: a photo sees a person once, a video and the live camera follow
    them, so campaigns are compared with campaigns of the same kind."""
    source = tallies["source"].fillna("").astype(str)
    return source.where(source.isin(["video", "live"]), "photo")


def _campaigns_by_kind(people) -> dict[str, list[str]]:
    """{kind: its campaigns with people, busiest first} for the kinds that have any, then "all"."""
    # People per kind and campaign (campaigns A-Z within a kind: ties stay in that order), summed once.
    table = people["n"].groupby([_kinds(people).rename("kind"), trends.campaign_names(people["campaign"])]).sum()

    def busiest(counts: pd.Series) -> list[str]:
        return counts[counts > 0].sort_values(ascending=False, kind="stable").index.tolist()

    out = {}
    kinds = set(table.index.get_level_values("kind"))
    for kind in ("photo", "video", "live"):
        found = busiest(table.xs(kind, level="kind")) if kind in kinds else []
        if found:
            out[kind] = found
    out["all"] = busiest(table.groupby(level=1).sum())
    return out


def _campaign_section(people, sure: dict, grouping: groups.Grouping, kind: str) -> None:
    """Campaigns of one kind of source side by side (all of them by default), with the test of whether
    they differ. ``people`` are the filtered person tallies, ``sure`` those of people sure enough for
    the grouping's thresholds."""
    st.subheader("Campaign comparison")
    by_kind = _campaigns_by_kind(people)
    if len(by_kind["all"]) < 2:
        st.info("Save results under two or more campaigns (or widen the filters) to compare them here.")
        return
    # Photo campaigns with each other by default; another kind when photos have fewer than two.
    default = next((k for k in ("photo", "video", "live") if len(by_kind.get(k, ())) >= 2), "all")
    source = st.segmented_control(
        "Compare",
        list(by_kind),
        default=default,
        format_func=lambda k: f"{KINDS[k]} ({len(by_kind[k])})",
        key="history_compare_kind",
        required=True,
        help="A photo sees a person once, a video or the live camera follows them (and films them "
        "differently), so campaigns are compared with campaigns of the same kind; *All sources* mixes them.",
    )
    source = source if source in by_kind else default
    names = by_kind[source]
    if len(names) < 2:
        st.info(f"Only one campaign among {KINDS[source].lower()}: pick another kind to compare.")
        return
    key = f"history_compare_{source}"
    sync_selection(key, names)  # every campaign of the kind, new ones included
    chosen = st.multiselect("Campaigns to compare", names, key=key)
    if len(chosen) < 2:
        st.info("Pick two or more campaigns.")
        return
    if source != "all":
        people = people[_kinds(people) == source]
        sure = {t: frame[_kinds(frame) == source] for t, frame in sure.items()}
    long = trends.campaign_shares(people, grouping, chosen, sure)
    st.plotly_chart(
        plots.campaign_comparison(long, grouping.buckets, kind, unit="people"),
        width="stretch",
        key="history-campaigns",
    )
    _campaign_verdict(people, long, chosen, grouping)


def _campaign_tests(people, chosen, grouping: groups.Grouping) -> tuple[list, str]:
    """Every pair of the chosen campaigns tested with people as the unit, or ([], why not)."""
    if len(chosen) > shares.MAX_CAMPAIGNS:
        return [], (
            f"Pick at most {shares.MAX_CAMPAIGNS} campaigns to test whether they differ (each pair is tested); "
            "the chart shows them all."
        )
    counts = trends.campaign_label_counts(people, chosen)
    buckets = shares.compared_buckets(grouping)
    try:
        return [cache.campaign_test(counts[a], counts[b], (a, b), buckets) for a, b in shares.pairs(chosen)], ""
    except ValueError:
        return [], (
            "Some emotions are in more than one of these groups, so no single test of the mix applies; compare "
            "each group's interval in the chart instead (or make the grouping a partition)."
        )


def _campaign_verdict(people, long, chosen, grouping: groups.Grouping) -> None:
    """The verdict of the people-based test in plain words, and the figures behind it for data scientists."""
    tests, problem = _campaign_tests(people, chosen, grouping)
    # Campaign names inside: shown as typed.
    lines = [markdown_literal(shares.plain_test_verdict(t, grouping)) for t in tests]
    text = lines[0] if len(lines) == 1 else "\n".join(f"- {line}" for line in lines)
    if problem:
        st.info(problem, icon=":material/info:")
    elif any(t.differs for t in tests):
        st.success(text, icon=":material/check_circle:")
    else:
        st.info(text, icon=":material/info:")
    notes = []
    if tests and not all(t.corrected for t in tests):
        _, reason = cache.error_model()
        notes.append(f"The shares in these sentences are as the model read them, not corrected: {reason}.")
    thresholds = [g for g in grouping.groups if g.min_confidence is not None]
    if tests and thresholds:
        names = " and ".join(f"“{g.name}”" for g in thresholds)
        notes.append(
            f"{names} count{'s' if len(thresholds) == 1 else ''} only faces sure enough; the test cannot "
            "allow for confidence, so it counts every face of their emotions."
        )
    if notes:
        st.caption(markdown_literal(" ".join(notes)))
    with st.expander("Details for data scientists"):
        if tests:
            st.markdown(
                "- **Test** (the verdict above): Pearson's chi-square (χ²) test of the label mix on the people "
                "counts, each person one independent unit (a face in a photo, someone followed through a video "
                "or by the live camera with their averaged label): the Rao-Scott test with a design effect of 1 "
                f"(at least {compare.MIN_PEOPLE} people per campaign); the gaps between the campaigns' mixes, "
                "corrected for the model's known mix-ups, with their 95% ranges."
            )
            for test in tests:
                st.markdown(f"- {markdown_literal(shares.pair_details(test))}")
                st.markdown(f"  **Verdict as computed**: {markdown_literal(test.verdict)}")
                st.dataframe(shares.gaps_frame(test), width="stretch", hide_index=True)
        st.markdown("- **Error bars** in the chart: 95% Wilson score intervals of each share of people.")
        st.caption("People per campaign and group (the counts compared):")
        table = long.pivot(index="campaign", columns="label", values="faces").reindex(
            index=list(chosen), columns=list(grouping.buckets)
        )
        table.insert(0, "campaign", table.index)
        st.dataframe(table, width="stretch", hide_index=True)


def _corrected_section(people, grouping: groups.Grouping, kind: str) -> None:
    """Each emotion's and group's share of people as read and corrected for the model's known
    mix-ups, with the 95% range; why not when it cannot be corrected; what the correction rests on
    for data scientists."""
    st.subheader("Corrected shares")
    other, other_kind = (trends.sentiment_grouping(), "sentiment") if grouping.name == "emotion" else (grouping, kind)
    fit = shares.correctable(other)
    counts = trends.label_counts(people)
    result, reason = cache.corrected_shares(counts, fit.groups)
    if result is None:
        st.info(shares.not_corrected(reason), icon=":material/info:")
        frame = shares.raw_frame(counts, fit.groups)
    else:
        st.caption(shares.CORRECTION_SENTENCE)
        frame = result.frame()
    left, right = st.columns(2)
    titles = ("Emotions", "Sentiment" if other_kind == "sentiment" else f"Groups: {other.name}")
    for column, part, chart_kind, title, order, key in (
        (left, frame[frame["kind"] == "emotion"], "emotion", titles[0], config.EMOTIONS, "history-corrected-emotions"),
        (right, frame[frame["kind"] == "group"], other_kind, titles[1], other.buckets, "history-corrected-groups"),
    ):
        with column:
            if part.empty:
                continue
            st.plotly_chart(
                plots.corrected_shares(part, chart_kind, title=title, order=order), width="stretch", key=key
            )
    note = shares.threshold_note(fit)
    if note:
        st.caption(markdown_literal(note))
    with st.expander("Details for data scientists"):
        if result is None:
            st.markdown(f"**Not corrected**: {markdown_literal(reason)}.")
            return
        st.markdown(
            f"**Counted**: {result.faces:,} people, each one independent unit: a face in a photo, or someone "
            "followed through a video or by the live camera with the average of their samples. The error model "
            "was measured on single faces; a tracked person's averaged label is right more often than one "
            "face's, so for them the correction is on the cautious side."
        )
        st.markdown(markdown_literal(result.explanation))
        for warning in result.warnings:
            st.markdown(f"- {markdown_literal(warning)}")
        model, _ = cache.error_model()
        manifest = cache.model_manifest() or {}
        st.markdown("\n".join(f"- {line}" for line in shares.provenance_lines(model, manifest.get("sha256"))))
        tables = [("emotion", "Emotions"), ("group", titles[1])]
        for kind_name, caption in tables:
            table = shares.share_table(result, kind_name)
            if len(table):
                st.caption(f"{markdown_literal(caption)}: share as read, corrected, and its 95% range")
                st.dataframe(
                    table,
                    width="stretch",
                    hide_index=True,
                    column_config={
                        c: st.column_config.NumberColumn(c, format="percent")
                        for c in ("as read", "corrected", "from", "to")
                    },
                )


def _spooled(write) -> bytes:
    """What ``write(file)`` writes, through a temporary file on disk, as bytes (what a download
    button serves): the rows go to disk chunk by chunk, so only the finished file is held."""
    with tempfile.TemporaryFile() as file:
        write(file)
        file.seek(0)
        return file.read()


def samples_csv(filters: dict) -> bytes:
    """The filtered samples as CSV, read and written chunk by chunk."""
    return _spooled(lambda f: f.writelines(trends.csv_chunks(cache.iter_results(filters))))


def samples_parquet(filters: dict) -> bytes:
    """The filtered samples as Parquet, one row group per chunk."""
    return _spooled(lambda f: trends.write_parquet(cache.iter_results(filters), f))


def people_csv(filters: dict) -> bytes:
    """The filtered people as CSV, read and written chunk by chunk."""
    return _spooled(lambda f: f.writelines(trends.csv_chunks(cache.iter_people(filters))))


def _results_table(version: str, filters: dict) -> None:
    """The saved samples a page at a time, newest first, with CSV and Parquet downloads of all the
    filtered rows and the people as CSV (each streamed from the store when clicked)."""
    st.subheader("Saved samples")
    st.caption(
        "One row per sample: a face in a photo, a video's face in each sampled frame; and one per file "
        "without a face or that could not be read. The live camera is kept as counts per second (in the "
        "figures above), not as rows. The people download has one row per person."
    )
    total = cache.count_results(version, filters)
    pages = max(1, -(-total // PAGE_ROWS))
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    page = left.number_input("Page", min_value=1, max_value=pages, value=1, step=1, key="history_page")
    page = min(max(int(page or 1), 1), pages)
    right.caption(f"{total:,} rows, newest first; page {page:,} of {pages:,} ({PAGE_ROWS:,} a page).")
    rows = cache.page_results(version, filters, (page - 1) * PAGE_ROWS, PAGE_ROWS) if total else pd.DataFrame()
    shown = rows[[c for c in TABLE_COLUMNS if c in rows]].dropna(axis=1, how="all") if len(rows) else rows
    st.dataframe(
        shown,
        width="stretch",
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0, max_value=1.0),
        },
    )
    day = f"_{pd.Timestamp.now(tz='UTC'):%Y%m%d}"
    dl1, dl2, dl3, _ = st.columns([1, 1, 1, 1.5])
    # Made when clicked, chunk by chunk from the store, and no rerun after the download.
    dl1.download_button(
        "Samples (CSV)",
        lambda: samples_csv(filters),
        f"fer_samples{day}.csv",
        "text/csv",
        key="history-csv",
        icon=":material/download:",
        on_click="ignore",
    )
    dl2.download_button(
        "Samples (Parquet)",
        lambda: samples_parquet(filters),
        f"fer_samples{day}.parquet",
        "application/vnd.apache.parquet",
        key="history-parquet",
        icon=":material/download:",
        on_click="ignore",
    )
    dl3.download_button(
        "People (CSV)",
        lambda: people_csv(filters),
        f"fer_people{day}.csv",
        "text/csv",
        key="history-people-csv",
        icon=":material/download:",
        on_click="ignore",
    )
    if total > config.DASHBOARD_EXPORT_ROWS:
        st.caption(
            f"{total:,} rows: a download here is built in the dashboard's memory before it starts. "
            "For exports this large, `python -m src.cli runs export --output FILE` (with `--campaign`, "
            "`--location`, `--source`, `--since`, `--until`, `--people`) or the API's "
            "`GET /v1/results?format=csv` stream the rows to a file instead."
        )


def _delete_section(store, runs, more: bool = False) -> None:
    """Delete one run or a whole campaign, each behind a confirmation. ``runs``: (run id, label) of
    the runs offered (those of the campaign, location and source filters, newest first); ``more``:
    older ones are not offered."""
    with st.expander("Delete saved results"):
        pending = st.session_state.get("history_delete")
        if pending:
            kind, target, label = pending
            st.warning(f"Delete {markdown_literal(label)}? This cannot be undone.", icon=":material/delete_forever:")
            yes, no, _ = st.columns([1, 1, 3])
            if yes.button("Yes, delete", type="primary", key="history_delete_yes"):
                try:
                    if kind == "run":
                        store.delete_run(target)
                    else:
                        store.delete_campaign(target)
                except Exception as exc:
                    st.error(f"Could not delete: {markdown_literal(persist.failure(exc))}")
                    return
                st.session_state.pop("history_delete", None)
                st.toast(f"Deleted {markdown_literal(label)}.")
                st.rerun()
            if no.button("Cancel", key="history_delete_no"):
                st.session_state.pop("history_delete", None)
                st.rerun()
            return
        left, right = st.columns(2)
        labels = {run_id: label for run_id, label in runs}
        run = left.selectbox(
            "Run",
            list(labels),
            format_func=labels.get,
            key="history_run",
            help=f"The newest {RUN_CHOICES:,} runs of the campaigns, locations and sources picked above."
            if more
            else "The runs of the campaigns, locations and sources picked above, newest first.",
        )
        if left.button("Delete this run…", key="history_delete_run", disabled=run is None):
            st.session_state["history_delete"] = ("run", run, f"run {labels[run]}")
            st.rerun()
        campaigns = store.campaigns()
        campaign = right.selectbox("Campaign", campaigns, key="history_campaign_delete")
        if right.button("Delete this campaign…", key="history_delete_campaign", disabled=campaign is None):
            st.session_state["history_delete"] = ("campaign", campaign, f"campaign “{campaign}” and all its runs")
            st.rerun()


def _run_choices(runs) -> list[tuple]:
    """(run id, one-line description) of every run, newest first (``Store.runs`` order). Each
    column is read once as a list (every filter change lists up to ``RUN_CHOICES`` runs)."""
    if runs.empty:
        return []
    count = {
        c: pd.to_numeric(runs[c], errors="coerce").fillna(0).astype("int64").tolist() for c in ("people", "samples")
    }
    columns = zip(
        runs["run_id"].tolist(),
        runs["run_time"].dt.strftime("%Y-%m-%d %H:%M").fillna("NaT").tolist(),
        runs["source"].tolist(),
        runs["campaign"].tolist(),
        runs["location"].tolist(),
        count["people"],
        count["samples"],
        runs["status"].tolist(),
    )
    out = []
    for run_id, when, source, campaign, location, people, samples, status in columns:
        parts = [f"{when} UTC", SOURCE_NAMES.get(source, source), trends.campaign_label(campaign)]
        if location:
            parts.append(location)
        parts.append(f"{people:,} {'person' if people == 1 else 'people'} · {samples:,} sample{'s' * (samples != 1)}")
        if status != "ok":
            parts.append(status)
        out.append((run_id, " · ".join(parts)))
    return out


@st.fragment
def _history_view() -> None:
    """Filters, charts, the campaign test, the table and deletion; filter changes rerun only this."""
    store, error = cache.results_store()
    if store is None:
        st.error(f"The results store could not be opened: {markdown_literal(error or '')}")
        return
    try:
        version = cache.store_version(store)
        options = cache.filter_options(version)
        nothing = not cache.has_runs(version)
    except Exception as exc:
        st.error(f"The results store could not be read: {markdown_literal(persist.failure(exc))}")
        return
    if nothing:
        st.info(
            "Nothing saved yet. Turn on **Save results** in the Photos, Batch, Video file or Live camera tab "
            "(it is on by default for batches, videos and the camera): what you analyse then collects here, "
            "by campaign and location. Or load demo data to see this view filled."
        )
        demo_data.offer_load(store, "history_demo_load")
        return
    choice = _history_filters(trends.filter_options(options))
    grouping, bucket, kind = choice["grouping"], choice["bucket"], choice["kind"]
    filters = trends.store_filters(**choice["filters"])
    include_uncertain = choice["include_uncertain"]
    try:
        # Each shape apart, as small as what shows it: people per day (or hour) for the chart,
        # people per campaign and source over the whole span for the figures and comparisons.
        per = "hour" if bucket == "hour" else "day"
        thresholds = trends.confidence_thresholds(grouping)
        over_time = cache.tallies(version, "person", filters, include_uncertain, bucket=per, by=())
        sure_over_time = cache.sure_tallies(version, filters, thresholds, include_uncertain, bucket=per, by=())
        people = cache.tallies(version, "person", filters, include_uncertain, bucket="all")
        sure = cache.sure_tallies(version, filters, thresholds, include_uncertain, bucket="all")
        samples = cache.tallies(version, "sample", filters, include_uncertain, bucket="all")  # only summed
        run_count = cache.run_count(version, filters)
    except Exception as exc:
        st.error(f"The results store could not be read: {markdown_literal(persist.failure(exc))}")
        return
    _history_kpis(people, samples, run_count)
    if people.empty:
        st.info("No people match these filters.")
    else:
        st.plotly_chart(
            plots.share_trend(
                trends.shares_over_time(over_time, grouping, bucket, sure_over_time),
                grouping.buckets,
                kind,
                bucket,
                title=f"Share of people per {bucket}",
                unit="people",
            ),
            width="stretch",
            key="history-trend",
        )
        _corrected_section(people, grouping, kind)
        _campaign_section(people, sure, grouping, kind)
    _results_table(version, filters)
    counts = (int(people["n"].sum()), run_count)
    report_view.render(store, {**choice["filters"], "include_uncertain": include_uncertain}, counts)
    runs = cache.recent_runs(
        version, RUN_CHOICES, campaign=filters["campaign"], location=filters["location"], source=filters["source"]
    )
    _delete_section(store, _run_choices(runs), more=len(runs) == RUN_CHOICES)


GROUPS_INTRO = (
    "A **group** counts faces your own way. For example, *frustrated* = angry, disgust or sad counts every "
    "face whose strongest emotion is one of those three; *delighted* = happy, for faces at least 70% sure, "
    "counts only clear smiles. Groups are kept together in a **grouping**: pick one under *Count people by* "
    "above, and its groups also become columns of the Batch tab's table and downloads."
)
GROUPS_HELP = (
    "One group per line: `name = emotion + emotion`, optionally `(confidence >= 0.7)` to count only sure "
    "faces. `[name]` starts a grouping; `[name] partition` makes its groups exclusive. The `[sentiment]` "
    "grouping is the sentiment used everywhere in the app (positive, neutral, negative)."
)
NEW_GROUPING = "New grouping…"


def _show_group_problems(exc: groups.GroupError) -> None:
    """Every problem of the definitions on its own line, group names as typed."""
    lines = "\n\n".join(f"- {markdown_literal(problem)}" for problem in exc.problems)
    st.error(f"**The groups were not saved.**\n\n{lines}", icon=":material/rule:")


def _save_groups(group_set: groups.GroupSet) -> None:
    """Write the groups file and start the page over on it, or show why it was not saved."""
    try:
        path = groups.save(group_set)
    except groups.GroupError as exc:
        _show_group_problems(exc)
        return
    st.session_state["groups_saved"] = path.name
    st.session_state["groups_text_stale"] = True  # the text view shows the saved groups next time
    st.session_state["groups_form_stale"] = True  # and the form is blank again
    st.rerun()


def groups_table(group_set: groups.GroupSet) -> pd.DataFrame:
    """The groups in words: grouping, group, its emotions, and which faces it counts."""
    rows = [
        {
            "grouping": grouping.name,
            "group": group.name,
            "emotions": ", ".join(group.emotions),
            "counts": (
                f"faces at least {group.min_confidence:.0%} sure" if group.min_confidence is not None else "every face"
            ),
        }
        for grouping in group_set
        for group in grouping.groups
    ]
    return pd.DataFrame(rows, columns=["grouping", "group", "emotions", "counts"])


def with_group(
    group_set: groups.GroupSet, grouping_name: str, name: str, emotions, min_confidence: float | None
) -> groups.GroupSet:
    """``group_set`` with the group ``name`` of ``grouping_name`` set (replaced, or added at the end);
    a new grouping lets its groups overlap and counts the other faces as *other*. Checked on saving."""
    grouping = group_set.get(grouping_name) or groups.Grouping(grouping_name, ())
    group = groups.Group(name, tuple(emotions), min_confidence)
    kept = [g for g in grouping.groups if g.name != name]
    at = next((i for i, g in enumerate(grouping.groups) if g.name == name), len(kept))
    kept.insert(at, group)
    return group_set.replace(dataclasses.replace(grouping, groups=tuple(kept)))


def without_group(group_set: groups.GroupSet, grouping_name: str, name: str) -> groups.GroupSet:
    """``group_set`` without that group; a grouping left empty goes too."""
    grouping = group_set.get(grouping_name)
    if grouping is None:
        return group_set
    kept = tuple(g for g in grouping.groups if g.name != name)
    if kept:
        return group_set.replace(dataclasses.replace(grouping, groups=kept))
    return groups.GroupSet(tuple(g for g in group_set if g.name != grouping_name))


def _group_form(active: groups.GroupSet) -> None:
    """Add or change one group with plain fields, or remove one."""
    if st.session_state.pop("groups_form_stale", False):  # values set before the widgets exist: allowed
        st.session_state.update(groups_form_name="", groups_form_new="", groups_form_emotions=[])
        st.session_state["groups_form_confidence"] = 0
    left, right = st.columns(2)
    existing = [g.name for g in active.custom]
    picked = left.selectbox(
        "Grouping",
        [*existing, NEW_GROUPING],
        key="groups_form_grouping",
        help="Groups read together; each grouping is one choice under *Count people by*.",
    )
    grouping_name = picked
    if picked == NEW_GROUPING or picked is None:
        grouping_name = left.text_input(
            "New grouping's name", key="groups_form_new", max_chars=groups.NAME_MAX, placeholder="e.g. moods"
        ).strip()
    name = right.text_input(
        "Group name", key="groups_form_name", max_chars=groups.NAME_MAX, placeholder="e.g. frustrated"
    ).strip()
    emotions = st.multiselect("Emotions it counts", list(config.EMOTIONS), key="groups_form_emotions")
    sure = st.slider(
        "Only faces at least this sure",
        0,
        95,
        step=5,
        format="%d%%",
        key="groups_form_confidence",
        help="0% counts every face whose strongest emotion is one of these.",
    )
    if st.button("Save group", type="primary", key="groups_form_save"):
        if not grouping_name:
            st.error("Name the new grouping first.")
        else:
            _save_groups(with_group(active, grouping_name, name, emotions, sure / 100 if sure else None))
    choices = {f"{x.name} (in {g.name})": (g.name, x.name) for g in active.custom for x in g.groups}
    if choices:
        pick, button = st.columns([3, 1], vertical_alignment="bottom")
        doomed = pick.selectbox("Remove a group", list(choices), key="groups_form_remove")
        if button.button("Remove group", key="groups_form_remove_button") and doomed in choices:
            _save_groups(without_group(active, *choices[doomed]))


def _groups_text() -> None:
    """The groups in the line syntax, for those who prefer typing them."""
    st.caption(GROUPS_HELP)
    # Set through the session state, not value=: a keyed text area keeps its text across runs.
    if st.session_state.pop("groups_text_stale", False) or "groups_editor" not in st.session_state:
        st.session_state["groups_editor"] = groups.to_lines(groups.active())
    text = st.text_area("Groups", height=220, key="groups_editor", max_chars=groups.MAX_TEXT)
    check, save, _ = st.columns([1, 1, 3])
    checking = check.button("Check", key="groups_check")
    saving = save.button("Save groups", type="primary", key="groups_save")
    if checking or saving:
        try:
            group_set = groups.parse_lines(text)
        except groups.GroupError as exc:
            _show_group_problems(exc)
            return
        if saving:
            _save_groups(group_set)
            return
        names = ", ".join(g.name for g in group_set)
        st.success(f"Valid: {len(group_set)} grouping(s), {markdown_literal(names)}.")


def _groups_editor() -> None:
    """The emotion groups: what they are, the current ones, a form and the text view; saving rewrites
    the groups file (FER_GROUPS_FILE)."""
    with st.expander("Emotion groups (edit)", icon=":material/category:"):
        st.markdown(GROUPS_INTRO)
        problem = groups.active_problem()
        if problem:
            st.warning(markdown_literal(problem))
        active = groups.active()
        st.dataframe(groups_table(active), width="stretch", hide_index=True)  # names as plain cells
        saved = st.session_state.pop("groups_saved", None)
        if saved:
            st.success(f"Saved to {markdown_literal(saved)}; the grouping selector and the sentiment use them now.")
        form, text = st.tabs(["Add, change or remove a group", "Edit as text"])
        with form:
            _group_form(active)
        with text:
            _groups_text()


def render() -> None:
    """The History & trends tab."""
    st.markdown(
        "Results saved from the other tabs, the command line and the API: how the emotion mix moves "
        "over time, and whether campaigns really differ. Times are UTC."
    )
    _history_view()
    _groups_editor()
