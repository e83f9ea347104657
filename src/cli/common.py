"""What the commands share: the user error and exit codes, model and data path resolution,
the deferred Keras start-up, the output-folder options and the results-store openers.

Nothing here imports TensorFlow at load time: the backend starts in ``start_backend``,
which a command calls only once its arguments are checked."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ info/warnings off stderr

from src import config  # noqa: E402
from src.training.data import resolve_dataset_path  # noqa: E402
from src.training.outputs import output_version, write_dir  # noqa: E402

EXIT_SOME_FAILED = 1  # predict: some inputs could not be read (their rows say why); the rest were written
EXIT_USER_ERROR = 2
EXIT_IO_ERROR = 74  # sysexits.h EX_IOERR


class UserError(Exception):
    """A problem with the command line the user can fix; printed as one line."""


@contextlib.contextmanager
def _silenced_stderr() -> Iterator[None]:
    """Discard what native code writes to fd 2 meanwhile (it bypasses Python's streams)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_backend(model_file: Path | None = None) -> None:
    """Import Keras and initialise its devices without TensorFlow's start-up log lines
    (absl logs them before TF_CPP_MIN_LOG_LEVEL applies). FER_BACKEND_LOGS=1 keeps them.

    With ``model_file``, nothing happens when the model is served without Keras (its
    ONNX twin), so ``predict`` never pays for TensorFlow's import there."""
    if os.environ.get("FER_BACKEND_LOGS") == "1":
        return
    if model_file is not None and not _needs_keras(model_file):
        return
    with _silenced_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()


def _needs_keras(model_file: Path) -> bool:
    from src.engine.manifest import ManifestError, read_manifest
    from src.engine.runtime import int8_problem, keras_available, twin_problem

    runtime = config.RUNTIME.strip().lower()
    if not keras_available():
        return False  # loading then says what to install (RuntimeUnavailable), not a traceback
    if runtime == "keras":
        return True
    if model_file.suffix == ".onnx":
        return False
    try:
        manifest = read_manifest(model_file, strict=False) or {}
    except ManifestError:
        return True
    if runtime in ("auto", "int8") and int8_problem(model_file, manifest) is None:
        return False
    return twin_problem(model_file, manifest) is not None


def model_path(value: str | None) -> Path:
    """--model as a file, or as a name of a model in models/ (``fer_plus`` = models/fer_plus.keras)."""
    path = Path(value).expanduser() if value else config.MODEL_FILE
    if value and not path.is_file() and not path.suffix and (config.MODELS_DIR / f"{value}.keras").is_file():
        path = config.MODELS_DIR / f"{value}.keras"
    if not path.is_file():
        hint = "" if value else " (train one with `python -m src.cli train --publish`, or pass --model)"
        raise UserError(f"model file {path} not found{hint}")
    return path


def data_path(value: str | None) -> Path:
    """--data resolved (src/training/data.py) and checked to exist."""
    path = resolve_dataset_path(value)
    if not path.exists():
        raise UserError(f"dataset path {path} does not exist")
    return path


def load_recognizer(model_file: Path):
    """The serving recognizer for ``model_file``; a model that cannot load is a user error."""
    from src.engine.inference import get_recognizer

    try:
        return get_recognizer(model_file)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load model {model_file}: {str(exc).splitlines()[0]}") from None


def load_data(value: str | None):
    """The dataset --data names, loaded through the cache."""
    from src.training.data import load_cached

    return load_cached(data_path(value))


def output_dir(args: argparse.Namespace) -> Path:
    """--output-dir as given, else the output version's folder (src/training/outputs.py: where the dashboard reads)."""
    return Path(args.output_dir) if args.output_dir else write_dir(args.output_version)


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--output-version / --output-dir, read back by ``output_dir``."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--output-version",
        type=output_version,
        metavar="vN",
        help=f"write under {config.OUTPUTS_DIR}/vN/; 'new' starts the next version "
        "(default: FER_OUTPUT_VERSION, else the newest vN folder, else v1)",
    )
    where.add_argument("--output-dir", metavar="DIR", help="write to this folder instead")


# --- Results store (src/analytics/store/, docs/store.md): `predict --store`, `runs`, `serve` --------


@contextlib.contextmanager
def store_errors(doing: str = "") -> Iterator[None]:
    """StoreError (bad URL, server down, unknown run...) as a one-line user error."""
    from src.analytics.store import StoreError

    try:
        yield
    except StoreError as exc:
        raise UserError(f"{doing}{exc}") from None


def open_store(retention_days: int | None = None):
    """The results store at FER_DATABASE_URL (with ``retention_days``, that retention instead)."""
    from src.analytics import store

    with store_errors():
        return store.open_store() if retention_days is None else store.Store(retention_days=retention_days)
