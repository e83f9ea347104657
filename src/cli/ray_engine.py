"""Batch scale-out on Ray Data: ``python -m src.cli predict PATH... --engine ray [--address ADDRESS]``.

The CLI lists the inputs (``cli.iter_inputs``: the same names and the same skipped
entries as the local engine) and writes the rows (``cli.RowWriter``); this module only
turns the listed files into ``ImageResult``s, in input order, on a Ray cluster:

* the files are read by Ray Data (``read_binary_files``) and decoded inside the workers,
  so an unreadable or corrupt image is that file's ``status="error"`` result with the
  local engine's message, never a failed job;
* detection and classification run in ``Dataset.map_batches`` on a pool of actors
  (``_Recognize``), each loading the recognizer once. The model file, its manifest and
  its ONNX twin travel with the job, so workers need the package, not the model;
* the results come back in input order and the CLI writes them as they arrive.

Files the driver cannot hand to Ray by path (missing, unreadable, names that are not
UTF-8) are settled in the driver with the local engine's message, or, when readable,
shipped as bytes. Ray is imported lazily: the product works without the ``ray`` extra.

Without an address (``--address`` or ``RAY_ADDRESS``) Ray starts on this machine's cores
and stops at the end; with one it joins that cluster and leaves it running. Workers get
this checkout's ``src`` package through the job's ``runtime_env`` (``py_modules``) and the
driver's ``FER_*`` settings as environment variables; see docs/ray.md.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import pickle
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from src import config

RAY_EXTRA = "pip install -e '.[ray]'"
DEFAULT_BATCH_SIZE = 16  # photos per actor call: small enough to balance 2 workers on a few dozen photos
DEFAULT_CPUS_PER_WORKER = 1.0
_DRIVER_KEY = "\0driver/"  # keys of files shipped as bytes by the driver; no real path starts with NUL


class RayEngineError(Exception):
    """A problem with Ray itself (not installed, unreachable, job failed); one line for the user."""


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """How to run on Ray. ``workers`` None = as many as the cluster's CPUs allow."""

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = DEFAULT_CPUS_PER_WORKER
    batch_size: int = DEFAULT_BATCH_SIZE


def require_ray() -> None:
    """Raise ``RayEngineError`` naming the extra when Ray is not installed (found, not imported)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise RayEngineError(f"the Ray engine needs Ray Data, which this install leaves out: {RAY_EXTRA}")


class _Recognize:
    """The ``map_batches`` worker: one recognizer per actor, loaded in the constructor.

    ``model_files`` maps file names to bytes (the model, its manifest, its ONNX twin),
    written to a private folder so the worker loads exactly the driver's model.
    """

    def __init__(self, model_files: dict[str, bytes], model_name: str, fast: bool, crop: bool, threads: int):
        import cv2

        # This actor's share of the node: as many threads as CPUs it was given, unless
        # FER_ONNX_THREADS says otherwise (0 would mean one per core of the node).
        if config.ONNX_THREADS == 0:
            config.ONNX_THREADS = threads
        cv2.setNumThreads(threads)
        self._folder = tempfile.mkdtemp(prefix="fer-ray-model-")
        for name, data in model_files.items():
            Path(self._folder, name).write_bytes(data)
        from src.engine.inference import EmotionRecognizer

        self.recognizer = EmotionRecognizer(Path(self._folder, model_name), fast=fast)
        self.crop = crop

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = [bytes(b) for b in batch["bytes"]]
        results = self.recognizer.analyze_batch(images, names=[""] * len(images), crop=self.crop, chunk=len(images))
        blobs = np.empty(len(results), dtype=object)
        blobs[:] = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results]
        return {"path": batch["path"], "result": blobs}

    def __del__(self):
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)


def _model_files(model_file: Path) -> dict[str, bytes]:
    """The model and what loads with it (manifest, ONNX twins), by file name."""
    from src.engine.manifest import manifest_path
    from src.engine.runtime import int8_twin, onnx_twin

    files = {}
    for path in (model_file, manifest_path(model_file), onnx_twin(model_file), int8_twin(model_file)):
        if path.is_file() and path.name not in files:
            files[path.name] = path.read_bytes()
    return files


def _by_path(path: Path) -> bool:
    """Whether Ray Data can read this input by its path (else the driver deals with it).

    Ray Data parses paths as URLs, which drops tabs and line breaks anywhere in them, and
    pyarrow takes UTF-8 only: such names go the driver's way.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if text != text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return False
    return path.is_file() and os.access(path, os.R_OK)


def _driver_error(path: Path, reason: OSError) -> str:
    """The local engine's message for a file that cannot be read: it decodes the path the same way."""
    from src.engine.inference import error_message
    from src.engine.preprocessing import load_image_sized

    try:
        load_image_sized(path)
    except Exception as exc:
        return error_message(exc)
    return error_message(reason)


def _fer_env() -> dict[str, str]:
    """The driver's FER_* settings, so workers elsewhere decode and detect alike."""
    return {k: v for k, v in os.environ.items() if k.startswith("FER_")}


