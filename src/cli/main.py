"""Command line: ``python -m src.cli {predict,evaluate,train,export,collect,stats,runs,serve}``.

The contract other tools rely on:

* ``predict`` writes one row per detected face (CSV or JSON lines) with columns
  ``file,face,x,y,w,h,emotion,confidence,<labels>,status,error``; a file that
  cannot be used gets one ``status=error`` row and the run still exits 0.
* In ``predict`` output, boxes are in the photo's original pixels (however large: it
  is decoded at most ``FER_DECODE_MAX_SIDE`` on its long side, and the boxes are
  scaled back); CSV text cells that a spreadsheet would
  run as a formula get a leading ``'`` (JSON lines stay exact); file-name bytes that
  are not UTF-8 are written as ``\\xNN``. Folder entries left out (not images, hidden)
  are listed on stderr, one ``skipped NAME: REASON`` line each, before the summary.
* ``evaluate`` prints a summary whose last line is ``accuracy=0.xxxx macro_f1=0.xxxx``.
* ``serve`` runs the REST API (src/api/app.py) with uvicorn; without ``FER_API_KEY`` it
  refuses any host but a loopback address (exit 2).
* ``predict --engine ray`` gives the same rows, in the same order, from Ray Data workers
  on this machine or the cluster at ``--address`` (src/cli/ray_engine.py, docs/ray.md);
  without the ``ray`` extra it exits 2.
* ``predict --store`` also saves the run in the results database (src/analytics/store.py), rows as
  they are produced; ``runs list|delete|retention`` manage what is stored.
* User errors (bad data path, missing model, unreachable database, unknown run) print one
  line to stderr and exit 2; a read or write that fails mid-run (a full disk, an
  unwritable output) prints ``error: REASON`` and exits 74.

TensorFlow is imported only after the arguments are checked, so user errors are
fast and free of backend log noise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ info/warnings off stderr

from src import config  # noqa: E402
from src.common import sanitize  # noqa: E402
from src.training.data import DatasetError, resolve_dataset_path  # noqa: E402
from src.training.outputs import model_folder, output_version, write_dir  # noqa: E402

EXIT_USER_ERROR = 2
EXIT_IO_ERROR = 74  # sysexits.h EX_IOERR
PREDICT_CHUNK = 64  # images per network call and per write; bounds memory on huge folders
PROGRESS_MIN_FILES = 20


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


def _start_backend(model_file: Path | None = None) -> None:
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
    if runtime == "keras":
        return True
    if model_file.suffix == ".onnx" or not keras_available():
        return False
    try:
        manifest = read_manifest(model_file, strict=False) or {}
    except ManifestError:
        return True
    if runtime in ("auto", "int8") and int8_problem(model_file, manifest) is None:
        return False
    return twin_problem(model_file, manifest) is not None


def _model_path(value: str | None) -> Path:
    """--model as a file, or as a name of a model in models/ (``fer_plus`` = models/fer_plus.keras)."""
    path = Path(value).expanduser() if value else config.MODEL_FILE
    if value and not path.is_file() and not path.suffix and (config.MODELS_DIR / f"{value}.keras").is_file():
        path = config.MODELS_DIR / f"{value}.keras"
    if not path.is_file():
        hint = "" if value else " (train one with `python -m src.cli train --publish`, or pass --model)"
        raise UserError(f"model file {path} not found{hint}")
    return path


def _data_path(value: str | None) -> Path:
    path = resolve_dataset_path(value)
    if not path.exists():
        raise UserError(f"dataset path {path} does not exist")
    return path


def iter_inputs(paths: Sequence[str], skipped: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, Path]]:
    """(display name, path) for each input: files as given, folders expanded recursively.

    Inside folders only image extensions are taken and hidden entries (``.git``,
    macOS ``._*`` forks) are left out, each appended to ``skipped`` as (name, reason);
    a file named explicitly is always tried (a missing one yields its own error row
    downstream). Names may hold surrogate escapes (undecodable bytes): see ``sanitize.text``.
    """
    for given in paths:
        path = Path(given).expanduser()
        if not path.is_dir():
            yield given, path
            continue
        for parts, member, reason in _scan_folder(path):
            shown = os.path.join(given, *parts)
            if reason is None:
                yield shown, member
            elif skipped is not None:
                skipped.append((shown, reason))


def _scan_folder(root: Path) -> list[tuple[tuple[str, ...], Path, str | None]]:
    """Every entry under ``root`` as (relative parts, path, why it is skipped or None), sorted."""
    found: list[tuple[tuple[str, ...], Path, str | None]] = []

    def unreadable(err: OSError) -> None:
        folder = Path(err.filename or root)
        found.append((folder.relative_to(root).parts, folder, f"cannot read folder ({err.strerror})"))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        base = Path(folder).relative_to(root).parts
        for name in sorted(dirs):
            member = Path(folder) / name
            if name.startswith(".") or member.is_symlink():
                dirs.remove(name)  # not walked into
                reason = "hidden folder" if name.startswith(".") else "link to a folder, not followed"
                found.append(((*base, name), member, reason))
        found.extend(((*base, name), Path(folder) / name, _skip_reason(Path(folder) / name)) for name in files)
    return sorted(found, key=lambda entry: entry[0])


def _skip_reason(member: Path) -> str | None:
    """Why a file found in a folder is not analysed, or None when it is an image to try."""
    if member.name.startswith("."):
        return "hidden file"
    if member.suffix.lower() not in config.IMAGE_EXTENSIONS:
        return f"not an image file ({member.suffix.lower() or 'no extension'})"
    if not member.is_file():
        return "not a regular file (or a broken link)"
    return None


class RowWriter:
    """Streams rows as CSV (header first) or JSON lines (empty fields as null)."""

    def __init__(self, stream: IO[str], columns: Sequence[str], fmt: str):
        self.stream, self.columns, self.fmt = stream, list(columns), fmt
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
            self._csv.writeheader()

    def write(self, rows: list[dict]) -> None:
        # File names may hold undecodable bytes (surrogate escapes) that no UTF-8 stream takes.
        rows = [{k: sanitize.text(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
        if self.fmt == "csv":
            self._csv.writerows(sanitize.csv_row(row) for row in rows)
        else:
            for row in rows:
                record = {c: (None if row.get(c, "") == "" else row[c]) for c in self.columns}
                self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


def cmd_predict(args: argparse.Namespace) -> int:
    model_file = _model_path(args.model)
    stored = StoredRun.prepare(args)
    if args.engine == "ray":
        _require_ray()
    skipped: list[tuple[str, str]] = []
    items = list(iter_inputs(args.paths, skipped))
    from tqdm import tqdm

    # Loaded by both engines: the same model errors, columns and labels before any work starts.
    _start_backend(model_file)
    recognizer = _load_recognizer(model_file)
    recognizer.fast = args.fast
    batches = _result_batches(args, recognizer, model_file, items)
    stream: IO[str] = sys.stdout
    if args.output:
        try:
            stream = open(args.output, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    writer = RowWriter(stream, recognizer.columns, args.format)
    counts = {"ok": 0, "no_face": 0, "error": 0}
    faces = 0
    show = sys.stderr.isatty() and len(items) >= PROGRESS_MIN_FILES
    stored.start(recognizer.info.version)
    try:
        with tqdm(total=len(items), unit="img", file=sys.stderr, disable=not show) as bar:
            # Either engine yields ImageResults in input order; from here on one row path.
            for results in batches:
                rows = []
                for result in results:
                    counts[result.status] = counts.get(result.status, 0) + 1
                    faces += len(result.faces)
                    rows.extend(result.rows(recognizer.class_names))
                stored.add(rows)
                writer.write(rows)
                bar.update(len(results))
    except BaseException as exc:
        stored.fail(exc)
        raise
    finally:
        if stream is not sys.stdout:
            stream.close()
    for name, reason in skipped:
        print(sanitize.line(f"skipped {name}: {reason}"), file=sys.stderr)
    print(
        f"{len(items)} images: {counts['ok']} with faces ({faces} faces in all), {counts['no_face']} without, "
        f"{counts['error']} errors, {len(skipped)} skipped" + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    stored.finish()
    return 0


def _result_batches(args: argparse.Namespace, recognizer, model_file: Path, items: list[tuple[str, Path]]):
    """Lists of ImageResults in input order, from this process (local) or a Ray cluster (ray).

    Ray is started or joined here, so its user errors come before any output is written."""
    if args.engine == "ray":
        from src.cli import ray_engine

        options = ray_engine.RayOptions(
            address=args.address,
            workers=args.ray_workers,
            cpus_per_worker=args.ray_cpus_per_worker,
            batch_size=args.ray_batch_size,
        )
        try:
            batches = ray_engine.predict_batches(items, model_file, fast=args.fast, crop=args.crops, options=options)
        except ray_engine.RayEngineError as exc:
            raise UserError(str(exc)) from None
        return _user_errors(batches, ray_engine.RayEngineError)
    return (
        recognizer.analyze_batch(
            [p for _, p in items[i : i + PREDICT_CHUNK]],
            names=[n for n, _ in items[i : i + PREDICT_CHUNK]],
            crop=args.crops,
            chunk=PREDICT_CHUNK,
        )
        for i in range(0, len(items), PREDICT_CHUNK)
    )


def _user_errors(batches, error: type[Exception]):
    """``batches`` with ``error`` raised as a UserError (one line, exit 2)."""
    try:
        yield from batches
    except error as exc:
        raise UserError(str(exc)) from None


def _require_ray() -> None:
    from src.cli.ray_engine import RayEngineError, require_ray

    try:
        require_ray()
    except RayEngineError as exc:
        raise UserError(str(exc)) from None


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    from src.cli.ray_engine import DEFAULT_BATCH_SIZE, DEFAULT_CPUS_PER_WORKER

    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: Ray Data workers, on this machine's cores or the cluster at --address",
    )
    p.add_argument(
        "--address",
        metavar="ADDRESS",
        help="Ray cluster to run on (HEAD:6379, or auto for the one `ray start` runs here); default RAY_ADDRESS, "
        "else Ray starts on this machine's cores for the run",
    )
    p.add_argument(
        "--ray-workers", type=_positive_int, metavar="N", help="recognizer actors (default: cluster CPUs / CPUs each)"
    )
    p.add_argument(
        "--ray-cpus-per-worker",
        type=_positive_float,
        default=DEFAULT_CPUS_PER_WORKER,
        metavar="C",
        help=f"CPUs each actor reserves and uses as threads (default {DEFAULT_CPUS_PER_WORKER:g})",
    )
    p.add_argument(
        "--ray-batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="B",
        help=f"photos per actor call (default {DEFAULT_BATCH_SIZE})",
    )


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number above 0")
    return number


def _load_recognizer(model_file: Path):
    from src.engine.inference import get_recognizer

    try:
        return get_recognizer(model_file)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load model {model_file}: {str(exc).splitlines()[0]}") from None


def _load_data(value: str | None):
    from src.training.data import load_cached

    return load_cached(_data_path(value))


def _output_dir(args: argparse.Namespace) -> Path:
    """--output-dir as given, else the output version's folder (src/training/outputs.py: where the dashboard reads)."""
    return Path(args.output_dir) if args.output_dir else write_dir(args.output_version)


