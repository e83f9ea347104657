"""The report's charts as PNG bytes (matplotlib, no pyplot: no global state, safe in API threads).

* ``shares_chart``: one selection's shares per label, the corrected share as a bar with its
  95% range, the raw (as labelled) share as a hollow bar behind it.
* ``campaigns_chart``: the corrected shares of several campaigns side by side, each with its
  range; the raw share as a small mark.

Campaign names are user text: matplotlib would read ``$...$`` in them as mathematics, so
``literal`` escapes it; long names are shortened, and characters the font (DejaVu Sans) has
no glyph for show as U+FFFD, not as a silent gap.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from src.analytics.report.content import Figures, ShareRow
from src.common import palette, sanitize

DPI = 150
WIDTH_IN = 7.2
NAME_CHARS = 40
RAW_COLOR = "#b8b8b8"
RANGE_COLOR = "#222222"
CORRECTED_KEY = "#5a5a5a"  # the legend's swatch for bars coloured per label


@functools.cache
def _glyphs() -> frozenset[int]:
    return frozenset(ft2font.FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())


def literal(text: str, limit: int = NAME_CHARS) -> str:
    """User text as matplotlib shows it literally: one line, ``$`` escaped, at most ``limit`` characters."""
    glyphs = _glyphs()
    text = "".join(ch if ord(ch) in glyphs or ch == " " else "\ufffd" for ch in sanitize.line(str(text)))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.startswith("_"):  # a legend leaves out labels starting with "_"
        text = " " + text
    return text.replace("$", r"\$")


def _color(label: str, kind: str) -> str:
    return palette.sentiment_color(label) if kind == "sentiment" else palette.emotion_color(label)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _percent_axis(ax, top: float) -> None:
    ax.set_xlim(0, min(1.0, max(0.1, math.ceil(top * 10 + 0.5) / 10)))
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0%}")
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def shares_chart(rows: Sequence[ShareRow], kind: str, title: str, corrected: bool) -> bytes:
    """Horizontal bars, one label a row: the corrected share with its range, the raw share behind it."""
    labels = [r.label for r in rows]
    height = 0.9 + 0.42 * len(rows)
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    raw = [_number(r.raw) for r in rows]
    if corrected:
        ax.barh(y, raw, height=0.78, color="white", edgecolor=RAW_COLOR, linewidth=1.2)
        fixed = [_number(r.corrected) for r in rows]
        lows = [max(0.0, f - _number(r.low)) for f, r in zip(fixed, rows)]
        highs = [max(0.0, _number(r.high) - f) for f, r in zip(fixed, rows)]
        ax.barh(
            y,
            fixed,
            height=0.46,
            color=[_color(label, kind) for label in labels],
            xerr=[lows, highs],
            error_kw={"ecolor": RANGE_COLOR, "elinewidth": 1.2, "capsize": 3},
        )
        top = max([*(_number(r.high) for r in rows), *raw, 0.0])
        for yi, value, hi in zip(y, fixed, (_number(r.high) for r in rows)):
            if not math.isnan(value):
                ax.text(hi + 0.01, yi, f"{value:.0%}", va="center", fontsize=8)
        keys = [
            Patch(facecolor="white", edgecolor=RAW_COLOR, label="as labelled (raw)"),
            Patch(facecolor=CORRECTED_KEY, label="corrected"),
            Line2D([], [], color=RANGE_COLOR, marker="|", markersize=8, label="95% range"),
        ]
        fig.legend(handles=keys, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    else:
        ax.barh(y, raw, height=0.6, color=[_color(label, kind) for label in labels], label="as labelled")
        top = max([*raw, 0.0])
        for yi, value in zip(y, raw):
            if not math.isnan(value):
                ax.text(value + 0.01, yi, f"{value:.0%}", va="center", fontsize=8)
    ax.set_yticks(y, [literal(label) for label in labels])
    _percent_axis(ax, top + 0.08)
    ax.set_xlabel("share of people")
    ax.set_title(literal(title, 90), fontsize=10, loc="left")
    return _png(fig)


def campaigns_chart(campaigns: Sequence[Figures], kind: str, title: str, corrected: bool) -> bytes:
    """Grouped horizontal bars: per label, each campaign's (corrected) share and range."""
    campaigns = list(campaigns)
    rows_of = [c.sentiment if kind == "sentiment" else c.emotions for c in campaigns]
    labels = [r.label for r in rows_of[0]]
    n = len(campaigns)
    band = 0.8 / n
    height = 1.2 + len(labels) * (0.2 + 0.16 * n)
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    ax = fig.add_subplot()
    top = 0.0
    for i, (campaign, rows) in enumerate(zip(campaigns, rows_of)):
        color = palette.GROUP_COLORS[i % len(palette.GROUP_COLORS)]
        y = [len(labels) - 1 - j + 0.4 - band * (i + 0.5) for j in range(len(labels))]
        raw = [_number(r.raw) for r in rows]
        if corrected:
            value = [_number(r.corrected) for r in rows]
            lows = [0.0 if math.isnan(v) else max(0.0, v - _number(r.low)) for v, r in zip(value, rows)]
            highs = [0.0 if math.isnan(v) else max(0.0, _number(r.high) - v) for v, r in zip(value, rows)]
            ax.barh(
                y,
                value,
                height=band * 0.85,
                color=color,
                xerr=[lows, highs],
                error_kw={"ecolor": RANGE_COLOR, "elinewidth": 1, "capsize": 2},
                label=literal(campaign.name),
            )
            ax.plot(raw, y, linestyle="none", marker="D", markersize=3.5, markerfacecolor="white", color=RANGE_COLOR)
            top = max([top, *(v for v in (_number(r.high) for r in rows) if not math.isnan(v))])
        else:
            ax.barh(y, raw, height=band * 0.85, color=color, label=literal(campaign.name))
        top = max([top, *(v for v in raw if not math.isnan(v))])
    ax.set_yticks([len(labels) - 1 - j for j in range(len(labels))], [literal(label) for label in labels])
    _percent_axis(ax, top + 0.05)
    ax.set_xlabel("share of people" + (" (bars corrected, with 95% ranges; ◇ as labelled)" if corrected else ""))
    ax.set_title(literal(title, 90), fontsize=10, loc="left")
    fig.legend(loc="outside lower center", ncols=min(n, 3), fontsize=8, frameon=False)
    return _png(fig)


def report_charts(report) -> list[tuple[str, bytes]]:
    """Every chart of ``report`` (a ``content.Report``), as (caption, PNG bytes), in reading order."""
    how = "corrected shares with their 95% ranges, raw shares behind" if report.corrected else "shares as labelled"
    out = [
        (
            f"Sentiment of all selected people: {how}.",
            shares_chart(report.total.sentiment, "sentiment", "Sentiment", report.corrected),
        ),
        (
            f"Emotions of all selected people: {how}.",
            shares_chart(report.total.emotions, "emotion", "Emotions", report.corrected),
        ),
    ]
    if report.campaigns:
        shown = [c for c in report.campaigns if c.counts.people]
        if shown:
            out.append(
                (
                    "Sentiment by campaign" + (" (corrected, with 95% ranges)." if report.corrected else "."),
                    campaigns_chart(shown, "sentiment", "Sentiment by campaign", report.corrected),
                )
            )
            out.append(
                (
                    "Emotions by campaign" + (" (corrected, with 95% ranges)." if report.corrected else "."),
                    campaigns_chart(shown, "emotion", "Emotions by campaign", report.corrected),
                )
            )
    return out
