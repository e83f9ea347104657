"""Per-face doubt: whether a face's label is unreliable, and why.

Some faces are read far less often right than others: tiny ones, blurred ones, heads turned
away from the camera, and faces the model itself is unsure of. ``assess`` measures four signs
of one detected face and flags it ``uncertain`` with the reasons, short stable codes:

* ``small``: the face box's short side, in the pixels the face was read from, is under
  ``config.DOUBT_MIN_FACE_PX``. For a whole image taken as one face (``--crops``) the image's
  short side.
* ``blurred``: the sharpness of the aligned classifier input (the size x size gray crop, so
  every face is measured at the same size) is under ``config.DOUBT_MIN_SHARPNESS``. Sharpness
  is the variance of the crop's Laplacian over the variance of the crop itself: fine detail
  relative to contrast, so a dim but sharp face is not called blurred.
* ``turned``: the yaw estimate from the five landmarks (YuNet) is over ``config.DOUBT_MAX_YAW``:
  the nose tip's offset from the midpoint of the eyes, along the line of the eyes, as a share of
  the eye distance (0 for a frontal face, about 0.5 when the nose reaches an eye). Haar boxes
  and whole-image crops have no landmarks, so this reason never applies to them. Off by
  default: on ExpW turned heads were read right as often as frontal ones.
* ``low_confidence``: the top probability, recalibrated for in-the-wild photos, is under
  ``config.DOUBT_MIN_CONFIDENCE``. The served probabilities are calibrated on FER2013's lab
  crops, and real photos are right less often at the same figure; the manifest's
  ``temperature_wild`` (``src.training.wild_calibration``, fitted on ExpW's held-back faces)
  rescales them so that a face at 30% is right about 30% of the time on real photos. Without a
  ``temperature_wild`` the served probabilities are used as they are.

The thresholds were chosen on ExpW's held-back faces run through the product pipeline
(``bench/score_doubt.py``, which records the figures in ``doubt.json`` beside
``calibration_wild.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from src import config

SMALL = "small"
BLURRED = "blurred"
TURNED = "turned"
LOW_CONFIDENCE = "low_confidence"
REASONS: tuple[str, ...] = (SMALL, BLURRED, TURNED, LOW_CONFIDENCE)
# The reasons in plain words, for the dashboard.
REASON_WORDS = {SMALL: "small face", BLURRED: "blurred", TURNED: "head turned", LOW_CONFIDENCE: "low confidence"}


@dataclass(frozen=True)
class Thresholds:
    """Where each reason starts (defaults: ``src/config.py``'s doubt block)."""

    min_face_px: float
    min_sharpness: float
    max_yaw: float
    min_confidence: float

    @classmethod
    def configured(cls) -> Thresholds:
        """The thresholds of ``src/config.py`` (``FER_DOUBT_*``), read at call time."""
        return cls(
            config.DOUBT_MIN_FACE_PX, config.DOUBT_MIN_SHARPNESS, config.DOUBT_MAX_YAW, config.DOUBT_MIN_CONFIDENCE
        )


@dataclass(frozen=True)
class Signs:
    """What ``assess`` measured on one face; None where it could not be measured."""

    face_px: float | None = None
    sharpness: float | None = None
    yaw: float | None = None
    confidence_wild: float | None = None


@dataclass(frozen=True)
class Doubt:
    """A face's verdict: ``uncertain`` when any reason applies, the reasons in ``REASONS`` order."""

    uncertain: bool
    reasons: tuple[str, ...]
    signs: Signs


def face_px(box: Sequence[float] | None, image_shape: Sequence[int] | None = None) -> float | None:
    """The short side of a face box (x, y, w, h); for no box, the short side of the image (h, w, ...)."""
    if box is not None:
        return float(min(box[2], box[3]))
    if image_shape is not None:
        return float(min(image_shape[0], image_shape[1]))
    return None


def sharpness(crop: np.ndarray) -> float:
    """Laplacian variance over intensity variance of a gray crop (0 for a flat one)."""
    gray = np.asarray(crop, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray[..., 0]
    spread = float(gray.var())
    if spread < 1e-6:
        return 0.0
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) / spread


def yaw(landmarks: np.ndarray | Sequence[Sequence[float]] | None) -> float | None:
    """How far the head is turned, from five landmarks (eyes, nose tip, mouth corners); None without them.

    The nose tip's offset from the eyes' midpoint, measured along the line through the eyes
    (so a tilted head does not count), over the eye distance; absolute value.
    """
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) < 3:
        return None
    eyes = points[1] - points[0]
    distance = float(np.hypot(*eyes))
    if distance < 1e-6:
        return None
    offset = points[2] - (points[0] + points[1]) / 2
    return abs(float(offset @ eyes)) / distance**2


