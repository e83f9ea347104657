"""REST API throughput against the CLI's: /v1/analyze requests per second, and the CLI's photos/s.

First the CLI: ``python -m src.cli predict`` on a folder of ``--cli-photos`` copies of the
astronaut photo (512x512 JPEG, one face), less the same command on one copy (start-up:
Python, the model), gives its steady photos/s. Then the API: ``python -m src.cli serve`` on
a free loopback port (the configured model, a temporary SQLite store, an API key) is sent
``--requests`` single-photo analyze calls at each ``--concurrency`` level from that many
client threads, each keeping its connection open (``--new-connections``: one connection,
and one httpx client, per call: ~20 ms of this machine's CPU per call spent by the bench
itself); it prints requests/s and the median and 95th-percentile latency. ``--store``
keeps the default (each call saved as a run); ``--no-store`` leaves the database out.
Both run with this environment (``FER_ONNX_THREADS``, ``FER_API_*``).

The last line compares them, at the highest concurrency level:
``cli_photos_s=... api_req_s=... concurrency=4 ratio=...``.

Usage: python bench/bench_api.py [--requests 100] [--concurrency 1 4] [--cli-photos 200] [--no-store]
       [--new-connections]
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
import threading
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


def _astronaut_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _predict_seconds(folder: Path, env: dict[str, str]) -> float:
    """Wall time of ``python -m src.cli predict folder`` (rows to /dev/null)."""
    cmd = [sys.executable, "-m", "src.cli", "predict", str(folder), "--output", os.devnull]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def cli_photos_per_s(photo: bytes, n: int, tmp: Path, env: dict[str, str]) -> float:
    """The CLI's steady photos/s: n photos less one photo (its start-up), best of two each."""
    one, many = tmp / "one", tmp / "many"
    one.mkdir()
    many.mkdir()
    (one / "photo.jpg").write_bytes(photo)
    for i in range(n):
        (many / f"photo_{i:04d}.jpg").write_bytes(photo)
    start_up = min(_predict_seconds(one, env) for _ in range(2))
    total = min(_predict_seconds(many, env) for _ in range(2))
    return (n - 1) / max(1e-6, total - start_up)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="calls per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--cli-photos", type=int, default=200, help="photos for the CLI's figure (0: skip it)")
    parser.add_argument("--store", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--new-connections", action="store_true", help="a new connection (and client) per call")
    args = parser.parse_args()

    photo = _astronaut_jpeg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FER_API_KEY": KEY, "FER_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        cli = cli_photos_per_s(photo, args.cli_photos, Path(tmp), env) if args.cli_photos > 1 else None
        if cli is not None:
            print(f"cli predict: {cli:.1f} photos/s ({args.cli_photos} photos, start-up excluded)")
        port = _free_port()
        cmd = [sys.executable, "-m", "src.cli", "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        rates: dict[int, float] = {}
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

            local = threading.local()
            clients: list[httpx.Client] = []

            def client() -> httpx.Client:
                made = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=300)
                clients.append(made)
                return made

            def call(_: int) -> float:
                start = time.perf_counter()
                if args.new_connections:
                    with client() as c:
                        r = c.post("/v1/analyze", files=[("files", ("astronaut.jpg", photo))], data=fields)
                else:
                    if not hasattr(local, "client"):
                        local.client = client()
                    r = local.client.post("/v1/analyze", files=[("files", ("astronaut.jpg", photo))], data=fields)
                r.raise_for_status()
                return time.perf_counter() - start

            # Warm-up: every server thread that will serve builds its detector on its first call.
            with ThreadPoolExecutor(max_workers=max(args.concurrency)) as pool:
                list(pool.map(call, range(2 * max(args.concurrency))))
            for level in args.concurrency:
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=level) as pool:
                    latencies = sorted(pool.map(call, range(args.requests)))
                wall = time.perf_counter() - start
                rates[level] = args.requests / wall
                p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
                print(
                    f"concurrency {level}: {rates[level]:.1f} req/s, "
                    f"median {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * p95:.0f} ms"
                )
        finally:
            for c in clients:
                c.close()
            server.terminate()
            server.wait(timeout=30)
    level = max(rates)
    ratio = f"{rates[level] / cli:.2f}" if cli else "n/a"
    cli_text = f"{cli:.1f}" if cli else "n/a"
    print(f"cli_photos_s={cli_text} api_req_s={rates[level]:.1f} concurrency={level} ratio={ratio}")


if __name__ == "__main__":
    main()
