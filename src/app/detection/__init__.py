"""The tabs of the Emotion Detection page (``pages/2_emotion_detection.py``), one module each:
``photos``, ``batch`` (batches and their campaign comparison), ``live`` (the camera), ``video``
and ``history`` (saved results, trends and the emotion-groups editor); ``common`` holds what
several tabs share (the recognizer, the campaign/location fields and *Save results* switch,
saving to the results store). Each tab module has one ``render()`` that draws the tab.

The modules keep no state of their own: what must survive a rerun lives in ``st.session_state``."""

from __future__ import annotations

from src import config
from src.analytics import groups


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def intro(class_names: list[str] | tuple[str, ...] | None = None, sentiment: groups.Grouping | None = None) -> str:
    """The page's one-line summary: the labels of the model in use (an adapted model may have
    fewer than seven) and what the sentiment grouping in force makes of them."""
    labels = list(class_names or config.EMOTIONS)
    sentiment = sentiment or groups.sentiment()
    parts = []
    for bucket in sentiment.buckets:
        members = [label for label in labels if sentiment.label_of_emotion(label) == bucket]
        if members:
            parts.append(f"{_listed(members)} = {bucket}")
    return f"Faces are found, cropped and classified into {len(labels)} expressions. Sentiment groups them: {'; '.join(parts)}."
