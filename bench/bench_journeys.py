"""Journeys speed on the embedded store: N events over D days (bench_api.py's generator), 4-step journeys.

Times, through the real FastAPI app in-process (ASGI, no network), the journeys report over the last 30 days:
4 steps across all sessions with one filter (country is DE: the issue's figure), 4 steps from a page with that
filter, the next pages of a page, and 4 steps without a filter; and, as an anchor in the same run, one scan
of the same rows (`count()` of the site's events FINAL with the filter), so figures taken under different
machine load can be compared as ratios. Each journeys case is timed twice in the same run: with the current
query (`journeys.sessions_sql`, grouping by the stored `session_hash`) and with the previous one
(`previous_path_counts` below: the same query reading and hashing `session_id`, as before store migration 16),
swapped in for the route; both answers are checked equal. Prints p50 / p90 per case and the
load average.

Reuse generated data with `--data-dir` (generated when empty; keep it outside the repository).

Usage (from the repository root):
    nice -n -10 .venv/bin/python bench/bench_journeys.py --events 10000000 --days 30 --runs 9 --data-dir /tmp/pixel-jbench
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.bench_api import SITE, generate
from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

FILTER = json.dumps([["country", "is", "DE"]])


def previous_path_counts(scope: Scope, q: jq.JourneyQuery) -> list[tuple[tuple[str, ...], bool, int]]:
    """The journeys query as it was before store migration 16 (kept here only to be timed against the current
    one): the same query, reading and hashing `session_id` for every pageview instead of the stored hash."""
    params = SqlParams()
    sql = jq.sessions_sql(scope, q, params).replace("session_hash", "cityHash64(session_id)")
    return [(tuple(r["pages"]), bool(r["complete"]), int(r["sessions"])) for r in scope.run(sql, params)]


CURRENT = jq.path_counts


def version(fn: Callable[[], object], counts: Callable[..., object]) -> Callable[[], object]:
    """`fn` with the route's path query swapped for `counts` while it runs."""

    def run() -> object:
        jq.path_counts = counts  # type: ignore[assignment]
        try:
            return fn()
        finally:
            jq.path_counts = CURRENT

    return run


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pixel-jbench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ChdbStore(data_dir / "store")
    store.migrate()
    have = int(store.scalar("SELECT count() FROM events") or 0)
    if have == 0:
        print(f"generating {args.events:,} events over {args.days} days ...", flush=True)
        print(f"  {generate(store, args.events, args.days, 1):.1f} s", flush=True)
        have = int(store.scalar("SELECT count() FROM events") or 0)
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    if not meta.all("SELECT id FROM users WHERE username = 'bench'"):
        meta.create_user("bench", hash_password("bench-password-1"), "admin")
    rows = meta.all("SELECT id FROM sites WHERE domain = ?", SITE)
    site_id = (
        rows[0]["id"]
        if rows
        else meta.insert("sites", {"domain": SITE, "name": "Bench", "timezone": "UTC", "created_at": 0.0})
    )
    client = TestClient(create_app(settings, store, sql_seconds=60.0))
    token = client.post("/api/auth/login", json={"username": "bench", "password": "bench-password-1"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    base = f"/api/sites/{site_id}/reports/journeys"
    top_page = "/pricing/1"

    def get(path: str, **params: object) -> Callable[[], object]:
        def run() -> object:
            r = client.get(f"{base}{path}", params={"period": "30d", **params}, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        return run

    anchor_sql = """SELECT count() FROM events FINAL WHERE site = {site:String}
        AND timestamp >= now64(3) - INTERVAL 30 DAY AND country = 'DE'"""
    journeys_cases: dict[str, Callable[[], object]] = {
        "4 steps, all sessions, one filter": get("", steps=4, filters=FILTER),
        "4 steps from a page, one filter": get("", steps=4, start=top_page, filters=FILTER),
        "next pages of a page": get("/next", page=top_page),
        "4 steps, all sessions, no filter": get("", steps=4),
    }
    # profile: the grouping of the window's pageviews by session alone, on the stored hash and on the text
    group_sql = """SELECT count() FROM (SELECT {key} FROM events PREWHERE site = {{site:String}}
        AND timestamp >= now64(3) - INTERVAL 31 DAY AND event_name = 'pageview' AND is_bot = 0 GROUP BY {key})"""
    cases: dict[str, Callable[[], object]] = {
        "anchor: count() FINAL, one filter": lambda: store.scalar(anchor_sql, {"site": SITE}),
        "profile: pageviews grouped by session_hash": lambda: store.scalar(
            group_sql.format(key="session_hash"), {"site": SITE}
        ),
        "profile: pageviews grouped by cityHash64(session_id)": lambda: store.scalar(
            group_sql.format(key="cityHash64(session_id)"), {"site": SITE}
        ),
    }
    for name, fn in journeys_cases.items():
        assert fn() == version(fn, previous_path_counts)(), f"{name}: the two queries disagree"
        cases[name] = fn
        cases[f"{name} (previous query)"] = version(fn, previous_path_counts)
    body = get("", steps=4, filters=FILTER)()
    assert isinstance(body, dict)
    print(f"events in store: {have:,}; sessions in the filtered journeys: {body['sessions']:,}")
    print(f"load average before: {os.getloadavg()}")
    anchor = 0.0
    for name, fn in cases.items():
        times = sorted(timed(fn, args.runs))
        p50 = statistics.median(times)
        anchor = anchor or p50
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(f"  {name:58s} p50 {p50 * 1000:7.0f} ms  p90 {p90 * 1000:7.0f} ms  ratio {p50 / anchor:5.2f}")
    print(f"load average after: {os.getloadavg()}")
    store.close()


if __name__ == "__main__":
    main()
