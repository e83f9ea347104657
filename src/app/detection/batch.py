"""The Batch & campaigns tab: named batches of photos analysed at once (same name: they
accumulate), each with its KPIs, charts, table and downloads, and the comparison of batches.

After each batch the tab starts over for the next one: the batch just analysed is the one
shown, and the uploader is a new, empty one (its key carries a round number), so the
photos of one batch never slip into the next.

A batch's KPIs, charts and the campaign comparison can leave its doubtful faces out
("Leave out doubtful faces (N)", ``common.leave_out_doubtful``); its table and downloads keep
every face, with the ``uncertain`` and ``doubt`` columns."""

from __future__ import annotations

import streamlit as st

from src import config
from src.analytics import aggregates, persist
from src.app import plots, tables, uploads
from src.app.detection.common import (
    PHOTO_TYPES,
    leave_out_doubtful,
    recognizer,
    render_skipped,
    save_controls,
    save_rows,
    show_saved,
    sync_selection,
)
from src.common.sanitize import markdown_literal
from src.engine.results import FailedFile

UPLOAD_KEY = "batch_upload"  # the uploader's key is UPLOAD_KEY + "_" + the round (see _upload_key)
LEAVE_OUT_KEY = "batch_leave_out_doubtful"  # one switch for the batch shown and the comparison


def _batches() -> dict[str, dict]:
    """Named batches of this browser session: {name: {"df": results table, "results": [...], ...}}."""
    return st.session_state.setdefault("batches", {})


def _upload_key() -> str:
    """This round's uploader key: a new key after each batch gives an empty uploader."""
    return f"{UPLOAD_KEY}_{st.session_state.get('batch_round', 0)}"


def _run_batch(rec, name: str, files, location: str = "", save: bool = False) -> None:
    """Analyse the uploaded files into the batch ``name`` (added to what it holds), saving them if asked,
    then start the tab over on that batch with an empty uploader."""
    expanded = uploads.expand_uploads((f.name, f.getvalue()) for f in files)
    images = expanded.images
    bar = st.progress(0.0, text=f"Analysing {len(images)} photos…")

    def progress(done: int) -> None:
        bar.progress(done / max(1, len(images)), text=f"Analysed {done} of {len(images)} photos")

    results = rec.analyze_batch([i.data for i in images], names=[i.name for i in images], progress=progress)
    results += [FailedFile(i.name, i.error) for i in expanded.failed]
    bar.empty()
    store = _batches()
    before = store.get(name, {})
    all_results = before.get("results", []) + results
    new_rows = sum(len(r.rows(rec.class_names)) for r in results)  # the table's rows of this upload
    store[name] = {
        "results": all_results,
        "df": aggregates.results_frame(all_results, rec.class_names),
        # One location per row: a batch may grow across locations.
        "locations": before.get("locations", []) + [location] * new_rows,
        "skipped": before.get("skipped", []) + expanded.skipped_rows(),
        # The batch name is the campaign its results are saved under.
        "saved": save_rows("batch", persist.image_rows(results, rec.class_names), name, location) if save else None,
    }
    # Set before the selectbox exists in the next run, which then shows this batch: a keyed
    # selectbox keeps its stored value, whatever its index argument says.
    st.session_state["batch_show"] = name
    st.session_state["batch_round"] = st.session_state.get("batch_round", 0) + 1
    if before:
        st.session_state["batch_toast"] = f"Added {len(results)} files to batch “{markdown_literal(name)}”."
    st.rerun()  # draws the tab again: the new uploader is empty


