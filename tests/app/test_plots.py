"""Every chart builder returns a figure for realistic inputs and degrades on empty ones."""

from __future__ import annotations

import fake_outputs as fake
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from src.app import plots
from src.common.palette import emotion_color

CLASSES = fake.CLASSES


def test_probability_bar_sorted_with_emotion_colours():
    probs = dict(zip(CLASSES, (0.05, 0.01, 0.04, 0.6, 0.1, 0.15, 0.05)))
    fig = plots.probability_bar(probs, CLASSES)
    bar = fig.data[0]
    assert list(bar.y)[-1] == "happy"  # drawn bottom-up: the top emotion is the top bar
    assert list(bar.marker.color)[-1] == emotion_color("happy")
    assert list(bar.text)[-1] == "60%"


def test_batch_charts():
    counts = pd.DataFrame(
        {"emotion": CLASSES, "faces": [1, 0, 0, 5, 2, 1, 1], "share": np.array([1, 0, 0, 5, 2, 1, 1]) / 10}
    )
    assert isinstance(plots.emotion_distribution(counts), go.Figure)
    shares = pd.DataFrame(
        {"sentiment": ["positive", "neutral", "negative"], "faces": [5, 2, 3], "share": [0.5, 0.2, 0.3]}
    )
    assert list(plots.sentiment_donut(shares).data[0].labels) == ["positive", "neutral", "negative"]
    long = pd.DataFrame(
        {"batch": ["A"] * 7 + ["B"] * 7, "emotion": list(CLASSES) * 2, "faces": [1] * 14, "share": [1 / 7] * 14}
    )
    assert len(plots.campaign_bars(long).data) == 2
    table = pd.DataFrame(
        {"batch": ["A", "B"], "positive %": [50.0, 20.0], "negative %": [10.0, 60.0], "net sentiment": [40.0, None]}
    )
    fig = plots.campaign_sentiment(table)
    assert len(fig.data) == 3 and [a.text for a in fig.layout.annotations] == ["net +40", "no faces"]


def test_campaign_charts_show_batch_names_as_typed():
    """Plotly reads <a href>, <b> and entities in labels, and %{...} in hover templates."""
    name = '<a href="http://tracker.invalid/">Ad</a> %{y} &amp;'
    long = pd.DataFrame({"batch": [name] * 7, "emotion": list(CLASSES), "faces": [1] * 7, "share": [1 / 7] * 7})
    bar = plots.campaign_bars(long).data[0]
    assert bar.name == '&lt;a href="http://tracker.invalid/"&gt;Ad&lt;/a&gt; %{y} &amp;amp;'
    assert "tracker" not in bar.hovertemplate
    table = pd.DataFrame({"batch": [name], "positive %": [50.0], "negative %": [10.0], "net sentiment": [40.0]})
    fig = plots.campaign_sentiment(table)
    assert {tuple(trace.y) for trace in fig.data} == {(bar.name,)}
    assert fig.layout.annotations[0].y == bar.name


def test_timeline_skips_missing_columns():
    df = pd.DataFrame({"time_s": [0, 1], "happy": [0.5, 0.7], "sad": [0.5, 0.3]})
    fig = plots.emotion_timeline(df, CLASSES)
    assert [t.name for t in fig.data] == ["sad", "happy"] or {t.name for t in fig.data} == {"happy", "sad"}


def test_live_timeline_labels_shares_of_faces():
    df = pd.DataFrame(
        {"time": pd.to_datetime(["2025-01-01 10:00:00", "2025-01-01 10:00:01"]), "happy": [1.0, 0.5], "sad": [0.0, 0.5]}
    )
    fig = plots.emotion_timeline(
        df, CLASSES, time_col="time", y_title="share of faces", hover_unit="of faces", compact=True
    )
    assert fig.layout.yaxis.title.text == "share of faces"
    assert all("of faces" in t.hovertemplate for t in fig.data)
    assert fig.layout.legend.y < 0, "the compact legend sits under the plot"
    assert fig.layout.xaxis.tickformat == "%H:%M:%S"
    assert plots.emotion_timeline(df, CLASSES, time_col="time").layout.yaxis.title.text == "mean probability"


