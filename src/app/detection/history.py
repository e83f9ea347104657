"""The History & trends tab: results saved from every tab, the command line and the API, filtered
and charted over time per emotion, sentiment or custom grouping, the campaign comparison with its
test, the table with downloads, deletion of runs and campaigns, and the emotion-groups editor."""

from __future__ import annotations

import streamlit as st

from src import config
from src.analytics import groups, persist, trends
from src.app import cache, plots
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
MAX_ROWS_SHOWN = 5000


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
    """The filter widgets; returns the keyword arguments of ``trends.filter_results`` and the view's choices."""
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
    # Sentiment by default: three groups read at a glance over time and need the fewest faces to compare.
    key = d3.selectbox(
        "Count faces by", list(choices), index=1, format_func=lambda k: choices[k][0], key="history_grouping"
    )
    label, kind, grouping = choices[key or "emotion"]
    return {
        "filters": dict(campaigns=campaigns, locations=locations, sources=sources, since=since, until=until),
        "bucket": bucket or "day",
        "grouping": grouping,
        "kind": kind,
    }


def _history_kpis(rows, faces) -> None:
    """Faces, runs, campaigns and the positive share of the filtered results."""
    cols = st.columns(4)
    cols[0].metric("Faces", f"{len(faces):,}")
    cols[1].metric("Runs", f"{rows['run_id'].nunique():,}" if "run_id" in rows else "—")
    cols[2].metric("Campaigns", f"{trends.campaign_names(faces['campaign']).nunique():,}")
    positive = trends.memberships(faces, trends.sentiment_grouping())["positive"].mean() if len(faces) else None
    cols[3].metric("Positive faces", f"{positive:.0%}" if positive is not None else "—")


def _campaign_section(rows, grouping: groups.Grouping, kind: str) -> None:
    """The chosen campaigns' group shares side by side, with the test of whether they differ."""
    st.subheader("Campaign comparison")
    names = trends.campaign_shares(rows, grouping)["campaign"].unique().tolist()  # busiest first
    if len(names) < 2:
        st.info("Save results under two or more campaigns (or widen the filters) to compare them here.")
        return
    chosen = st.multiselect("Campaigns to compare", names, default=names[:2], key="history_compare")
    if len(chosen) < 2:
        st.info("Pick two or more campaigns.")
        return
    long = trends.campaign_shares(rows, grouping, chosen)
    st.plotly_chart(plots.campaign_comparison(long, grouping.buckets, kind), width="stretch", key="history-campaigns")
    result = trends.compare_campaigns(rows, chosen, grouping)
    verdict = markdown_literal(result.verdict)  # campaign names inside: shown as typed
    if result.differs:
        st.success(verdict, icon=":material/check_circle:")
    else:
        st.info(verdict, icon=":material/info:")
    with st.expander("Faces per campaign and group (the counts compared)"):
        table = result.table.copy()
        table.insert(0, "campaign", table.index)
        st.dataframe(table, width="stretch", hide_index=True)


def _results_table(rows) -> None:
    """The newest saved faces, with CSV and Parquet downloads of all the filtered rows."""
    st.subheader("Saved faces")
    shown = rows[[c for c in TABLE_COLUMNS if c in rows]].sort_values("at", ascending=False)
    shown = shown.dropna(axis=1, how="all")  # e.g. time and track_id without a video in the selection
    if len(shown) > MAX_ROWS_SHOWN:
        st.caption(f"The newest {MAX_ROWS_SHOWN:,} of {len(shown):,} rows; the downloads hold them all.")
    st.dataframe(
        shown.head(MAX_ROWS_SHOWN),
        width="stretch",
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0, max_value=1.0),
        },
    )
    stamp = trends.prepare(rows)["at"].max()
    stem = f"fer_results_{stamp:%Y%m%d}" if rows is not None and len(rows) and stamp is not None else "fer_results"
    dl1, dl2, _ = st.columns([1, 1, 3])
    # Made when clicked (seconds for a large store), and no rerun after the download.
    dl1.download_button(
        "Download CSV",
        lambda: trends.csv_bytes(rows),
        f"{stem}.csv",
        "text/csv",
        key="history-csv",
        icon=":material/download:",
        on_click="ignore",
    )
    dl2.download_button(
        "Download Parquet",
        lambda: trends.parquet_bytes(rows),
        f"{stem}.parquet",
        "application/vnd.apache.parquet",
        key="history-parquet",
        icon=":material/download:",
        on_click="ignore",
    )


