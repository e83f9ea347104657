"""Making user-supplied text safe to write and to show: CSV cells, names, Markdown.

File names, archive members and batch names come from users (or from whoever sent
them a zip), so none of them is trusted:

* ``csv_cell`` / ``csv_row`` / ``csv_frame`` neutralise spreadsheet formulas (the
  OWASP rule: a text cell starting with ``= + - @``, tab or CR gets a leading
  ``'``; a CR inside text, which would split the row, is written as ``\\x0d``).
  Every CSV this project writes goes through them; numbers stay numbers and JSON
  is never touched.
* ``text`` makes a name valid Unicode: file names that are not UTF-8 reach Python
  as surrogate escapes, which cannot be encoded; their bytes are shown as ``\\xNN``.
  ``line`` also escapes control characters, for one-line terminal output.
* ``markdown_literal`` escapes a string so that Markdown (Streamlit's included:
  links, images, LaTeX, ``:material/...:`` icons, ``:red[...]`` directives) shows it
  as the literal text, bare URLs and e-mail addresses included (no autolink). Pages
  prefer widgets that never parse Markdown (``st.text``, tables); this is for labels
  that mix our words with a user's.
* ``plotly_literal`` does the same for Plotly text, which reads a few HTML tags
  (``<a href>``, ``<b>``, ...) and entities.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The empty spots where a GFM autolink literal would start: after http/https before "://",
# after www before ".", and before the "@" of an e-mail address.
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=://)|(?<=http)(?=://)|(?<=www)(?=\.)|(?<=[\w.+-])(?=@[\w-])")


def csv_cell(value: Any) -> Any:
    """The value to write in a CSV cell: text a spreadsheet would run as a formula gets a ``'``.

    A carriage return inside text is written as ``\\x0d``: Python's csv writer leaves it
    unquoted, and a spreadsheet would start a new row there, whose first cell escapes this rule.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_PREFIXES):
        value = "'" + value
    return value.replace("\r", "\\x0d")


def csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: csv_cell(value) for key, value in row.items()}


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells are neutralised (numeric columns untouched)."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col])):
            out[col] = out[col].map(csv_cell)
    return out


def text(value: str) -> str:
    """``value`` as valid Unicode: undecodable file-name bytes become ``\\xNN``."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from a file name
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def line(value: str) -> str:
    """``text(value)`` with control characters (newlines, terminal escapes) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text(value))


def markdown_literal(value: str) -> str:
    """``value`` escaped so that Markdown renders exactly its characters, on one line.

    Streamlit's Markdown also turns bare ``http://...``, ``www.`` and ``a@b.c`` into links
    (GFM autolinks, found after escapes are resolved, so a backslash cannot stop them): an
    invisible word joiner (U+2060) goes before the ``:``, ``.`` or ``@`` that would start one.
    """
    value = _AUTOLINK.sub("\u2060", text(value))
    return _PUNCTUATION.sub(r"\\\1", value).replace("\r", " ").replace("\n", " ")


def plotly_literal(value: str) -> str:
    """``value`` for Plotly labels: ``& < >`` as entities, so tags show as typed."""
    return html.escape(text(value), quote=False)
