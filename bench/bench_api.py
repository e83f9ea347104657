"""REST API throughput: /v1/analyze requests per second at several concurrency levels.

Starts ``python -m src.cli serve`` on a free loopback port (the configured model, a
temporary SQLite store, an API key), then sends ``--requests`` single-photo analyze
calls (the astronaut photo, 512x512, one face) at each ``--concurrency`` level from
that many client threads, and prints requests/s and the median and 95th-percentile
latency. ``--store`` keeps the default (each call saved as a run); ``--no-store`` leaves
the database out. The server runs all calls in its thread pool; the ONNX classifier is
not locked (see docs/api.md, Concurrency).

Usage: python bench/bench_api.py [--requests 40] [--concurrency 1 2 4] [--no-store]
Wall-clock figures on a loaded 2-core machine are noisy: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--store", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    photo = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        env = {**os.environ, "FER_API_KEY": KEY, "FER_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        cmd = [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            health = httpx.get(f"{base}/health").json()
            print(f"model {health['model_version']} ({health['runtime']}), store {health['store_backend']}")
            fields = {"store": "true" if args.store else "false", "campaign": "bench"}

            def call(_: int) -> float:
                start = time.perf_counter()
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as c:
                    r = c.post("/v1/analyze", files=[("files", ("astronaut.jpg", photo))], data=fields)
                r.raise_for_status()
                return time.perf_counter() - start

            call(0)  # warm-up: the first call of a thread builds its detector
            for level in args.concurrency:
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=level) as pool:
                    latencies = sorted(pool.map(call, range(args.requests)))
                wall = time.perf_counter() - start
                p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
                print(
                    f"concurrency {level}: {args.requests / wall:.1f} req/s, "
                    f"median {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * p95:.0f} ms"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
