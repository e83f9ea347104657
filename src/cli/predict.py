"""``predict``: the faces in images or folders as CSV or JSON-lines rows, from this process
or from Ray Data workers (src/cli/ray_engine.py), optionally saved in the results store."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from src import config
from src.cli.common import (
    EXIT_SOME_FAILED,
    UserError,
    load_recognizer,
    model_path,
    open_store,
    start_backend,
    store_errors,
)
from src.common import sanitize

PREDICT_CHUNK = 64  # images per network call and per write; bounds memory on huge folders
PROGRESS_MIN_FILES = 20


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
    if member.suffix.lower() not in config.IMAGE_EXTENSIONS and not is_video(member):
        return f"not an image or video file ({member.suffix.lower() or 'no extension'})"
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


class StoredRun:
    """What ``predict --store`` saves: a run (source "cli") whose rows are stored chunk by chunk,
    so a crash leaves a failed run holding the rows so far. Without --store every step is a no-op."""

    def __init__(self, args: argparse.Namespace, store=None):
        self.args, self.store, self.run_id, self.rows = args, store, None, 0
        # The campaign and location a stored run carries, also written on each output row.
        self.labels = {k: v for k, v in (("campaign", args.campaign), ("location", args.location)) if v}

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> StoredRun:
        """Check the options and open the store before the model loads, so mistakes fail fast."""
        if not args.store:
            given = [flag for flag, value in (("--campaign", args.campaign), ("--location", args.location)) if value]
            given += ["--tag"] if args.tag else []
            if given:
                raise UserError(f"{', '.join(given)} only apply with --store (results are not saved without it)")
            return cls(args)
        return cls(args, open_store())

    def start(self, model_version: str) -> None:
        if self.store is None:
            return
        with store_errors("cannot start the stored run: "):
            self.run_id = self.store.start_run(
                "cli",
                campaign=self.args.campaign,
                location=self.args.location,
                tags=self.args.tag or (),
                model_version=model_version,
            )

    def add(self, rows: list[dict]) -> None:
        if self.run_id is not None:
            with store_errors("storing results failed: "):
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
        with store_errors("cannot finish the stored run: "):
            self.store.finish_run(self.run_id, "ok", if_running=True)
        print(f"stored run {self.run_id} ({self.rows} rows) in {self.store.url}", file=sys.stderr)


def is_video(path: Path) -> bool:
    from src.streams.video import VIDEO_EXTENSIONS

    return path.suffix.lower() in VIDEO_EXTENSIONS


def output_columns(class_names: Sequence[str], stored: StoredRun) -> list[str]:
    """The per-face table's columns (``uncertain`` and ``doubt`` the last of them), then what the
    dashboard's export adds: sentiment and the custom groups' columns, a video face's ``time``
    (seconds) and ``track_id`` (one per person), and the campaign and location of a stored run."""
    from src.analytics import aggregates
    from src.engine.results import table_columns

    base = list(table_columns(class_names))
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in base})
    extra = [c for c in aggregates.export_frame(empty).columns if c not in base]
    return base + extra + ["time", "track_id"] + [c for c in ("campaign", "location") if stored.labels.get(c)]


def with_export_columns(rows: list[dict], columns: Sequence[str], stored: StoredRun) -> list[dict]:
    """``rows`` with the sentiment and group columns filled as the dashboard's export fills them."""
    from src.analytics import aggregates

    if not rows:
        return rows
    # Only what the groups read: file names may hold surrogate escapes that pandas' strings refuse.
    used = [c for c in columns if c in rows[0] and c not in ("file", "error")]
    frame = aggregates.export_frame(pd.DataFrame([{c: r.get(c) for c in used} for r in rows], columns=used))
    added = [c for c in frame.columns if c not in rows[0]]
    out = []
    for row, (_, extra) in zip(rows, frame[added].iterrows()):
        values = {
            k: ("" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v)
            for k, v in extra.items()
        }
        out.append({**row, **values, **stored.labels})
    return out


def video_rows(recognizer, name: str, path: Path, every_s: float) -> tuple[list[dict], str]:
    """A video's face rows (one per face per sample, with ``time`` and ``track_id``) and its status."""
    from src.analytics.persist import video_rows as rows_of
    from src.engine.results import file_row
    from src.streams.video import VideoError, analyze_video

    names = recognizer.class_names
    try:
        analysis = analyze_video(recognizer, path, every_s)
    except (VideoError, OSError, ValueError) as exc:
        return [file_row(name, "error", str(exc) or type(exc).__name__, names)], "error"
    rows = rows_of(analysis.faces, name, names)
    return (rows, "ok") if rows else ([file_row(name, "no_face", "", names)], "no_face")


