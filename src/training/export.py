"""Model export: the ONNX twin of a ``.keras`` model (checked against Keras) and its INT8
twin (static QDQ quantisation calibrated on FER2013 Training faces, checked against the fp32
twin), each recorded in the manifest so that ``src.engine.runtime`` may serve it.

``python -m src.cli export`` and ``train --publish`` call these; they need TensorFlow
(``pip install -e '.[train]'``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from src import config
from src.engine.classifier import model_views, tta_averaged
from src.engine.manifest import read_manifest, sha256_file, write_manifest
from src.engine.runtime import features_twin, int8_twin, onnx_predict, onnx_twin, twin_problem
from src.training.data import DatasetError, load_cached

# Largest difference in any probability allowed between the twin and Keras.
EXPORT_TOLERANCE = 1e-4
# Least share of held-out faces on which the INT8 twin must give the fp32 twin's top answer.
# The shipped twins agree on 99.4% of 512 held-out Training faces (the few faces that
# change are near-ties between two classes); below 97% the answer would change for more than
# 1 face in 33, well past what quantisation costs a sound export: a broken one or a bad
# calibration set.
INT8_MIN_AGREEMENT = 0.97
# Of the faces given to export_int8, the share kept back to check agreement (not calibrated on).
INT8_CHECK_SHARE = 0.25
# Operations of the classifier head (and of an ensemble's averaging) that stay float in the INT8 twin.
HEAD_OPS = frozenset({"Softmax", "Add", "MatMul", "Gemm", "Mul", "Div", "Sum", "Mean"})
# Training faces ``export`` and ``train --publish`` hand to export_int8 (a quarter kept back to check).
INT8_CALIBRATION_FACES = 2048


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

    from src.engine.model import load_model

    model_file = Path(model_file or config.MODEL_FILE)
    model, info = load_model(model_file)
    x = check_inputs(info.input_size)
    twin = onnx_twin(model_file)
    diff, _ = _export_checked(model, twin, x, tolerance, "the ONNX export")
    import onnx

    record = {
        **_file_record(twin),
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


def _export_checked(model, twin: Path, x: np.ndarray, tolerance: float, what: str) -> tuple[float, int]:
    """Export ``model`` to ``twin`` as ONNX only if it gives Keras' outputs on ``x`` (to
    ``tolerance``, relative for outputs above 1); returns (largest difference, output width)."""
    expected = model.predict(x, batch_size=64, verbose=0)  # also marks the model as called
    scratch = twin.with_name(f".{twin.name}.tmp")
    try:
        with warnings.catch_warnings():  # Keras' tf2onnx shim trips NumPy's np.object deprecation
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(scratch), format="onnx", verbose=False)
        predict, _, width = onnx_predict(scratch)
        diff = float(np.abs(predict(x) - expected).max())
        if not diff <= tolerance * max(1.0, float(np.abs(expected).max())):
            raise ValueError(f"{what} differs from Keras by {diff:.2e} (> {tolerance:.0e}); not written")
        scratch.replace(twin)
    finally:
        scratch.unlink(missing_ok=True)
    return diff, width


def features_model(model):
    """A Keras model from the face to the features the classifier head reads: the input of
    each member's ``emotion`` layer, concatenated for an ensemble."""
    import keras

    from src.engine.model import ensemble_members

    members = ensemble_members(model) or [model]
    face = keras.Input(model.input_shape[1:], name="face")
    parts = [
        keras.Model(m.inputs[0], m.get_layer("emotion").input, name=f"features_{i}")(face)
        for i, m in enumerate(members)
    ]
    features = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    return keras.Model(face, features, name="features")


def export_features(model_file: str | Path | None = None, tolerance: float = EXPORT_TOLERANCE) -> dict:
    """Write the features twin of a ``.keras`` model (``fer_cnn.features.onnx``: the face in,
    the classifier head's input out), check it against Keras and record it in the manifest
    under ``onnx_features``. ``adapt`` fits new heads on these features without TensorFlow."""
    from src.engine.model import load_model

    model_file = Path(model_file or config.MODEL_FILE)
    model, info = load_model(model_file)
    extractor = features_model(model)
    twin = features_twin(model_file)
    diff, dims = _export_checked(extractor, twin, check_inputs(info.input_size), tolerance, "the features export")
    manifest = read_manifest(model_file)
    record = {**_file_record(twin), "keras_sha256": manifest["sha256"], "dimensions": int(dims), "max_abs_diff": diff}
    framework = {k: manifest[k] for k in ("keras_version", "backend") if k in manifest}
    write_manifest(model_file, info.class_names, info.input_size, framework=framework, onnx_features=record)
    return record


def _file_record(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}


