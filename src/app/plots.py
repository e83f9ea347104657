"""Plotly figure builders for every chart in the dashboard (no streamlit here).

Each builder takes plain data (dicts in the outputs/ schemas, DataFrames from
``src.analytics.aggregates``/``src.streams.video``) and returns a ``go.Figure``, so charts are unit
tested and look the same on every page. Emotions always keep their colour from
``src.common.palette``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from src.analytics.groups import SENTIMENT_BUCKETS
from src.common.palette import GROUP_COLORS, emotion_color, sentiment_color
from src.common.sanitize import plotly_literal

TEMPLATE = "plotly_white"
SPLIT_COLORS = {"Training": "#4c78a8", "PublicTest": "#f58518", "PrivateTest": "#54a24b"}
# Horizontal legend right-aligned above the plot area, clear of the left-aligned title.
LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1)


@functools.cache
def _template() -> go.layout.Template:
    """The template object, built once: naming it in every figure re-validates it (~0.1 s a chart)."""
    import plotly.io as pio

    return pio.templates[TEMPLATE]


def _set_template(fig: go.Figure) -> None:
    """Give ``fig`` the template as plotly gives a figure its default one: assigned without
    validating it again (it was when registered). Validating copies the whole template, ~10 ms
    a chart on an idle machine and several times that on a busy one; the figure is the same."""
    layout = fig.layout
    layout._validate = False
    try:
        layout.template = _template()
    finally:
        layout._validate = fig._validate


def _layout(fig: go.Figure, height: int = 320, **kwargs) -> go.Figure:
    on_top = isinstance(kwargs.get("legend"), dict) and kwargs["legend"].get("y") == LEGEND_TOP["y"]
    kwargs.setdefault("margin", dict(l=10, r=10, t=60 if on_top else 40, b=10))
    _set_template(fig)
    fig.update_layout(height=height, **kwargs)
    return fig


def probability_bar(
    emotions: Mapping[str, float], class_names: Sequence[str] | None = None, title: str = ""
) -> go.Figure:
    """Horizontal bars of one face's probabilities, the top emotion first."""
    names = list(class_names or emotions.keys())
    order = sorted(names, key=lambda n: emotions.get(n, 0.0))  # plotly draws bottom-up: top ends up first
    values = [float(emotions.get(n, 0.0)) for n in order]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=order,
            orientation="h",
            marker_color=[emotion_color(n) for n in order],
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1.1], tickformat=".0%", showgrid=False, visible=False)
    return _layout(
        fig, height=230, title=title or None, showlegend=False, margin=dict(l=10, r=30, t=30 if title else 5, b=5)
    )