def write_people(path: Path, rows: list[dict], class_names: Sequence[str]) -> int:
    """The per-person CSV: each photo face, each video track followed long enough; returns how many.

    ``uncertain`` closes each row: a photo face's own flag, a track's when most of its samples are."""
    from src.analytics.people import people_of_rows

    found = people_of_rows([{**r, "emotions": {c: r.get(c) for c in class_names}} for r in rows])
    columns = ["file", "kind", "face", "track_id", "first_seen", "last_seen", "samples", "dwell_s", "emotion"]
    columns += ["confidence", *class_names, "uncertain"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for person in found:
            record = {**person.as_row(), **{c: round(v, 4) for c, v in person.probabilities.items()}}
            record["file"] = sanitize.text(record["file"])
            writer.writerow(sanitize.csv_row({k: "" if v is None else v for k, v in record.items()}))
    return len(found)


def cmd_predict(args: argparse.Namespace) -> int:
    model_file = model_path(args.model)
    stored = StoredRun.prepare(args)
    if args.engine == "ray":
        _require_ray()
    skipped: list[tuple[str, str]] = []
    items = list(iter_inputs(args.paths, skipped))
    videos = [(name, path) for name, path in items if is_video(path) and not args.crops]
    images = [item for item in items if item not in videos]
    people_file = (
        Path(args.people) if args.people else (Path(args.output).with_suffix(".people.csv") if args.output else None)
    )
    from tqdm import tqdm

    # Loaded by both engines: the same model errors, columns and labels before any work starts.
    start_backend(model_file)
    recognizer = load_recognizer(model_file)
    recognizer.fast = args.fast
    batches = _result_batches(args, recognizer, model_file, images)
    stream: IO[str] = sys.stdout
    if args.output:
        try:
            stream = open(args.output, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    names = recognizer.class_names
    columns = output_columns(names, stored)
    writer = RowWriter(stream, columns, args.format)
    counts = {"ok": 0, "no_face": 0, "error": 0}
    video_counts = {"ok": 0, "no_face": 0, "error": 0}
    faces = samples = 0
    kept: list[dict] = []  # face rows, for the per-person file
    show = sys.stderr.isatty() and len(items) >= PROGRESS_MIN_FILES
    stored.start(recognizer.info.version)

    def emit(rows: list[dict]) -> None:
        stored.add(rows)
        writer.write(with_export_columns(rows, columns, stored))
        if people_file is not None:
            kept.extend(r for r in rows if r.get("status") == "ok")

    try:
        with tqdm(total=len(items), unit="file", file=sys.stderr, disable=not show) as bar:
            # Either engine yields ImageResults in input order; from here on one row path.
            for results in batches:
                rows = []
                for result in results:
                    counts[result.status] = counts.get(result.status, 0) + 1
                    faces += len(result.faces)
                    rows.extend(result.rows(names))
                emit(rows)
                bar.update(len(results))
            for name, path in videos:  # on this machine, whatever the engine: a video is one sequence
                rows, status = video_rows(recognizer, name, path, args.every)
                video_counts[status] += 1
                samples += len(rows) if status == "ok" else 0
                emit(rows)
                bar.update(1)
    except BaseException as exc:
        stored.fail(exc)
        raise
    finally:
        if stream is not sys.stdout:
            stream.close()
    for name, reason in skipped:
        print(sanitize.line(f"skipped {name}: {reason}"), file=sys.stderr)
    people = None
    if people_file is not None:
        try:
            people = write_people(people_file, kept, names)
        except OSError as exc:
            raise UserError(f"cannot write {people_file}: {exc.strerror}") from None
    summary = (
        f"{_count(len(images), 'image')}: {counts['ok']} with faces ({_count(faces, 'face')} in all), "
        f"{counts['no_face']} without, {_count(counts['error'], 'error')}, {len(skipped)} skipped"
    )
    if videos:
        summary += (
            f"; {_count(len(videos), 'video')}: {video_counts['ok']} with faces ({_count(samples, 'face sample')}), "
            f"{video_counts['no_face']} without, {_count(video_counts['error'], 'error')}"
        )
    if people is not None:
        summary += f"; {_count(people, 'person') if people == 1 else f'{people} people'} in {people_file}"
    print(summary + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)
    stored.finish()
    # A script must notice an input that could not be read, not only a reader of the status column.
    return EXIT_SOME_FAILED if counts["error"] or video_counts["error"] else 0


def _count(n: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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


def _add_store_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("results store (FER_DATABASE_URL; see docs/store.md)")
    g.add_argument("--store", action="store_true", help="save the run and its rows in the results database")
    g.add_argument("--campaign", metavar="NAME", help="campaign of the stored run")
    g.add_argument("--location", metavar="NAME", help="location of the stored run")
    g.add_argument("--tag", action="append", metavar="TAG", help="free tag of the stored run (repeatable)")


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


def add_parsers(sub) -> None:
    """Register ``predict`` on the top-level sub-parsers."""
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
        "--people",
        metavar="FILE",
        help="also write one row per person (each photo face, each person followed through a video) here; "
        "default with --output: OUTPUT with the suffix .people.csv",
    )
    p.add_argument(
        "--every",
        type=_positive_float,
        default=0.5,
        metavar="SECONDS",
        help="video files: analyse a frame every SECONDS (0.5)",
    )
    p.add_argument(
        "--model",
        metavar="FILE",
        help=f"model file or name in models/, e.g. fer_plus (default {config.MODEL_FILE.name})",
    )
    _add_store_options(p)
    _add_engine_options(p)
    p.set_defaults(func=cmd_predict)
