"""A per-day cache of session paths for journeys, evaluated before a migration (issue 18; h94, session 9).

The design under test: one row per (site, session, is_bot) in a table ordered by the local day of the
session's first pageview, holding the session's whole collapsed path (`seq`: its pageviews' paths in time
order, a reload or a copy folded, as `journeys.session_rows_sql` builds it with `collapse_repeats` and no
page groups), the time of its first pageview, and its session-level dimensions as columns (the value every
event of the session holds; `mixed` = 1 when its events disagree on one of them). A journeys request without
page groups, with repeats collapsed and with session-level filters (one or several) becomes a scan of the
chosen days' rows with the filters as column predicates: no per-event arrays, no probe of a set of
sessions over every pageview. The tallies query (`journeys.tallies_sql`) is unchanged above it.

This bench builds the table (`bench_session_paths`, in the bench's own store, not a migration) a day at a
time from the events (each day from the events of the day before to the day after, the reach of a session
that the route reads: `journeys.SESSION_REACH`), prints each day's build time, then times the route's
journeys with its tallies read from the table against the route as it is, alternating in one process, wall
and CPU time, after checking both answers equal. Mixed sessions (none in bench_api's generator) are read
through the sessions table's set of sessions, as the route does, only when the window holds one.

`--profile` times only the issue's case over the cache in parts, in the store (the chosen rows counted,
grouped into distinct paths, the whole tallies query).

Usage (from the repository root; the data folder made by bench_journeys.py):
    .venv/bin/python bench/bench_journeys_cache.py --data-dir <dir> --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.bench_api import SITE
from bench.bench_journeys import timed
from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import DIMENSIONS, Filter, SqlParams, filter_sql
from pixel.server.api.query.periods import ch_datetime, local_midnight, resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.sessions import COLUMNS

TABLE = "bench_session_paths"
DIMS = [c for c in COLUMNS if c != "is_bot"]

DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    site LowCardinality(String), day Date, is_bot UInt8, sid UInt64, first_view DateTime64(3, 'UTC'),
    seq Array(String), mixed UInt8,
    {", ".join(f"`{c}` {COLUMNS[c]}" for c in DIMS)}
) ENGINE = ReplacingMergeTree ORDER BY (site, day, is_bot, sid)"""


def build_day(store: Store, site: str, day: date, zone: ZoneInfo) -> None:
    """The rows of `site`'s sessions whose first pageview falls on the local `day` of `zone`, from the events
    of the day before to the day after (what the route reads around a range of that one day)."""
    d0, d1 = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
    lo, hi = d0 - jq.SESSION_REACH, d1 + jq.SESSION_REACH
    raw = "arraySort((p, t) -> (t, p), groupArrayIf(path, pv), groupArrayIf(timestamp, pv))"
    seq = f"arrayFilter((p, i) -> i = 1 OR p != raw[i - 1], {raw} AS raw, arrayEnumerate(raw))"
    dims = ", ".join(f"any(d_{c}) AS {c}" for c in DIMS)
    store.command(
        f"""INSERT INTO {TABLE} (site, day, is_bot, sid, first_view, seq, mixed, {", ".join(DIMS)})
        SELECT site, {{day:Date}} AS day, is_bot, session_hash AS sid,
            minIf(timestamp, pv) AS first_view, {seq} AS seq,
            uniqExact(({", ".join(f"d_{c}" for c in DIMS)})) > 1 AS mixed, {dims}
        FROM (SELECT site, is_bot, session_hash, timestamp, path, {", ".join(f"{c} AS d_{c}" for c in DIMS)},
            event_name = 'pageview' AS pv FROM events
            PREWHERE site = {{site:String}} AND timestamp >= {{lo:DateTime64(3)}} AND timestamp < {{hi:DateTime64(3)}})
        GROUP BY site, is_bot, session_hash
        HAVING countIf(pv) > 0 AND first_view >= {{d0:DateTime64(3)}} AND first_view < {{d1:DateTime64(3)}}""",
        {
            "site": site,
            "day": day.isoformat(),
            "lo": ch_datetime(lo),
            "hi": ch_datetime(hi),
            "d0": ch_datetime(d0),
            "d1": ch_datetime(d1),
        },
    )


def cached_rows_sql(scope: Scope, q: jq.JourneyQuery, params: SqlParams) -> str:
    """`journeys.session_rows_sql` over the cache: each chosen session's `pages` and `complete`."""
    assert q.collapse_repeats and not q.all_groups()
    pages, complete, keep = jq._shape_sql(q, params)
    start = params.add(ch_datetime(scope.range.start), "DateTime64(3)")
    end = params.add(ch_datetime(scope.range.end), "DateTime64(3)")
    # the local days hold the first views; a day either side, so that the zone of the range's ends does not
    # matter (first_view is the exact condition)
    d0 = params.add((scope.range.start - timedelta(days=1)).date().isoformat(), "Date")
    d1 = params.add((scope.range.end + timedelta(days=1)).date().isoformat(), "Date")
    where = (
        f"site = {{site:String}} AND day >= {d0} AND day <= {d1}"
        f" AND first_view >= {start} AND first_view < {end}"
        + ("" if scope.include_bots else " AND is_bot = 0")
    )
    if scope.filters:
        cond = " AND ".join(f"({filter_sql(f, params)})" for f in scope.filters)
        mixed = int(
            scope.runner.store.scalar(
                f"SELECT countIf(mixed) FROM {TABLE} WHERE site = {{site:String}}", {"site": scope.site}
            )
            or 0
        )
        if mixed:  # the route's set of sessions, for the mixed ones only
            lo = params.add(ch_datetime(scope.range.start - jq.SESSION_REACH), "DateTime64(3)")
            hi = params.add(ch_datetime(scope.range.end + jq.SESSION_REACH), "DateTime64(3)")
            bots = "" if scope.include_bots else " AND is_bot = 0"
            rows = f"site = {{site:String}} AND slot >= {lo} AND slot < {hi}{bots}"
            where += (
                f" AND ((NOT mixed AND {cond}) OR (mixed AND sid IN"
                f" (SELECT sid FROM session_rows PREWHERE {rows} AND {cond})))"
            )
        else:
            where += f" AND {cond}"
    return f"SELECT {pages} AS pages, {complete} AS complete FROM {TABLE} PREWHERE {where} WHERE {keep}"


