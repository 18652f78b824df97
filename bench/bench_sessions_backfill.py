"""The upgrade cost of the sessions table on a copy of an existing store (issue 16): `store.migrate()` timed per
migration (migration 12 no longer copies the events), then `--steps` steps of the background backfill
(`SessionsBackfill`, without its pauses: `share=1.0`) with the time each holds the store, then optionally
(`--anchor`) the old inline fill of the whole table (`INSERT INTO session_rows SELECT ... FROM events`) in the
same run. Run it on a copy (`cp -a`) of a store at a migration before 12: it changes the folder.

    .venv/bin/python bench/bench_sessions_backfill.py STORE_DIR [--steps 240] [--chunk 3600] [--anchor]
"""

from __future__ import annotations

import argparse
import time

from pixel.server.store import sessions
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.schema import migrations
from pixel.server.store.sessions_backfill import SessionsBackfill


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_dir")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--chunk", type=int, default=3600, help="seconds of event time per chunk")
    parser.add_argument("--anchor", action="store_true", help="then time the old inline fill")
    args = parser.parse_args()
    print("load at start", load(), flush=True)
    store = ChdbStore(args.store_dir)
    try:
        done = {row[0] for row in store.query("SELECT version FROM schema_migrations").rows}
        began = time.monotonic()
        for m in migrations():
            if m.version in done:
                continue
            t = time.monotonic()
            for statement in m.statements:
                store.command(statement)
            store.command(
                "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                {"v": m.version, "n": m.name},
            )
            print(f"migration {m.version}: {time.monotonic() - t:.2f} s", flush=True)
        print(f"all migrations {time.monotonic() - began:.2f} s, load {load()}", flush=True)
        worker = SessionsBackfill(store, chunk_seconds=args.chunk, share=1.0)
        times = []
        began = time.monotonic()
        for _ in range(args.steps):
            t = time.monotonic()
            more = worker.step()
            times.append(time.monotonic() - t)
            if not more:
                break
        total = time.monotonic() - began
        times.sort()
        print(
            f"backfill: {len(times)} steps in {total:.1f} s, {worker.progress() or 'complete'}; per step p50 "
            f"{times[len(times) // 2] * 1000:.0f} ms, p90 {times[int(len(times) * 0.9)] * 1000:.0f} ms, "
            f"max {times[-1] * 1000:.0f} ms; load {load()}",
            flush=True,
        )
        if args.anchor:
            t = time.monotonic()
            store.command(f"INSERT INTO session_rows {sessions.SELECT}")
            print(f"anchor, the old inline fill: {time.monotonic() - t:.1f} s; load {load()}", flush=True)
    finally:
        store.close()


if __name__ == "__main__":
    main()
