"""User-supplied text made safe: CSV formula neutralising, undecodable names, Markdown escaping."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.common import sanitize

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = [
    "![t](http://tracker.invalid/pixel.png).jpg",
    "[click](http://tracker.invalid/).png",
    "<img src=http://tracker.invalid/x.png>.jpg",
    "$\\frac{a}{b}$ and $$x^2$$.jpg",
    "**bold** _it_ ~~gone~~ `code`.jpg",
    ":material/home: :smile: :red[red] :small[s].jpg",
    "# heading.jpg",
    "1. list.jpg",
    "- item.jpg",
    "> quote.jpg",
    "a\\b | c & d.jpg",
    "line\nbreak.jpg",
    "caf\udce9.jpg",
]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t"])
def test_formula_cells_get_a_quote(prefix):
    assert sanitize.csv_cell(f"{prefix}cmd|' /C calc'!A0.jpg") == f"'{prefix}cmd|' /C calc'!A0.jpg"


def test_carriage_returns_cannot_start_a_row():
    """csv leaves a CR unquoted; a spreadsheet would begin a new row there, formula first."""
    assert sanitize.csv_cell("\rcmd.jpg") == "'\\x0dcmd.jpg"
    assert sanitize.csv_cell("x.jpg\r=cmd()") == "x.jpg\\x0d=cmd()"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([sanitize.csv_cell("a\r=b"), 1])
    assert list(csv.reader(io.StringIO(buf.getvalue(), newline=None))) == [["a\\x0d=b", "1"]]


@pytest.mark.parametrize("value", ["photo.jpg", "", " =x", "'=already", -1.5, -3, 0.25, None, float("nan")])
def test_other_cells_are_untouched(value):
    out = sanitize.csv_cell(value)
    assert out is value or (isinstance(value, float) and np.isnan(value) and np.isnan(out))


def test_csv_frame_neutralises_text_and_keeps_numbers():
    df = pd.DataFrame(
        {
            "file": ['=HYPERLINK("http://x")', "ok.jpg", "@SUM(A1)"],
            "face": pd.array([0, None, 1], dtype="Int64"),
            "net sentiment": [-12.5, 3.0, np.nan],
            "emotion": ["happy", "", "-sad"],
        }
    )
    out = sanitize.csv_frame(df)
    assert out["file"].tolist() == ['\'=HYPERLINK("http://x")', "ok.jpg", "'@SUM(A1)"]
    assert out["emotion"].tolist() == ["happy", "", "'-sad"]
    assert df["file"][0].startswith("=")  # the caller's frame is not modified
    back = pd.read_csv(io.StringIO(out.to_csv(index=False)))
    assert back["net sentiment"].iloc[0] == -12.5  # negative numbers stay numbers
    assert pd.api.types.is_numeric_dtype(back["face"])


def test_undecodable_names_become_valid_text():
    raw = "caf\udce9.jpg"  # what os.fsdecode(b"caf\xe9.jpg") gives
    assert sanitize.text(raw) == "caf\\xe9.jpg"
    assert sanitize.text(raw).encode("utf-8")
    assert sanitize.text("café 写真.jpg") == "café 写真.jpg"
    assert sanitize.text("lone \ud800 surrogate").encode("utf-8")
    assert sanitize.line("two\nlines\x1b[31m.jpg") == "two\\x0alines\\x1b[31m.jpg"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_markdown_literal_renders_as_the_literal_text(name):
    """Rendered by a CommonMark parser, the escaped name is exactly its text: no link, image or markup."""
    markdown_it = pytest.importorskip("markdown_it")
    html = (
        markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(sanitize.markdown_literal(name))
    )
    assert not re.search(r"<(a|img|em|strong|code|s|del|h\d|ol|ul|li|blockquote)\b", html), html
    import html as html_lib

    text = html_lib.unescape(re.sub(r"</?p>|\n", "", html))
    assert text.replace("\u2060", "") == sanitize.text(name).replace("\n", " ")  # word joiners: invisible


def test_markdown_literal_stops_autolinks():
    """Streamlit's GFM autolinks bare URLs, www. names and e-mail addresses even when escaped."""
    escaped = sanitize.markdown_literal("see http://t.invalid/x, HTTPS://u, www.v.invalid and me@w.invalid")
    plain = escaped.replace("\\", "")
    assert not re.search(r"(?i)https?://|www\.|\w@\w", plain), plain
    assert plain.replace("\u2060", "") == "see http://t.invalid/x, HTTPS://u, www.v.invalid and me@w.invalid"


def test_markdown_literal_defuses_streamlit_syntax():
    """Streamlit turns ``:material/x:`` into icons and ``$..$`` into LaTeX before CommonMark runs."""
    escaped = sanitize.markdown_literal(":material/home: $x$ :red[y]")
    assert ":material/" not in escaped  # Streamlit rewrites that exact substring into an icon
    assert "$x$" not in escaped and "[y]" not in escaped


def test_every_csv_writer_in_src_neutralises_cells():
    """Any module in src/ that writes CSV goes through sanitize (Keras' CSVLogger writes numbers only)."""
    writers = re.compile(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(")
    for path in sorted((ROOT / "src").glob("*.py")):
        if path.name == "sanitize.py":
            continue
        source = path.read_text()
        if writers.search(source):
            assert re.search(r"csv_(cell|row|frame)\(", source), f"{path.name} writes CSV without src.common.sanitize"
