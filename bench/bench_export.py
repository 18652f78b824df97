"""Peak memory of the streamed Parquet export of N raw events (default 1,000,000) on chDB, against anchors run
the same way: the store opened and counted (the process's floor), and the same events asked from the store as
one Parquet answer (what an unstreamed export would hold).

The events are made in the store by SQL (numbers(N), a month of timestamps, 5 pages, 3 countries, props). Each
measurement runs in a fresh child process (`--child MODE`) that opens the same store folder and reports its
peak RSS (ru_maxrss) and wall time; the export's bytes are counted and dropped as they come.

    .venv/bin/python bench/bench_export.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

SITE = "bench.example"
START = datetime(2024, 3, 1, tzinfo=UTC)


def fill(folder: Path, events: int) -> None:
    from pixel.server.store.chdb_engine import ChdbStore

    store = ChdbStore(folder)
    store.migrate()
    store.command(
        f"""INSERT INTO events (timestamp, received_at, site, event_id, event_name, visitor_id, session_id,
            path, host, url, country, browser, device_type, source, props, is_bot)
        SELECT toDateTime64('2024-03-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 2500) AS t, t,
            '{SITE}', concat('e', toString(number)), if(number % 10 = 0, 'signup', 'pageview'),
            concat('v', toString(number % 50000)), concat('s', toString(intDiv(number, 4))),
            arrayElement(['/', '/pricing', '/blog/a', '/blog/b', '/signup'], number % 5 + 1), '{SITE}',
            concat('https://{SITE}/', toString(number % 5)), arrayElement(['DE', 'FR', 'US'], number % 3 + 1),
            'Chrome', 'desktop', '', map('plan', if(number % 2 = 0, 'pro', 'free')), 0
        FROM numbers({events})"""
    )
    store.close()


def child(folder: Path, mode: str) -> dict[str, float]:
    from pixel.server.api.query.exports import events_parquet
    from pixel.server.api.query.periods import Range
    from pixel.server.api.query.runner import QueryRunner
    from pixel.server.api.query.scope import Scope
    from pixel.server.store.chdb_engine import ChdbStore

    store = ChdbStore(folder)
    runner = QueryRunner(store)
    scope = Scope(runner, SITE, Range(START, datetime(2024, 5, 1, tzinfo=UTC), "UTC", "custom"))
    began = time.perf_counter()
    size = rows = 0
    if mode == "floor":
        rows = int(store.scalar("SELECT count() FROM events FINAL WHERE site = {s:String}", {"s": SITE}))
    elif mode == "whole":
        size = len(store._execute("SELECT * FROM events FINAL ORDER BY timestamp, event_id", None, "Parquet"))
    else:
        for chunk in events_parquet(runner, scope):
            size += len(chunk)
    seconds = time.perf_counter() - began
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()
    return {"peak_rss_mib": round(peak_mib, 1), "seconds": round(seconds, 2), "bytes": size, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--child", default=None)
    ap.add_argument("--folder", default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.folder), args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        began = time.perf_counter()
        fill(folder, args.events)
        print(
            f"{args.events:,} events made in {time.perf_counter() - began:.1f} s; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        for mode in ("floor", "stream", "whole"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--folder", str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            print(mode, out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
