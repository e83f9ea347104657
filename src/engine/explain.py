"""Grad-CAM saliency for one face: which pixels pushed the model to its label.

Uses the last convolutional activation whose map is still at least 6x6 (the final
3x3 map is too coarse to point at a mouth or brows). TensorFlow backend only,
which is what the app runs on.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.engine.preprocessing import alignment_matrix, crop_face, expand_box, extract_face, to_gray

MIN_CAM_SIDE = 6


def _target_layer(model):
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4 and shape[1] is not None and shape[1] >= MIN_CAM_SIDE:
            return layer
    raise ValueError("model has no 4-D activation to explain")


class GradCam:
    """Grad-CAM over a Keras model; build once, call per face.

    For an ensemble (``src.engine.model.build_ensemble``) each member's map is taken for the
    ensemble's label, scaled to [0, 1] and averaged: the members look at the face
    through their own layers, so there is no single layer to explain.
    """

    def __init__(self, model, layer_name: str | None = None):
        import keras
        import tensorflow as tf

        from src.engine.model import ensemble_members

        self._tf = tf
        self._model = model
        targets = (None if layer_name else ensemble_members(model)) or [model]
        layers = [m.get_layer(layer_name) if layer_name else _target_layer(m) for m in targets]
        self.layer_name = ", ".join(layer.name for layer in layers)
        self.grad_models = [keras.Model(m.inputs, [layer.output, m.output]) for m, layer in zip(targets, layers)]

    def __call__(self, face: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Heatmap in [0, 1] with the face's shape (H, W) for a uint8 face crop."""
        tf = self._tf
        x = tf.convert_to_tensor(face.reshape(1, *face.shape[:2], 1).astype(np.float32))
        if class_index is None and len(self.grad_models) > 1:  # the ensemble's label, not a member's
            class_index = int(np.argmax(np.asarray(self._model(x, training=False))[0]))
        cam = np.mean(
            [self._cam(grad_model, x, class_index, face.shape[:2]) for grad_model in self.grad_models], axis=0
        )
        return cam / cam.max() if cam.max() > 0 else cam

    def _cam(self, grad_model, x, class_index: int | None, shape: tuple[int, int]) -> np.ndarray:
        tf = self._tf
        with tf.GradientTape() as tape:
            fmap, probs = grad_model(x, training=False)
            score = probs[:, int(np.argmax(probs[0])) if class_index is None else class_index]
        grads = tape.gradient(score, fmap)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))[0].numpy()
        cam = np.clip(cv2.resize(cam, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0, None)
        return cam / cam.max() if cam.max() > 0 else cam


def overlay(rgb: np.ndarray, box, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a face heatmap over its (margin-expanded) box in an RGB image; returns a copy."""
    out = rgb.copy()
    x0, y0, x1, y1 = expand_box(box, rgb.shape[1], rgb.shape[0])
    if x1 <= x0 or y1 <= y0:
        return out
    heat_u8 = (cv2.resize(heat, (x1 - x0, y1 - y0)) * 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(heat_u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * (1 - alpha) + colour * alpha).astype(np.uint8)
    return out


def overlay_aligned(rgb: np.ndarray, landmarks, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a heatmap of an aligned face back onto the photo through the inverse alignment."""
    matrix = alignment_matrix(np.asarray(landmarks, np.float32), heat.shape[0])
    size = (rgb.shape[1], rgb.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(heat.astype(np.float32), matrix, size, flags=flags, borderValue=0)
    inside = cv2.warpAffine(np.ones_like(heat, np.float32), matrix, size, flags=flags, borderValue=0)[..., None]
    colour = cv2.cvtColor(cv2.applyColorMap((back * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blend = rgb.astype(np.float32) * (1 - alpha * inside) + colour.astype(np.float32) * (alpha * inside)
    return blend.astype(np.uint8)


def explain_photo(cam: GradCam, rgb: np.ndarray, faces, size: int) -> np.ndarray:
    """The photo with each detected face's Grad-CAM (for its top label) blended in.

    Each face is explained on the same input the classifier saw: aligned by its
    landmarks when it has them, else its box crop.
    """
    gray = to_gray(rgb)
    out = rgb
    for face in faces:
        if face.box is None:
            continue
        marks = getattr(face, "landmarks", None)
        if marks is not None:
            out = overlay_aligned(out, marks, cam(extract_face(gray, face.box, np.asarray(marks, np.float32), size)))
        else:
            out = overlay(out, face.box, cam(crop_face(gray, face.box, size)))
    return out
