"""Colours shared by the charts and the annotated images, so one emotion looks the same everywhere."""

from __future__ import annotations

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
# Custom emotion groups (src/analytics/groups/) take these in turn: none is an emotion's colour.
GROUP_COLORS: tuple[str, ...] = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#eeca3b", "#72b7b2", "#ff9da6", "#9d755d")
FALLBACK_COLOR = "#1f77b4"


def emotion_color(emotion: str) -> str:
    return EMOTION_COLORS.get(emotion, FALLBACK_COLOR)


def sentiment_color(sentiment: str) -> str:
    return SENTIMENT_COLORS.get(sentiment, FALLBACK_COLOR)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)
