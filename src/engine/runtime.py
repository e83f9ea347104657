"""Serving runtime: the saved model without TensorFlow (ONNX Runtime), or through Keras.

The ``.keras`` file is the artefact of record. ``python -m src.cli export`` writes its
ONNX twin beside it (``fer_cnn.keras`` -> ``fer_cnn.onnx``), checks that both give the
same probabilities (to ``EXPORT_TOLERANCE``) and records the twin's sha256 and the
weights it came from in the manifest. Serving (dashboard, CLI ``predict``, API, Ray
workers) then runs the twin through ONNX Runtime: no TensorFlow import (seconds of
start-up, ~1.9 GB installed) and a lighter call per batch.

When FER2013 Training faces are at hand, ``export`` also writes an INT8 twin
(``fer_cnn.int8.onnx``, ``export_int8``): the fp32 twin statically quantised (QDQ,
per-channel int8 weights and activations, calibrated on those faces), checked to give
the fp32 twin's top answer on held-out faces (``INT8_MIN_AGREEMENT``) and recorded in
the manifest under ``onnx_int8``. About 2.5x the faces per second of the fp32 twin on
large batches at the same accuracy (README, Settings).

``FER_RUNTIME``: ``auto`` (default) serves the INT8 twin when the manifest vouches for
it, else the fp32 twin when the manifest vouches for that, else Keras (a stale or
missing export, when TensorFlow is installed); ``onnx`` serves the fp32 twin and never
falls back; ``int8`` serves the INT8 twin and never falls back; ``keras`` always loads
the ``.keras`` file. A ``.onnx`` path (either twin) is served as it is. Training,
evaluation and Grad-CAM keep using Keras (``src.engine.model``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from src import config
from src.engine.classifier import ModelInfo, Predict
from src.engine.manifest import manifest_path, read_manifest, sha256_file

RUNTIMES = ("auto", "onnx", "int8", "keras")
INT8_SUFFIX = ".int8.onnx"
FEATURES_SUFFIX = ".features.onnx"
TRAINING_EXTRA = "pip install -e '.[train]'"


class RuntimeUnavailable(RuntimeError):
    """The model cannot be served as asked; the message says why and what to run."""


def keras_available() -> bool:
    """Whether the training extra (TensorFlow + Keras) is installed (found, not imported)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("keras", "tensorflow"))
    except (ImportError, ValueError):
        return False


def onnx_twin(model_file: str | Path) -> Path:
    """``models/fer_cnn.keras`` -> ``models/fer_cnn.onnx``."""
    return Path(model_file).with_suffix(".onnx")


def int8_twin(model_file: str | Path) -> Path:
    """``models/fer_cnn.keras`` -> ``models/fer_cnn.int8.onnx``."""
    return Path(model_file).with_suffix(INT8_SUFFIX)


def features_twin(model_file: str | Path) -> Path:
    """``models/fer_cnn.keras`` -> ``models/fer_cnn.features.onnx`` (the head's input features)."""
    return Path(model_file).with_suffix(FEATURES_SUFFIX)


def features_problem(model_file: str | Path, manifest: dict) -> str | None:
    """Why the features twin of ``model_file`` cannot stand in for its features, or None when it can."""
    return _twin_problem(features_twin(model_file), manifest.get("onnx_features"), model_file, manifest, "features")


def _twin_problem(twin: Path, record: object, model_file: str | Path, manifest: dict, what: str) -> str | None:
    if not twin.is_file():
        return f"no {what} export {twin.name} beside the model"
    if not isinstance(record, dict) or "sha256" not in record:
        return f"{twin.name} is not recorded in the manifest {manifest_path(model_file).name}"
    if record.get("keras_sha256") != manifest.get("sha256"):
        return f"{twin.name} was made from other weights than the manifest's (stale export)"
    if sha256_file(twin) != record["sha256"]:
        return f"{twin.name} changed since it was exported (sha256 differs from the manifest)"
    return None


def int8_problem(model_file: str | Path, manifest: dict) -> str | None:
    """Why the INT8 twin of ``model_file`` cannot stand in for it, or None when it can."""
    return _twin_problem(int8_twin(model_file), manifest.get("onnx_int8"), model_file, manifest, "INT8")


