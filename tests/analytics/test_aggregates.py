"""Aggregations behind the dashboard: result tables, shares, campaign comparison, exports."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from src.analytics import aggregates
from src.engine.results import FailedFile

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _face(emotion: str, conf: float = 0.8):
    from src.engine.faces import Box
    from src.engine.results import FaceResult

    rest = (1 - conf) / (len(CLASSES) - 1)
    probs = {c: (conf if c == emotion else rest) for c in CLASSES}
    return FaceResult(box=Box(10, 20, 30, 40), emotions=probs, emotion=emotion, confidence=conf)


def _image(name: str, *emotions: str, status: str = "ok", error: str = ""):
    from src.engine.results import ImageResult

    return ImageResult(file=name, faces=[_face(e) for e in emotions], status=status, error=error, width=100, height=100)


@pytest.fixture
def results():
    return [
        _image("a.jpg", "happy", "happy", "sad"),
        _image("b.jpg", "neutral"),
        _image("c.jpg", status="no_face"),
        _image("d.jpg", status="error", error="not an image"),
    ]


def test_results_frame_has_cli_schema_and_one_row_per_face(results):
    df = aggregates.results_frame(results, CLASSES)
    assert list(df.columns) == [
        "file",
        "face",
        "x",
        "y",
        "w",
        "h",
        "emotion",
        "confidence",
        *CLASSES,
        "status",
        "error",
        "uncertain",
        "doubt",
    ]
    assert len(df) == 6  # 3 + 1 faces, plus one row each for the faceless and the broken file
    assert df.loc[df["file"] == "d.jpg", "error"].item() == "not an image"
    assert df["face"].dtype == "Int64" and df["confidence"].dtype == float
    assert pd.isna(df.loc[df["file"] == "c.jpg", "confidence"].item())


def test_emotion_and_sentiment_counts(results):
    df = aggregates.results_frame(results, CLASSES)
    counts = aggregates.emotion_counts(df, CLASSES).set_index("emotion")
    assert list(counts.index) == list(CLASSES)
    assert counts.loc["happy", "faces"] == 2 and counts.loc["angry", "faces"] == 0
    assert counts["share"].sum() == pytest.approx(1.0)
    sent = aggregates.sentiment_counts(df).set_index("sentiment")
    assert list(sent.index) == ["positive", "neutral", "negative"]
    assert list(sent["faces"]) == [2, 1, 1]
    assert aggregates.net_sentiment(df) == pytest.approx(25.0)


def test_summary_counts_files_faces_and_problems(results):
    summary = aggregates.summarize(aggregates.results_frame(results, CLASSES))
    assert (summary.files, summary.faces, summary.no_face, summary.errors) == (4, 4, 1, 1)
    assert summary.dominant == "happy" and summary.dominant_share == pytest.approx(0.5)
    assert summary.negative_share == pytest.approx(0.25)


def test_empty_batch_has_no_shares():
    df = aggregates.results_frame([_image("x.jpg", status="no_face")], CLASSES)
    assert aggregates.net_sentiment(df) is None
    assert aggregates.emotion_counts(df, CLASSES)["faces"].sum() == 0
    summary = aggregates.summarize(df)
    assert summary.faces == 0 and summary.dominant is None


def test_with_sentiment_adds_column_after_confidence(results):
    df = aggregates.with_sentiment(aggregates.results_frame(results, CLASSES))
    cols = list(df.columns)
    assert cols[cols.index("confidence") + 1] == "sentiment"
    assert df.loc[df["file"] == "a.jpg", "sentiment"].tolist() == ["positive", "positive", "negative"]
    assert df.loc[df["file"] == "c.jpg", "sentiment"].item() == ""


def test_campaign_comparison_tables():
    batches = {
        "Ad A": aggregates.results_frame([_image("1.jpg", "happy", "happy", "neutral", "sad")], CLASSES),
        "Ad B": aggregates.results_frame([_image("2.jpg", "angry", "sad"), _image("3.jpg", "happy")], CLASSES),
    }
    table = aggregates.campaign_table(batches, CLASSES).set_index("batch")
    assert table.loc["Ad A", "happy %"] == 50.0 and table.loc["Ad B", "photos"] == 2
    assert table.loc["Ad A", "net sentiment"] == 25.0
    assert table.loc["Ad B", "net sentiment"] == pytest.approx(-33.3)
    long = aggregates.campaign_long(batches, CLASSES)
    assert len(long) == 2 * len(CLASSES)
    assert long.groupby("batch")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert aggregates.campaign_long({}, CLASSES).empty


def test_failed_file_rows_join_the_table():
    failed = FailedFile("bad.zip", "not a readable zip archive")
    df = aggregates.results_frame([_image("a.jpg", "happy"), failed], CLASSES)
    assert df["status"].tolist() == ["ok", "error"]
    assert df["error"].tolist()[1] == "not a readable zip archive"


def test_exports(results):
    df = aggregates.results_frame(results, CLASSES)
    csv = aggregates.csv_bytes(df).decode()
    assert csv.splitlines()[0].startswith("file,face,x,y,w,h,emotion,confidence,angry")
    assert len(csv.strip().splitlines()) == 1 + len(df)
    payload = json.loads(aggregates.results_json(results, CLASSES))
    assert payload["class_names"] == list(CLASSES)
    first = payload["results"][0]
    assert first["file"] == "a.jpg" and len(first["faces"]) == 3
    assert first["faces"][0]["sentiment"] == "positive" and first["faces"][0]["box"]["w"] == 30
    assert payload["results"][3]["error"] == "not an image"


def test_csv_downloads_neutralise_formulas_and_json_stays_exact():
    """A file or batch named like a formula is written so a spreadsheet shows it, not runs it."""
    import io

    hostile = "=cmd|' /C calc'!A0.jpg"
    results = [_image(hostile, "sad", "angry"), _image("@SUM(A1).png", status="error", error="not an image")]
    df = aggregates.results_frame(results, CLASSES)
    back = pd.read_csv(io.BytesIO(aggregates.csv_bytes(df)))
    assert back["file"].tolist() == ["'" + hostile, "'" + hostile, "'@SUM(A1).png"]
    assert back["confidence"].dtype == float and back["x"].tolist()[:2] == [10, 10]

    table = aggregates.campaign_table({"-Ad B": df, "+Ad C": df}, CLASSES)
    back = pd.read_csv(io.BytesIO(aggregates.csv_bytes(table)))
    assert back["batch"].tolist() == ["'-Ad B", "'+Ad C"]
    assert back["net sentiment"].tolist() == [-100.0, -100.0]  # negative numbers stay numbers

    payload = json.loads(aggregates.results_json(results, CLASSES))
    assert [r["file"] for r in payload["results"]] == [hostile, "@SUM(A1).png"]


# --- custom emotion groups (src/analytics/groups/) -------------------------------------------


def _groups(text: str):
    from src.analytics import groups

    return groups.parse_lines(text).groupings


def test_with_groups_adds_columns_after_the_existing_ones(results):
    df = aggregates.results_frame(results, CLASSES)
    custom = _groups("[custom]\nfrustrated = angry + disgust + sad\nhappy = happy (confidence >= 0.9)")
    mood = _groups("[mood] partition\nup = happy\ndown = sad + angry")
    out = aggregates.with_groups(df, [*custom, *mood])
    assert list(out.columns[: len(df.columns)]) == list(df.columns)  # existing columns untouched
    # "happy" is a label's column already: the group's column says whose it is.
    assert list(out.columns[len(df.columns) :]) == ["frustrated", "custom: happy", "other", "mood"]
    faces = out[out["status"] == "ok"]
    assert faces["frustrated"].tolist() == [False, False, True, False]
    assert faces["custom: happy"].tolist() == [False] * 4  # confidence 0.8 < 0.9
    assert faces["mood"].tolist() == ["up", "up", "down", "other"]
    blank = out[out["file"] == "c.jpg"].iloc[0]
    assert pd.isna(blank["frustrated"]) and blank["mood"] == ""
    assert list(aggregates.with_groups(df, ()).columns) == list(df.columns)


def test_default_groups_come_from_the_groups_file(results):
    """The shipped inputs/emotion_groups.toml: frustrated and delighted (happy at 0.7 or more)."""
    df = aggregates.results_frame(results, CLASSES)
    assert list(aggregates.with_groups(df).columns[-3:]) == ["frustrated", "delighted", "other"]
    summary = aggregates.summarize(df)
    assert summary.group_shares == pytest.approx({"frustrated": 0.25, "delighted": 0.5, "other": 0.25})
    assert (
        aggregates.summarize(aggregates.results_frame([_image("x.jpg", status="no_face")], CLASSES)).group_shares == {}
    )
    counts = aggregates.group_counts(df)
    assert counts.columns.tolist() == ["grouping", "group", "faces", "share"]
    assert counts["faces"].tolist() == [1, 2, 1]
    scores = aggregates.group_scores(df).set_index("group")["score"]
    assert scores["delighted"] == pytest.approx((0.8 + 0.8 + 0.2 / 6 + 0.2 / 6) / 4, abs=1e-3)
    assert aggregates.group_counts(df, ()).empty and aggregates.group_scores(df, ()).empty


def test_campaign_table_and_exports_gain_group_columns(results):
    df = aggregates.results_frame(results, CLASSES)
    plain = aggregates.campaign_table({"A": df}, CLASSES, groupings=())
    table = aggregates.campaign_table({"A": df}, CLASSES)
    assert list(table.columns[: len(plain.columns)]) == list(plain.columns)
    assert list(table.columns[len(plain.columns) :]) == ["frustrated %", "delighted %", "other %"]
    assert table.loc[0, "delighted %"] == 50.0
    clash = aggregates.campaign_table({"A": df}, CLASSES, _groups("[x]\npositive = happy + surprise"))
    assert clash.columns[-2:].tolist() == ["x: positive %", "other %"]
    payload = json.loads(aggregates.results_json(results, CLASSES))
    assert [f["groups"] for f in payload["results"][0]["faces"]] == [
        {"custom": ["delighted"]},
        {"custom": ["delighted"]},
        {"custom": ["frustrated"]},
    ]


def test_group_names_are_plain_data_in_csv_headers_and_cells(results):
    import io

    df = aggregates.results_frame(results, CLASSES)
    hostile = _groups('[g]\n"=HYPERLINK(\\"http://x\\")" = sad\n@SUM = happy')
    out = aggregates.with_groups(df, hostile)
    assert out.columns[-3:].tolist() == ['=HYPERLINK("http://x")', "@SUM", "other"]  # the exact names
    back = pd.read_csv(io.BytesIO(aggregates.csv_bytes(out)))
    assert back.columns[-3:].tolist() == ['\'=HYPERLINK("http://x")', "'@SUM", "other"]
    table = aggregates.campaign_table({"A": df}, CLASSES, hostile)
    assert pd.read_csv(io.BytesIO(aggregates.csv_bytes(table))).columns[-3].startswith("'=HYPERLINK")


def test_export_frame_carries_what_the_table_shows_plus_campaign_and_location(results):
    """Issue 20: the batch CSV had no sentiment, campaign, location or custom-group columns."""
    import io

    df = aggregates.results_frame(results, CLASSES)
    shown = aggregates.with_groups(aggregates.with_sentiment(df))
    out = aggregates.export_frame(df, campaign="Spring ad A", location=["Store 12"] * 4 + ["Store 7"] * 2)
    assert list(out.columns) == ["campaign", "location", *shown.columns]
    assert {"sentiment", "frustrated", "delighted", "other"} <= set(out.columns)
    assert set(out["campaign"]) == {"Spring ad A"} and out["location"].tolist()[-2:] == ["Store 7", "Store 7"]
    assert out.loc[out["file"] == "a.jpg", "sentiment"].tolist() == ["positive", "positive", "negative"]
    assert list(aggregates.export_frame(df, location="Paris").columns[:2]) == ["location", "file"]
    assert list(aggregates.export_frame(df).columns) == list(shown.columns)
    with pytest.raises(ValueError, match="location"):
        aggregates.export_frame(df, location=["one row only"])

    # A group named like a column added here keeps the column's name; formulas are neutralised.
    clash = _groups("[g]\ncampaign = happy")
    hostile = aggregates.export_frame(df, campaign='=HYPERLINK("http://x")', location="@Store", groupings=clash)
    assert list(hostile.columns[:2]) == ["campaign", "location"] and "g: campaign" in hostile.columns
    back = pd.read_csv(io.BytesIO(aggregates.csv_bytes(hostile)))
    assert set(back["campaign"]) == {'\'=HYPERLINK("http://x")'} and set(back["location"]) == {"'@Store"}