def _render_batch(name: str, entry: dict, class_names) -> None:
    """One batch: KPIs, problems, charts, the per-face table and its downloads."""
    df = entry["df"]
    counted = leave_out_doubtful(df, key=LEAVE_OUT_KEY)  # what the KPIs and charts count
    summary = aggregates.summarize(counted)
    every = aggregates.summarize(df)  # files and their problems, whatever is left out
    cols = st.columns(5)
    cols[0].metric("Photos", every.files)
    cols[1].metric("Faces", summary.faces)
    cols[2].metric(
        "Top emotion",
        summary.dominant.capitalize() if summary.dominant else "—",
        f"{summary.dominant_share:.0%} of faces" if summary.dominant_share is not None else None,
        delta_color="off",
        delta_arrow="off",
    )
    cols[3].metric("Negative faces", f"{summary.negative_share:.0%}" if summary.negative_share is not None else "—")
    cols[4].metric(
        "Net sentiment",
        f"{summary.net_sentiment:+.0f}" if summary.net_sentiment is not None else "—",
        help="% positive faces minus % negative faces (-100 to +100).",
    )
    problems = [
        f"{n} file{'s' if n != 1 else ''} {what}"
        for n, what in ((every.errors, "could not be read"), (every.no_face, "had no face"))
        if n
    ]
    if problems:
        st.warning(" and ".join(problems) + "; see the *status* and *error* columns below.")
    render_skipped(entry.get("skipped", []))
    show_saved(entry.get("saved"))
    if summary.faces:
        left, right = st.columns([1.6, 1])
        left.plotly_chart(
            plots.emotion_distribution(aggregates.emotion_counts(counted, class_names)),
            width="stretch",
            key=f"dist-{name}",
        )
        right.plotly_chart(
            plots.sentiment_donut(aggregates.sentiment_counts(counted)), width="stretch", key=f"donut-{name}"
        )
    st.dataframe(
        aggregates.with_groups(aggregates.with_sentiment(df)),
        width="stretch",
        hide_index=True,
        column_config=tables.face_table_config(class_names),
    )
    # The download holds what the table shows, with the campaign and location of every row.
    export = aggregates.export_frame(df, campaign=name, location=entry.get("locations") or "")
    slug = "".join(c if c.isalnum() else "_" for c in name).strip("_") or "batch"
    dl1, dl2, _ = st.columns([1, 1, 3])
    dl1.download_button(
        "Download CSV",
        aggregates.csv_bytes(export),
        f"{slug}.csv",
        "text/csv",
        key=f"csv-{name}",
        icon=":material/download:",
    )
    dl2.download_button(
        "Download JSON",
        aggregates.results_json(entry["results"], class_names),
        f"{slug}.json",
        "application/json",
        key=f"json-{name}",
        icon=":material/download:",
    )


def _render_campaigns(class_names) -> None:
    """The batches of this session side by side: sentiment and emotion charts, the table, a download."""
    store = _batches()
    st.subheader("Campaign comparison")
    if len(store) < 2:
        st.info("Analyse at least two named batches (for example *Ad A* and *Ad B*) to compare them here.")
        return
    sync_selection("compare_batches", list(store))  # every batch; a new one joins, a removed one leaves
    chosen = st.multiselect("Batches to compare", list(store), key="compare_batches")
    if len(chosen) < 2:
        st.info("Pick two or more batches.")
        return
    frames = {n: store[n]["df"] for n in chosen}
    if st.session_state.get(LEAVE_OUT_KEY):
        parts = {n: tables.without_doubtful(df) for n, df in frames.items()}
        frames = {n: kept for n, (kept, _) in parts.items()}
        left_out = sum(len(doubtful) for _, doubtful in parts.values())
        if left_out:
            st.caption(f"Doubtful faces left out, as above: {left_out} in these batches.")
    table = aggregates.campaign_table(frames, class_names)
    st.plotly_chart(plots.campaign_sentiment(table), width="stretch", key="campaign-sentiment")
    st.plotly_chart(
        plots.campaign_bars(aggregates.campaign_long(frames, class_names)), width="stretch", key="campaign-bars"
    )
    st.dataframe(table, width="stretch", hide_index=True)
    st.download_button(
        "Download comparison CSV",
        aggregates.csv_bytes(table),
        "campaign_comparison.csv",
        "text/csv",
        key="campaign-csv",
        icon=":material/download:",
    )


def render() -> None:
    """The Batch & campaigns tab."""
    st.markdown(
        "Analyse many photos at once and name the batch after its campaign, store or session; "
        "batches with the same name accumulate, and different names can be compared below."
    )
    toast = st.session_state.pop("batch_toast", None)
    if toast:
        st.toast(toast)
    name, location, save = save_controls(
        "batch",
        save_default=True,
        campaign_label="Campaign (batch name)",
        campaign_value="Campaign A",
        campaign_key="batch_name",
        campaign_help="Batches are compared by this name below; saved results are filed under it as their campaign.",
    )
    name = name.strip()
    files = st.file_uploader(
        "Photos and .zip archives",
        type=PHOTO_TYPES,
        accept_multiple_files=True,
        key=_upload_key(),
        max_upload_size=config.MAX_UPLOAD_MB,
    )
    clicked = st.button(
        f"Analyse {len(files)} file{'s' if len(files) != 1 else ''}" if files else "Analyse",
        type="primary",
        disabled=not files,
        key="batch_run",
    )
    if clicked:
        if not name:
            st.warning("Give the batch a name first.")
        else:
            rec = recognizer()
            if rec is not None:
                _run_batch(rec, name, files, location, save)
    store = _batches()
    if not store:
        st.info("Results appear here after the first batch.")
        return
    names = list(store)
    if st.session_state.get("batch_show") not in names:  # first batch, or the shown one was removed
        st.session_state["batch_show"] = names[-1]
    shown = st.selectbox("Show batch", names, key="batch_show")
    rec_names = tuple(c for c in store[shown]["df"].columns if c in config.EMOTIONS)
    _render_batch(shown, store[shown], rec_names)
    if st.button(f"Remove batch “{markdown_literal(shown)}”", key="batch_remove"):
        store.pop(shown, None)
        st.rerun()
    st.divider()
    _render_campaigns(rec_names)