def test_data_analysis_charts():
    stats = fake.dataset_stats()
    assert len(plots.class_counts(stats).data) == 3
    assert isinstance(plots.class_share(stats), go.Figure)
    assert len(plots.pixel_histogram(stats).data[0].x) == 32
    assert len(plots.pixel_stats(stats).data[0].x) == 7
    agreement = stats["ferplus_agreement"]
    assert isinstance(plots.per_class_bars(agreement["per_class"], "Agreement"), go.Figure)
    empty = {"class_names": [], "class_counts": {}, "pixel_stats": {}}
    for builder in (plots.class_counts, plots.class_share, plots.pixel_histogram, plots.pixel_stats):
        assert isinstance(builder(empty), go.Figure)


@pytest.mark.parametrize("normalise", [False, True])
def test_heatmap(normalise):
    cm = fake.metrics()["splits"]["PrivateTest"]["confusion_matrix"]
    fig = plots.heatmap(cm + [], CLASSES, normalise=normalise)
    z = np.asarray(fig.data[0].z)
    if normalise:
        assert z.sum(axis=1) == pytest.approx(np.ones(7))
        assert fig.data[0].text[3][3].endswith("%")
    else:
        assert z.sum() == fake.metrics()["splits"]["PrivateTest"]["n"]
    zero = plots.heatmap([[0, 0], [1, 1]], ["a", "b"], normalise=True)
    assert np.asarray(zero.data[0].z)[0].tolist() == [0, 0]


def test_model_performance_charts():
    assert len(plots.learning_curves(fake.history()).data) == 4
    roc = fake.roc()["PrivateTest"]
    fig = plots.roc_curves(roc)
    assert len(fig.data) == 8 and "AUC 0.95" in fig.data[4].name
    rel = fake.metrics()["calibration"]["reliability"]["PrivateTest"]
    fig = plots.reliability_diagram(rel)
    assert len(fig.data[1].x) == 9  # the empty first bin is left out
    fig = plots.model_comparison(fake.model_comparison())
    assert list(fig.data[0].marker.color)[-1] == "#2ca02c"  # ours, the best, drawn last (top)
    assert isinstance(plots.reliability_diagram({}), go.Figure)


def test_small_batches_get_whole_face_ticks_and_no_zero_labels():
    counts = pd.DataFrame({"emotion": CLASSES, "faces": [0, 0, 0, 1, 0, 0, 0], "share": [0, 0, 0, 1.0, 0, 0, 0]})
    fig = plots.emotion_distribution(counts)
    assert fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.tickformat == "d"
    shares = pd.DataFrame({"sentiment": ["positive", "neutral", "negative"], "faces": [1, 0, 0], "share": [1.0, 0, 0]})
    assert list(plots.sentiment_donut(shares).data[0].text) == ["100%", "", ""]


def test_learning_curves_show_each_validation_set():
    history = pd.DataFrame(
        {
            "epoch": [0, 1],
            "accuracy": [0.5, 0.6],
            "loss": [1.4, 1.2],
            "val_fer_accuracy": [0.6, 0.62],
            "val_expw_accuracy": [0.37, 0.4],
            "val_mean_accuracy": [0.485, 0.51],
        }
    )
    names = [trace.name for trace in plots.learning_curves(history).data]
    assert names == ["train", "FER2013 PublicTest", "ExpW held-back photos", "selection (mean)", "train"]


def test_learning_curves_give_each_ensemble_member_its_row():
    wild = pd.DataFrame({"epoch": [0, 1], "accuracy": [0.5, 0.6], "loss": [1.4, 1.2], "val_expw_accuracy": [0.3, 0.4]})
    teacher = pd.DataFrame({"epoch": [0, 1, 2], "accuracy": [0.4, 0.5, 0.6], "loss": [1.5, 1.3, 1.2]})
    history = pd.concat([wild.assign(member="wild"), teacher.assign(member="<b>teacher</b>")], ignore_index=True)
    fig = plots.learning_curves(history)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["wild · Accuracy", "wild · Loss"]
    assert titles[2:] == [
        "&lt;b&gt;teacher&lt;/b&gt; · Accuracy",
        "&lt;b&gt;teacher&lt;/b&gt; · Loss",
    ]  # shown as typed
    # The teacher logged no ExpW accuracy: no empty line for it; its own 3 epochs in its row.
    assert [(t.name, len(t.x)) for t in fig.data] == [
        ("train", 2),
        ("ExpW held-back photos", 2),
        ("train", 2),
        ("train", 3),
        ("train", 3),
    ]
    assert [t.showlegend for t in fig.data] == [True, True, False, False, False]


