"""Colours shared by the charts and the annotated images, so one emotion looks the same everywhere."""

from __future__ import annotations

from src import groups

# Negative emotions in warm reds/purples, positive in green, neutral-ish in blues/greys:
# an analyst reads the sentiment of a chart before reading its labels.
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "sad": "#e377c2",
    "happy": "#2ca02c",
    "surprise": "#17becf",
    "neutral": "#7f7f7f",
}
SENTIMENT_COLORS: dict[str, str] = {
    "positive": "#2ca02c",
    "neutral": "#7f9fbf",
    "negative": "#d62728",
}
SENTIMENT_ORDER: tuple[str, ...] = groups.SENTIMENT_BUCKETS
FALLBACK_COLOR = "#1f77b4"


def emotion_color(emotion: str) -> str:
    return EMOTION_COLORS.get(emotion, FALLBACK_COLOR)


def sentiment_of(emotion: str) -> str:
    """Sentiment bucket of an emotion label (unknown labels count as the sentiment grouping's
    ``other``: neutral). The sentiment grouping in force is ``groups.sentiment()``."""
    return groups.sentiment().label_of_emotion(emotion)


def sentiment_color(sentiment: str) -> str:
    return SENTIMENT_COLORS.get(sentiment, FALLBACK_COLOR)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)
