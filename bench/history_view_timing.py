"""How fast the History & trends tab opens and answers a filter change, and the memory it takes.

``time_view(url)`` runs the tab (``src.app.detection.history.render``, as the Emotion Detection
page draws it) under ``streamlit.testing.v1.AppTest`` in a child process whose results store is
``url`` (``FER_DATABASE_URL``), so the peak resident memory is that process's alone. It returns

* ``open_s``: the first run of the tab, its caches cold (what a user waits for after new data);
  the libraries imported and the store opened before, as a running server has them;
* ``rerun_s``: a filter change: the median of ``RERUNS`` runs, each after picking another single
  campaign in the Campaigns filter (each one new, so its reads and corrections are not cached);
  a median, as one run on a shared machine can take twice as long as the next;
* ``rerun_first_s``, ``rerun_max_s``: the first of them (the first campaign offered, what
  ``rerun_s`` was until the median) and the slowest;
* ``again_s``: the run after going back to every campaign (filters seen before: cached);
* ``hour_s``: then *Per* set to hour (every campaign: one bar per hour of the whole span);
* ``peak_rss_mb``: the child's peak resident set size (``ru_maxrss``), imports included;
* ``people``, ``samples``: the KPIs the tab showed, to check it read the store.

Usage: python bench/history_view_timing.py sqlite:////tmp/big.db
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
RERUNS = 5  # filter changes timed, each to another campaign
SCRIPT = """
from src.app.detection import history

history.render()
"""
# What a running server has done before anyone opens the tab: Streamlit's own start-up (its first
# AppTest run scans the installed packages for components), the store opened and migrated, and
# the start-up objects frozen out of the garbage collector, as streamlit_app.py does.
WARM_UP = """
from src.app import cache

cache.results_store()
cache.freeze_startup_objects()
"""


def _child() -> dict:
    """Runs in the child: the tab opened, the campaign filter changed ``RERUNS`` times, then back to
    every campaign; the figures as a dict."""
    import resource
    import time

    from streamlit.testing.v1 import AppTest

    import src.app.detection.history  # noqa: F401  the imports a running server already has

    AppTest.from_string(WARM_UP, default_timeout=TIMEOUT_S).run()
    at = AppTest.from_string(SCRIPT, default_timeout=TIMEOUT_S)
    start = time.perf_counter()
    at.run()
    open_s = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the History tab failed: {at.exception}")
    metrics = {m.label: m.value for m in at.metric}
    options = at.multiselect(key="history_campaigns").options
    reruns: list[float] = []
    again_s = None
    for campaign in options[:RERUNS]:
        start = time.perf_counter()
        at.multiselect(key="history_campaigns").set_value([campaign]).run()
        reruns.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"the History tab failed after a filter change: {at.exception}")
    if options:
        start = time.perf_counter()
        at.multiselect(key="history_campaigns").set_value([]).run()
        again_s = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(f"the History tab failed after a filter change: {at.exception}")
    # Per hour, every campaign: the chart's largest shape (one bar per hour of the whole span).
    start = time.perf_counter()
    at.segmented_control(key="history_bucket").set_value("hour").run()
    hour_s = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the History tab failed per hour: {at.exception}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "open_s": round(open_s, 3),
        "rerun_s": seconds(statistics.median(reruns) if reruns else None),
        "rerun_first_s": seconds(reruns[0] if reruns else None),
        "rerun_max_s": seconds(max(reruns, default=None)),
        "again_s": seconds(again_s),
        "hour_s": seconds(hour_s),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "people": metrics.get("People"),
        "samples": metrics.get("Samples"),
    }


def time_view(url: str) -> dict:
    """The History & trends tab on the store at ``url``, timed in a child process (see the module)."""
    env = {**os.environ, "FER_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the timing child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(_child()))
    elif len(sys.argv) == 2:
        print(json.dumps(time_view(sys.argv[1]), indent=2))
    else:
        sys.exit(__doc__)