def cmd_evaluate(args: argparse.Namespace) -> int:
    _require_keras("evaluate")
    data_path = _data_path(args.data)
    model_file = _model_path(args.model)
    # Another model than the deployed one keeps its reports in a sub-folder named after it.
    out_dir = _output_dir(args) if args.output_dir else model_folder(_output_dir(args), model_file)
    data = _load_data(str(data_path))
    _start_backend()
    from src.training.evaluation import evaluate, write_dataset_stats

    try:
        result = evaluate(data, model_file, out_dir, split=args.split, run_dir=args.run_dir)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    write_dataset_stats(data, out_dir)
    m = result.metrics
    print(f"model: {model_file} (version {m['model']['version']})")
    print(f"data: {data.source} ({len(data)} rows)")
    for name, s in m["splits"].items():
        print(
            f"{name}: n={s['n']} accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f} "
            f"weighted_f1={s['weighted_f1']:.4f} ece={s['ece']:.4f}"
        )
    plus = (m.get("ferplus") or {}).get("PrivateTest")
    if plus:
        print(
            f"FER+ majority (PrivateTest): n={plus['n']} accuracy={plus['accuracy']:.4f} "
            f"macro_f1={plus['macro_f1']:.4f}"
        )
    cal = m.get("calibration")
    if cal:
        print(
            f"temperature={cal['temperature']:.3f} (fitted on PublicTest): ECE {cal['ece_before']:.4f} -> "
            f"{cal['ece_after']:.4f}, NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}"
        )
    print(f"wrote {result.output_dir}")
    print(result.summary_line)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    _require_keras("train")
    data_path = _data_path(args.data)
    _start_backend()
    from src.training.train import PROFILES, publish, train

    if args.profile not in PROFILES:
        raise UserError(f"unknown profile {args.profile}")
    expw = None
    if args.expw:
        expw = Path(args.expw).expanduser()
        if not (expw / "labels.csv").is_file():
            raise UserError(f"--expw {expw}: no labels.csv there (expected labels.csv and faces/)")
    if args.init_from and not Path(args.init_from).is_file():
        raise UserError(f"--init-from {args.init_from}: no such model file")
    for teacher in args.teacher or ():
        if not Path(teacher).is_file():
            raise UserError(f"--teacher {teacher}: no such model file")
    run_dir = train(
        str(data_path),
        args.profile,
        run_dir=args.run_dir,
        expw_path=expw,
        epochs=args.epochs,
        seed=args.seed,
        init_from=args.init_from,
        teachers=tuple(str(Path(t).resolve()) for t in args.teacher) if args.teacher else None,
        mixed_precision=args.bf16,
    )
    print(f"run: {run_dir}")
    if args.publish:
        dest = publish(run_dir, args.model, data_path=data_path)
        print(f"published: {dest} and its ONNX twins {_twin_names(dest)}")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    _require_keras("ensemble")
    sources = [Path(m).expanduser() for m in args.member]
    if len(sources) < 2:
        raise UserError("an ensemble needs at least two --member models")
    for source in sources:
        if source.is_dir() and not (source / "best.keras").is_file():
            raise UserError(f"--member {source}: a run folder without best.keras")
        if not source.is_dir() and (source.suffix != ".keras" or not source.is_file()):
            raise UserError(f"--member {source}: not a .keras model or a training run folder")
    data_path = _data_path(args.data) if args.data else None
    _start_backend()
    from src.training.train import publish_ensemble

    dest = Path(args.model).expanduser() if args.model else None
    if dest is not None and dest.suffix != ".keras":
        raise UserError(f"--model {dest}: the ensemble is written as a .keras file")
    fields = {"version": args.version} if args.version else {}
    try:
        dest = publish_ensemble(sources, dest, data_path=data_path, **fields)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    print(f"published the mean of {len(sources)} models: {dest} and its ONNX twins {_twin_names(dest)}")
    return 0