def emotion_distribution(counts: pd.DataFrame, title: str = "Emotion mix") -> go.Figure:
    """Bars of faces per top emotion (``analytics.emotion_counts``) labelled with their share."""
    fig = go.Figure(
        go.Bar(
            x=counts["emotion"],
            y=counts["faces"],
            marker_color=[emotion_color(e) for e in counts["emotion"]],
            text=[f"{s:.0%}" for s in counts["share"]],
            textposition="outside",
            cliponaxis=False,
            customdata=counts["share"],
            hovertemplate="%{x}: %{y} faces (%{customdata:.1%})<extra></extra>",
        )
    )
    top = int(counts["faces"].max()) if len(counts) else 0
    # Whole faces only: small batches would otherwise get ticks at 0.2, 0.4, ...
    fig.update_yaxes(title="faces", rangemode="tozero", tickformat="d", dtick=max(1, -(-top // 5)))
    return _layout(fig, title=title, showlegend=False)


def sentiment_donut(shares: pd.DataFrame, title: str = "Sentiment") -> go.Figure:
    """Donut of positive / neutral / negative faces (``analytics.sentiment_counts``)."""
    fig = go.Figure(
        go.Pie(
            labels=shares["sentiment"],
            values=shares["faces"],
            hole=0.55,
            sort=False,
            marker=dict(colors=[sentiment_color(s) for s in shares["sentiment"]]),
            text=[f"{s:.0%}" if n else "" for s, n in zip(shares["share"], shares["faces"])],
            textinfo="text",
            hovertemplate="%{label}: %{value} faces (%{percent})<extra></extra>",
        )
    )
    return _layout(fig, title=title, legend=dict(orientation="h", y=-0.05))


def campaign_bars(long: pd.DataFrame, title: str = "Emotion mix by batch") -> go.Figure:
    """Grouped bars: share of each emotion, one bar per named batch (``analytics.campaign_long``)."""
    fig = go.Figure()
    for batch, part in long.groupby("batch", sort=False):
        fig.add_bar(
            x=part["emotion"],
            y=part["share"],
            name=plotly_literal(str(batch)),
            customdata=part["faces"],
            # The name comes in through fullData, never into the template (it could hold %{...}).
            hovertemplate="%{fullData.name}<br>%{x}: %{y:.1%} (%{customdata} faces)<extra></extra>",
        )
    fig.update_yaxes(tickformat=".0%", title="share of faces")
    return _layout(fig, height=360, title=title, barmode="group", legend=LEGEND_TOP)


def campaign_sentiment(table: pd.DataFrame, title: str = "Sentiment by batch") -> go.Figure:
    """100% stacked horizontal bars of positive / neutral / negative per batch, net score annotated."""
    fig = go.Figure()
    neutral = (100 - table["positive %"] - table["negative %"]).clip(lower=0).round(1)
    parts = {"positive": table["positive %"], "neutral": neutral, "negative": table["negative %"]}
    batches = [plotly_literal(str(b)) for b in table["batch"]]  # user-typed names
    for sentiment in SENTIMENT_BUCKETS:
        fig.add_bar(
            y=batches,
            x=parts[sentiment],
            name=sentiment,
            orientation="h",
            marker_color=sentiment_color(sentiment),
            text=[f"{v:.0f}%" if v >= 5 else "" for v in parts[sentiment]],
            textposition="inside",
            hovertemplate=f"%{{y}}: %{{x:.1f}}% {sentiment}<extra></extra>",
        )
    for batch, net in zip(batches, table["net sentiment"]):
        label = "no faces" if net is None or pd.isna(net) else f"net {net:+.0f}"
        fig.add_annotation(x=101, y=batch, text=label, showarrow=False, xanchor="left")
    fig.update_xaxes(range=[0, 118], ticksuffix="%", showgrid=False)
    return _layout(
        fig,
        height=120 + 45 * len(table),
        title=title,
        barmode="stack",
        legend=LEGEND_TOP,
        yaxis=dict(autorange="reversed"),
    )


def emotion_timeline(
    timeline: pd.DataFrame,
    class_names: Sequence[str],
    time_col: str = "time_s",
    title: str = "Emotion over time",
    x_title: str = "time (s)",
    y_title: str = "mean probability",
    hover_unit: str = "probability",
    compact: bool = False,
) -> go.Figure:
    """Stacked area of the emotion columns over time (gaps where no face was seen).

    ``y_title``/``hover_unit`` name what the columns hold (mean probabilities for a video,
    shares of the faces in view for the live camera); ``compact`` suits a narrow column: shorter, with
    the legend under the plot so it cannot wrap into the title.
    """
    fig = go.Figure()
    x = timeline[time_col] if time_col in timeline else np.arange(len(timeline))
    for name in class_names:
        if name not in timeline:
            continue
        fig.add_trace(
            go.Scatter(
                x=x,
                y=timeline[name],
                name=name,
                mode="lines",
                stackgroup="one",
                line=dict(width=0.5, color=emotion_color(name)),
                hovertemplate=f"{name}: %{{y:.0%}} {hover_unit}<extra></extra>",
            )
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title=y_title)
    fig.update_xaxes(title=None if compact else x_title)
    if compact:
        if pd.api.types.is_datetime64_any_dtype(x):
            fig.update_xaxes(tickformat="%H:%M:%S")  # no date line under the ticks to collide with the legend
        return _layout(
            fig,
            height=300,
            title=title,
            hovermode="x unified",
            legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0, traceorder="normal"),
            margin=dict(l=10, r=10, t=40, b=10),
        )
    return _layout(fig, height=340, title=title, hovermode="x unified", legend=dict(LEGEND_TOP, traceorder="normal"))


def label_color(label: str, kind: str, index: int = 0) -> str:
    """Colour of a grouping label: emotions and sentiments keep theirs, custom groups take turns."""
    if kind == "emotion":
        return emotion_color(label)
    if kind == "sentiment":
        return sentiment_color(label)
    return GROUP_COLORS[index % len(GROUP_COLORS)]


_BUCKET_TICKS = {"hour": "%d %b %H:00", "day": "%d %b", "week": "week of %d %b"}


def share_trend(
    long: pd.DataFrame,
    labels: Sequence[str],
    kind: str = "emotion",
    bucket: str = "day",
    title: str = "",
    unit: str = "samples",
) -> go.Figure:
    """Stacked bars of each label's share of the people (or samples) per period (``trends.shares_over_time``).

    ``unit`` names what the table counts (the tallies it was made from: people, or samples). Group labels
    can be user-typed: they are shown as typed (``plotly_literal``) and kept out of the hover template.
    """
    fig = go.Figure()
    for i, label in enumerate(labels):
        part = long[long["label"] == label]
        if part.empty:
            continue
        fig.add_bar(
            x=part["period"],
            y=part["share"],
            name=plotly_literal(str(label)),
            marker_color=label_color(str(label), kind, i),
            customdata=np.stack([part["faces"], part["total"]], axis=-1),
            hovertemplate=f"%{{fullData.name}}: %{{y:.0%}} (%{{customdata[0]}} of %{{customdata[1]}} {unit})<extra></extra>",
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title=f"share of {unit}")
    fig.update_xaxes(tickformat=_BUCKET_TICKS.get(bucket, "%d %b"), title=None)
    return _layout(
        fig,
        height=380,
        title=title or f"Share of {unit} over time",
        barmode="stack",
        bargap=0.15,
        hovermode="x unified",
        legend=dict(LEGEND_TOP, traceorder="normal"),
    )


def campaign_comparison(
    long: pd.DataFrame,
    labels: Sequence[str],
    kind: str = "emotion",
    title: str = "",
    unit: str = "samples",
) -> go.Figure:
    """Grouped bars: each label's share per campaign with Wilson error bars (``trends.campaign_shares``).

    ``unit`` names what the table counts (people, or samples). Campaign names are user-typed: shown as
    typed, never in the hover template.
    """
    fig = go.Figure()
    rank = {str(label): k for k, label in enumerate(labels)}
    # Every campaign's bars at once: its labels in the grouping's order, those without a share
    # left out, and the error bars' lengths; then one trace per campaign from its rows.
    shown = long.assign(rank=long["label"].astype(str).map(rank))
    shown = shown[shown["rank"].notna() & shown["share"].notna()].sort_values("rank", kind="stable")
    shown = shown.assign(
        above=(shown["high"] - shown["share"]).clip(lower=0), below=(shown["share"] - shown["low"]).clip(lower=0)
    )
    parts = dict(list(shown.groupby("campaign", sort=False)))
    for i, campaign in enumerate(long["campaign"].dropna().drop_duplicates()):
        part = parts.get(campaign)
        if part is None:
            continue
        fig.add_bar(
            x=[plotly_literal(str(label)) for label in part["label"]],
            y=part["share"].to_numpy(float),
            name=plotly_literal(str(campaign)),
            # Campaigns take the neutral group colours: red or green would read as a sentiment.
            marker_color=GROUP_COLORS[i % len(GROUP_COLORS)],
            error_y=dict(
                type="data",
                symmetric=False,
                array=part["above"].to_numpy(float),
                arrayminus=part["below"].to_numpy(float),
                thickness=1.2,
                width=3,
            ),
            customdata=np.stack([part[c].to_numpy(float) for c in ("faces", "total", "low", "high")], axis=-1),
            hovertemplate=(
                f"%{{fullData.name}}<br>%{{x}}: %{{y:.1%}} (%{{customdata[0]}} of %{{customdata[1]}} {unit})"
                "<br>95% CI %{customdata[2]:.1%} to %{customdata[3]:.1%}<extra></extra>"
            ),
        )
    fig.update_yaxes(tickformat=".0%", title=f"share of {unit}", rangemode="tozero")
    title = title or f"Share of {unit} by campaign (95% confidence interval)"
    return _layout(fig, height=380, title=title, barmode="group", legend=LEGEND_TOP)


RAW_COLOR = "#c7c7c7"


def corrected_shares(
    frame: pd.DataFrame, kind: str = "emotion", title: str = "", order: Sequence[str] | None = None
) -> go.Figure:
    """Each label's share as the model read it (grey) beside its corrected share with the 95% range
    (``Quantification.frame()`` rows: label, raw, corrected, low, high), in the order of ``order``
    (a grouping's buckets, the emotions). Without corrected values (NaN: no error model) only the
    shares as read are drawn.

    Group labels can be user-typed: shown as typed, never in the hover template.
    """
    rank = {str(label): i for i, label in enumerate(order if order is not None else frame["label"])}
    frame = frame.sort_values("label", key=lambda col: col.astype(str).map(rank).fillna(len(rank)), kind="stable")
    labels = [plotly_literal(str(label)) for label in frame["label"]]
    fig = go.Figure()
    fig.add_bar(
        x=labels,
        y=frame["raw"],
        name="as read",
        marker_color=RAW_COLOR,
        hovertemplate="%{x}: %{y:.1%} as the model read them<extra></extra>",
    )
    if frame["corrected"].notna().any():
        fig.add_bar(
            x=labels,
            y=frame["corrected"],
            name="corrected (95% range)",
            # A custom group keeps the colour it has in the other charts: its place in the grouping.
            marker_color=[label_color(str(label), kind, rank.get(str(label), 0)) for label in frame["label"]],
            error_y=dict(
                type="data",
                symmetric=False,
                array=(frame["high"] - frame["corrected"]).clip(lower=0),
                arrayminus=(frame["corrected"] - frame["low"]).clip(lower=0),
                thickness=1.4,
                width=4,
                color="#333333",
            ),
            customdata=np.stack([frame["low"], frame["high"]], axis=-1),
            hovertemplate="%{x}: %{y:.1%} corrected<br>95% range %{customdata[0]:.1%} to %{customdata[1]:.1%}"
            "<extra></extra>",
        )
    fig.update_yaxes(tickformat=".0%", title="share of people", rangemode="tozero")
    # A legend would show the corrected bars in the first label's colour: say it in words instead.
    key = "grey: as read · colour: corrected, with its 95% range" if len(fig.data) > 1 else "as the model read them"
    fig.add_annotation(
        text=key,
        xref="paper",
        yref="paper",
        x=1,
        y=1.02,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        font=dict(size=12, color="#666666"),
    )
    return _layout(
        fig,
        height=340,
        title=title or None,
        barmode="group",
        bargap=0.25,
        showlegend=False,
        margin=dict(l=10, r=10, t=60, b=10),
    )


def class_counts(stats: Mapping, title: str = "Faces per class and split") -> go.Figure:
    """Grouped bars of class counts per split (``dataset_stats.json`` ``class_counts``)."""
    names = list(stats.get("class_names") or [])
    fig = go.Figure()
    for split, counts in (stats.get("class_counts") or {}).items():
        names = names or list(counts)
        fig.add_bar(x=names, y=[counts.get(n, 0) for n in names], name=split, marker_color=SPLIT_COLORS.get(split))
    fig.update_yaxes(title="faces")
    return _layout(fig, height=360, title=title, barmode="group", legend=LEGEND_TOP)


def class_share(stats: Mapping, split: str = "Training", title: str = "Class share (Training)") -> go.Figure:
    """Share of each class in one split, coloured by emotion: shows the imbalance at a glance."""
    counts = (stats.get("class_counts") or {}).get(split) or {}
    names = list(stats.get("class_names") or counts)
    total = sum(counts.get(n, 0) for n in names) or 1
    shares = [counts.get(n, 0) / total for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=shares,
            marker_color=[emotion_color(n) for n in names],
            text=[f"{s:.1%}" for s in shares],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, title=title, showlegend=False)


def pixel_histogram(stats: Mapping, title: str = "Pixel intensity (Training)") -> go.Figure:
    hist = (stats.get("pixel_stats") or {}).get("histogram") or {}
    bins, counts = hist.get("bins") or [], hist.get("Training") or []
    total = float(sum(counts)) or 1.0
    fig = go.Figure(
        go.Bar(
            x=bins[: len(counts)],
            y=[c / total for c in counts],
            marker_color="#4c78a8",
            hovertemplate="level %{x}: %{y:.2%}<extra></extra>",
        )
    )
    fig.update_xaxes(title="gray level (0 = black)")
    fig.update_yaxes(title="share of pixels", tickformat=".1%")
    return _layout(fig, title=title, bargap=0.05, showlegend=False)


def pixel_stats(stats: Mapping, title: str = "Mean brightness per class (± std)") -> go.Figure:
    per_class = (stats.get("pixel_stats") or {}).get("per_class") or {}
    names = [n for n, v in per_class.items() if v and v.get("mean") is not None]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[per_class[n]["mean"] for n in names],
            error_y=dict(type="data", array=[per_class[n].get("std") or 0 for n in names], visible=True),
            marker_color=[emotion_color(n) for n in names],
        )
    )
    fig.update_yaxes(title="gray level", range=[0, 255])
    return _layout(fig, title=title, showlegend=False)


