"""What live alerts cost the video thread, and how fast the webhook sender drains.

Prints:
- microseconds per ``LiveStats.alert_on`` (the per-frame check when a webhook is set) and
  per ``alert_state`` (the full figures, built once per alert) over a full 60 s window;
- microseconds per ``AlertNotifier.notify`` call while the receiver hangs (what the
  video thread pays when the network is stuck);
- events per second delivered to a local ``http.server`` receiver on 127.0.0.1.

Usage: python bench/bench_alerts.py [--events 300]
Wall-clock figures on a loaded 2-core machine are noisy; run it on an idle one.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from src import config
from src.analytics.alerts import AlertNotifier, live_alert_event
from src.engine.tracking import Track
from src.streams.live import LiveStats


def receiver(hang: threading.Event) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            hang.wait(30)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()

    labels = tuple(config.EMOTIONS)
    stats = LiveStats(window_seconds=60, alert_seconds=10, alert_threshold=0.5)
    probs = np.full(len(labels), 0.05, np.float32)
    probs[labels.index("sad")] = 0.7
    track = Track(id=1, box=(0, 0, 10, 10), probs=probs, last_seen=0.0)
    now = 1_000.0
    for i in range(70 * 15):  # 70 s at 15 fps, all sad: the alert is on over the whole window
        now = 1_000.0 + i / 15
        stats.record(now, [track], labels)
    print(f"alert_on (per frame):      {per_call_us(lambda: stats.alert_on(now), 5000):8.1f} us")
    print(f"alert_state (per alert):   {per_call_us(lambda: stats.alert_state(now, labels), 1000):8.1f} us")

    hang = threading.Event()
    server = receiver(hang)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    event = live_alert_event(
        "bench",
        when=now,
        window_seconds=10,
        duration_seconds=10,
        share=1.0,
        threshold=0.5,
        group="negative",
        grouping="sentiment",
        counts={"sad": 150},
        faces=150,
    )
    stuck = AlertNotifier(url, timeout=30, max_queue=100)
    print(
        f"notify, receiver hanging:  {per_call_us(lambda: stuck.notify(event), 5000):8.1f} us (dropped {stuck.dropped})"
    )
    hang.set()
    stuck.close(5)

    done = AlertNotifier(url, max_queue=args.events)
    start = time.perf_counter()
    for _ in range(args.events):
        done.notify(event)
    done.flush(120)
    elapsed = time.perf_counter() - start
    print(f"delivered:                 {done.delivered / elapsed:8.1f} events/s ({done.delivered} of {args.events})")
    done.close()
    server.shutdown()


if __name__ == "__main__":
    main()