def _twin_names(model_file: Path) -> str:
    """The ONNX twins a publish wrote beside ``model_file`` (the INT8 one when it was written)."""
    from src.engine.manifest import read_manifest

    int8 = read_manifest(model_file).get("onnx_int8")
    return ", ".join([model_file.with_suffix(".onnx").name] + ([int8["file"]] if int8 else []))


def _require_keras(command: str) -> None:
    from src.engine.runtime import TRAINING_EXTRA, keras_available

    if not keras_available():
        raise UserError(f"`{command}` needs TensorFlow, which this serving install leaves out: {TRAINING_EXTRA}")


def _export(model_file: Path) -> None:
    from src.training.export import export_onnx

    try:
        record = export_onnx(model_file)
    except ValueError as exc:
        raise UserError(f"{model_file}: {str(exc).splitlines()[0]}") from None
    print(
        f"exported {model_file.with_name(record['file'])} (opset {record['opset']}, "
        f"max difference from Keras {record['max_abs_diff']:.1e} over {record['checked_inputs']} inputs)"
    )


def _export_int8(model_file: Path, data: str | None) -> None:
    """The INT8 twin, calibrated on FER2013 Training faces; without the data it is skipped, saying why."""
    from src.training.export import export_int8_from_dataset

    try:
        data_path = resolve_dataset_path(data)
    except DatasetError as exc:
        print(f"INT8 twin skipped (it is calibrated on FER2013 Training faces): {exc}")
        return
    if not data_path.exists():
        raise UserError(f"dataset path {data_path} does not exist")
    try:
        record = export_int8_from_dataset(model_file, data_path)
    except ValueError as exc:
        raise UserError(f"{model_file}: {str(exc).splitlines()[0]}") from None
    print(
        f"exported {model_file.with_name(record['file'])} (INT8, calibrated on {record['calibration']}; "
        f"same top answer as the fp32 twin on {record['top1_agreement']:.1%} of {record['checked_faces']} other faces)"
    )