def heatmap(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    normalise: bool = False,
    title: str = "",
    x_title: str = "predicted",
    y_title: str = "true",
    columns: Sequence[str] | None = None,
) -> go.Figure:
    """Annotated confusion-style heatmap; ``normalise`` divides each row by its total (recall).
    ``labels`` name the rows, ``columns`` the columns (default: the rows' labels)."""
    m = np.asarray(matrix, dtype=float)
    if normalise:
        totals = m.sum(axis=1, keepdims=True)
        m = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
        text = [[f"{v:.0%}" for v in row] for row in m]
    else:
        text = [[f"{int(v):,}" for v in row] for row in m]
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=list(labels if columns is None else columns),
            y=list(labels),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate=f"{y_title} %{{y}} → {x_title} %{{x}}: %{{text}}<extra></extra>",
        )
    )
    fig.update_xaxes(title=x_title, side="bottom")
    fig.update_yaxes(title=y_title, autorange="reversed")
    return _layout(fig, height=460, title=title or None)


def per_class_bars(values: Mapping[str, float | None], title: str, y_title: str = "") -> go.Figure:
    """One bar per class for a 0-1 score (recall, F1, agreement), in emotion colours."""
    names = [n for n, v in values.items() if v is not None]
    ys = [float(values[n]) for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=ys,
            marker_color=[emotion_color(n) for n in names],
            text=[f"{v:.0%}" for v in ys],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title=y_title)
    return _layout(fig, title=title, showlegend=False)