def twin_problem(model_file: str | Path, manifest: dict) -> str | None:
    """Why the ONNX twin of ``model_file`` cannot stand in for it, or None when it can."""
    return _twin_problem(onnx_twin(model_file), manifest.get("onnx"), model_file, manifest, "ONNX")


def _info(model_file: Path, manifest: dict, size: int, outputs: int, runtime: str) -> ModelInfo:
    classes = tuple(manifest.get("class_names", config.EMOTIONS))
    if len(classes) != outputs:
        raise ValueError(f"manifest lists {len(classes)} classes, model outputs {outputs}")
    return ModelInfo(
        path=model_file,
        class_names=classes,
        input_size=int(size),
        temperature=float(manifest.get("temperature", 1.0)),
        manifest=manifest,
        runtime=runtime,
    )


def onnx_predict(twin: Path) -> tuple[Predict, int, int]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # 0 = one thread per core (ORT's default). Idle pool threads must not spin: the face
    # detector, the video thread and API workers need those cores between calls.
    options.intra_op_num_threads = config.ONNX_THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(twin), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    size = int(feed.shape[1])
    outputs = int(session.get_outputs()[0].shape[-1])

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {feed.name: np.ascontiguousarray(x, np.float32)})[0]

    return predict, size, outputs


def _keras_predict(model) -> Predict:
    """A graph-compiled forward pass with a fixed signature (Keras ``predict`` costs ~60 ms a call)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        size = model.input_shape[1]
        fn = tf.function(
            lambda x: model(x, training=False),
            reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)],
        )
        return lambda x: fn(x).numpy()
    return lambda x: np.asarray(model(x, training=False))


def load_classifier(model_file: str | Path | None = None, runtime: str | None = None) -> tuple[Predict, ModelInfo]:
    """``predict((N, size, size, 1) float32 in [0, 255]) -> (N, classes)`` and the model's facts.

    A ``.onnx`` path is served as it is; a ``.keras`` path through its twin or Keras
    (see the module docstring). Raises ``FileNotFoundError``, ``RuntimeUnavailable``
    or ``ValueError`` with a message a user can act on.
    """
    model_file = Path(model_file or config.MODEL_FILE)
    runtime = (runtime or config.RUNTIME).strip().lower()
    if runtime not in RUNTIMES:
        raise RuntimeUnavailable(f"FER_RUNTIME={runtime!r} is not one of {', '.join(RUNTIMES)}")
    if not model_file.is_file():
        raise FileNotFoundError(f"model file {model_file} not found")
    is_int8 = model_file.name.endswith(INT8_SUFFIX)
    # fer_cnn.int8.onnx shares fer_cnn.json with the model it was quantised from.
    described = model_file.with_name(model_file.name[: -len(INT8_SUFFIX)] + ".onnx") if is_int8 else model_file
    manifest = read_manifest(described) if manifest_path(described).exists() else {}
    if model_file.suffix == ".onnx":
        predict, size, outputs = onnx_predict(model_file)
        return predict, _info(model_file, manifest, size, outputs, "onnx-int8" if is_int8 else "onnx")
    if runtime in ("auto", "int8"):
        problem = int8_problem(model_file, manifest)
        if problem is None:
            predict, size, outputs = onnx_predict(int8_twin(model_file))
            return predict, _info(model_file, manifest, size, outputs, "onnx-int8")
        if runtime == "int8":
            raise RuntimeUnavailable(
                f"FER_RUNTIME=int8 cannot serve {model_file.name}: {problem}; run `python -m src.cli export "
                f"--model {model_file.name} --data PATH` with FER2013 (needs `{TRAINING_EXTRA}`), "
                "or set FER_RUNTIME=auto"
            )
    if runtime != "keras":
        problem = twin_problem(model_file, manifest)
        if problem is None:
            predict, size, outputs = onnx_predict(onnx_twin(model_file))
            return predict, _info(model_file, manifest, size, outputs, "onnx")
        if runtime == "onnx" or not keras_available():
            fix = "run `python -m src.cli export`" + ("" if keras_available() else f" (needs `{TRAINING_EXTRA}`)")
            raise RuntimeUnavailable(f"cannot serve {model_file.name} without TensorFlow: {problem}; {fix}")
    if not keras_available():
        raise RuntimeUnavailable(f"FER_RUNTIME=keras needs TensorFlow and Keras: {TRAINING_EXTRA}")
    from src.engine.model import load_model

    model, info = load_model(model_file)
    return _keras_predict(model), info
