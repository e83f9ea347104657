"""What several Emotion Detection tabs share: the recognizer, the campaign/location fields and
the *Save results* switch, saving rows to the results store and saying where they went, and the
table of skipped archive entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from src import config
from src.analytics import persist
from src.app import cache
from src.common.sanitize import markdown_literal
from src.training import model_card

if TYPE_CHECKING:  # the recognizer itself is loaded lazily, through src.app.cache
    from src.engine.inference import EmotionRecognizer

PHOTO_TYPES = [e.lstrip(".") for e in config.IMAGE_EXTENSIONS] + ["zip"]
NAME_CHARS = 100  # campaign and location names (the store keeps up to 255)


def recognizer() -> EmotionRecognizer | None:
    """The shared model, or None after showing why it is unavailable."""
    rec, error = cache.load_recognizer()
    if error:
        st.error(error)
    return rec


def save_controls(tab: str, save_default: bool, campaign: bool = True) -> tuple[str, str, bool]:
    """A tab's campaign and location fields and its *Save results* switch: (campaign, location, save).

    ``campaign=False`` leaves the campaign field out (the Batch tab's batch name is its campaign).
    """
    cols = st.columns([1, 1, 0.7] if campaign else [1, 0.7], vertical_alignment="bottom")
    name = ""
    if campaign:
        name = cols[0].text_input(
            "Campaign",
            key=f"{tab}_campaign",
            max_chars=NAME_CHARS,
            placeholder="optional, e.g. Spring ad A",
            help="Saved results are grouped and compared by campaign in History & trends.",
        )
    location = cols[-2].text_input(
        "Location", key=f"{tab}_location", max_chars=NAME_CHARS, placeholder="optional, e.g. Store 12"
    )
    save = cols[-1].toggle(
        "Save results",
        value=save_default,
        key=f"{tab}_save",
        help="Keep these results in the results store, for the History & trends tab.",
    )
    return name, location, save


def model_version() -> str:
    """The deployed model's version, stamped on every saved run."""
    return model_card.model_version(cache.model_manifest())


def save_rows(source: str, rows: list[dict], campaign: str | None, location: str | None) -> persist.Saved:
    """One run of rows into the results store; a failure comes back as ``Saved.error``."""
    store, error = cache.results_store()
    if store is None:
        return persist.Saved(error=f"the store could not be opened ({error})")
    return persist.save_rows(store, source, rows, **persist.run_fields(campaign, location, model_version()))


def show_saved(saved: persist.Saved | None) -> None:
    """Where the results went, or why they were not saved (the results on screen stay)."""
    if saved is None:
        return
    if saved.ok:
        st.caption(
            f":material/database: Saved {saved.rows} row{'s' if saved.rows != 1 else ''} to the results store "
            "(see *History & trends*)."
        )
    else:
        st.error(
            f"**Not saved to the results store**: {markdown_literal(saved.error)}. "
            "The results here are kept; download them to keep a copy.",
            icon=":material/database_off:",
        )


def render_skipped(rows: list[dict[str, str]]) -> None:
    """Archive entries that were not analysed, each with its reason (names as plain table cells)."""
    if rows:
        with st.expander(f"Skipped {len(rows)} archive entr{'y' if len(rows) == 1 else 'ies'}"):
            st.dataframe(rows, width="stretch", hide_index=True)
