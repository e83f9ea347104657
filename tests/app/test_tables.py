"""Dashboard tables: plain headers with a tooltip, one number format per kind."""

from __future__ import annotations

from src.app import tables
from src.training import model_card


def test_column_config_gives_words_and_one_format_per_kind():
    settings = tables.column_config(model_card.CROSS_DATASET_COLUMNS)
    assert settings["macro_f1"]["label"] == "Macro-F1 (0-1, balanced over emotions)"
    assert settings["macro_f1"]["type_config"]["format"] == "%.3f"
    assert settings["accuracy"]["type_config"]["format"] == "%.1f%%"
    assert settings["faces_found"]["type_config"]["max_value"] == 100.0
    assert all(setting["help"] for setting in settings.values())


def test_a_percentage_with_a_missing_value_is_a_number_not_a_bar():
    """Streamlit leaves a bar cell blank where a number cell shows the "—" placeholder."""
    table = model_card.display_table(
        model_card.cross_dataset_table(None, {"rows": [{"dataset": "CK+", "faces": 9, "accuracy": 0.7}]}),
        model_card.CROSS_DATASET_COLUMNS,
    )
    settings = tables.column_config(model_card.CROSS_DATASET_COLUMNS, table)
    assert settings["accuracy"]["type_config"]["type"] == "progress"
    assert settings["faces_found"]["type_config"]["type"] == "number"
    assert settings["faces_found"]["type_config"]["format"] == "%.1f%%"


def test_doubtful_faces_are_counted_left_out_and_explained():
    import pandas as pd

    from src.analytics import aggregates
    from src.engine.faces import Box
    from src.engine.results import FaceResult, ImageResult

    labels = ("happy", "sad")

    def face(emotion: str, doubts: tuple[str, ...] = ()) -> FaceResult:
        probs = {"happy": 0.9, "sad": 0.1} if emotion == "happy" else {"happy": 0.2, "sad": 0.8}
        return FaceResult(Box(1, 1, 40, 40), probs, emotion, max(probs.values()), uncertain=bool(doubts), doubts=doubts)

    results = [
        ImageResult("a.jpg", [face("happy"), face("sad", ("blurred",)), face("sad", ("blurred", "small"))]),
        ImageResult("b.jpg", status="no_face"),
    ]
    df = aggregates.results_frame(results, labels)
    assert tables.doubtful_mask(df).tolist() == [False, True, True, False]
    kept, doubtful = tables.without_doubtful(df)
    assert kept["file"].tolist() == ["a.jpg", "b.jpg"]  # the faceless file stays
    assert aggregates.summarize(kept).dominant_share == 1.0 and aggregates.summarize(df).dominant == "sad"
    assert tables.left_out_caption(doubtful) == "2 doubtful faces left out of these shares (blurred 2, small face 1)."
    # A table from before the doubt columns has no doubtful faces.
    assert not tables.doubtful_mask(df.drop(columns=["uncertain", "doubt"])).any()
    assert tables.doubtful_mask(pd.DataFrame()).empty
    # The per-face table shows the flag as a checkbox and the reasons as text.
    settings = tables.face_table_config(labels)
    assert settings["uncertain"]["type_config"]["type"] == "checkbox" and settings["uncertain"]["help"]
    assert settings["doubt"]["type_config"]["type"] == "text"
