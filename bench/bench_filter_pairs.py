"""The filter cache's build cost per day with the rows split by each pair of filter dimensions (now) and by
one dimension only (session 8), alternating day by day in one process, CPU time of the process (chDB runs
in it) next to wall time, and the rows each writes per day.

Usage (a data folder of bench_api.py, generated there first; the days are rebuilt):
    .venv/bin/python bench/bench_filter_pairs.py --data-dir /tmp/pixel-bench --days 6
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pixel.server.api.query import filter_cache
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.report_cache import ReportCache
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore

SITE = "bench.example"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def singles_only() -> tuple[str, str]:
    """The session-8 build: the rows split by one dimension only (`_FILTER_JOIN`, `_FRAGMENTS` without pairs)."""
    names = ", ".join(f"'{f}'" for f in filter_cache.FILTERS)
    values = ", ".join(f"CAST({filter_cache.EVENT_COLUMNS[f]} AS String)" for f in filter_cache.FILTERS)
    empty = ", ".join("''" for _ in filter_cache.FILTERS)
    join = f"ARRAY JOIN [{names}] AS f, [{values}] AS fv, [{empty}] AS fv2"
    return join, filter_cache._FRAGMENTS.replace(filter_cache._FILTER_JOIN, join)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--days", type=int, default=6, help="days built per variant (alternating)")
    args = parser.parse_args()
    store = ChdbStore(args.data_dir / "store")
    store.migrate()
    runner = QueryRunner(store)
    cache = ReportCache(runner)
    fc = filter_cache.for_cache(cache)
    scope = Scope(runner, SITE, resolve("30d", "Europe/Berlin"), [], cache=cache)
    variants: dict[str, tuple[str, str]] = {
        "pairs (now)": (filter_cache._FILTER_JOIN, filter_cache._FRAGMENTS),
        "one dimension (session 8)": singles_only(),
    }
    print(f"load average before: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    first = date.today() - timedelta(days=40)  # inside the generated 90 days, a whole day
    cost: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    builds: dict[str, list[int]] = {name: [] for name in variants}
    for i in range(args.days):
        for name, (join, fragments) in variants.items():
            filter_cache._FILTER_JOIN, filter_cache._FRAGMENTS = join, fragments  # type: ignore[misc]
            day = (first + timedelta(days=i)).isoformat()
            counts: dict[str, Any] = {}
            w, c = time.perf_counter(), cpu()
            builds[name].append(fc._build(scope, [day], counts))
            cost[name].append((time.perf_counter() - w, cpu() - c))
    for name, runs in cost.items():
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        print(
            f"{name}: one day's build p50 wall {statistics.median(walls):.1f} s (max {max(walls):.1f}), "
            f"CPU {statistics.median(cpus):.1f} s (max {max(cpus):.1f}), {len(runs)} days",
            flush=True,
        )
    for name, ids in builds.items():
        for table in filter_cache.TABLES[:3]:
            rows = store.query(
                f"SELECT filter LIKE '%+%' AS pair, count() FROM {table} "
                f"WHERE build IN ({', '.join(map(str, ids))}) GROUP BY pair ORDER BY pair"
            ).rows
            per_day = {("pairs" if p else "one dimension"): int(n) // len(ids) for p, n in rows}
            print(f"{name}: {table} rows per day {per_day}", flush=True)
    print(f"load average after: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
