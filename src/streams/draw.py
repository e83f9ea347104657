"""Annotated images: face boxes coloured by sentiment with a numbered "emotion NN%" label,
the label and the box line sized to each face (a group photo's small faces get small labels).

Works on RGB uint8 arrays and any object with ``.box`` (x, y, w, h or None),
``.emotion`` and ``.confidence`` (``results.FaceResult``), so it needs no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from src import config
from src.analytics.groups import sentiment_of
from src.common.palette import FALLBACK_COLOR, hex_to_rgb, sentiment_color

DISPLAY_MAX_SIDE = 1600


class _Face(Protocol):
    box: object
    emotion: str
    confidence: float


def _box_xywh(face: _Face, width: int, height: int) -> tuple[int, int, int, int]:
    box = face.box
    if box is None:
        return 0, 0, width, height
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def _shown_emotion(face: _Face) -> str:
    """The emotion as drawn: with a question mark when its label is doubtful (``src.engine.doubt``;
    the drawing font has no warning sign)."""
    return f"{face.emotion}?" if getattr(face, "uncertain", False) else face.emotion


def face_label(index: int, face: _Face) -> str:
    return f"#{index + 1} {_shown_emotion(face)} {face.confidence:.0%}"


FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_FONT_SCALE = 0.4  # about 9 px high: the smallest label still read at full size
LABEL_WIDTH = 1.5  # a label is at most this many box widths wide (group photos: no label over a neighbour)


@dataclass(frozen=True)
class Label:
    """How one face's box and label are drawn: sizes follow the box, capped by the photo."""

    text: str
    font_scale: float
    stroke: int  # the text's line thickness
    line: int  # the box's line thickness
    rect: tuple[int, int, int, int]  # the filled label background: left, top, right, bottom


def _photo_sizes(height: int, width: int) -> tuple[float, int]:
    """The largest font scale and box line for a photo: legible on phone shots and thumbnails alike."""
    return max(0.45, min(height, width) / 900), max(2, round(min(height, width) / 250))


def _stroke(font_scale: float) -> int:
    return max(1, round(font_scale * 1.8))


def layout_label(index: int, face: _Face, box: tuple[int, int, int, int], height: int, width: int) -> Label:
    """The label of face ``index`` with box ``box`` (x, y, w, h, in the drawn image's pixels).

    The text is about a quarter of the box high and at most ``LABEL_WIDTH`` box widths
    wide, never larger than the photo's own size and never under ``MIN_FONT_SCALE``; when
    the full "#n emotion NN%" would be wider, it drops the confidence, then the emotion
    (the colour still says the sentiment). The label sits above the box, or inside its top
    edge when the face touches the top of the image.
    """
    x, y, bw, bh = box
    cap, photo_line = _photo_sizes(height, width)
    line = max(1, min(photo_line, round(min(bw, bh) / 40)))
    pad = line
    number = f"#{index + 1}"
    # Sized on the longest emotion name, so faces of one size get labels of one size.
    widest = max((*config.EMOTIONS, face.emotion), key=len) + _shown_emotion(face)[len(face.emotion) :]
    candidates = [
        (face_label(index, face), f"{number} {widest} 100%"),
        (f"{number} {_shown_emotion(face)}", f"{number} {widest}"),
        (number, number),
    ]
    room = LABEL_WIDTH * bw - 2 * pad  # for the text
    text, scale = candidates[-1][0], 0.0
    for candidate, sizing in candidates:
        (unit_w, unit_h), _ = cv2.getTextSize(sizing, FONT, 1.0, 1)
        fitted = min(cap, 0.25 * min(bw, bh) / unit_h, room / unit_w)
        # Widths do not scale exactly (rounding, thicker strokes): measure once more and shrink to fit.
        measured = cv2.getTextSize(sizing, FONT, fitted, _stroke(fitted))[0][0]
        if measured > room > 0:
            fitted *= room / measured
        text, scale = candidate, fitted
        if fitted >= MIN_FONT_SCALE:
            break
    scale = max(scale, min(MIN_FONT_SCALE, cap))
    stroke = _stroke(scale)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, stroke)
    label_h, label_w = th + base + 2 * pad, tw + 2 * pad
    top = y - label_h if y - label_h >= 0 else y
    top = max(0, min(top, height - label_h))
    left = min(max(0, x), max(0, width - label_w))
    return Label(text, scale, stroke, line, (left, top, left + label_w, top + label_h))


def fit(rgb: np.ndarray, max_side: int | None = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most ``max_side``; returns the image and the scale used."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def annotate(rgb: np.ndarray, faces: Sequence[_Face], max_side: int | None = None) -> np.ndarray:
    """A copy of ``rgb`` with every face boxed and labelled (input left untouched).

    ``max_side`` downscales first (photos for display); the default keeps the size,
    which live video frames need. Box lines and labels are sized per face (``layout_label``).
    """
    img, scale = fit(rgb, max_side)
    img = np.ascontiguousarray(img).copy()
    h, w = img.shape[:2]
    for i, face in enumerate(faces):
        x, y, bw, bh = (round(v * scale) for v in _box_xywh(face, *rgb.shape[1::-1]))
        label = layout_label(i, face, (x, y, bw, bh), h, w)
        color = hex_to_rgb(sentiment_color(sentiment_of(face.emotion)))
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, label.line)
        left, top, right, bottom = label.rect
        cv2.rectangle(img, (left, top), (right - 1, bottom - 1), color, cv2.FILLED)
        (_, th), _ = cv2.getTextSize(label.text, FONT, label.font_scale, label.stroke)
        cv2.putText(
            img,
            label.text,
            (left + label.line, top + label.line + th),
            FONT,
            label.font_scale,
            (255, 255, 255),
            label.stroke,
            cv2.LINE_AA,
        )
    return img


def face_crop(rgb: np.ndarray, face: _Face, size: int = 112, margin: float = 0.15) -> np.ndarray:
    """A square thumbnail of one face (with a little context) for the per-face cards."""
    h, w = rgb.shape[:2]
    x, y, bw, bh = _box_xywh(face, w, h)
    side = int(max(bw, bh) * (1 + 2 * margin))
    cx, cy = x + bw // 2, y + bh // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    x1, y1 = min(w, x0 + side), min(h, y0 + side)
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        crop = rgb
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def app_icon(size: int = 64) -> Image.Image:
    """The dashboard's favicon, drawn here (RGBA): a smiling face in the theme blue.

    Served by the app itself; a Material or emoji-shortcode icon would make browsers
    fetch it from a third-party font host on every page load.
    """
    scale = 8  # drawn large, then shrunk: smooth edges without anti-aliasing tricks
    big = size * scale
    img = np.zeros((big, big, 4), np.uint8)
    blue = (*hex_to_rgb(FALLBACK_COLOR), 255)
    centre, radius = (big // 2, big // 2), big // 2 - scale
    cv2.circle(img, centre, radius, blue, cv2.FILLED)
    white = (255, 255, 255, 255)
    for dx in (-1, 1):
        cv2.circle(img, (big // 2 + dx * big // 6, big * 2 // 5), big // 14, white, cv2.FILLED)
    cv2.ellipse(img, centre, (big // 4, big // 4), 0, 25, 155, white, max(1, big // 18))
    return Image.fromarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), "RGBA")
