"""Journeys over the per-day cache of session paths (`query/path_cache.py`, issue 18) against the route over the
events, in one process, alternating.

The store is bench_journeys.py's (bench_api's generator, N events over D days, site in UTC), generated here when
the data folder is empty. The cache's 30 days are first built one day per build, as its background worker builds
them (wall and CPU time per day). Then each case runs through the real app (ASGI, no network) twice in turn: the
route over the events (`path_cache.rows_sql` answering None, as when the cache cannot answer) and the route as it
is (reading the cache), after checking both answers equal. Prints p50 wall and CPU per case, the ratio, the
cache's size and the load average. `--profile` times the issue's case over the cache in parts, in the store.

Usage (from the repository root):
    nice -n -5 .venv/bin/python bench/bench_journeys_cache.py --data-dir <dir> --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.bench_api import SITE, generate
from bench.bench_journeys import timed
from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query import journeys as jq
from pixel.server.api.query import path_cache
from pixel.server.api.query.cache_sql import Days, whole_days
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

ROWS_SQL = path_cache.rows_sql


def over_events(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` with the cache unable to answer while it runs: the route reads the events."""

    def run() -> object:
        path_cache.rows_sql = lambda *_: None  # type: ignore[assignment]
        try:
            return fn()
        finally:
            path_cache.rows_sql = ROWS_SQL

    return run


def build(scope: Scope) -> None:
    """The scope's days built one per build, as the worker builds them: wall and CPU time, rows and size."""
    assert scope.cache is not None
    cache = path_cache.for_cache(scope.cache)
    days = whole_days(scope.range)
    assert days is not None
    walls, cpus = [], []
    for i in range((days.last - days.first).days + 1):
        day = days.first + timedelta(days=i)
        wall, cpu = time.perf_counter(), time.process_time()
        cache.ensure(scope, Days(day, day))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    built = [(w, c) for w, c in zip(walls, cpus, strict=True) if w > 0.05]
    if built:
        print(
            f"built {len(built)} days: {sum(w for w, _ in built):.1f} s wall, {sum(c for _, c in built):.1f} s CPU;"
            f" per day p50 {statistics.median(w for w, _ in built):.2f} s wall, "
            f"{statistics.median(c for _, c in built):.2f} s CPU",
            flush=True,
        )
    stats = scope.runner.query(
        f"""SELECT (SELECT count() FROM {path_cache.TABLES[0]}) AS rows,
            (SELECT countIf(mixed) FROM {path_cache.TABLES[0]}) AS mixed,
            (SELECT sum(data_compressed_bytes) FROM system.parts WHERE table = '{path_cache.TABLES[0]}' AND active)
                AS bytes,
            (SELECT sum(data_compressed_bytes) FROM system.parts WHERE table = 'events' AND active) AS events"""
    ).dicts()[0]
    print(f"cache: {stats}", flush=True)


