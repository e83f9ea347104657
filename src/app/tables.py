"""Dashboard tables in a manager's words: plain headers with a tooltip, one number format, "—" when missing.

The columns are described once, as ``model_card.TableColumn`` (key, header, tooltip, kind),
and the table holds numbers ready to show (``model_card.display_table``): percentages on a
0-100 scale, 0-1 scores, counts. This module turns that description into Streamlit's
column configuration, so a code name such as ``macro_f1`` never reaches a header.

The per-face table of the Batch tab gets its settings here too (``face_table_config``), and
the doubtful faces (``uncertain``, see ``src.engine.doubt``) are counted and left out of a
table's shares here (``doubtful_mask``, ``without_doubtful``, ``left_out_caption``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from src.analytics.people import is_uncertain
from src.engine.doubt import REASON_WORDS
from src.training.model_card import NOT_MEASURED_CELL, TableColumn

DOUBT_HELP = (
    "Doubtful: this face's label is unreliable (a small, blurred or turned face, or a low confidence "
    "on real photos); the doubt column says why."
)


def column_config(columns: Sequence[TableColumn], table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Streamlit column settings: percentages with one decimal, scores with three, counts with separators.

    A percentage gets a bar unless ``table`` has a missing value in it: Streamlit draws an
    empty bar cell there instead of the "—" placeholder.
    """
    settings: dict[str, Any] = {}
    for column in columns:
        complete = table is None or column.key not in table or not table[column.key].isna().any()
        if column.kind == "percent" and complete:
            settings[column.key] = st.column_config.ProgressColumn(
                column.label, help=column.help, format="%.1f%%", min_value=0.0, max_value=100.0
            )
        elif column.kind in ("percent", "score"):
            number = "%.1f%%" if column.kind == "percent" else "%.3f"
            settings[column.key] = st.column_config.NumberColumn(column.label, help=column.help, format=number)
        elif column.kind == "count":
            settings[column.key] = st.column_config.NumberColumn(column.label, help=column.help, format="localized")
        else:
            settings[column.key] = st.column_config.TextColumn(column.label, help=column.help)
    return settings


def show(table: pd.DataFrame, columns: Sequence[TableColumn], key: str | None = None) -> None:
    """``table`` (from ``model_card.display_table``) with plain headers; a missing number shows "—"."""
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config=column_config(columns, table),
        column_order=[c.key for c in columns],
        placeholder=NOT_MEASURED_CELL,
        key=key,
    )


def face_table_config(class_names: Sequence[str]) -> dict[str, Any]:
    """Settings of the per-face table: confidence as a bar, probabilities as percentages, the doubt flag and reasons."""
    return {
        "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0, max_value=1.0),
        **{c: st.column_config.NumberColumn(c, format="percent") for c in class_names},
        "uncertain": st.column_config.CheckboxColumn("uncertain", help=DOUBT_HELP),
        "doubt": st.column_config.TextColumn("doubt", help="Why the face is doubtful (codes joined by “; ”)."),
    }


def doubtful_mask(df: pd.DataFrame) -> pd.Series:
    """True for the rows that are faces flagged ``uncertain`` (a table without the column has none)."""
    if "uncertain" not in df or df.empty:
        return pd.Series(False, index=df.index, dtype=bool)
    faces = (df["status"] == "ok") & (df["emotion"].astype(str) != "") if "status" in df else True
    return df["uncertain"].map(is_uncertain).astype(bool) & faces


def without_doubtful(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the table without its doubtful faces, those faces)``; faceless and failed files stay."""
    mask = doubtful_mask(df)
    return df[~mask], df[mask]


def left_out_caption(left_out: pd.DataFrame) -> str:
    """One plain sentence: how many doubtful faces were left out of the shares, and why."""
    n = len(left_out)
    reasons: Counter[str] = Counter()
    for cell in left_out.get("doubt", pd.Series(dtype=str)).fillna("").astype(str):
        reasons.update(code.strip() for code in cell.split(";") if code.strip())
    why = ", ".join(f"{REASON_WORDS.get(code, code)} {count}" for code, count in reasons.most_common())
    face = "face" if n == 1 else "faces"
    return f"{n} doubtful {face} left out of these shares" + (f" ({why})." if why else ".")
