"""Keras 3 architectures and loading the saved-model artefact (``.keras`` + manifest).

Models take raw 48x48x1 grayscale faces in [0, 255] and return 7 probabilities;
rescaling lives inside the model so every caller feeds the same thing. The code
is backend-agnostic (TensorFlow here, JAX on a lent GPU machine). The manifest
itself is read and written by ``src.engine.manifest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers

from src import config
from src.engine.classifier import ModelInfo
from src.engine.manifest import manifest_path, read_manifest


def _conv_bn(x, filters: int, strides: int = 1, name: str = ""):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_compact(num_classes: int = 7, size: int = config.IMAGE_SIZE, width: int = 32, dropout: float = 0.3):
    """A fast VGG-style net for CPU inference (about 14M multiply-adds per face at width 24).

    Downsamples early (stride-2 conv at 48x48) because the first full-resolution
    layers dominate the cost of small nets.
    """
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = _conv_bn(x, width // 2, name="s1a")
    x = _conv_bn(x, width, strides=2, name="s1b")  # 24x24
    x = _conv_bn(x, width, name="s2a")
    x = _conv_bn(x, width, name="s2b")
    x = layers.MaxPooling2D(name="pool2")(x)  # 12x12
    x = _conv_bn(x, width * 2, name="s3a")
    x = _conv_bn(x, width * 2, name="s3b")
    x = layers.MaxPooling2D(name="pool3")(x)  # 6x6
    x = _conv_bn(x, width * 4, name="s4a")
    x = _conv_bn(x, width * 4, name="s4b")
    x = layers.MaxPooling2D(name="pool4")(x)  # 3x3
    x = _conv_bn(x, width * 8, name="s5a")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    # float32 output: a softmax in bfloat16 (mixed precision) loses the small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"compact_w{width}")


def build_vgg(num_classes: int = 7, size: int = config.IMAGE_SIZE, width: int = 64, dropout: float = 0.4):
    """A VGG-class net (~5M parameters at width 64) for GPU training."""
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for stage, mult in enumerate((1, 2, 4, 8), start=1):
        x = _conv_bn(x, width * mult, name=f"s{stage}a")
        x = _conv_bn(x, width * mult, name=f"s{stage}b")
        x = layers.MaxPooling2D(name=f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(width * 4, activation="relu", name="fc")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    # float32 output: a softmax in bfloat16 (mixed precision) loses the small probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"vgg_w{width}")


ARCHITECTURES = {"compact": build_compact, "vgg": build_vgg}


def build_ensemble(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of its members' probabilities.

    Members keep their weights and run side by side on the same face; saved as one
    ``.keras`` file (and one ONNX graph), so everything downstream (manifest, twins,
    serving, evaluation) treats the ensemble as any other model.
    """
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two models")
    shapes = {tuple(m.input_shape[1:]) for m in members}
    classes = {m.output_shape[-1] for m in members}
    if len(shapes) != 1 or len(classes) != 1:
        raise ValueError(f"ensemble members must share input and output shapes: {sorted(shapes)}, {sorted(classes)}")
    inputs = keras.Input(shapes.pop(), name="face")
    # Re-wrapped under unique names: two members may both be called compact_w24.
    wrapped = [keras.Model(m.inputs[0], m.outputs[0], name=f"member{i}_{m.name}") for i, m in enumerate(members, 1)]
    outputs = layers.Average(name="mean_probs", dtype="float32")([m(inputs) for m in wrapped])
    return keras.Model(inputs, outputs, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble built by ``build_ensemble``; [] for a single model."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def build_model(arch: str, num_classes: int = 7, **kwargs) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes=num_classes, **kwargs)


def load_model(model_file: str | Path | None = None) -> tuple[keras.Model, ModelInfo]:
    """Load a ``.keras`` model and its manifest; labels and size come from the artefact."""
    model_file = Path(model_file or config.MODEL_FILE)
    if not model_file.exists():
        raise FileNotFoundError(f"model file {model_file} not found")
    model = keras.models.load_model(model_file, compile=False)
    # No manifest: the labels default to config's; a corrupt one is an error, not a guess.
    manifest = read_manifest(model_file) if manifest_path(model_file).exists() else {}
    size = int(model.input_shape[1])
    classes = tuple(manifest.get("class_names", config.EMOTIONS))
    if len(classes) != model.output_shape[-1]:
        raise ValueError(f"manifest lists {len(classes)} classes, model outputs {model.output_shape[-1]}")
    info = ModelInfo(
        path=model_file,
        class_names=classes,
        input_size=size,
        temperature=float(manifest.get("temperature", 1.0)),
        manifest=manifest,
        runtime="keras",
    )
    return model, info