def learning_curves(history: pd.DataFrame) -> go.Figure:
    """Accuracy and loss per epoch, training vs validation, side by side; one row per
    ensemble member when the history has a ``member`` column."""
    members = list(dict.fromkeys(history["member"])) if "member" in history else [None]
    titles = [f"{plotly_literal(str(m))} · {what}" if m else what for m in members for what in ("Accuracy", "Loss")]
    fig = make_subplots(rows=len(members), cols=2, subplot_titles=titles, vertical_spacing=0.12)
    series = (
        ("accuracy", 1, "train", "#4c78a8", "solid"),
        ("val_accuracy", 1, "validation", "#f58518", "dash"),
        # Runs selected on several validation sets log each, and the mean they were selected on.
        ("val_fer_accuracy", 1, "FER2013 PublicTest", "#f58518", "dash"),
        ("val_expw_accuracy", 1, "ExpW held-back photos", "#54a24b", "dash"),
        ("val_ferplus_accuracy", 1, "FER+ majority (PublicTest)", "#e45756", "dash"),
        ("val_mean_accuracy", 1, "selection (mean)", "#b279a2", "dot"),
        ("loss", 2, "train", "#4c78a8", "solid"),
        ("val_loss", 2, "validation", "#f58518", "dash"),
    )
    for row, member in enumerate(members, start=1):
        part = history if member is None else history[history["member"] == member]
        x = part["epoch"] if "epoch" in part else np.arange(1, len(part) + 1)
        for col, pos, name, color, dash in series:
            if col in part and part[col].notna().any():
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=part[col],
                        name=name,
                        legendgroup=name,
                        showlegend=pos == 1 and row == 1,
                        line=dict(color=color, dash=dash),
                    ),
                    row=row,
                    col=pos,
                )
    fig.update_xaxes(title="epoch")
    return _layout(
        fig,
        height=360 * len(members),
        legend=dict(orientation="h", yanchor="bottom", y=1 + 0.1 / len(members), xanchor="center", x=0.5),
        margin=dict(l=10, r=10, t=70, b=10),
    )


