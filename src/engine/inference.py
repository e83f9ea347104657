"""Inference API: image(s) in, typed per-face emotion results out.

``EmotionRecognizer`` loads the model once and classifies faces through the
serving runtime (``src.engine.runtime``: ONNX Runtime, no TensorFlow, when the model's
export matches it; else a compiled Keras call).
``get_recognizer()`` gives the process-wide instance. Bad inputs never raise from
``analyze``/``analyze_batch``: they come back with ``status="error"`` and a reason.
Every face also gets its doubt (``src.engine.doubt``): size, sharpness and yaw measured on
what the classifier read, confidence recalibrated with the manifest's ``temperature_wild``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from src import config
from src.engine import doubt
from src.engine.classifier import ModelInfo, tta_averaged, tta_count
from src.engine.faces import Box, Face, get_detector
from src.engine.preprocessing import (
    ImageError,
    ImageInput,
    extract_face,
    load_image_sized,
    resize_face,
    resize_faces,
    to_gray,
)
from src.engine.results import FaceResult, ImageResult, table_columns
from src.engine.runtime import load_classifier


class EmotionRecognizer:
    """Face detection + classification with a model loaded once."""

    def __init__(self, model_file: str | Path | None = None, batch_size: int = 256, fast: bool = False):
        self._call, self.info = load_classifier(model_file)
        self.fast = fast  # coarse-first face detection: faster, misses small faces beside big ones
        self.batch_size = batch_size
        # Several threads share one recognizer (API workers, the dashboard's video and upload
        # threads). ONNX Runtime documents concurrent Run calls on one session as safe; a Keras
        # model's call is not promised to be, so those take turns. Detection is thread-local.
        self._lock = contextlib.nullcontext() if self.info.runtime.startswith("onnx") else threading.Lock()
        self._call(np.zeros((1, self.size, self.size, 1), np.float32))  # trace once, up front

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def size(self) -> int:
        return self.info.input_size

    @property
    def columns(self) -> tuple[str, ...]:
        return table_columns(self.class_names)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 faces -> (N, classes) calibrated probabilities. Faces of another size
        than the model's (a dataset's 48 px faces for a 64 px net) are resized to it."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if len(faces) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        faces = resize_faces(faces, self.size)
        x = faces.reshape(len(faces), self.size, self.size, 1).astype(np.float32)
        views = self.info.views
        step = max(1, self.batch_size // tta_count(views))
        with self._lock:
            probs = np.concatenate([tta_averaged(self._call, x[i : i + step], views) for i in range(0, len(x), step)])
        return apply_temperature(probs, self.info.temperature)

    @property
    def temperature_wild(self) -> float | None:
        """The manifest's in-the-wild temperature (``src.training.wild_calibration``), or None."""
        value = self.info.manifest.get("temperature_wild") if isinstance(self.info.manifest, dict) else None
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def measure(self, found: Sequence[Face | None], faces: np.ndarray, shape: tuple[int, ...]) -> list[doubt.Signs]:
        """Size, sharpness and yaw of each face of ``locate``, in the pixels it was read from."""
        return [
            doubt.measure(
                None if f is None else f.box, None if f is None else f.landmarks, crop, None, image_shape=shape
            )
            for f, crop in zip(found, faces)
        ]

    def _result(self, probs: np.ndarray, face: Face | None, signs: doubt.Signs | None = None) -> FaceResult:
        top = int(np.argmax(probs))
        marks = None
        if face is not None and face.landmarks is not None:
            marks = tuple((round(float(x), 1), round(float(y), 1)) for x, y in face.landmarks)
        wild = doubt.wild_probabilities(probs, self.info.temperature, self.temperature_wild)
        verdict = doubt.judge(dataclasses.replace(signs or doubt.Signs(), confidence_wild=float(wild.max())))
        return FaceResult(
            box=None if face is None else face.box,
            emotions={name: float(p) for name, p in zip(self.class_names, probs)},
            emotion=self.class_names[top],
            confidence=float(probs[top]),
            landmarks=marks,
            uncertain=verdict.uncertain,
            doubts=verdict.reasons,
        )

    def locate(self, rgb: np.ndarray, crop: bool = False) -> tuple[list[Face | None], np.ndarray]:
        """Detected faces and their size x size classifier inputs for one decoded RGB image.

        Each face is aligned onto the training framing by its landmarks
        (``preprocessing.extract_face``); ``crop`` takes the whole image as one face.
        """
        gray = to_gray(rgb)
        if crop:
            return [None], resize_face(gray, self.size)[None]
        found = get_detector(self.fast).detect_faces(rgb)
        faces = (
            np.stack([extract_face(gray, f.box, f.landmarks, self.size) for f in found])
            if found
            else np.zeros((0, self.size, self.size), np.uint8)
        )
        return found, faces

    def predict(self, image: ImageInput, crop: bool = False) -> list[FaceResult]:
        """Faces in one image, boxes in its original pixels (raises ``ImageError`` for bad input)."""
        rgb, size = load_image_sized(image)
        found, faces = self.locate(rgb, crop)
        signs = self.measure(found, faces, rgb.shape)
        found = _in_original_pixels(found, rgb, size)
        return [self._result(p, b, s) for p, b, s in zip(self.classify(faces), found, signs)]

    def analyze(self, image: ImageInput, name: str = "", crop: bool = False) -> ImageResult:
        """Like ``predict`` but never raises for bad input: the reason goes in ``error``."""
        return self.analyze_batch([image], names=[name], crop=crop)[0]

    def analyze_batch(
        self,
        images: Iterable[ImageInput],
        names: Sequence[str] | None = None,
        crop: bool = False,
        progress: Callable[[int], None] | None = None,
        chunk: int = 64,
    ) -> list[ImageResult]:
        """Many images; faces of up to ``chunk`` images go through the network together."""
        results: list[ImageResult] = []
        pending: list[tuple[ImageResult, list, np.ndarray, list[doubt.Signs]]] = []

        def flush():
            if not pending:
                return
            probs = self.classify(np.concatenate([f for _, _, f, _ in pending]))
            offset = 0
            for res, found, faces, signs in pending:
                batch = probs[offset : offset + len(faces)]
                res.faces = [self._result(p, b, s) for p, b, s in zip(batch, found, signs)]
                offset += len(faces)
            pending.clear()

        for i, image in enumerate(images):
            name = names[i] if names is not None else _default_name(image, i)
            res = ImageResult(file=name)
            try:
                rgb, (res.width, res.height) = load_image_sized(image)
                found, faces = self.locate(rgb, crop)
                signs = self.measure(found, faces, rgb.shape)
                found = _in_original_pixels(found, rgb, (res.width, res.height))
                if found:
                    pending.append((res, found, faces, signs))
                else:
                    res.status = "no_face"
            except Exception as exc:  # one bad file must not stop a batch
                res.status, res.error = "error", error_message(exc)
            results.append(res)
            if len(pending) >= chunk:
                flush()
            if progress is not None:
                progress(i + 1)
        flush()
        return results