def _as_faces(faces: np.ndarray, size: int) -> np.ndarray:
    from src.engine.preprocessing import resize_faces

    x = np.asarray(faces, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 4 and x.shape[3] == 1 and x.shape[1] == x.shape[2]:
        x = resize_faces(x, size)  # 48 px dataset faces for a net of another size
    if x.shape[1:] != (size, size, 1):
        raise ValueError(f"calibration faces must be (N, {size}, {size}) or (N, {size}, {size}, 1), not {x.shape}")
    return np.ascontiguousarray(x)


def _head_nodes(model_path: Path) -> list[str]:
    """The classifier head's nodes (softmax and the dense layer feeding it), walking back from the output.

    They stay float: quantised, the probabilities would come in steps of 1/255 (and the
    logits in steps of a twentieth or so), which confidences and temperature scaling feel.
    An ensemble's averaging (Add, Mul or Div) is followed back into every member's head.
    """
    import onnx

    graph = onnx.load(str(model_path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    constants = {init.name for init in graph.initializer}
    head, seen, todo = [], set(), [producer.get(graph.output[0].name)]
    while todo:
        node = todo.pop()
        if node is None or node.name in seen or node.op_type not in HEAD_OPS:
            continue
        seen.add(node.name)
        head.append(node.name)
        todo.extend(producer.get(name) for name in node.input if name and name not in constants)
    return head


def export_int8(
    model_file: str | Path | None,
    calibration_faces: np.ndarray,
    source: str,
    min_agreement: float = INT8_MIN_AGREEMENT,
) -> dict:
    """Write the INT8 twin of a ``.keras`` model, check it against the fp32 twin, record it in the manifest.

    ``calibration_faces`` are (N, size, size[, 1]) faces in [0, 255] from the data the
    model was *trained* on (FER2013 Training): never PublicTest or PrivateTest, which
    report the model's accuracy. ``source`` says where they come from, for the manifest
    (e.g. "FER2013 Training faces, seed 0"; no path of this machine). The last
    ``INT8_CHECK_SHARE`` of them are kept back: the twin is calibrated on the rest and must
    give the fp32 twin's top answer (test-time views, as served) on at least ``min_agreement`` of
    the kept-back faces. Below that it raises ``ValueError`` and writes nothing.

    The fp32 twin is exported first (``export_onnx``) when it is missing or stale.
    Returns the manifest's ``onnx_int8`` record.
    """
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model_file = Path(model_file or config.MODEL_FILE)
    manifest = read_manifest(model_file)
    if twin_problem(model_file, manifest) is not None:
        export_onnx(model_file)
        manifest = read_manifest(model_file)
    fp32 = onnx_twin(model_file)
    fp32_predict, size, _ = onnx_predict(fp32)
    faces = _as_faces(calibration_faces, size)
    held = int(round(len(faces) * INT8_CHECK_SHARE))
    if held < 1 or len(faces) - held < 1:
        raise ValueError(f"need at least 2 calibration faces (some to calibrate on, some to check), got {len(faces)}")
    calibrate, check = faces[:-held], faces[-held:]

    import onnxruntime as ort

    feed = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Faces(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{feed: calibrate[i : i + 64]} for i in range(0, len(calibrate), 64)])

        def get_next(self):
            return next(self._batches, None)

    twin = int8_twin(model_file)
    scratch = twin.with_name(f".{twin.name}.tmp")
    try:
        with tempfile.TemporaryDirectory() as work:
            prepared = Path(work) / "prepared.onnx"
            # Symbolic shape inference needs sympy; the input's shape is fixed but for the batch.
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            # QDQ ran faster than the QOperator format here (oneDNN fuses the QDQ pairs).
            quantize_static(
                str(prepared),
                str(scratch),
                Faces(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=_head_nodes(prepared),
            )
        int8_predict, _, _ = onnx_predict(scratch)
        views = model_views(manifest)
        expected = tta_averaged(fp32_predict, check, views).argmax(1)
        agreement = float((tta_averaged(int8_predict, check, views).argmax(1) == expected).mean())
        if not agreement >= min_agreement:
            raise ValueError(
                f"the INT8 twin gives the fp32 twin's answer on {agreement:.1%} of {held} held-out faces "
                f"(< {min_agreement:.0%}); not written"
            )
        scratch.replace(twin)
    finally:
        scratch.unlink(missing_ok=True)
    record = {
        **_file_record(twin),
        "keras_sha256": manifest["sha256"],
        "onnx_sha256": manifest["onnx"]["sha256"],
        "quantisation": "static QDQ, int8 weights (per channel) and activations, MinMax calibration; "
        "classifier head (dense + softmax) in float",
        "calibration": f"{len(calibrate)} {source}",
        "checked_faces": held,
        "top1_agreement": agreement,
    }
    framework = {k: manifest[k] for k in ("keras_version", "backend") if k in manifest}
    write_manifest(model_file, manifest["class_names"], manifest["input_size"], framework=framework, onnx_int8=record)
    return record


def export_int8_from_dataset(
    model_file: str | Path | None,
    data_path: str | Path | None = None,
    count: int = INT8_CALIBRATION_FACES,
    seed: int = 0,
) -> dict:
    """``export_int8`` calibrated on ``count`` Training faces of the FER2013 data at ``data_path``, picked with ``seed``.

    Raises ``DatasetError`` (a ``ValueError``) when there is no such data.
    """

    training = load_cached(data_path).split("Training")
    if len(training) < 2:
        raise DatasetError(
            f"the dataset holds {len(training)} Training faces; the INT8 twin needs some to calibrate on"
        )
    pick = np.random.default_rng(seed).permutation(len(training))[:count]
    return export_int8(model_file, training.images[pick], f"FER2013 Training faces, seed {seed}")