def _delete_section(store, runs) -> None:
    """Delete one run or a whole campaign, each behind a confirmation."""
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
        run = left.selectbox("Run", list(labels), format_func=labels.get, key="history_run")
        if left.button("Delete this run…", key="history_delete_run", disabled=run is None):
            st.session_state["history_delete"] = ("run", run, f"run {labels[run]}")
            st.rerun()
        campaigns = store.campaigns()
        campaign = right.selectbox("Campaign", campaigns, key="history_campaign_delete")
        if right.button("Delete this campaign…", key="history_delete_campaign", disabled=campaign is None):
            st.session_state["history_delete"] = ("campaign", campaign, f"campaign “{campaign}” and all its runs")
            st.rerun()


def _run_choices(runs) -> list[tuple]:
    """(run id, one-line description) of every run, newest first (``Store.runs`` order)."""
    out = []
    for run in runs.itertuples(index=False):
        parts = [
            f"{run.run_time:%Y-%m-%d %H:%M} UTC",
            SOURCE_NAMES.get(run.source, run.source),
            trends.campaign_label(run.campaign),
        ]
        if run.location:
            parts.append(run.location)
        if run.source != "live":  # live runs keep per-second counts, not face rows
            parts.append(f"{run.faces:,} face{'s' if run.faces != 1 else ''}")
        if run.status != "ok":
            parts.append(run.status)
        out.append((run.run_id, " · ".join(parts)))
    return out


@st.fragment
def _history_view() -> None:
    """Filters, charts, the campaign test, the table and deletion; filter changes rerun only this."""
    store, error = cache.results_store()
    if store is None:
        st.error(f"The results store could not be opened: {markdown_literal(error or '')}")
        return
    try:
        rows, runs = cache.stored_history(store)
    except Exception as exc:
        st.error(f"The results store could not be read: {markdown_literal(persist.failure(exc))}")
        return
    if runs.empty:
        st.info(
            "Nothing saved yet. Turn on **Save results** in the Photos, Batch, Video file or Live camera tab "
            "(it is on by default for batches, videos and the camera): what you analyse then collects here, "
            "by campaign and location."
        )
        return
    choice = _history_filters(trends.filter_options(rows))
    grouping, bucket, kind = choice["grouping"], choice["bucket"], choice["kind"]
    rows = trends.filter_results(rows, **choice["filters"])
    faces = trends.face_rows(rows)
    _history_kpis(rows, faces)
    if faces.empty:
        st.info("No faces match these filters.")
    else:
        st.plotly_chart(
            plots.share_trend(
                trends.shares_over_time(rows, grouping, bucket),
                grouping.buckets,
                kind,
                bucket,
                title=f"Share of faces per {bucket}",
            ),
            width="stretch",
            key="history-trend",
        )
        _campaign_section(rows, grouping, kind)
    _results_table(rows)
    _delete_section(store, _run_choices(runs))


GROUPS_HELP = (
    "One group per line: `name = emotion + emotion`, optionally `(confidence >= 0.7)` to count only sure "
    "faces. `[name]` starts a grouping; `[name] partition` makes its groups exclusive. The `[sentiment]` "
    "grouping is the sentiment used everywhere in the app (positive, neutral, negative)."
)


def _show_group_problems(exc: groups.GroupError) -> None:
    """Every problem of the definitions on its own line, group names as typed."""
    lines = "\n\n".join(f"- {markdown_literal(problem)}" for problem in exc.problems)
    st.error(f"**The groups were not saved.**\n\n{lines}", icon=":material/rule:")


def _groups_editor() -> None:
    """Edit the emotion groups in the line syntax; saving rewrites the groups file (FER_GROUPS_FILE)."""
    with st.expander("Emotion groups (edit)", icon=":material/category:"):
        st.caption(GROUPS_HELP)
        problem = groups.active_problem()
        if problem:
            st.warning(markdown_literal(problem))
        text = st.text_area(
            "Groups", value=groups.to_lines(groups.active()), height=220, key="groups_editor", max_chars=groups.MAX_TEXT
        )
        check, save, _ = st.columns([1, 1, 3])
        checking = check.button("Check", key="groups_check")
        saving = save.button("Save groups", type="primary", key="groups_save")
        if checking or saving:
            try:
                group_set = groups.parse_lines(text)
            except groups.GroupError as exc:
                _show_group_problems(exc)
                return
            if not saving:
                names = ", ".join(g.name for g in group_set)
                st.success(f"Valid: {len(group_set)} grouping(s), {markdown_literal(names)}.")
                return
            try:
                path = groups.save(group_set)
            except groups.GroupError as exc:
                _show_group_problems(exc)
                return
            st.session_state["groups_saved"] = path.name
            st.rerun()
        saved = st.session_state.pop("groups_saved", None)
        if saved:
            st.success(f"Saved to {markdown_literal(saved)}; the grouping selector and the sentiment use them now.")


def render() -> None:
    """The History & trends tab."""
    st.markdown(
        "Results saved from the other tabs, the command line and the API: how the emotion mix moves "
        "over time, and whether campaigns really differ. Times are UTC."
    )
    _history_view()
    _groups_editor()
