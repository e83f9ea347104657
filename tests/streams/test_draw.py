"""Annotated images: boxes and labels drawn in sentiment colours, sizes preserved or fitted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.common.palette import hex_to_rgb, sentiment_color
from src.streams import draw


@dataclass
class Face:
    box: tuple | None
    emotion: str
    confidence: float


def test_annotate_draws_box_in_sentiment_colour_without_touching_input():
    rgb = np.zeros((200, 300, 3), np.uint8)
    out = draw.annotate(rgb, [Face((100, 80, 60, 60), "sad", 0.7)])
    assert out.shape == rgb.shape and not rgb.any()
    red = hex_to_rgb(sentiment_color("negative"))
    assert tuple(out[140, 100]) == red  # left edge of the box
    assert tuple(out[110, 130]) == (0, 0, 0)  # inside the box stays untouched


def test_label_fits_when_face_touches_the_top_edge():
    rgb = np.zeros((120, 120, 3), np.uint8)
    out = draw.annotate(rgb, [Face((0, 0, 118, 118), "happy", 0.9), Face(None, "neutral", 0.5)])
    assert out.shape == rgb.shape and out.any()
    assert draw.face_label(0, Face(None, "happy", 0.874)) == "#1 happy 87%"


def test_max_side_downscales_and_scales_boxes():
    rgb = np.zeros((1000, 2000, 3), np.uint8)
    out = draw.annotate(rgb, [Face((1000, 500, 200, 200), "happy", 0.9)], max_side=500)
    assert out.shape == (250, 500, 3)
    green = hex_to_rgb(sentiment_color("positive"))
    assert tuple(out[160, 250]) == green  # scaled left edge at x=250


def test_fit_and_face_crop():
    rgb = np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8)
    same, scale = draw.fit(rgb, 100)
    assert same is rgb and scale == 1.0
    crop = draw.face_crop(rgb, Face((70, 40, 20, 20), "sad", 0.5), size=32)
    assert crop.shape == (32, 32, 3)
    assert draw.face_crop(rgb, Face(None, "sad", 0.5), size=16).shape == (16, 16, 3)


def test_app_icon_is_a_local_rgba_picture():
    icon = np.asarray(draw.app_icon(64))
    assert icon.shape == (64, 64, 4) and icon.dtype == np.uint8
    assert icon[0, 0, 3] == 0  # transparent corners
    assert icon[32, 10, 3] == 255 and tuple(icon[32, 10, :3]) == hex_to_rgb("#1f77b4")