def wild_probabilities(
    probs: np.ndarray, temperature: float = 1.0, temperature_wild: float | None = None
) -> np.ndarray:
    """Served probabilities (at ``temperature``) rescaled to ``temperature_wild``; as they are without one.

    Served ones are softmax(z / T); raising their log to the power T / T_wild gives softmax(z / T_wild).
    """
    p = np.asarray(probs, dtype=np.float64)
    if not temperature_wild or temperature_wild <= 0 or temperature <= 0 or temperature_wild == temperature:
        return p
    logits = np.log(np.clip(p, 1e-12, 1.0)) * (temperature / temperature_wild)
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=-1, keepdims=True)


def measure(
    box: Sequence[float] | None,
    landmarks,
    crop: np.ndarray | None,
    probs: np.ndarray | None,
    temperature: float = 1.0,
    temperature_wild: float | None = None,
    image_shape: Sequence[int] | None = None,
) -> Signs:
    """The four signs of one face (see the module docstring); each None when its input is."""
    confidence = None
    if probs is not None and len(probs):
        confidence = float(wild_probabilities(probs, temperature, temperature_wild).max())
    return Signs(
        face_px=face_px(box, image_shape),
        sharpness=None if crop is None else sharpness(crop),
        yaw=yaw(landmarks),
        confidence_wild=confidence,
    )


def reasons_of(signs: Signs, thresholds: Thresholds | None = None) -> tuple[str, ...]:
    """The reasons that apply to ``signs``, in ``REASONS`` order (a threshold <= 0 turns its reason off)."""
    t = thresholds or Thresholds.configured()
    found = []
    if signs.face_px is not None and t.min_face_px > 0 and signs.face_px < t.min_face_px:
        found.append(SMALL)
    if signs.sharpness is not None and t.min_sharpness > 0 and signs.sharpness < t.min_sharpness:
        found.append(BLURRED)
    if signs.yaw is not None and t.max_yaw > 0 and signs.yaw > t.max_yaw:
        found.append(TURNED)
    if signs.confidence_wild is not None and t.min_confidence > 0 and signs.confidence_wild < t.min_confidence:
        found.append(LOW_CONFIDENCE)
    return tuple(found)


def judge(signs: Signs, thresholds: Thresholds | None = None) -> Doubt:
    """The verdict on measured ``signs``."""
    found = reasons_of(signs, thresholds)
    return Doubt(uncertain=bool(found), reasons=found, signs=signs)


def assess(
    box: Sequence[float] | None,
    landmarks,
    crop: np.ndarray | None,
    probs: np.ndarray | None,
    temperature: float = 1.0,
    temperature_wild: float | None = None,
    image_shape: Sequence[int] | None = None,
    thresholds: Thresholds | None = None,
) -> Doubt:
    """Measure one face and judge it: ``measure`` then ``judge``."""
    signs = measure(box, landmarks, crop, probs, temperature, temperature_wild, image_shape)
    return judge(signs, thresholds)


def describe(reasons: Sequence[str]) -> str:
    """Reasons as one cell of a table or CSV: codes joined by "; " ("" for none)."""
    return "; ".join(reasons)


def in_words(reasons: Sequence[str]) -> str:
    """Reasons in plain words, e.g. "blurred, small face"."""
    return ", ".join(REASON_WORDS.get(r, r) for r in reasons)


__all__ = [
    "BLURRED",
    "LOW_CONFIDENCE",
    "REASONS",
    "REASON_WORDS",
    "SMALL",
    "TURNED",
    "Doubt",
    "Signs",
    "Thresholds",
    "assess",
    "describe",
    "face_px",
    "in_words",
    "judge",
    "measure",
    "reasons_of",
    "sharpness",
    "wild_probabilities",
    "yaw",
]
