"""Dashboard tables in a manager's words: plain headers with a tooltip, one number format, "—" when missing.

The columns are described once, as ``model_card.TableColumn`` (key, header, tooltip, kind),
and the table holds numbers ready to show (``model_card.display_table``): percentages on a
0-100 scale, 0-1 scores, counts. This module turns that description into Streamlit's
column configuration, so a code name such as ``macro_f1`` never reaches a header.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from src.training.model_card import NOT_MEASURED_CELL, TableColumn


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
