"""Serving runtime: the saved model without TensorFlow (ONNX Runtime), or through Keras.

The ``.keras`` file is the artefact of record. ``python -m src.cli export`` writes its
ONNX twin beside it (``fer_cnn.keras`` -> ``fer_cnn.onnx``), checks that both give the
same probabilities (to ``EXPORT_TOLERANCE``) and records the twin's sha256 and the
weights it came from in the manifest. Serving (dashboard, CLI ``predict``, API, Ray
workers) then runs the twin through ONNX Runtime: no TensorFlow import (seconds of
start-up, ~1.9 GB installed) and a lighter call per batch.

``FER_RUNTIME``: ``auto`` (default) serves the twin when it matches the manifest and
falls back to Keras otherwise (a stale or missing export, when TensorFlow is
installed); ``onnx`` never falls back; ``keras`` always loads the ``.keras`` file.
Training, evaluation and Grad-CAM keep using Keras (``src.model``).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src import config
from src.manifest import manifest_path, read_manifest, sha256_file, write_manifest

RUNTIMES = ("auto", "onnx", "keras")
# Largest difference in any probability allowed between the twin and Keras.
EXPORT_TOLERANCE = 1e-4
TRAINING_EXTRA = "pip install -e '.[train]'"

Predict = Callable[[np.ndarray], np.ndarray]


class RuntimeUnavailable(RuntimeError):
    """The model cannot be served as asked; the message says why and what to run."""


@dataclass(frozen=True)
class ModelInfo:
    """What the app needs to know about a saved model, read from its manifest."""

    path: Path
    class_names: tuple[str, ...]
    input_size: int
    temperature: float
    manifest: dict
    runtime: str = "keras"

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unversioned"))


def keras_available() -> bool:
    """Whether the training extra (TensorFlow + Keras) is installed (found, not imported)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("keras", "tensorflow"))
    except (ImportError, ValueError):
        return False


def onnx_twin(model_file: str | Path) -> Path:
    """``models/fer_cnn.keras`` -> ``models/fer_cnn.onnx``."""
    return Path(model_file).with_suffix(".onnx")


def twin_problem(model_file: str | Path, manifest: dict) -> str | None:
    """Why the ONNX twin of ``model_file`` cannot stand in for it, or None when it can."""
    twin = onnx_twin(model_file)
    record = manifest.get("onnx")
    if not twin.is_file():
        return f"no ONNX export {twin.name} beside the model"
    if not isinstance(record, dict) or "sha256" not in record:
        return f"{twin.name} is not recorded in the manifest {manifest_path(model_file).name}"
    if record.get("keras_sha256") != manifest.get("sha256"):
        return f"{twin.name} was exported from other weights than the manifest's (stale export)"
    if sha256_file(twin) != record["sha256"]:
        return f"{twin.name} changed since it was exported (sha256 differs from the manifest)"
    return None


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


def _onnx_predict(twin: Path) -> tuple[Predict, int, int]:
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
    manifest = read_manifest(model_file) if manifest_path(model_file).exists() else {}
    if model_file.suffix == ".onnx":
        predict, size, outputs = _onnx_predict(model_file)
        return predict, _info(model_file, manifest, size, outputs, "onnx")
    if runtime != "keras":
        problem = twin_problem(model_file, manifest)
        if problem is None:
            predict, size, outputs = _onnx_predict(onnx_twin(model_file))
            return predict, _info(model_file, manifest, size, outputs, "onnx")
        if runtime == "onnx" or not keras_available():
            fix = "run `python -m src.cli export`" + ("" if keras_available() else f" (needs `{TRAINING_EXTRA}`)")
            raise RuntimeUnavailable(f"cannot serve {model_file.name} without TensorFlow: {problem}; {fix}")
    if not keras_available():
        raise RuntimeUnavailable(f"FER_RUNTIME=keras needs TensorFlow and Keras: {TRAINING_EXTRA}")
    from src.model import load_model

    model, info = load_model(model_file)
    return _keras_predict(model), info


def flip_averaged(predict, x: np.ndarray, flip: bool = True) -> np.ndarray:
    """``predict(x)`` on (N, H, W, 1) faces, averaged with the mirrored faces' when ``flip``.

    One call on the faces and their mirror images together (a batch of 2N), so the
    test-time augmentation costs one network call, not two.
    """
    if not flip or len(x) == 0:
        return np.asarray(predict(x))
    both = np.asarray(predict(np.concatenate([x, x[:, :, ::-1]])))
    return (both[: len(x)] + both[len(x) :]) / 2


def check_inputs(size: int, count: int = 256, seed: int = 0) -> np.ndarray:
    """Faces to compare the twin with Keras on: noise, smooth gradients, flat and extreme images."""
    rng = np.random.default_rng(seed)
    quarter = count // 4
    noise = rng.uniform(0, 255, (quarter, size, size))
    ramp = np.linspace(0, 1, size)
    smooth = np.stack(
        [255 * np.clip(a * ramp[None, :] + b * ramp[:, None] + c, 0, 1) for a, b, c in rng.uniform(-1, 1, (quarter, 3))]
    )
    flat = np.repeat(rng.uniform(0, 255, (quarter, 1, 1)), size, 1).repeat(size, 2)
    extremes = rng.choice([0.0, 255.0], (count - 3 * quarter, size, size))
    faces = np.concatenate([noise, smooth, flat, extremes]).astype(np.float32)
    return faces[..., None]


def export_onnx(model_file: str | Path | None = None, tolerance: float = EXPORT_TOLERANCE) -> dict:
    """Write the ONNX twin of a ``.keras`` model, check it against Keras, record it in the manifest.

    Returns the manifest's ``onnx`` record. Raises ``ValueError`` (and writes nothing)
    when the twin disagrees with Keras by more than ``tolerance``.
    """
    import keras

    from src.model import load_model

    model_file = Path(model_file or config.MODEL_FILE)
    model, info = load_model(model_file)
    x = check_inputs(info.input_size)
    expected = model.predict(x, batch_size=64, verbose=0)  # also marks the model as called
    twin = onnx_twin(model_file)
    scratch = twin.with_name(f".{twin.name}.tmp")
    try:
        with warnings.catch_warnings():  # Keras' tf2onnx shim trips NumPy's np.object deprecation
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(scratch), format="onnx", verbose=False)
        predict, _, _ = _onnx_predict(scratch)
        diff = float(np.abs(predict(x) - expected).max())
        if not diff <= tolerance:
            raise ValueError(f"the ONNX export differs from Keras by {diff:.2e} (> {tolerance:.0e}); not written")
        scratch.replace(twin)
    finally:
        scratch.unlink(missing_ok=True)
    import onnx

    record = {
        "file": twin.name,
        "sha256": sha256_file(twin),
        "size_bytes": twin.stat().st_size,
        "keras_sha256": sha256_file(model_file),
        "opset": int(max(o.version for o in onnx.load(str(twin)).opset_import if o.domain in ("", "ai.onnx"))),
        "max_abs_diff": diff,
        "checked_inputs": int(len(x)),
    }
    framework = {"keras_version": keras.__version__, "backend": keras.backend.backend()}
    if info.manifest:
        framework = {k: info.manifest.get(k, v) for k, v in framework.items()}
    write_manifest(model_file, info.class_names, info.input_size, framework=framework, onnx=record)
    return record
