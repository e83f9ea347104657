"""Batch throughput: the local engine against Ray Data with 1 and 2 workers (``predict --engine ray``).

Builds a folder of real photos (``--photos`` of ExpW's face photos from ``--expw``, by
default ``../shared/datasets/expw`` beside the checkout; else scikit-image's photos,
shifted and mirrored) and runs the same listing (``cli.predict.iter_inputs``) through:

- the local engine: one process, ``analyze_batch`` in chunks of 64 as ``predict`` does;
- Ray with 1 and 2 workers of 1 CPU each (``ray_engine.predict_batches``), on one local
  Ray instance started once (its start-up is printed apart).

It prints photos/s and faces/s over the whole run (model loading in the workers
included) and in steady state, between the arrivals of 25% and 90% of the results
(start-up cancels out), with the ratio of the Ray runs to the local one. The rows of
every engine are checked equal. The per-worker-core figure (Ray, 1 worker, steady) is
what to multiply by a cluster's cores. Other work on the machine shares its cores: the load average is
printed before and after.

Usage: python bench/bench_ray.py [--photos 1000] [--expw DIR | --skimage] [--model FILE] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from src import config
from src.cli import ray_engine
from src.cli.predict import PREDICT_CHUNK, iter_inputs
from src.engine.inference import get_recognizer

DEFAULT_EXPW = config.ROOT.parent / "shared" / "datasets" / "expw"


def build_folder(dest: Path, count: int, expw: Path | None) -> str:
    """``count`` photos in ``dest``; says where they came from."""
    faces = sorted((expw / "faces").glob("*.jpg")) if expw and (expw / "faces").is_dir() else []
    skimage_note = "" if expw is None else f" (no ExpW folder at {expw})"
    if faces:
        step = max(1, len(faces) // count)
        for src in faces[::step][:count]:
            shutil.copy2(src, dest / src.name)
        return f"{min(count, len(faces))} ExpW photos from {expw}"
    from skimage import data

    photos = [data.astronaut(), data.camera(), data.coffee(), data.chelsea(), data.immunohistochemistry()]
    for i in range(count):
        photo = photos[i % len(photos)]
        shift = (i // len(photos)) % 20 * 4
        photo = photo[shift:, shift:]
        if (i // len(photos)) % 2:
            photo = photo[:, ::-1]
        Image.fromarray(np.ascontiguousarray(photo)).save(dest / f"photo_{i:05d}.jpg", quality=90)
    return f"{count} scikit-image photos, 300-600 px{skimage_note}"


def local_batches(items, model_file: Path):
    from src.engine.inference import EmotionRecognizer

    recognizer = EmotionRecognizer(model_file)  # as the CLI: loaded once per run
    for i in range(0, len(items), PREDICT_CHUNK):
        chunk = items[i : i + PREDICT_CHUNK]
        yield recognizer.analyze_batch([p for _, p in chunk], names=[n for n, _ in chunk], chunk=PREDICT_CHUNK)


def ray_batches(items, model_file: Path, workers: int, batch_size: int):
    options = ray_engine.RayOptions(workers=workers, batch_size=batch_size)
    return ray_engine.predict_batches(items, model_file, options=options)


def timed(batches) -> tuple[list, list[tuple[float, int, int]]]:
    """All results, and (seconds since the start, photos so far, faces so far) at each arrival."""
    start = time.perf_counter()
    results, arrivals, faces = [], [(0.0, 0, 0)], 0
    for batch in batches:
        results += batch
        faces += sum(len(r.faces) for r in batch)
        arrivals.append((time.perf_counter() - start, len(results), faces))
    return results, arrivals


def report(name: str, arrivals: list[tuple[float, int, int]], baseline: float | None) -> float:
    """Rates over the whole run, and in steady state: between the arrivals of 25% and 90% of
    the photos (start-up, model loading and the last stragglers left out)."""
    total, n, faces = arrivals[-1]
    a = next(x for x in arrivals if x[1] >= 0.25 * n)
    b = next(x for x in arrivals if x[1] >= 0.9 * n)
    span = max(b[0] - a[0], 1e-9)
    steady, steady_faces = (b[1] - a[1]) / span, (b[2] - a[2]) / span
    ratio = f"  x{steady / baseline:.2f} local" if baseline else ""
    print(
        f"{name:<16} {n / total:6.1f} photos/s {faces / total:6.1f} faces/s overall ({total:5.1f} s)"
        f" | steady {steady:6.1f} photos/s {steady_faces:6.1f} faces/s{ratio}"
    )
    return steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--expw", type=Path, default=DEFAULT_EXPW)
    parser.add_argument("--skimage", action="store_true", help="scikit-image's larger photos, not ExpW's")
    parser.add_argument("--model", type=Path, default=config.MODEL_FILE)
    parser.add_argument("--batch-size", type=int, default=ray_engine.DEFAULT_BATCH_SIZE)
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench_ray_") as tmp:
        folder = Path(tmp)
        print(
            f"folder: {build_folder(folder, args.photos, None if args.skimage else args.expw)}; model {args.model.name}"
        )
        items = list(iter_inputs([str(folder)]))
        results, arrivals = timed(local_batches(items, args.model))
        class_names = get_recognizer(args.model).class_names
        expected = [row for r in results for row in r.rows(class_names)]
        baseline = report("local engine", arrivals, None)

        t = time.perf_counter()
        ray_engine.connect()
        print(f"Ray start-up: {time.perf_counter() - t:.1f} s (once here; the CLI pays it on every run)")
        try:
            for workers in (1, 2):
                results, arrivals = timed(ray_batches(items, args.model, workers, args.batch_size))
                assert [row for r in results for row in r.rows(class_names)] == expected, "rows differ from local"
                report(f"Ray, {workers} worker{'s' if workers > 1 else ''}", arrivals, baseline)
        finally:
            ray_engine.shutdown()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
