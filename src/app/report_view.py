"""The report download of History & trends: the current selection as a manager's report, HTML or PDF.

The History & trends tab calls ``render(store, filters)`` with its filters (campaigns,
locations, sources, dates); the report itself is ``src/analytics/report`` (the same as
``python -m src.cli report`` and ``GET /v1/report``), built when a button is clicked. It
counts finished runs; the tab's dates filter the faces' times, the report's the runs' start.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from src import config
from src.analytics import persist
from src.analytics.report import ModelFacts, Selection, build_report
from src.analytics.report import render as render_report
from src.app import cache
from src.common.sanitize import markdown_literal

INTRO = (
    "One file to send to a manager: people counted, emotion and sentiment shares corrected for the "
    "model's known mistakes (with 95% ranges, beside the shares as labelled), the campaigns compared "
    "with a plain verdict, the method and its limits, and the model version. It covers the campaigns, "
    "locations, sources and dates picked above (every campaign when none is picked)."
)


def selection_of(filters: dict) -> Selection:
    """The History filters (``trends.store_filters`` keyword arguments, and ``include_uncertain``)
    as a report selection."""
    return Selection.of(
        filters.get("campaigns") or None,
        filters.get("locations") or None,
        filters.get("sources") or None,
        since=filters.get("since"),
        until=filters.get("until"),
        include_uncertain=filters.get("include_uncertain", True),
    )


def report_bytes(store, selection: Selection, fmt: str) -> bytes:
    """The report file of ``selection``, corrected with the deployed model's error model."""
    from src.training import model_card
    from src.training.error_model import load_error_model

    manifest = cache.model_manifest()
    facts = ModelFacts.from_manifest(manifest, model_card.plain_name(manifest))
    report = build_report(store, selection, load_error_model(config.MODEL_FILE, strict=False), facts)
    return render_report(report, fmt)


def render(store, filters: dict, counts: tuple[int, int] | None = None) -> None:
    """The report section: what it holds, and a download button per format (made when clicked).

    ``counts``: (people, runs) of the selection when the caller has them (History & trends sums
    them in the database already); else they are read from the selection's runs."""
    st.subheader("Report for managers")
    st.caption(INTRO)
    selection = selection_of(filters)
    if counts is None:
        try:
            runs = store.runs(status="ok", **selection.store_kwargs())
        except Exception as exc:  # a store that cannot be read must not take the tab down
            st.error(f"The results store could not be read: {markdown_literal(persist.failure(exc))}")
            return
        counts = (int(runs["people"].sum()) if len(runs) else 0, len(runs))
    people, run_count = counts
    if people == 0:
        st.info("No people in this selection: nothing to report. Widen the filters above.", icon=":material/info:")
        return
    st.caption(f"{people:,} people in {run_count:,} runs.")
    stem = f"emotion_report_{datetime.now(UTC):%Y%m%d}"
    html, pdf, _ = st.columns([1, 1, 2])
    html.download_button(
        "Report (HTML)",
        lambda: report_bytes(store, selection, "html"),
        f"{stem}.html",
        "text/html",
        key="history-report-html",
        icon=":material/description:",
        on_click="ignore",
        help="One self-contained file: opens in any browser, fetches nothing.",
    )
    pdf.download_button(
        "Report (PDF)",
        lambda: report_bytes(store, selection, "pdf"),
        f"{stem}.pdf",
        "application/pdf",
        key="history-report-pdf",
        icon=":material/picture_as_pdf:",
        on_click="ignore",
        help="The same report as a PDF.",
    )