def error_message(exc: Exception) -> str:
    """A failed file's ``error`` text: an ``ImageError``'s reason, else the exception's type and first line."""
    if isinstance(exc, ImageError):
        return str(exc)
    detail = (str(exc).splitlines() or [""])[0][:120]
    return f"{type(exc).__name__}: {detail}".rstrip(": ")


def _in_original_pixels(found: list, rgb: np.ndarray, size: tuple[int, int]) -> list:
    """Faces found on a decoded copy shrunk from a large photo, moved back to the photo's pixels."""
    sx, sy = size[0] / rgb.shape[1], size[1] / rgb.shape[0]
    if sx == sy == 1.0:
        return found
    out = []
    for face in found:
        if face is None:
            out.append(face)
            continue
        x, y, w, h = face.box
        box = Box(round(x * sx), round(y * sy), round(w * sx), round(h * sy))
        marks = None if face.landmarks is None else face.landmarks * np.float32([sx, sy])
        out.append(Face(box, marks, face.score))
    return out


def _default_name(image: ImageInput, index: int) -> str:
    if isinstance(image, (str, Path)):
        return str(image)
    return getattr(image, "name", None) or f"image_{index}"


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Soften/sharpen probabilities as softmax(log p / T), i.e. logits / T."""
    if temperature == 1.0:
        return probs.astype(np.float32)
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=-1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _recognizer(model_file: str) -> EmotionRecognizer:
    return EmotionRecognizer(model_file)


def get_recognizer(model_file: str | Path | None = None) -> EmotionRecognizer:
    """The process-wide recognizer for a model file (loaded on first use)."""
    return _recognizer(str(Path(model_file or config.MODEL_FILE).resolve()))


__all__ = [
    "EmotionRecognizer",
    "FaceResult",
    "ImageResult",
    "ModelInfo",
    "get_recognizer",
    "apply_temperature",
    "error_message",
]
