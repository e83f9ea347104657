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