def runtime_env() -> dict:
    """The job's runtime_env: this checkout's ``src`` for the workers, and the driver's FER_* settings.

    Ray ships the package to every worker (``py_modules``), so a cluster needs its
    dependencies installed (the package with the ``ray`` extra), not this checkout.
    """
    return {"py_modules": [str(Path(__file__).resolve().parent)], "env_vars": _fer_env()}


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start Ray on this machine's cores.

    Either way the job gets ``runtime_env()``. Returns whether this call started the
    session (and so must shut it down); a session the caller started is used as it is.
    """
    require_ray()
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
    elif "ray" not in sys.modules:
        # A private instance listens on loopback only, not on the machine's network address
        # (Ray reads this when imported; it is what Ray does on macOS and Windows).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray

        quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "runtime_env": runtime_env()}
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local" starts a fresh instance even when `ray start` runs on this machine.
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **quiet)
    except Exception as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayEngineError(f"cannot start or reach {where}: {_first_line(exc)}") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody answers at (Ray itself retries for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address in ("auto", "local"):
        return  # "auto" and other forms: Ray resolves them and says what is wrong
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayEngineError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def shutdown() -> None:
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ray.shutdown()


def _retries() -> dict:
    """Actor restarts and batch retries: a few on a multi-node cluster (a node may go away), none on
    one machine, where a worker that died (e.g. a decoder crash on a hostile file) would only die
    again; Ray Data's default, unbounded retries, would then never end."""
    import ray

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    count = 2 if nodes > 1 else 0
    return {"max_restarts": count, "max_task_retries": count}


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def _quiet_data_context():
    """Ray Data's progress bars and per-run log lines off (the CLI has its own), outputs in order."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    log = logging.getLogger("ray.data")
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_options.preserve_order, log.level)
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.preserve_order = True
    # Failures reach the user as one line (RayEngineError); the details stay in Ray's log files.
    log.setLevel(logging.CRITICAL)

    def restore():
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_options.preserve_order, level = saved
        log.setLevel(level)

    return restore


@dataclasses.dataclass
class _Plan:
    """Where each input's result comes from: settled by the driver (``ready``), or a dataset key."""

    ready: dict = dataclasses.field(default_factory=dict)  # input position -> ImageResult
    waiting: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # key -> positions (a file named twice)
    by_path: list[str] = dataclasses.field(default_factory=list)  # read by Ray Data
    shipped: list[dict] = dataclasses.field(default_factory=list)  # bytes read by the driver


def _plan(items: Sequence[tuple[str, Path]]) -> _Plan:
    from src.engine.results import ImageResult

    plan = _Plan()
    for i, (name, path) in enumerate(items):
        if _by_path(path):
            key = os.path.abspath(path)
            if key not in plan.waiting:
                plan.by_path.append(key)
        else:
            try:
                data = path.read_bytes() if path.is_file() else None
                reason: OSError | None = None if data is not None else FileNotFoundError(2, "not a regular file")
            except OSError as exc:
                data, reason = None, exc
            if data is None:
                plan.ready[i] = ImageResult(file=name, status="error", error=_driver_error(path, reason))
                continue
            key = f"{_DRIVER_KEY}{i}"
            plan.shipped.append({"bytes": data, "path": key})
        plan.waiting.setdefault(key, []).append(i)
    return plan


def predict_batches(
    items: Sequence[tuple[str, Path]],
    model_file: Path,
    *,
    fast: bool = False,
    crop: bool = False,
    options: RayOptions | None = None,
) -> Iterator[list]:
    """``ImageResult``s for ``items`` ((name, path) as from ``cli.iter_inputs``), in input order,
    yielded as lists as soon as the next ones are done.

    Ray is started or joined here, before the first result is asked for, so that a
    missing extra or an unreachable cluster (``RayEngineError``) comes before any output;
    the iterator raises ``RayEngineError`` when the job fails, and stops a Ray instance it
    started when it ends.
    """
    options = options or RayOptions()
    require_ray()
    plan = _plan(items)
    if not plan.waiting:  # nothing for Ray to do (no inputs, or only missing files)
        return iter([[plan.ready[i] for i in range(len(items))]] if items else [])
    started = connect(options.address)
    return _run(items, model_file, fast, crop, options, plan, started)


def _run(items, model_file: Path, fast: bool, crop: bool, options: RayOptions, plan: _Plan, started: bool):
    import ray
    import ray.data

    restore = _quiet_data_context()
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        workers = options.workers or max(1, int(cpus // options.cpus_per_worker))
        parts = []
        if plan.by_path:
            # Reading bytes is I/O: no CPU reserved, so the actors may take every core, but a cap
            # on concurrent read tasks (0-CPU tasks are otherwise not limited).
            parts.append(
                ray.data.read_binary_files(plan.by_path, include_paths=True, num_cpus=0, concurrency=max(2, workers))
            )
        if plan.shipped:
            parts.append(ray.data.from_items(plan.shipped))
        dataset = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        with warnings.catch_warnings():  # max_restarts/max_task_retries pass as (deprecated) ray_remote_args
            warnings.simplefilter("ignore")
            results = dataset.map_batches(
                _Recognize,
                fn_constructor_kwargs={
                    "model_files": _model_files(model_file),
                    "model_name": model_file.name,
                    "fast": fast,
                    "crop": crop,
                    "threads": max(1, int(options.cpus_per_worker)),
                },
                batch_size=options.batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=options.cpus_per_worker,
                **_retries(),
            )
        ready, position = plan.ready, 0
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for key, blob in zip(batch["path"], batch["result"]):
                result = pickle.loads(blob)
                for i in plan.waiting.pop(str(key), ()):
                    ready[i] = dataclasses.replace(result, file=items[i][0])
            done = []
            while position in ready:  # the next inputs in order, as far as they are done
                done.append(ready.pop(position))
                position += 1
            if done:
                yield done
        if position < len(items):
            raise RayEngineError(
                f"Ray returned no result for {items[position][0]} (and {len(items) - position - 1} after it)"
            )
    except RayEngineError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:  # the driver saw it, a worker did not
        raise RayEngineError(
            f"a Ray worker could not read {_first_line(exc)} ({type(exc).__name__}): the workers read "
            "the photos by path, so every node must see them at the same path"
        ) from None
    except Exception as exc:  # Ray's errors carry remote tracebacks: the user gets one line
        raise RayEngineError(f"the Ray job failed: {_first_line(exc)}") from None
    finally:
        restore()
        if started:
            shutdown()
