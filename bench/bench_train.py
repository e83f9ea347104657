"""Training throughput (images/s) per architecture, float32 against bfloat16 mixed precision.

Random 48x48 faces, the training profile's augmentation and loss, batch 64, a few
warm-up steps then timed steps. On Xeons with AMX, ``mixed_bfloat16`` runs the
convolutions on oneDNN's AMX kernels (check with ``ONEDNN_VERBOSE=1``).

Usage: python bench/bench_train.py [--nets compact:24 compact:32 vgg:64] [--steps 30] [--batch 64]
Run it on an idle machine: it measures what the 2 cores can do.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def throughput(arch: str, width: int, bf16: bool, steps: int, batch: int) -> float:
    import keras
    import numpy as np

    from src.engine.model import build_model
    from src.training.train import PROFILES, augmenter

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 else "float32")
    try:
        model = build_model(arch, 7, width=width)
        inputs = keras.Input(model.input_shape[1:])
        wrapper = keras.Model(inputs, model(augmenter(PROFILES["wild"], 0)(inputs)))
        wrapper.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch * (steps + 5), 48, 48, 1)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 7, len(x)), 7)
    wrapper.fit(x[: batch * 5], y[: batch * 5], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    wrapper.fit(x[batch * 5 :], y[batch * 5 :], batch_size=batch, epochs=1, verbose=0)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["compact:24", "compact:32", "vgg:64"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    print(f"{'net':14s} {'float32 img/s':>14s} {'bf16 img/s':>12s} {'speed-up':>9s}")
    for net in args.nets:
        arch, width = net.split(":")
        fp32 = throughput(arch, int(width), False, args.steps, args.batch)
        bf16 = throughput(arch, int(width), True, args.steps, args.batch)
        print(f"{net:14s} {fp32:14.0f} {bf16:12.0f} {bf16 / fp32:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