def profile(scope: Scope, runs: int) -> None:
    """The issue's case over the cache in parts, in the store: the chosen rows counted, grouped into distinct
    paths, and the whole tallies query; alternating, wall and CPU p50."""
    q = jq.JourneyQuery(steps=4).check()
    p1 = SqlParams()
    rows = path_cache.rows_sql(scope, q, p1)
    assert rows is not None
    f1 = p1.with_fixed(site=SITE, **scope.range.params)
    p2 = SqlParams()
    tallies = jq.tallies_sql(scope, q, p2)
    f2 = p2.with_fixed(site=SITE, **scope.range.params)
    grouped = f"SELECT count() FROM (SELECT pages, complete, count() FROM ({rows}) GROUP BY pages, complete)"
    store = scope.runner.store
    cases: dict[str, Callable[[], object]] = {
        "the cached rows, counted": lambda: store.scalar(f"SELECT count() FROM ({rows})", f1),
        "the cached rows grouped into distinct paths": lambda: store.scalar(grouped, f1),
        "the tallies query over the cache": lambda: store.query(tallies, f2),
    }
    print(f"load average before timing: {os.getloadavg()}", flush=True)
    for name, (wall, cpu) in zip(cases, timed(list(cases.values()), runs), strict=True):
        print(
            f"  {name:45s} p50 {statistics.median(wall) * 1000:6.0f} ms cpu {statistics.median(cpu) * 1000:6.0f} ms",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--events", type=int, default=10_000_000, help="when generating")
    parser.add_argument("--days", type=int, default=30, help="when generating")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument(
        "--profile", action="store_true", help="only the issue's case over the cache, in parts"
    )
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    store = ChdbStore(args.data_dir / "store")
    store.migrate()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if not int(store.scalar("SELECT count() FROM events") or 0):
        print(f"generating {args.events:,} events over {args.days} days ...", flush=True)
        print(f"  {generate(store, args.events, args.days, 1):.1f} s", flush=True)
    settings = Settings(data_dir=args.data_dir)
    meta = open_meta(settings)
    if not meta.all("SELECT id FROM users WHERE username = 'bench'"):
        meta.create_user("bench", hash_password("bench-password-1"), "admin")
    found = meta.all("SELECT id FROM sites WHERE domain = ?", SITE)
    site_id = (
        found[0]["id"]
        if found
        else meta.insert("sites", {"domain": SITE, "name": "Bench", "timezone": "UTC", "created_at": 0.0})
    )
    app = create_app(settings, store, sql_seconds=60.0)
    client = TestClient(app)
    report_cache = app.state.pixel.report_cache
    scope = Scope(
        report_cache.runner, SITE, resolve("30d", "UTC"), [Filter("country", "is", "DE")], cache=report_cache
    )
    build(scope)
    if args.profile:
        profile(scope, args.runs)
        store.close()
        return
    headers: dict[str, str] = {}

    def login() -> None:
        token = client.post(
            "/api/auth/login", json={"username": "bench", "password": "bench-password-1"}
        ).json()
        headers["Authorization"] = f"Bearer {token['access_token']}"

    login()
    base = f"/api/sites/{site_id}/reports/journeys"

    def get(path: str, **params: object) -> Callable[[], object]:
        def run() -> object:
            r = client.get(f"{base}{path}", params={"period": "30d", **params}, headers=headers)
            if r.status_code == 401:
                login()
                r = client.get(f"{base}{path}", params={"period": "30d", **params}, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        return run

    one = json.dumps([["country", "is", "DE"]])
    two = json.dumps([["country", "is", "DE"], ["device", "is", "mobile"]])
    cases = {
        "4 steps, all sessions, one filter (the issue's case)": get("", steps=4, filters=one),
        "4 steps from a page, one filter": get("", steps=4, start="/pricing/1", filters=one),
        "4 steps to a page, one filter": get("", steps=4, end="/pricing/1", filters=one),
        "4 steps, all sessions, two filters": get("", steps=4, filters=two),
        "4 steps, all sessions, no filter": get("", steps=4),
        "next pages of a page": get("/next", page="/pricing/1"),
    }
    for name, fn in cases.items():
        body = fn()
        assert body == over_events(fn)(), f"{name}: the cache's answer differs"
        assert isinstance(body, dict)
        print(f"  {name}: {body['sessions']:,} sessions, answers equal", flush=True)
    print(f"load average before timing: {os.getloadavg()}", flush=True)
    for name, fn in cases.items():
        (raw_t, raw_c), (c_t, c_c) = timed([over_events(fn), fn], args.runs)
        r, c = statistics.median(raw_t), statistics.median(c_t)
        rc, cc = statistics.median(raw_c), statistics.median(c_c)
        print(
            f"  {name:55s} events p50 {r * 1000:6.0f} ms cpu {rc * 1000:6.0f} ms | cache p50 {c * 1000:6.0f} ms"
            f" (min {min(c_t) * 1000:.0f}) cpu {cc * 1000:6.0f} ms | wall {c / r:.2f}x cpu {cc / rc:.2f}x",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
