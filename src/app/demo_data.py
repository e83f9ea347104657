"""Demo data for an empty results store: load it in one click, and remove it, and only it, in one click.

The runs come from ``src.analytics.demo.fill_demo_store`` (made up, tagged ``demo``). A run
counts as demo only when it carries the tag *and* the model version "demo" that the filler
writes, so a real run someone tagged "demo" on the command line is never removed here.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from src.analytics import persist
from src.analytics.demo import DEMO_TAG, fill_demo_store
from src.common.sanitize import markdown_literal

DEMO_MODEL_VERSION = "demo"  # what fill_demo_store writes as every demo run's model version


def demo_run_ids(runs: pd.DataFrame | None) -> list[str]:
    """The ids of the demo runs among ``runs`` (``store.runs()``)."""
    if runs is None or runs.empty or "tags" not in runs or "model_version" not in runs:
        return []
    return [
        str(run_id)
        for run_id, tags, version in zip(runs["run_id"], runs["tags"], runs["model_version"])
        if DEMO_TAG in (tags or ()) and version == DEMO_MODEL_VERSION
    ]


def load(store) -> int:
    """Fill ``store`` with the demo runs; returns how many were added."""
    return fill_demo_store(store)


def remove(store, runs: pd.DataFrame | None = None) -> int:
    """Delete the demo runs (with their rows and live seconds) and nothing else; returns how many."""
    return sum(store.delete_run(run_id) for run_id in demo_run_ids(store.runs() if runs is None else runs))


def button(label: str, key: str, action, help: str) -> None:
    """A button that changes the results store, then reruns the page to show the new numbers."""
    if st.button(label, key=key, icon=":material/science:", help=help):
        try:
            with st.spinner(f"{label}…"):
                action()
        except Exception as exc:  # a store that fails must not take the page down
            st.error(f"{label} failed: {markdown_literal(persist.failure(exc))}")
            return
        st.rerun()


def offer_load(store, key: str) -> None:
    """The "Load demo data" button of an empty results store."""
    button(
        "Load demo data",
        key,
        lambda: load(store),
        "Adds made-up runs of three invented campaigns, tagged demo, to the results store; "
        "remove them again in one click (Project Summary).",
    )