def cmd_export(args: argparse.Namespace) -> int:
    _require_keras("export")
    model_file = _model_path(args.model)
    if model_file.suffix != ".keras":
        raise UserError(f"export reads a .keras model, not {model_file.name}")
    _start_backend()
    _export(model_file)
    if args.int8:
        _export_int8(model_file, args.data)
    else:
        print("INT8 twin skipped (--no-int8)")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from src.training.data import collect_dataset

    source = Path(args.source).expanduser()
    if not source.exists():
        raise UserError(f"{source} does not exist")
    dest = collect_dataset(source, Path(args.dest) if args.dest else None)
    print(f"dataset copied to {dest}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    data = _load_data(args.data)
    from src.training.evaluation import write_dataset_stats

    out_dir = _output_dir(args)
    stats = write_dataset_stats(data, out_dir)
    print(
        f"{stats['total']} rows, imbalance ratio {stats['imbalance_ratio']:.1f}; "
        f"wrote {out_dir / 'dataset_stats.json'} and {out_dir / 'mean_faces.png'}"
    )
    return 0


# --- Results store: `predict --store` and `runs ...` (src/analytics/store.py, docs/store.md) ----------


@contextlib.contextmanager
def _store_errors(doing: str = "") -> Iterator[None]:
    """StoreError (bad URL, server down, unknown run...) as a one-line user error."""
    from src.analytics.store import StoreError

    try:
        yield
    except StoreError as exc:
        raise UserError(f"{doing}{exc}") from None


def _open_store(retention_days: int | None = None):
    from src.analytics.store import Store, open_store

    with _store_errors():
        return open_store() if retention_days is None else Store(retention_days=retention_days)


class StoredRun:
    """What ``predict --store`` saves: a run (source "cli") whose rows are stored chunk by chunk,
    so a crash leaves a failed run holding the rows so far. Without --store every step is a no-op."""

    def __init__(self, args: argparse.Namespace, store=None):
        self.args, self.store, self.run_id, self.rows = args, store, None, 0

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> StoredRun:
        """Check the options and open the store before the model loads, so mistakes fail fast."""
        if not args.store:
            given = [flag for flag, value in (("--campaign", args.campaign), ("--location", args.location)) if value]
            given += ["--tag"] if args.tag else []
            if given:
                raise UserError(f"{', '.join(given)} only apply with --store (results are not saved without it)")
            return cls(args)
        return cls(args, _open_store())

    def start(self, model_version: str) -> None:
        if self.store is None:
            return
        with _store_errors("cannot start the stored run: "):
            self.run_id = self.store.start_run(
                "cli",
                campaign=self.args.campaign,
                location=self.args.location,
                tags=self.args.tag or (),
                model_version=model_version,
            )

    def add(self, rows: list[dict]) -> None:
        if self.run_id is not None:
            with _store_errors("storing results failed: "):
                self.rows += self.store.add_rows(self.run_id, rows)

    def fail(self, exc: BaseException) -> None:
        if self.run_id is None:
            return
        from src.analytics.store import StoreError, error_text

        try:
            self.store.finish_run(self.run_id, "failed", error_text(exc), if_running=True)
        except StoreError:
            return  # the error that stopped the run is the one to report
        print(f"stored run {self.run_id} marked failed, with the {self.rows} rows stored before", file=sys.stderr)

    def finish(self) -> None:
        if self.run_id is None:
            return
        with _store_errors("cannot finish the stored run: "):
            self.store.finish_run(self.run_id, "ok", if_running=True)
        print(f"stored run {self.run_id} ({self.rows} rows) in {self.store.url}", file=sys.stderr)


def _cell(value, width: int = 40) -> str:
    if isinstance(value, list):
        value = ",".join(value)
    elif hasattr(value, "strftime"):
        value = "" if value != value else value.strftime("%Y-%m-%d %H:%M:%S")  # NaT != NaT
    text = sanitize.line(str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_runs_list(args: argparse.Namespace) -> int:
    store = _open_store()
    with _store_errors():
        frame = store.runs(campaign=args.campaign, source=args.source, limit=args.limit or None)
    columns = ["run_id", "run_time", "source", "status", "files", "faces", "campaign", "location", "tags"]
    columns += ["model_version", "error"]
    if args.format == "csv":
        out = frame[columns].copy()
        out["tags"] = out["tags"].map(",".join)
        sanitize.csv_frame(out).to_csv(sys.stdout, index=False, lineterminator="\n")
        return 0
    if frame.empty:
        print("no runs stored" + (" for these filters" if args.campaign or args.source else ""), file=sys.stderr)
        return 0
    cells = [[_cell(row[c]) for c in columns] for _, row in frame.iterrows()]
    header = [c.replace("run_time", "started (UTC)") for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    for line in [header, *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    if bool(args.run_id) == bool(args.campaign):
        raise UserError("give either a RUN_ID or --campaign NAME")
    store = _open_store()
    with _store_errors():
        if args.run_id:
            run = store.get_run(args.run_id)
            if run is None:
                raise UserError(f"no run {sanitize.line(args.run_id)!r} in {store.url} (see `runs list`)")
            store.delete_run(args.run_id)
            print(
                f"deleted run {run['run_id']} ({run['source']}, started {_cell(run['run_time'])} UTC, "
                f"{run['files']} files, {run['faces']} faces)"
            )
            return 0
        runs = store.runs(campaign=args.campaign)
        if runs.empty:
            raise UserError(f"no runs in campaign {sanitize.line(args.campaign)!r} in {store.url}")
        deleted = store.delete_campaign(args.campaign)
    print(
        f"deleted {deleted} run{'s' * (deleted != 1)} of campaign {sanitize.line(args.campaign)!r} "
        f"({int(runs['files'].sum())} files, {int(runs['faces'].sum())} faces)"
    )
    return 0


def cmd_runs_retention(args: argparse.Namespace) -> int:
    days = config.RETENTION_DAYS if args.days is None else args.days
    if days <= 0:
        print("retention is off (FER_RETENTION_DAYS is 0 or unset): nothing deleted")
        return 0
    store = _open_store(retention_days=0)  # applied below, so the count can be reported
    try:
        with _store_errors():
            deleted = store.apply_retention(days)
    finally:
        store.close()
    print(f"deleted {deleted} run{'s' * (deleted != 1)} older than {days:g} days from {store.url}")
    return 0


def _add_store_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("results store (FER_DATABASE_URL; see docs/store.md)")
    g.add_argument("--store", action="store_true", help="save the run and its rows in the results database")
    g.add_argument("--campaign", metavar="NAME", help="campaign of the stored run")
    g.add_argument("--location", metavar="NAME", help="location of the stored run")
    g.add_argument("--tag", action="append", metavar="TAG", help="free tag of the stored run (repeatable)")


def _add_runs_parser(sub) -> None:
    runs = sub.add_parser("runs", help="list or delete the runs in the results database (FER_DATABASE_URL)")
    what = runs.add_subparsers(dest="runs_command", required=True)
    p = what.add_parser("list", help="stored runs, newest first")
    p.add_argument("--campaign", metavar="NAME")
    p.add_argument("--source", metavar="SOURCE", help="photo, batch, video, live, api or cli")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_runs_list)
    p = what.add_parser("delete", help="delete a run, or every run of a campaign, with their rows")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID")
    p.add_argument("--campaign", metavar="NAME", help="delete every run of this campaign")
    p.set_defaults(func=cmd_runs_delete)
    p = what.add_parser("retention", help="delete runs older than FER_RETENTION_DAYS days now")
    p.add_argument("--days", type=float, help="this many days instead of FER_RETENTION_DAYS")
    p.set_defaults(func=cmd_runs_retention)


def cmd_serve(args: argparse.Namespace) -> int:
    from src.api.app import ApiSettings, create_app, is_loopback

    if not config.API_KEY and not is_loopback(args.host):
        raise UserError(
            f"refusing to serve on {args.host} without an API key: set FER_API_KEY (clients then send "
            "'Authorization: Bearer <key>'), or bind to a loopback address (127.0.0.1, ::1, localhost)"
        )
    model_file = _model_path(args.model)
    _start_backend(model_file)
    # Loaded here, before binding, so a bad model or database is one line and exit 2, not a traceback.
    recognizer = _load_recognizer(model_file)
    store = _open_store()
    import uvicorn

    app = create_app(ApiSettings(model_file=model_file), recognizer=recognizer, store=store)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _add_output_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--output-version",
        type=output_version,
        metavar="vN",
        help=f"write under {config.OUTPUTS_DIR}/vN/; 'new' starts the next version "
        "(default: FER_OUTPUT_VERSION, else the newest vN folder, else v1)",
    )
    where.add_argument("--output-dir", metavar="DIR", help="write to this folder instead")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.cli", description="Facial emotion recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify the faces in images or folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders (searched recursively)")
    p.add_argument("--crops", action="store_true", help="each image is one cropped face (no detection)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="coarse-first face detection: ~5x faster on camera-sized photos, may miss small faces beside a large one",
    )
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--model",
        metavar="FILE",
        help=f"model file or name in models/, e.g. fer_plus (default {config.MODEL_FILE.name})",
    )
    _add_store_options(p)
    _add_engine_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score a model, calibrate it and write the dashboard outputs")
    p.add_argument("--data", metavar="PATH", help="FER2013 CSV(.gz), folder holding one, or image folders")
    p.add_argument("--split", default="PrivateTest", choices=("PublicTest", "PrivateTest"))
    p.add_argument("--model", metavar="FILE")
    _add_output_options(p)
    p.add_argument("--run-dir", metavar="RUN", help="training run whose history.csv to copy")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model (fit on Training, select on PublicTest)")
    p.add_argument("--data", metavar="PATH")
    p.add_argument(
        "--profile", choices=("cpu", "wild", "ferplus", "teacher", "student", "big", "gpu", "smoke"), default="cpu"
    )
    p.add_argument("--expw", metavar="DIR", help="ExpW-style in-the-wild faces (labels.csv + faces/) to train on too")
    p.add_argument("--init-from", metavar="FILE", help="start from this .keras model's weights (same architecture)")
    p.add_argument(
        "--teacher",
        action="append",
        metavar="FILE",
        help="distil from this .keras model (repeatable: an ensemble); the student profile sets the weight",
    )
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 compute (AMX/oneDNN); default: the profile's choice",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--run-dir", metavar="DIR")
    p.add_argument("--seed", type=int)
    p.add_argument("--publish", action="store_true", help="copy the best checkpoint to the model file")
    p.add_argument("--model", metavar="FILE", help="where --publish puts the model")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensemble", help="publish the mean of several models' probabilities as one model")
    p.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="MODEL_OR_RUN",
        help="a .keras model or a training run folder (repeat, at least twice); may include the destination",
    )
    p.add_argument("--model", metavar="FILE", help="where to publish it (default: the bundled model file)")
    p.add_argument("--data", metavar="PATH", help="FER2013 whose Training faces calibrate the INT8 twin")
    p.add_argument("--version", help="the version the manifest records, e.g. v3-ensemble")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser(
        "export", help="write the model's ONNX twin for the TensorFlow-free serving runtime (checked against Keras)"
    )
    p.add_argument("--model", metavar="FILE", help="a .keras model (default: the bundled one)")
    p.add_argument(
        "--data",
        metavar="PATH",
        help="FER2013 whose Training faces calibrate the INT8 twin (default: inputs/datasets/fer2013)",
    )
    p.add_argument(
        "--int8", action=argparse.BooleanOptionalAction, default=True, help="also write the INT8 twin (default: yes)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("collect", help="copy a FER2013 dataset under inputs/datasets/")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--dest", metavar="DIR")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("stats", help="write dataset_stats.json and mean_faces.png")
    p.add_argument("--data", metavar="PATH")
    _add_output_options(p)
    p.set_defaults(func=cmd_stats)

    _add_runs_parser(sub)

    p = sub.add_parser("serve", help="run the REST API (see docs/api.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need FER_API_KEY)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", metavar="FILE", help="model file or name in models/ (default: FER_MODEL)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        # e.g. `predict ... | head`: the reader left; that is not a failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A full disk or an unwritable output met mid-run: the message, not a traceback
        # (anything already stored was kept and its run marked failed).
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_IO_ERROR
    except KeyboardInterrupt:
        return 130
