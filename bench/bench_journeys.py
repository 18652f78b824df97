"""Journeys speed on the embedded store: N events over D days (bench_api.py's generator), 4-step journeys.

Times, through the real FastAPI app in-process (ASGI, no network), the journeys report over the last 30 days:
4 steps across all sessions with one filter (country is DE: the issue's figure), 4 steps from a page with that
filter, 4 steps without a filter, and the next pages of a page; and, as an anchor in the same run, one scan
of the same rows (`count()` of the site's events FINAL with the filter), so figures taken under different
machine load can be compared as ratios. Each journeys case is timed twice in the same run: with the current
code (`journeys.path_tallies`: the answer's tallies summed by the store, only they sent back; a session-level
filter's set of sessions read from the sessions table when it covers the window) and with the previous one
(`previous_tallies` below: the filter's set read from the events, every distinct path sent back by
`journeys.path_counts` and tallied in Python), swapped in for the route; both answers are checked equal. The next pages of a page (`neighbours`, two
steps, few distinct paths) run the same code in both. Profiles: the filter's set of sessions alone, the
per-session query alone (its rows counted in the store), the window's pageviews grouped by session alone, the
whole tallies query alone (the route's time less the API's and Python's). Prints
p50 / p90 per case and the load average.

Reuse generated data with `--data-dir` (generated when empty; keep it outside the repository).

Usage (from the repository root):
    nice -n -10 .venv/bin/python bench/bench_journeys.py --events 10000000 --days 30 --runs 9 --data-dir <dir>
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
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

FILTER = json.dumps([["country", "is", "DE"]])


def previous_tallies(scope: Scope, q: jq.JourneyQuery) -> jq.Tallies:
    """The journeys' tallies as they were computed before (kept here only to be timed against the current
    code): the filters' set of sessions read from the events, every distinct (path, complete) sent back by the
    store with its sessions, tallied in Python."""
    current = jq.filters_from_session_rows
    jq.filters_from_session_rows = lambda scope: False  # type: ignore[assignment]
    try:
        return jq.tallies(q, jq.path_counts(scope, q))
    finally:
        jq.filters_from_session_rows = current


CURRENT = jq.path_tallies


def version(fn: Callable[[], object], tallies: Callable[..., object]) -> Callable[[], object]:
    """`fn` with the route's tallies swapped for `tallies` while it runs."""

    def run() -> object:
        jq.path_tallies = tallies  # type: ignore[assignment]
        try:
            return fn()
        finally:
            jq.path_tallies = CURRENT

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
    headers: dict[str, str] = {}

    def login() -> None:  # again when the token expires (a slow case can outlive it)
        token = client.post(
            "/api/auth/login", json={"username": "bench", "password": "bench-password-1"}
        ).json()
        headers["Authorization"] = f"Bearer {token['access_token']}"

    login()
    base = f"/api/sites/{site_id}/reports/journeys"
    top_page = "/pricing/1"

    def get(path: str, **params: object) -> Callable[[], object]:
        def run() -> object:
            r = client.get(f"{base}{path}", params={"period": "30d", **params}, headers=headers)
            if r.status_code == 401:
                login()
                r = client.get(f"{base}{path}", params={"period": "30d", **params}, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        return run

    anchor_sql = """SELECT count() FROM events FINAL WHERE site = {site:String}
        AND timestamp >= now64(3) - INTERVAL 30 DAY AND country = 'DE'"""
    journeys_cases: dict[str, Callable[[], object]] = {
        "4 steps, all sessions, one filter": get("", steps=4, filters=FILTER),
        "4 steps from a page, one filter": get("", steps=4, start=top_page, filters=FILTER),
        "4 steps, all sessions, no filter": get("", steps=4),
    }
    # profiles: the filter's session set; the per-session query (DE, 4 steps) counted in the store; the grouping
    # of the window's pageviews by session alone
    scope = Scope(
        runner=QueryRunner(store),
        site=SITE,
        range=resolve("30d", "UTC"),
        filters=[Filter("country", "is", "DE")],
    )
    params = SqlParams()
    per_session = jq.session_rows_sql(scope, jq.JourneyQuery(steps=4).check(), params)
    fixed = params.with_fixed(site=SITE, **scope.range.params)
    tally_params = SqlParams()
    tallies_alone = jq.tallies_sql(scope, jq.JourneyQuery(steps=4).check(), tally_params)
    tally_fixed = tally_params.with_fixed(site=SITE, **scope.range.params)
    set_sql = """SELECT count() FROM (SELECT DISTINCT session_hash FROM events PREWHERE site = {site:String}
        AND timestamp >= now64(3) - INTERVAL 31 DAY AND is_bot = 0 AND country = 'DE')"""
    rows_set_sql = """SELECT count() FROM (SELECT DISTINCT sid FROM session_rows PREWHERE site = {site:String}
        AND slot >= now64(3) - INTERVAL 31 DAY AND is_bot = 0 AND country = 'DE')"""
    group_sql = """SELECT count() FROM (SELECT session_hash FROM events PREWHERE site = {site:String}
        AND timestamp >= now64(3) - INTERVAL 31 DAY AND event_name = 'pageview' AND is_bot = 0 GROUP BY session_hash)"""
    cases: dict[str, Callable[[], object]] = {
        "anchor: count() FINAL, one filter": lambda: store.scalar(anchor_sql, {"site": SITE}),
        "profile: the filter's set of sessions (events)": lambda: store.scalar(set_sql, {"site": SITE}),
        "profile: the filter's set of sessions (session_rows)": lambda: store.scalar(
            rows_set_sql, {"site": SITE}
        ),
        "profile: the per-session query, rows counted": lambda: store.scalar(
            f"SELECT count() FROM ({per_session})", fixed
        ),
        "profile: pageviews grouped by session_hash": lambda: store.scalar(group_sql, {"site": SITE}),
        "profile: the tallies query alone (in the store)": lambda: store.query(tallies_alone, tally_fixed),
    }
    for name, fn in journeys_cases.items():
        assert fn() == version(fn, previous_tallies)(), f"{name}: the two versions disagree"
        cases[name] = fn
        cases[f"{name} (previous)"] = version(fn, previous_tallies)
    cases["next pages of a page"] = get("/next", page=top_page)
    body = get("", steps=4, filters=FILTER)()
    assert isinstance(body, dict)
    print(f"events in store: {have:,}; sessions in the filtered journeys: {body['sessions']:,}")
    print(f"filter's set from the sessions table: {jq.filters_from_session_rows(scope)}")
    print(f"load average before: {os.getloadavg()}")
    anchor = 0.0
    for name, fn in cases.items():
        times = sorted(timed(fn, args.runs))
        p50 = statistics.median(times)
        anchor = anchor or p50
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(
            f"  {name:58s} p50 {p50 * 1000:7.0f} ms  p90 {p90 * 1000:7.0f} ms  ratio {p50 / anchor:5.2f}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}")
    store.close()


if __name__ == "__main__":
    main()
