"""How long the History & trends view takes on a large store (DEMO data in a temporary SQLite file).

Fills a fresh store with ``--copies`` seeded copies of the demo data (src/analytics/demo.py: ~5,300 rows
and four live minutes each), then times what one visit to the view costs: reading every row
(``persist.history``: ``Store.results`` + ``Store.live_seconds``), the computations of one
rerun (filters, KPIs, shares per day, campaign shares and the chi-square test) and the two
downloads. Run on an idle machine:

    python bench/bench_trends.py --copies 12
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=12, help="seeded copies of the demo data")
    args = parser.parse_args()

    from src.analytics import persist, trends
    from src.analytics.demo import fill_demo_store
    from src.analytics.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{(Path(tmp) / 'results.db').as_posix()}")
        start = time.perf_counter()
        for seed in range(args.copies):
            fill_demo_store(store, seed=seed)
        fill = time.perf_counter() - start

        start = time.perf_counter()
        results = store.results()
        read_rows = time.perf_counter() - start
        start = time.perf_counter()
        rows, _ = persist.history(store)
        read_all = time.perf_counter() - start

        grouping = trends.sentiment_grouping()
        start = time.perf_counter()
        trends.filter_options(rows)
        picked = trends.filter_results(rows)
        trends.kpis(picked)
        trends.shares_over_time(picked, grouping, "day")
        names = trends.campaign_shares(picked, grouping)["campaign"].unique().tolist()[:2]
        trends.campaign_shares(picked, grouping, names)
        trends.compare_campaigns(picked, names, grouping)
        rerun = time.perf_counter() - start

        start = time.perf_counter()
        csv = trends.csv_bytes(rows)
        csv_s = time.perf_counter() - start
        start = time.perf_counter()
        parquet = trends.parquet_bytes(rows)
        parquet_s = time.perf_counter() - start
        store.close()

    print(
        f"store: {len(results):,} face rows + {len(rows) - len(results):,} live face-seconds (filled in {fill:.1f} s)"
    )
    print(f"read face rows (Store.results):         {read_rows:6.2f} s")
    print(f"read everything (persist.history):      {read_all:6.2f} s  (cached in the app until the runs change)")
    print(f"one rerun of the view's computations:   {rerun:6.2f} s")
    print(f"CSV download:     {csv_s:6.2f} s, {len(csv) / 1e6:.1f} MB")
    print(f"Parquet download: {parquet_s:6.2f} s, {len(parquet) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