CURRENT_ROWS = jq.session_rows_sql


def cached(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` with the route's per-session query read from the cache while it runs."""

    def run() -> object:
        jq.session_rows_sql = cached_rows_sql  # type: ignore[assignment]
        try:
            return fn()
        finally:
            jq.session_rows_sql = CURRENT_ROWS

    return run


def profile(store: ChdbStore, runs: int) -> None:
    """The issue's case over the cache in parts, in the store: the chosen rows counted, grouped into
    distinct paths, and the whole tallies query; alternating, wall and CPU p50."""
    scope = Scope(
        runner=QueryRunner(store),
        site=SITE,
        range=resolve("30d", "UTC"),
        filters=[Filter("country", "is", "DE")],
    )
    q = jq.JourneyQuery(steps=4).check()
    p1 = SqlParams()
    rows = cached_rows_sql(scope, q, p1)
    f1 = p1.with_fixed(site=SITE, **scope.range.params)
    p2 = SqlParams()
    tallies = cached(lambda: jq.tallies_sql(scope, q, p2))()
    f2 = p2.with_fixed(site=SITE, **scope.range.params)
    grouped = f"SELECT count() FROM (SELECT pages, complete, count() FROM ({rows}) GROUP BY pages, complete)"
    cases: dict[str, Callable[[], object]] = {
        "the cached rows, counted": lambda: store.scalar(f"SELECT count() FROM ({rows})", f1),
        "the cached rows grouped into distinct paths": lambda: store.scalar(grouped, f1),
        "the tallies query over the cache": lambda: store.query(str(tallies), f2),
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
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rebuild", action="store_true", help="build the cache table again")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only the parts of the issue's case over the cache, in the store",
    )
    args = parser.parse_args()
    store = ChdbStore(args.data_dir / "store")
    store.migrate()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if args.rebuild:
        store.command(f"DROP TABLE IF EXISTS {TABLE}")
    store.command(DDL)
    if not int(store.scalar(f"SELECT count() FROM {TABLE}") or 0):
        first, last = store.query(
            "SELECT toDate(min(timestamp)) AS a, toDate(max(timestamp)) AS b FROM events WHERE site = {site:String}",
            {"site": SITE},
        ).rows[0]
        day, end = date.fromisoformat(str(first)), date.fromisoformat(str(last))
        took = []
        cpu_took = []
        while day <= end:
            cpu, started = time.process_time(), time.perf_counter()
            build_day(store, SITE, day, ZoneInfo("UTC"))
            took.append(time.perf_counter() - started)
            cpu_took.append(time.process_time() - cpu)
            day += timedelta(days=1)
        store.command(f"OPTIMIZE TABLE {TABLE} FINAL")
        print(
            f"built {len(took)} days: total {sum(took):.1f} s wall, {sum(cpu_took):.1f} s CPU; per day p50 "
            f"{statistics.median(took) * 1000:.0f} ms wall, {statistics.median(cpu_took) * 1000:.0f} ms CPU",
            flush=True,
        )
    stats = store.query(
        f"""SELECT count() AS rows, countIf(mixed) AS mixed,
        (SELECT sum(data_compressed_bytes) FROM system.parts WHERE table = '{TABLE}' AND active) AS bytes,
        (SELECT sum(data_compressed_bytes) FROM system.parts WHERE table = 'events' AND active) AS events
        FROM {TABLE}"""
    ).dicts()[0]
    print(f"cache: {stats}", flush=True)
    if args.profile:
        profile(store, args.runs)
        store.close()
        return
    settings = Settings(data_dir=args.data_dir)
    meta = open_meta(settings)
    if not meta.all("SELECT id FROM users WHERE username = 'bench'"):
        meta.create_user("bench", hash_password("bench-password-1"), "admin")
    site_id = meta.all("SELECT id FROM sites WHERE domain = ?", SITE)[0]["id"]
    client = TestClient(create_app(settings, store, sql_seconds=60.0))
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
    assert "device" in DIMENSIONS
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
        assert body == cached(fn)(), f"{name}: the cache's answer differs"
        assert isinstance(body, dict)
        print(f"  {name}: {body['sessions']:,} sessions, answers equal", flush=True)
    print(f"load average before timing: {os.getloadavg()}", flush=True)
    for name, fn in cases.items():
        (raw_t, raw_c), (c_t, c_c) = timed([fn, cached(fn)], args.runs)
        r, c = statistics.median(raw_t), statistics.median(c_t)
        rc, cc = statistics.median(raw_c), statistics.median(c_c)
        print(
            f"  {name:55s} route p50 {r * 1000:6.0f} ms cpu {rc * 1000:6.0f} ms | cache p50 {c * 1000:6.0f} ms"
            f" (min {min(c_t) * 1000:.0f}) cpu {cc * 1000:6.0f} ms | wall {c / r:.2f}x cpu {cc / rc:.2f}x",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