def _trend_frames():
    from src.analytics import trends

    rows = []
    for day, campaign, emotions in (
        ("2026-03-02", "Ad A", ["happy", "happy", "sad"]),
        ("2026-03-03", "Ad A", ["neutral", "happy"]),
        ("2026-03-03", '<a href="http://tracker.invalid/">B</a> %{y}', ["sad", "angry"]),
    ):
        for e in emotions:  # tallies of one person each (``Store.tallies``' columns)
            rows.append(
                {"hour": pd.Timestamp(day, tz="UTC"), "campaign": campaign, "source": "batch", "emotion": e, "n": 1}
            )
    return trends, pd.DataFrame(rows)


def test_share_trend_stacks_each_label_per_period():
    trends, df = _trend_frames()
    grouping = trends.sentiment_grouping()
    fig = plots.share_trend(trends.shares_over_time(df, grouping, "day"), grouping.buckets, "sentiment", "day")
    assert [t.name for t in fig.data] == ["positive", "neutral", "negative"]
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.tickformat == ".0%"
    positive = fig.data[0]
    assert list(positive.y) == pytest.approx([2 / 3, 1 / 4]) and positive.marker.color == "#2ca02c"
    assert positive.customdata[0].tolist() == [2, 3]
    empty = plots.share_trend(trends.shares_over_time(df.iloc[:0], grouping), grouping.buckets, "sentiment")
    assert isinstance(empty, go.Figure) and not empty.data


def test_campaign_comparison_has_interval_error_bars_and_names_as_typed():
    trends, df = _trend_frames()
    grouping = trends.emotion_grouping(CLASSES)
    long = trends.campaign_shares(df, grouping)
    fig = plots.campaign_comparison(long, grouping.buckets, "emotion")
    assert len(fig.data) == 2 and fig.layout.barmode == "group"
    a = fig.data[0]
    assert a.name == "Ad A" and list(a.x) == list(CLASSES)
    happy = list(a.x).index("happy")
    low, high = trends.wilson_interval(3, 5)
    assert a.y[happy] == pytest.approx(0.6)
    assert a.error_y.array[happy] == pytest.approx(high - 0.6) and a.error_y.arrayminus[happy] == pytest.approx(
        0.6 - low
    )
    b = fig.data[1]
    assert b.name == '&lt;a href="http://tracker.invalid/"&gt;B&lt;/a&gt; %{y}'
    assert all("tracker" not in t.hovertemplate for t in fig.data)


def test_custom_group_labels_take_turns_in_the_group_colours():
    from src.common.palette import GROUP_COLORS

    assert plots.label_color("frustrated", "custom", 0) == GROUP_COLORS[0]
    assert plots.label_color("x", "custom", len(GROUP_COLORS) + 1) == GROUP_COLORS[1]
    assert plots.label_color("happy", "emotion") == emotion_color("happy")


def test_share_charts_say_what_they_count():
    """The History charts count people, or samples, and say which (issue 16)."""
    trends, df = _trend_frames()
    grouping = trends.sentiment_grouping()
    long = trends.shares_over_time(df, grouping, "day")
    fig = plots.share_trend(long, grouping.buckets, "sentiment", "day", unit="people")
    assert fig.layout.yaxis.title.text == "share of people" and fig.layout.title.text == "Share of people over time"
    assert all(t.hovertemplate.endswith(" people)<extra></extra>") for t in fig.data)
    fig = plots.campaign_comparison(trends.campaign_shares(df, grouping), grouping.buckets, "sentiment")
    assert (
        fig.layout.yaxis.title.text == "share of samples" and "of %{customdata[1]} samples" in fig.data[0].hovertemplate
    )


