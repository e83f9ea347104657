"""What several Emotion Detection tabs share: the recognizer, the campaign/location fields and
the *Save results* switch, saving rows to the results store and saying where they went, the
table of skipped archive entries, and comparisons that keep every campaign selected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from src import config
from src.analytics import persist
from src.app import cache, tables
from src.common.sanitize import markdown_literal
from src.training import model_card

if TYPE_CHECKING:  # the recognizer itself is loaded lazily, through src.app.cache
    from src.engine.inference import EmotionRecognizer

PHOTO_TYPES = [e.lstrip(".") for e in config.IMAGE_EXTENSIONS] + ["zip"]
NAME_CHARS = 100  # campaign and location names (the store keeps up to 255)


def recognizer() -> EmotionRecognizer | None:
    """The shared model, or None after showing why it is unavailable."""
    rec, error = cache.load_recognizer(cache.chosen_model())
    if error:
        st.error(error)
    return rec


def save_controls(
    tab: str,
    save_default: bool,
    campaign_label: str = "Campaign",
    campaign_value: str = "",
    campaign_key: str | None = None,
    campaign_help: str = "Saved results are grouped and compared by campaign in History & trends.",
) -> tuple[str, str, bool]:
    """A tab's campaign and location fields and its *Save results* switch on one row: (campaign, location, save).

    The Batch tab passes its batch name as the campaign field (its label, first value and key).
    """
    # Full width, so the switch's label always fits (a third of a column cut it to "Save re…").
    name_col, location_col, save_col = st.columns([1, 1, 0.6], vertical_alignment="bottom")
    name = name_col.text_input(
        campaign_label,
        value=campaign_value,
        key=campaign_key or f"{tab}_campaign",
        max_chars=NAME_CHARS,
        placeholder="optional, e.g. Spring ad A",
        help=campaign_help,
    )
    location = location_col.text_input(
        "Location", key=f"{tab}_location", max_chars=NAME_CHARS, placeholder="optional, e.g. Store 12"
    )
    save = save_col.toggle(
        "Save results",
        value=save_default,
        key=f"{tab}_save",
        help="Keep these results in the results store, for the History & trends tab.",
    )
    return name, location, save


def sync_selection(key: str, options: list[str]) -> None:
    """Keep the keyed multiselect ``key`` in step with its ``options``; call it right before the widget.

    Every option is selected at first, options that appear later join the selection and those
    that are gone leave it: a keyed widget otherwise keeps its first value, whatever its
    ``default`` says (a third campaign would stay out of a comparison of two).
    """
    seen_key = f"{key}__options"
    chosen, seen = st.session_state.get(key), st.session_state.get(seen_key)
    if chosen is None or seen is None:
        value = list(options)
    else:
        value = [o for o in chosen if o in options] + [o for o in options if o not in seen and o not in chosen]
    if chosen != value:
        st.session_state[key] = value
    st.session_state[seen_key] = list(options)


def model_version() -> str:
    """The deployed model's version, stamped on every saved run."""
    return model_card.model_version(cache.model_manifest_of(cache.chosen_model()))


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


def leave_out_doubtful(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """The "Leave out doubtful faces (N)" checkbox over a tab's per-face table: the table its shares
    are computed on (without the doubtful faces when ticked, with a caption saying how many and why).

    Nothing is shown when no face is doubtful. The table itself, its downloads and what is saved
    keep every face, with its ``uncertain`` and ``doubt`` columns."""
    kept, doubtful = tables.without_doubtful(df)
    if doubtful.empty:
        return df
    leave_out = st.checkbox(
        f"Leave out doubtful faces ({len(doubtful)})",
        key=key,
        help="Doubtful faces are small, blurred or turned, or read with a low confidence on real photos: "
        "their labels are right less often. Ticked, the shares below count the other faces only.",
    )
    if not leave_out:
        return df
    st.caption(tables.left_out_caption(doubtful))
    return kept
