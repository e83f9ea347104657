"""Inference on real photos: aligned faces, boxes in original pixels, results schema."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from src import config
from src.engine.inference import get_recognizer


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_large_photo_boxes_come_back_in_original_pixels():
    """A 3072 px photo is decoded at FER_DECODE_MAX_SIDE, but its box is reported in photo pixels."""
    assert config.DECODE_MAX_SIDE < 3072
    big = cv2.resize(data.astronaut(), (3072, 3072), interpolation=cv2.INTER_CUBIC)
    rec = get_recognizer()
    result = rec.analyze(_jpeg(big), name="big.jpg")
    assert result.status == "ok" and (result.width, result.height) == (3072, 3072)
    assert len(result.faces) == 1
    box = result.faces[0].box
    small = rec.predict(data.astronaut())[0].box  # the same face in the 512 px original
    for big_v, small_v in zip(box, small):
        assert abs(big_v - 6 * small_v) <= 0.06 * 6 * max(small.w, small.h)
    marks = np.asarray(result.faces[0].landmarks)
    assert marks.shape == (5, 2)
    assert (marks[:, 0] > box.x).all() and (marks[:, 0] < box.x + box.w).all()


def test_result_schema_carries_landmarks():
    face = get_recognizer().predict(data.astronaut())[0]
    payload = face.to_dict()
    assert set(payload) == {"box", "emotions", "emotion", "confidence", "landmarks", "uncertain", "doubts"}
    assert payload["uncertain"] is False and payload["doubts"] == []  # a large, sharp, frontal, sure face
    assert list(payload["emotions"]) == list(config.EMOTIONS)
    assert len(payload["landmarks"]) == 5 and payload["emotion"] in config.EMOTIONS


def test_flip_averaging_is_the_mean_of_a_face_and_its_mirror():
    from src.engine.classifier import tta_averaged

    x = np.random.default_rng(0).random((3, 48, 48, 1)).astype(np.float32)
    calls = []

    def first_row(batch):
        calls.append(len(batch))
        return batch[:, 0, :, 0]

    out = tta_averaged(first_row, x, "flip")
    assert calls == [6]  # faces and mirrors in one call
    assert np.allclose(out, (x[:, 0, :, 0] + x[:, 0, ::-1, 0]) / 2)
    assert np.array_equal(tta_averaged(first_row, x, "none"), x[:, 0, :, 0])


def test_zoom_views_are_the_face_and_its_mirror_as_seen_zoomed_in_and_zoomed_out():
    from src.engine.classifier import ZOOM_SCALES, tta_averaged, tta_count, tta_views, zoomed

    rng = np.random.default_rng(1)
    x = rng.random((4, 48, 48, 1)).astype(np.float32)
    views = tta_views(x, "zoom")
    assert views.shape == (6, 4, 48, 48, 1) and tta_count("zoom") == 6
    assert np.array_equal(views[0], x) and np.array_equal(views[1], x[:, :, ::-1])
    assert np.array_equal(views[3], views[2][:, :, ::-1])
    # Zooming in by 10% about the centre: a centred square of side 20 becomes one of side 22.
    square = np.zeros((1, 48, 48, 1), np.float32)
    square[0, 14:34, 14:34] = 1.0
    inside = (zoomed(square, ZOOM_SCALES[0])[0, :, 24, 0] > 0.5).sum()
    outside = (zoomed(square, ZOOM_SCALES[1])[0, :, 24, 0] > 0.5).sum()
    assert inside == 22 and outside == 18
    calls = []

    def mean_value(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True)

    out = tta_averaged(mean_value, x, "zoom")
    assert calls == [24]  # all six views of the four faces in one call
    assert np.allclose(out, views.reshape(6, 4, -1).mean(axis=2).mean(axis=0)[:, None])
    with pytest.raises(ValueError, match="not one of none, flip, zoom, scale"):
        tta_views(x, "rotate")
    # "scale": the four zoomed views alone.
    scaled = tta_views(x, "scale")
    assert scaled.shape == (4, 4, 48, 48, 1) and tta_count("scale") == 4
    assert np.array_equal(scaled, views[2:])


def test_each_model_is_served_with_the_views_its_manifest_names_unless_fer_tta_says_otherwise(monkeypatch):
    from src.engine.classifier import model_views

    monkeypatch.setattr(config, "TTA_OVERRIDE", None)
    assert model_views({"test_time_views": "zoom"}) == "zoom"
    assert model_views({"test_time_views": "none"}) == "none"
    # No views named, or a name this version does not know: the default.
    assert model_views({}) == model_views(None) == model_views({"test_time_views": "rotate"}) == config.TTA
    monkeypatch.setattr(config, "TTA_OVERRIDE", "flip")
    assert model_views({"test_time_views": "zoom"}) == "flip"


def test_a_face_and_its_mirror_image_get_the_same_probabilities(monkeypatch):
    """With the deployed model's test-time views, and any that mirror, the classifier cannot tell a
    face from its mirror; with one view it can."""
    rec = get_recognizer()
    face = cv2.resize(cv2.cvtColor(data.astronaut()[30:200, 150:320], cv2.COLOR_RGB2GRAY), (48, 48))
    assert rec.info.views in ("flip", "zoom", "scale")
    assert np.allclose(rec.classify(face), rec.classify(face[:, ::-1]), atol=1e-5)
    for views in ("flip", "zoom", "scale"):
        monkeypatch.setattr(config, "TTA_OVERRIDE", views)
        assert rec.info.views == views
        assert np.allclose(rec.classify(face), rec.classify(face[:, ::-1]), atol=1e-5)
    monkeypatch.setattr(config, "TTA_OVERRIDE", "none")
    assert not np.allclose(rec.classify(face), rec.classify(face[:, ::-1]), atol=1e-5)


def test_a_blurred_face_is_flagged_in_its_result_and_its_row():
    """The doubt reaches the typed result and the per-face table (uncertain, doubt)."""
    rec = get_recognizer()
    blurred = cv2.GaussianBlur(data.astronaut(), (0, 0), 6)
    result = rec.analyze(_jpeg(blurred), name="blurred.jpg")
    (face,) = result.faces
    assert face.uncertain and "blurred" in face.doubts
    (row,) = result.rows(rec.class_names)
    assert row["uncertain"] is True and row["doubt"] == "; ".join(face.doubts)
    assert list(row) == list(rec.columns)
