"""The result schema (src/engine/results.py): typed faces, their rows and the table's columns."""

from __future__ import annotations

from src.engine.faces import Box
from src.engine.results import FaceResult, FailedFile, ImageResult, file_row, table_columns

LABELS = ("happy", "sad")


def face(uncertain: bool = False, doubts: tuple[str, ...] = ()) -> FaceResult:
    return FaceResult(Box(1, 2, 30, 40), {"happy": 0.8, "sad": 0.2}, "happy", 0.8, uncertain=uncertain, doubts=doubts)


def test_the_doubt_columns_come_after_the_older_ones():
    assert table_columns(LABELS) == (
        "file", "face", "x", "y", "w", "h", "emotion", "confidence", "happy", "sad", "status", "error",
        "uncertain", "doubt",
    )  # fmt: skip


def test_each_face_row_carries_its_doubt_and_faceless_rows_leave_it_blank():
    rows = ImageResult("a.jpg", [face(), face(True, ("blurred", "small"))]).rows(LABELS)
    assert [(r["uncertain"], r["doubt"]) for r in rows] == [(False, ""), (True, "blurred; small")]
    assert all(list(r) == list(table_columns(LABELS)) for r in rows)
    for row in (file_row("b.jpg", "no_face", "", LABELS), *FailedFile("c.zip", "bad archive").rows(LABELS)):
        assert (row["uncertain"], row["doubt"]) == ("", "")


def test_a_face_without_a_verdict_is_not_doubtful():
    plain = FaceResult(None, {"happy": 1.0}, "happy", 1.0)
    assert (plain.uncertain, plain.doubts) == (False, ())
    assert plain.to_dict()["doubts"] == [] and face(True, ("small",)).to_dict()["doubts"] == ["small"]
