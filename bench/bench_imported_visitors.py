"""Report cache build of imported aggregate days (server/api/query/imported.py) on the embedded store: how long
the imported part of one day's build takes as the day's imported visitors grow.

For each visitor count V (`--visitors`), one imported day holds a whole-day row of V visitors and 30 breakdown
rows (10 sources, 10 pages, 10 countries) of V / 10 each; the build's IMPORTED_INSERT is timed `--runs` times
(median, min, max) for that day alone, each run a new build id. The build should not depend on V: its
visitors are a figure, not one id per visitor. `--sql FILE` times another statement instead (the same
parameters), e.g. the one before store migration 17 (`git show <commit>:server/api/query/imported.py`, its
IMPORTED_INSERT text), to compare; a statement that fails (past ClickHouse's `range` limit) is reported as such.
Prints the load average before and after.

Usage (from the repository root):
    .venv/bin/python bench/bench_imported_visitors.py --visitors 1000,100000,1000000,100000000000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pixel.server.api.query.imported import IMPORTED_INSERT
from pixel.server.store.base import StoreError
from pixel.server.store.chdb_engine import ChdbStore

SITE = "bench.example"
DAY = "2024-01-01"


def _rows(visitors: int) -> list[dict[str, object]]:
    base = {"site": SITE, "import_id": "bench", "date": DAY, "visits": visitors, "bounces": 0,
            "visit_duration": visitors, "with_live": 0}  # fmt: skip
    rows = [{**base, "dimension": "", "value": "", "visitors": visitors, "pageviews": 2 * visitors}]
    for dimension in ("source", "page", "country"):
        for i in range(10):
            part = visitors // 10
            rows.append({**base, "dimension": dimension, "value": f"{dimension}-{i}", "visitors": part,
                         "pageviews": 2 * part})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--visitors", default="1000,100000,1000000,100000000000", help="comma-separated counts"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sql", type=Path, help="a file holding another IMPORTED_INSERT to time instead")
    args = parser.parse_args()
    sql = args.sql.read_text() if args.sql else IMPORTED_INSERT
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        store = ChdbStore(Path(folder) / "store")
        store.migrate()
        params = {
            "site": SITE,
            "tz": "UTC",
            "days": [DAY],
            "lo": f"{DAY} 00:00:00",
            "hi": "2024-01-02 00:00:00",
        }
        print(f"{'visitors':>16}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
        for visitors in (int(v) for v in args.visitors.split(",")):
            store.command("TRUNCATE TABLE imported_aggregates")
            store.insert_rows("imported_aggregates", _rows(visitors))
            times: list[float] = []
            try:
                for run in range(args.runs):
                    started = time.perf_counter()
                    store.command(sql, {**params, "build": time.time_ns() + run})
                    times.append(time.perf_counter() - started)
            except StoreError as exc:
                print(f"{visitors:>16,}  failed: {str(exc)[:100]}")
                continue
            print(
                f"{visitors:>16,}  {statistics.median(times):>9.3f}  {min(times):>7.3f}  {max(times):>7.3f}"
            )
        store.close()
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