def test_corrected_shares_beside_the_shares_as_read_with_their_range():
    frame = pd.DataFrame(
        {
            "label": ["negative", "positive", "<b>x</b> %{y}"],
            "raw": [0.5, 0.3, 0.2],
            "corrected": [0.4, 0.45, 0.15],
            "low": [0.3, 0.35, 0.05],
            "high": [0.5, 0.55, 0.3],
        }
    )
    fig = plots.corrected_shares(frame, "sentiment", title="Sentiment", order=["positive", "negative"])
    raw, corrected = fig.data
    assert (raw.name, corrected.name) == ("as read", "corrected (95% range)")
    assert list(raw.x) == ["positive", "negative", "&lt;b&gt;x&lt;/b&gt; %{y}"]  # in order, names as typed
    assert list(corrected.y) == [0.45, 0.4, 0.15] and raw.marker.color == plots.RAW_COLOR
    assert list(corrected.error_y.array) == pytest.approx([0.1, 0.1, 0.15])
    assert list(corrected.error_y.arrayminus) == pytest.approx([0.1, 0.1, 0.1])
    assert list(corrected.marker.color)[:2] == [
        plots.label_color("positive", "sentiment"),
        plots.label_color("negative", "sentiment"),
    ]
    assert all("x</b>" not in t.hovertemplate for t in fig.data)
    assert not fig.layout.showlegend and "grey: as read" in fig.layout.annotations[0].text  # no one-colour legend
    # Nothing to correct with: the shares as read only.
    plain = plots.corrected_shares(frame.assign(corrected=np.nan, low=np.nan, high=np.nan), "sentiment")
    assert [t.name for t in plain.data] == ["as read"]


def test_figures_carry_the_template_as_naming_it_would(monkeypatch):
    """The template goes in without being validated again (``plots._set_template``): what the
    browser gets is the figure that naming the template in ``update_layout`` gave."""
    import json

    import plotly.io as pio

    frame = pd.DataFrame(
        {"label": ["negative", "positive"], "raw": [0.6, 0.4], "corrected": [0.5, 0.5], "low": [0.4, 0.4]}
    ).assign(high=[0.6, 0.6])
    probs = dict(zip(CLASSES, (0.05, 0.01, 0.04, 0.6, 0.1, 0.15, 0.05)))

    def build() -> list[go.Figure]:
        return [
            plots.corrected_shares(frame, "sentiment", title="Sentiment", order=["positive", "negative"]),
            plots.probability_bar(probs, CLASSES),
        ]

    fast = build()
    with monkeypatch.context() as m:
        m.setattr(plots, "_set_template", lambda fig: fig.update_layout(template=plots.TEMPLATE))
        named = build()
    for fig, ref in zip(fast, named):
        assert json.loads(pio.to_json(fig)) == json.loads(pio.to_json(ref))
        assert fig.layout.template.layout.plot_bgcolor == pio.templates[plots.TEMPLATE].layout.plot_bgcolor
        with pytest.raises(ValueError):  # later changes of the layout are still validated
            fig.update_layout(not_a_layout_property=1)


def test_campaign_comparison_orders_labels_skips_missing_shares_and_keeps_colours_by_place():
    """Each campaign's bars in the grouping's order, labels without a share (or outside the grouping)
    left out, a campaign with none left out but its colour kept for the next, and an interval
    that does not hold its share (rounding) drawn as no bar rather than a negative one."""
    from src.common.palette import GROUP_COLORS

    nan = float("nan")
    rows = [
        ("B", "negative", 0.5, 0.4, 0.6),
        ("B", "neutral", nan, nan, nan),
        ("B", "positive", 0.5, 0.4, 0.6),
        ("A", "positive", 0.7, 0.72, 0.8),  # the interval misses the share: no bar below
        ("A", "other", 0.3, 0.2, 0.4),  # not a bucket of this grouping
        ("E", "positive", nan, nan, nan),  # no share at all: no trace
        ("F", "negative", 1.0, 0.9, 1.0),
    ]
    long = pd.DataFrame(rows, columns=["campaign", "label", "share", "low", "high"]).assign(faces=3, total=10)
    fig = plots.campaign_comparison(long, ["positive", "neutral", "negative"], "sentiment", unit="people")
    assert [t.name for t in fig.data] == ["B", "A", "F"]
    b, a, f = fig.data
    assert list(b.x) == ["positive", "negative"] and list(a.x) == ["positive"] and list(f.x) == ["negative"]
    assert [b.marker.color, a.marker.color, f.marker.color] == [GROUP_COLORS[0], GROUP_COLORS[1], GROUP_COLORS[3]]
    assert list(a.error_y.arrayminus) == [0.0] and list(a.error_y.array) == pytest.approx([0.1])
    assert list(f.error_y.array) == [0.0] and list(b.customdata[0]) == pytest.approx([3, 10, 0.4, 0.6])
