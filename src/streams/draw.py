"""Annotated images: face boxes coloured by sentiment with a numbered "emotion NN%" label.

Works on RGB uint8 arrays and any object with ``.box`` (x, y, w, h or None),
``.emotion`` and ``.confidence`` (``results.FaceResult``), so it needs no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

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


def face_label(index: int, face: _Face) -> str:
    return f"#{index + 1} {face.emotion} {face.confidence:.0%}"


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
    which live video frames need.
    """
    img, scale = fit(rgb, max_side)
    img = np.ascontiguousarray(img).copy()
    h, w = img.shape[:2]
    # Line and text size follow the image so labels stay legible on phone shots and thumbnails.
    thickness = max(2, round(min(h, w) / 250))
    font_scale = max(0.45, min(h, w) / 900)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, face in enumerate(faces):
        x, y, bw, bh = (round(v * scale) for v in _box_xywh(face, *rgb.shape[1::-1]))
        color = hex_to_rgb(sentiment_color(sentiment_of(face.emotion)))
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, thickness)
        text = face_label(i, face)
        (tw, th), base = cv2.getTextSize(text, font, font_scale, max(1, thickness // 2))
        # Label above the box, or inside its top edge when the face touches the image top.
        top = y - th - base - 2 * thickness if y - th - base - 2 * thickness >= 0 else y
        top = min(top, max(0, h - th - base - 2 * thickness))
        left = min(max(0, x), max(0, w - tw - 2 * thickness))
        cv2.rectangle(img, (left, top), (left + tw + 2 * thickness, top + th + base + 2 * thickness), color, cv2.FILLED)
        cv2.putText(
            img,
            text,
            (left + thickness, top + th + thickness),
            font,
            font_scale,
            (255, 255, 255),
            max(1, thickness // 2),
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