def roc_curves(roc_split: Mapping[str, Mapping]) -> go.Figure:
    """One-vs-rest ROC curve per class with its AUC in the legend."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbbbbb", dash="dot"), name="chance", hoverinfo="skip"
        )
    )
    for name, curve in roc_split.items():
        auc = curve.get("auc")
        label = f"{name} (AUC {auc:.2f})" if isinstance(auc, (int, float)) else name
        fig.add_trace(
            go.Scatter(
                x=curve.get("fpr", []),
                y=curve.get("tpr", []),
                mode="lines",
                name=label,
                line=dict(color=emotion_color(name)),
            )
        )
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02])
    return _layout(fig, height=420)


def reliability_diagram(reliability: Mapping[str, Sequence], title: str = "Reliability") -> go.Figure:
    """Accuracy vs confidence per confidence bin; the diagonal is perfect calibration."""
    lower = np.asarray(reliability.get("bin_lower", []), dtype=float)
    upper = np.asarray(reliability.get("bin_upper", []), dtype=float)
    acc = np.asarray(reliability.get("accuracy", []), dtype=float)
    conf = np.asarray(reliability.get("confidence", []), dtype=float)
    count = np.asarray(reliability.get("count", []), dtype=float)
    centers = (lower + upper) / 2 if len(lower) == len(upper) else conf
    keep = count > 0 if len(count) == len(centers) else np.ones(len(centers), bool)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line=dict(color="#bbbbbb", dash="dot"),
            name="perfect calibration",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Bar(
            x=centers[keep],
            y=acc[keep],
            width=(upper - lower)[keep] * 0.9 if len(upper) else None,
            name="accuracy",
            marker_color="#4c78a8",
            opacity=0.8,
            customdata=count[keep] if len(count) else None,
            hovertemplate="confidence ~%{x:.2f}: accuracy %{y:.1%} (%{customdata:.0f} faces)<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=centers[keep], y=conf[keep], mode="markers", name="mean confidence", marker=dict(color="#f58518", size=7)
        )
    )
    fig.update_xaxes(title="confidence", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1], tickformat=".0%")
    return _layout(fig, height=380, title=title, legend=LEGEND_TOP)


def model_comparison(df: pd.DataFrame, title: str = "Test accuracy by model") -> go.Figure:
    """Horizontal bars of PrivateTest accuracy per model, this project's model highlighted."""
    df = df.sort_values("private_test_accuracy", na_position="first")
    ours = df.get("source", pd.Series([""] * len(df))).astype(str).str.contains("this project")
    fig = go.Figure(
        go.Bar(
            y=df["model"].astype(str),
            x=df["private_test_accuracy"],
            orientation="h",
            marker_color=["#2ca02c" if o else "#9ecae1" for o in ours],
            text=[f"{v:.1%}" if pd.notna(v) else "" for v in df["private_test_accuracy"]],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1.05])
    return _layout(fig, height=140 + 35 * len(df), title=title, showlegend=False)
