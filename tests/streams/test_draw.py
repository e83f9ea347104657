"""Annotated images: boxes and labels drawn in sentiment colours, sizes preserved or fitted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from src.common.palette import hex_to_rgb, sentiment_color
from src.streams import draw


@dataclass
class Face:
    box: tuple | None
    emotion: str
    confidence: float
    uncertain: bool = False


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


def test_a_doubtful_face_is_drawn_with_a_question_mark():
    assert draw.face_label(1, Face(None, "disgust", 0.53, uncertain=True)) == "#2 disgust? 53%"
    box = (100, 100, 60, 60)  # too narrow for the confidence: the short label keeps the mark
    label = draw.layout_label(0, Face(box, "surprise", 0.5, uncertain=True), box, 400, 400)
    assert "surprise?" in label.text or label.text == "#1"


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


def _overlap(a: tuple, b: tuple) -> bool:
    """Whether two (left, top, right, bottom) rectangles share any pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_group_photo_labels_fit_their_faces():
    """Issue 20: on a group photo every label was sized to the photo, wider than three faces, so the
    labels covered each other and read as a smear. Sized to their faces they stay apart and legible."""
    height, width, side = 1000, 1600, 60
    faces = [
        Face((40 + col * 100, 60 + row * 110, side, side), ("surprise", "happy", "sad")[(row + col) % 3], 0.87)
        for row in range(8)
        for col in range(12)
    ]
    labels = [draw.layout_label(i, face, face.box, height, width) for i, face in enumerate(faces)]
    boxes = [(x, y, x + w + 1, y + h + 1) for x, y, w, h in (face.box for face in faces)]
    for i, label in enumerate(labels):
        assert label.font_scale >= draw.MIN_FONT_SCALE
        assert label.rect[2] - label.rect[0] <= draw.LABEL_WIDTH * side
        assert label.text.startswith(f"#{i + 1} ") and faces[i].emotion in label.text  # the emotion stays
        others = [b for j, b in enumerate(boxes) if j != i] + [x.rect for j, x in enumerate(labels) if j != i]
        assert not any(_overlap(label.rect, other) for other in others), (i, label)
    out = draw.annotate(np.zeros((height, width, 3), np.uint8), faces)
    for x, y, w, h in (face.box for face in faces):  # no label lies over any face
        assert not out[y + 3 : y + h - 2, x + 3 : x + w - 2].any()


def test_box_line_and_label_follow_the_face_size():
    big = draw.layout_label(0, Face(None, "happy", 0.9), (300, 300, 500, 500), 1067, 1600)
    assert big.text == "#1 happy 90%" and big.font_scale == pytest.approx(1067 / 900)  # the photo's size, as before
    small = draw.layout_label(0, Face(None, "happy", 0.9), (300, 300, 40, 40), 1067, 1600)
    assert small.line < big.line and small.font_scale < big.font_scale
    tiny = draw.layout_label(11, Face(None, "surprise", 0.9), (300, 300, 12, 12), 1067, 1600)
    assert tiny.text == "#12" and tiny.font_scale == draw.MIN_FONT_SCALE  # still legible, the number at least
    live = draw.layout_label(0, Face(None, "sad", 0.6), (250, 150, 150, 150), 480, 640)
    assert live.text == "#1 sad 60%" and live.font_scale == pytest.approx(0.45 if 480 / 900 < 0.45 else 480 / 900)
