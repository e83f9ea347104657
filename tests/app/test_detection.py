"""The Emotion Detection page's summary line (src/app/detection/__init__.py): it names the labels
of the model in use and the sentiment grouping in force, not a fixed text."""

from __future__ import annotations

from src.analytics import groups
from src.app.detection import intro


def test_intro_counts_the_seven_labels_and_the_builtin_sentiment():
    text = intro()
    assert "classified into 7 expressions" in text
    assert "happy = positive" in text
    assert "angry, disgust, fear and sad = negative" in text


def test_intro_follows_an_adapted_model_with_fewer_labels():
    text = intro(["happy", "sad", "neutral"])
    assert "classified into 3 expressions" in text
    assert "angry" not in text and "surprise" not in text
    assert "sad = negative" in text


def test_intro_follows_a_custom_sentiment_grouping():
    custom = groups.Grouping(
        "sentiment",
        (groups.Group("upbeat", ("happy", "surprise")), groups.Group("down", ("sad",))),
        partition=True,
        other="flat",
    )
    text = intro(["happy", "surprise", "sad", "neutral"], custom)
    assert "happy and surprise = upbeat" in text
    assert "sad = down" in text
