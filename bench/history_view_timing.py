"""How fast the History & trends tab opens and answers a filter change, and the memory it takes.

``time_view(url)`` runs the tab (``src.app.detection.history.render``, as the Emotion Detection
page draws it) under ``streamlit.testing.v1.AppTest`` in a child process whose results store is
``url`` (``FER_DATABASE_URL``), so the peak resident memory is that process's alone. It returns

* ``open_s``: the first run of the tab, its caches cold (what a user waits for after new data);
  the libraries imported and the store opened before, as a running server has them;
* ``rerun_s``: the run after picking one campaign in the Campaigns filter;
* ``again_s``: the run after going back to every campaign (filters seen before: cached);
* ``peak_rss_mb``: the child's peak resident set size (``ru_maxrss``), imports included;
* ``people``, ``samples``: the KPIs the tab showed, to check it read the store.

Usage: python bench/history_view_timing.py sqlite:////tmp/big.db
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
SCRIPT = """
from src.app.detection import history

history.render()
"""
# What a running server has done before anyone opens the tab: Streamlit's own start-up (its first
# AppTest run scans the installed packages for components) and the store opened and migrated.
WARM_UP = """
from src.app import cache

cache.results_store()
"""


def _child() -> dict:
    """Runs in the child: the tab opened, one filter changed, then changed back; the figures as a dict."""
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
    campaigns = at.multiselect(key="history_campaigns")
    rerun_s = again_s = None
    if campaigns.options:
        start = time.perf_counter()
        campaigns.set_value([campaigns.options[0]]).run()
        rerun_s = time.perf_counter() - start
        start = time.perf_counter()
        at.multiselect(key="history_campaigns").set_value([]).run()
        again_s = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(f"the History tab failed after a filter change: {at.exception}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "open_s": round(open_s, 3),
        "rerun_s": None if rerun_s is None else round(rerun_s, 3),
        "again_s": None if again_s is None else round(again_s, 3),
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
