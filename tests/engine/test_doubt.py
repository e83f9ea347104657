"""Per-face doubt (src/engine/doubt.py): small, blurred, turned and unsure faces are flagged, each with its reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from src import config
from src.engine import doubt
from src.engine.faces import get_detector
from src.engine.inference import get_recognizer
from src.engine.preprocessing import extract_face, to_gray

SURE = np.array([0.02, 0.01, 0.02, 0.9, 0.02, 0.01, 0.02])
UNSURE = np.full(7, 1 / 7)
# Every rule on, the turned one included (it is off by default: see src/config.py).
ALL_ON = doubt.Thresholds(min_face_px=14.0, min_sharpness=0.05, max_yaw=0.5, min_confidence=0.3)


@pytest.fixture(scope="module")
def astronaut():
    """The astronaut photo, its detected face (box, landmarks) and the aligned 48x48 input."""
    rgb = data.astronaut()
    face = get_detector().detect_faces(rgb)[0]
    return rgb, face, extract_face(to_gray(rgb), face.box, face.landmarks, 48)


def test_a_sharp_large_frontal_sure_face_is_not_doubtful(astronaut):
    _, face, crop = astronaut
    verdict = doubt.assess(face.box, face.landmarks, crop, SURE, thresholds=ALL_ON)
    assert (verdict.uncertain, verdict.reasons) == (False, ())
    assert verdict.signs.face_px >= 80 and verdict.signs.yaw < 0.2 and verdict.signs.sharpness > 0.2


def test_the_same_face_blurred_is_doubtful_for_blur(astronaut):
    rgb, _, _ = astronaut
    blurred = cv2.GaussianBlur(rgb, (0, 0), 6)
    face = get_detector().detect_faces(blurred)[0]
    crop = extract_face(to_gray(blurred), face.box, face.landmarks, 48)
    verdict = doubt.assess(face.box, face.landmarks, crop, SURE, thresholds=ALL_ON)
    assert verdict.reasons == ("blurred",) and verdict.uncertain


def test_the_same_face_shrunk_is_doubtful_for_size(astronaut):
    _, face, crop = astronaut
    x, y, w, h = face.box
    small = (x / 8, y / 8, w / 8, h / 8)  # ~11 px: the sharp crop stands for it, so only size differs
    verdict = doubt.assess(small, face.landmarks / 8, crop, SURE, thresholds=ALL_ON)
    assert verdict.reasons == ("small",)
    # A whole image taken as one face is as small as the image.
    assert doubt.assess(None, None, crop, SURE, image_shape=(12, 12), thresholds=ALL_ON).reasons == ("small",)


def test_landmarks_of_a_turned_head_are_doubtful_for_the_turn(astronaut):
    _, face, crop = astronaut
    marks = face.landmarks.astype(np.float64).copy()
    eye_distance = marks[1, 0] - marks[0, 0]
    marks[2, 0] = marks[1, 0] + 0.1 * eye_distance  # the nose tip past the far eye: a head in profile
    verdict = doubt.assess(face.box, marks, crop, SURE, thresholds=ALL_ON)
    assert verdict.reasons == ("turned",) and verdict.signs.yaw > 0.5
    # Haar boxes have no landmarks: the turn is not measured, so never a reason.
    assert doubt.assess(face.box, None, crop, SURE, thresholds=ALL_ON).signs.yaw is None


def test_low_confidence_is_doubtful(astronaut):
    _, face, crop = astronaut
    verdict = doubt.assess(face.box, face.landmarks, crop, UNSURE, thresholds=ALL_ON)
    assert verdict.reasons == ("low_confidence",)
    assert verdict.signs.confidence_wild == pytest.approx(1 / 7)


def test_reasons_come_in_a_fixed_order_and_a_zero_threshold_turns_a_rule_off():
    signs = doubt.Signs(face_px=8, sharpness=0.01, yaw=1.2, confidence_wild=0.2)
    assert doubt.reasons_of(signs, ALL_ON) == doubt.REASONS
    off = doubt.Thresholds(min_face_px=0, min_sharpness=0, max_yaw=0, min_confidence=0)
    assert doubt.judge(signs, off) == doubt.Doubt(False, (), signs)
    assert doubt.describe(doubt.REASONS[:2]) == "small; blurred"
    assert doubt.in_words(("blurred", "small")) == "blurred, small face"


def test_configured_thresholds_follow_config(monkeypatch):
    monkeypatch.setattr(config, "DOUBT_MIN_CONFIDENCE", 0.5)
    assert doubt.Thresholds.configured().min_confidence == 0.5
    assert doubt.reasons_of(doubt.Signs(confidence_wild=0.45)) == ("low_confidence",)
    assert config.DOUBT_MAX_YAW == 0 or doubt.Thresholds.configured().max_yaw == config.DOUBT_MAX_YAW


def test_yaw_ignores_a_tilted_head_and_the_face_size():
    frontal = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
    assert doubt.yaw(frontal) == pytest.approx(0.0)
    angle = np.radians(25)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = frontal.copy()
    turned[2, 0] += 10  # nose a quarter of the eye distance off the middle
    assert doubt.yaw(turned) == pytest.approx(0.25)
    assert doubt.yaw(turned @ turn.T) == pytest.approx(0.25)  # rolled
    assert doubt.yaw(turned * 3) == pytest.approx(0.25)  # larger
    assert doubt.yaw(None) is None and doubt.yaw(np.zeros((5, 2))) is None


def test_sharpness_drops_with_blur_and_ignores_contrast(astronaut):
    _, _, crop = astronaut
    sharp = doubt.sharpness(crop)
    assert doubt.sharpness(cv2.GaussianBlur(crop, (0, 0), 1.5)) < sharp / 3
    dim = (crop.astype(np.float32) * 0.4 + 60).astype(np.uint8)
    assert doubt.sharpness(dim) == pytest.approx(sharp, rel=0.1)
    assert doubt.sharpness(np.full((48, 48), 90, np.uint8)) == 0.0


def test_wild_temperature_rescales_the_served_probabilities():
    served = np.array([0.6, 0.3, 0.1])
    assert np.allclose(doubt.wild_probabilities(served, 0.8, None), served)
    softer = doubt.wild_probabilities(served, 0.8, 1.6)
    assert softer.sum() == pytest.approx(1.0) and softer.max() < 0.6 and softer.argmax() == 0
    # softmax(z / T) rescaled to T_wild is softmax(z / T_wild).
    z = np.log(np.array([5.0, 2.0, 1.0]))
    at = lambda t: np.exp(z / t) / np.exp(z / t).sum()  # noqa: E731
    assert np.allclose(doubt.wild_probabilities(at(0.8), 0.8, 1.6), at(1.6))


def test_the_pipeline_flags_a_tiny_face_and_not_the_sharp_one():
    rec = get_recognizer()
    rgb = data.astronaut()
    (face,) = rec.analyze(rgb).faces
    assert (face.uncertain, face.doubts) == (False, ())
    tiny = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA)  # the face is ~11 px
    faces = rec.analyze(tiny).faces
    assert faces and all(f.uncertain and "small" in f.doubts for f in faces)
    crop_mode = rec.analyze(cv2.resize(rgb[40:200, 160:290], (12, 12)), crop=True).faces[0]
    assert "small" in crop_mode.doubts
