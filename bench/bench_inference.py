"""Inference benchmark: prints figures and writes outputs/<version>/benchmark.json.

Measures, on this machine:
- photo -> result: a 640x480 photo with one face, decode excluded (numpy RGB in),
  detection + crop + classification, median over repeated calls, in the default
  (thorough) detection mode and in fast mode (coarse first pass, see src/engine/faces.py);
- the classifier alone on batches of 48x48 faces (faces/s);
- the live-camera callback's work (``LiveSession.process``) per 640x480 frame with one
  moving face: detection every Nth frame on a small copy, alignment, classification,
  smoothing and drawing (mean and p90 ms);
- model load time, process cold start (fresh interpreter to first result), peak RSS;
- each ONNX twin (fp32 and INT8, where present) alone, one network call on a batch of
  256 faces (one view each, no test-time augmentation), with ``FER_ONNX_THREADS`` 1 and 2: faces/s. ``--twins-only``
  prints just these.

Usage: python bench/bench_inference.py [--model FILE] [--repeats 200] [--no-write] [--twins-only]
Timings on a loaded 2-core machine are noisy: run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLD_START = (
    "import time, numpy as np; t=time.perf_counter();"
    "from src.engine.inference import EmotionRecognizer; r=EmotionRecognizer({model!r});"
    "r.predict(np.full((480,640,3),128,np.uint8)); print(time.perf_counter()-t)"
)


def face_photo() -> np.ndarray:
    """A 640x480 RGB photo holding the astronaut's face (skimage ships the image)."""
    import cv2
    from skimage import data

    img = data.astronaut()  # 512x512, face near the top centre
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[:, 64:576] = cv2.resize(img[:480, :], (512, 480))
    return canvas


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def twin_throughput(model: str, repeats: int = 20, batch_size: int = 256) -> dict[str, int]:
    """Faces/s of each ONNX twin of ``model`` (one call on ``batch_size`` faces), at 1 and 2 threads."""
    from src import config
    from src.engine.runtime import RuntimeUnavailable, load_classifier

    batch = np.random.default_rng(1).uniform(0, 255, (batch_size, 48, 48, 1)).astype(np.float32)
    figures = {}
    threads_before = config.ONNX_THREADS
    try:
        for runtime in ("onnx", "int8"):
            for threads in (1, 2):
                config.ONNX_THREADS = threads  # read when the session is made
                try:
                    predict, info = load_classifier(model, runtime)
                except RuntimeUnavailable as exc:
                    print(f"{runtime}: {exc}")
                    break
                predict(batch)
                seconds = statistics.median(timed(functools.partial(predict, batch), repeats)) / 1000
                figures[f"{info.runtime}_{threads}_thread_faces_per_second"] = round(batch_size / seconds)
    finally:
        config.ONNX_THREADS = threads_before
    return figures


def main() -> None:
    from src import config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(config.MODEL_FILE))
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--twins-only", action="store_true", help="only the fp32 vs INT8 twin throughput; writes nothing")
    args = ap.parse_args()
    if args.twins_only:
        for key, value in twin_throughput(args.model).items():
            print(f"{key:40s} {value}")
        return

    t = time.perf_counter()
    from src.engine.inference import EmotionRecognizer

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    rec = EmotionRecognizer(args.model)
    load_s = time.perf_counter() - t

    photo = face_photo()
    faces = rec.predict(photo)
    assert len(faces) == 1, f"benchmark photo should hold one face, found {len(faces)}"
    for _ in range(10):
        rec.predict(photo)
    photo_ms = timed(lambda: rec.predict(photo), args.repeats)
    detect_ms = timed(lambda: rec.locate(photo), args.repeats)
    rec.fast = True
    assert len(rec.predict(photo)) == 1
    fast_photo_ms = timed(lambda: rec.predict(photo), args.repeats)
    rec.fast = False

    from src.streams.live import LiveSession

    session = LiveSession(recognizer=rec)
    live_ms = []
    for i in range(max(args.repeats, 60)):
        frame = np.roll(photo, (i % 20) - 10, axis=1)  # the face drifts, as in a webcam
        t = time.perf_counter()
        session.process(frame, now=1000.0 + i / 15)
        live_ms.append((time.perf_counter() - t) * 1000)
    live_ms = live_ms[10:]

    rng = np.random.default_rng(0)
    single = rng.integers(0, 256, (1, 48, 48), dtype=np.uint8)
    single_ms = timed(lambda: rec.classify(single), args.repeats)
    batch = rng.integers(0, 256, (4096, 48, 48), dtype=np.uint8)
    rec.classify(batch)
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        rec.classify(batch)
        runs.append(len(batch) / (time.perf_counter() - t))

    cold = [
        float(
            subprocess.run(
                [sys.executable, "-c", COLD_START.format(model=args.model)],
                capture_output=True,
                text=True,
                cwd=config.ROOT,  # the same checkout as this process, whatever the caller's directory
                check=True,
            ).stdout.split()[-1]
        )
        for _ in range(2)
    ]
    figures = {
        "median_photo_ms": round(statistics.median(photo_ms), 2),
        "p90_photo_ms": round(float(np.percentile(photo_ms, 90)), 2),
        "median_detect_crop_ms": round(statistics.median(detect_ms), 2),
        "median_photo_ms_fast_mode": round(statistics.median(fast_photo_ms), 2),
        "p90_photo_ms_fast_mode": round(float(np.percentile(fast_photo_ms, 90)), 2),
        "mean_live_frame_ms": round(statistics.fmean(live_ms), 2),
        "p90_live_frame_ms": round(float(np.percentile(live_ms, 90)), 2),
        "median_single_face_classify_ms": round(statistics.median(single_ms), 3),
        "faces_per_second": round(statistics.median(runs)),
        "batch_size": rec.batch_size,
        "import_s": round(import_s, 2),
        "model_load_s": round(load_s, 2),
        "cold_start_s": round(min(cold), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "photo": "640x480 RGB, one face (skimage astronaut), decode excluded",
        "cpu_count": os.cpu_count(),
        "model_sha256": rec.info.manifest.get("sha256", ""),
        "runtime": rec.info.runtime,
        **twin_throughput(args.model),
    }
    for key, value in figures.items():
        print(f"{key:40s} {value}")
    if not args.no_write:
        from src.training.outputs import write_dir

        out = write_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {out / 'benchmark.json'}")


if __name__ == "__main__":
    main()
