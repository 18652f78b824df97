"""API report speed on the embedded store: N events over D days, the standard dashboard for one site.

Generates the events inside chDB (INSERT ... SELECT from numbers(), so generation is not the
bottleneck), then times, through the real FastAPI app in-process (ASGI, no network):
- the standard dashboard for the last 30 days: summary (with comparison) + visitors/pageviews
  timeseries by day + 8 breakdowns (page, entry_page, referrer, source, country, browser, os, device);
- the same dashboard as one request to `/reports/dashboard` (its numbers checked equal to the ten once);
- realtime (visitors now, pageviews per minute, top pages).

The reports read the per-day report cache (server/api/query/report_cache.py); the first dashboard builds
the days not built yet (timed apart), `--live N` adds dashboards each right after N new events.
Reuse generated data with `--data-dir` (generated when empty; keep it outside the repository).

Issue 16 adds, on the dashboard endpoint:
- `--filters JSON`: a JSON list of filter sets (each a list of `[dimension, operator, value]`), timed each
  (default `DEFAULT_FILTERS`, one or two filters of the kinds an owner clicks);
- `--cold`: the report cache is emptied first, then the first dashboard is timed (and how long the
  background build takes to complete);
- `--live-rate N`: N events a second are inserted (in shipper-sized batches every 0.25 s) while the
  dashboard endpoint is timed, and each answer is checked to include every event inserted 5 s before it.
`--compare-copies` (session 7) times each filter's raw query with the copies of an event dropped among every
matching row (before) and only inside the time windows where two parts of a month could hold copies (now,
`copy_windows`), interleaved, same rows asserted; `--optimize-closed-months` merges each month but the current
one into one part first, of `events` and of the sessions table (as a background OPTIMIZE of closed months would).
`--compare-breakdowns` (session 6) times each filter's raw query with the event-level breakdowns as before
(`ARRAY JOIN`, one copy of every row per dimension) and as now (`GROUPING SETS`), interleaved, same rows asserted.
Every run prints p50/min/max per path, the peak RSS of this process (which is the store process: the
app runs in it) and the load average before and after.

Usage (from the repository root):
    nice -n -10 .venv/bin/python bench/bench_api.py --events 10000000 --days 90 --runs 9 --data-dir /tmp/pixel-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore, bind_params

SITE = "bench.example"
BREAKDOWNS = ("page", "entry_page", "referrer", "source", "country", "browser", "os", "device")
DEFAULT_FILTERS: list[list[list[str]]] = [
    [["country", "is", "DE"]],
    [["browser", "is", "Chrome"]],
    [["page", "contains", "/blog"]],
    [["source", "is", "Google"], ["device", "is", "mobile"]],
    [["prop:plan", "is", "pro"]],
]

# Both generators give every row a fresh UUID as its event id, so no two rows of an insert share the events
# table's key: the insert skips the store's look for such copies (`optimize_on_insert = 0`, as the shipper's
# `UNIQUE_KEYS`), which was most of a chunk's cost (bench/README.md, "The generator at 100 M").
# The flat generator (sessions 1-4): about one event per session, every dimension drawn per event.
GENERATE = """
INSERT INTO events (timestamp, received_at, site, event_id, event_name, visitor_id, session_id, url, host, path,
    title, ref_host, source, medium, channel, utm_source, utm_campaign, country, region, city, browser, os,
    device_type, screen, language, is_bot, engaged_ms, props)
SELECT ts, ts, site, toString(generateUUIDv4()), name, toString(v),
    concat(toString(v), '-', toString(toStartOfInterval(ts, INTERVAL 30 MINUTE))),
    concat('https://', site, p), site, p, concat('Title ', p), ref, src, med, chan, if(h % 13 = 0, 'newsletter', ''),
    if(h % 13 = 0, 'spring', ''), ctry, concat(ctry, '-', toString(h % 7)), concat('City ', toString(h % 50)),
    ['Chrome', 'Firefox', 'Safari', 'Edge', 'Samsung Internet'][h % 5 + 1],
    ['Windows', 'macOS', 'Linux', 'Android', 'iOS'][bitShiftRight(h, 3) % 5 + 1],
    ['desktop', 'mobile', 'tablet'][bitShiftRight(h, 5) % 3 + 1], ['1920x1080', '1366x768', '390x844'][bitShiftRight(h, 7) % 3 + 1],
    ['en-US', 'de-DE', 'fr-FR', 'es-ES'][bitShiftRight(h, 9) % 4 + 1], if(h % 50 = 0, 1, 0), bitShiftRight(h, 11) % 60000,
    if(name = 'signup', map('plan', ['free', 'pro'][bitShiftRight(h, 13) % 2 + 1]), map())
FROM (
    SELECT number, cityHash64(number) AS h, h % {visitors:UInt64} AS v,
        if(number % {sites:UInt64} = 0, 'bench.example', concat('site', toString(number % {sites:UInt64}), '.example')) AS site,
        now64(3) - toIntervalMillisecond(cityHash64(number, 1) % ({days:UInt64} * 86400000)) AS ts,
        if(h % 10 < 8, 'pageview', ['signup', 'download', 'outbound'][h % 3 + 1]) AS name,
        concat('/', ['', 'pricing', 'blog', 'docs', 'about'][bitShiftRight(h, 2) % 5 + 1], '/', toString(bitShiftRight(h, 4) % 40)) AS p,
        ['', 'google.com', 'twitter.com', 'news.ycombinator.com', 'github.com'][bitShiftRight(h, 6) % 5 + 1] AS ref,
        ['', 'Google', 'Twitter', 'Hacker News', 'GitHub'][bitShiftRight(h, 6) % 5 + 1] AS src,
        ['', 'organic', 'social', 'referral', 'referral'][bitShiftRight(h, 6) % 5 + 1] AS med,
        ['Direct', 'Organic Search', 'Organic Social', 'Referral', 'Referral'][bitShiftRight(h, 6) % 5 + 1] AS chan,
        ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP'][bitShiftRight(h, 8) % 7 + 1] AS ctry
    FROM numbers({start:UInt64}, {count:UInt64}))
SETTINGS optimize_on_insert = 0
"""


# Realistic sessions (the default): visitors come back in sessions of several events. A session's length
# is geometric (mean SESSION_MEAN events: at least one pageview, then pageviews and a few custom events),
# its events 10 s to 5 min apart; country, browser, os, device, source, UTM, language and screen are the
# session's (drawn once per session, visitor-constant for the device), pages are drawn per event.
SESSION_MEAN = 4.5
GENERATE_SESSIONS = """
INSERT INTO events (timestamp, received_at, site, event_id, event_name, visitor_id, session_id, url, host, path,
    title, ref_host, source, medium, channel, utm_source, utm_campaign, country, region, city, browser, os,
    device_type, screen, language, is_bot, engaged_ms, props)
SELECT ts, ts, site, toString(generateUUIDv4()), name, toString(v), concat(toString(v), '-', toString(s)),
    concat('https://', site, p), site, p, concat('Title ', p), if(nav, site, ref), if(nav, '', src),
    if(nav, 'internal', med), if(nav, 'Internal', chan), if(h % 13 = 0, 'newsletter', ''),
    if(h % 13 = 0, 'spring', ''), ctry, concat(ctry, '-', toString(vh % 7)), concat('City ', toString(vh % 50)),
    ['Chrome', 'Firefox', 'Safari', 'Edge', 'Samsung Internet'][vh % 5 + 1],
    ['Windows', 'macOS', 'Linux', 'Android', 'iOS'][bitShiftRight(vh, 3) % 5 + 1],
    ['desktop', 'mobile', 'tablet'][bitShiftRight(vh, 5) % 3 + 1], ['1920x1080', '1366x768', '390x844'][bitShiftRight(vh, 7) % 3 + 1],
    ['en-US', 'de-DE', 'fr-FR', 'es-ES'][bitShiftRight(vh, 9) % 4 + 1], if(vh % 50 = 0, 1, 0), bitShiftRight(e, 11) % 60000,
    if(name = 'signup', map('plan', ['free', 'pro'][bitShiftRight(e, 13) % 2 + 1]), map())
FROM (
    SELECT s, h, v, vh, site, ref, src, med, chan, ctry, i, cityHash64(s, i) AS e,
        ts0 + toIntervalMillisecond(arraySum(arraySlice(gaps, 1, i))) AS ts,
        if(i = 0 OR e % 10 < 8, 'pageview', ['signup', 'download', 'outbound'][e % 3 + 1]) AS name,
        concat('/', ['', 'pricing', 'blog', 'docs', 'about'][bitShiftRight(e, 2) % 5 + 1], '/', toString(bitShiftRight(e, 4) % 40)) AS p,
        {internal:UInt8} AND p != landing AS nav
    FROM (
        SELECT number AS s, cityHash64(number) AS h, h % {visitors:UInt64} AS v, cityHash64(v, 7) AS vh,
            if(v % {sites:UInt64} = 0, 'bench.example', concat('site', toString(v % {sites:UInt64}), '.example')) AS site,
            now64(3) - toIntervalMillisecond(if({ordered:UInt8},
                least(toUInt64(({total:UInt64} - number - cityHash64(number, 1) % 1000000 / 1000000)
                    / {total:UInt64} * ({days:UInt64} * 86400000)), {days:UInt64} * 86400000 - 1),
                cityHash64(number, 1) % ({days:UInt64} * 86400000))) AS ts0,
            toUInt32(floor(log(1 - (cityHash64(number, 2) % 1000000) / 1000000) / log(1 - 1 / {mean:Float64}))) + 1 AS n,
            arrayMap(k -> 10000 + cityHash64(number, 3, k) % 290000, range(n)) AS gaps,
            cityHash64(number, 0) AS e0,
            concat('/', ['', 'pricing', 'blog', 'docs', 'about'][bitShiftRight(e0, 2) % 5 + 1], '/', toString(bitShiftRight(e0, 4) % 40)) AS landing,
            ['', 'google.com', 'twitter.com', 'news.ycombinator.com', 'github.com'][bitShiftRight(h, 6) % 5 + 1] AS ref,
            ['', 'Google', 'Twitter', 'Hacker News', 'GitHub'][bitShiftRight(h, 6) % 5 + 1] AS src,
            ['', 'organic', 'social', 'referral', 'referral'][bitShiftRight(h, 6) % 5 + 1] AS med,
            ['Direct', 'Organic Search', 'Organic Social', 'Referral', 'Referral'][bitShiftRight(h, 6) % 5 + 1] AS chan,
            ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP'][bitShiftRight(vh, 8) % 7 + 1] AS ctry
        FROM numbers({start:UInt64}, {count:UInt64}))
    ARRAY JOIN range(n) AS i)
SETTINGS optimize_on_insert = 0
"""


def generate(
    store: ChdbStore,
    events: int,
    days: int,
    sites: int,
    chunk: int = 1_000_000,
    *,
    flat: bool = False,
    internal_navigation: bool = False,
    time_ordered: bool = False,
) -> float:
    """About `events` events (exactly that many with `flat`, else sessions of SESSION_MEAN events on average).
    `internal_navigation` (sessions only): the events on a session's pages other than its landing page come from
    the site itself, as the tracker and the enrichment store them on a real site (referrer the site's host,
    channel `Internal`, medium `internal`, no source), so a session from outside mixes values of those.
    `time_ordered` (sessions only): session k of N starts at about k/N of the range, so each chunk's events fall
    in a few hours and its parts in one month, as a live store's inserts do (fewer, smaller merges: the 100 M
    figures in bench/README.md); without it every chunk spans the whole range and every part overlaps every other.

    The chunks are inserted by two statements at a time (`insert_chunks`): one `INSERT ... SELECT` with the
    materialized views of `events` runs on one core whatever `max_insert_threads` says."""
    started = time.perf_counter()
    if not flat:
        sessions = max(int(events / SESSION_MEAN), 1)
        step = max(int(chunk / SESSION_MEAN), 1)
        insert_chunks(
            store,
            GENERATE_SESSIONS,
            [
                {
                    "start": start,
                    "count": min(step, sessions - start),
                    "visitors": max(sessions // 4, 1),
                    "sites": sites,
                    "days": days,
                    "mean": SESSION_MEAN,
                    "internal": int(internal_navigation),
                    "total": sessions,
                    "ordered": int(time_ordered),
                }
                for start in range(0, sessions, step)
            ],
        )
        return time.perf_counter() - started
    insert_chunks(
        store,
        GENERATE,
        [
            {
                "start": start,
                "count": min(chunk, events - start),
                "visitors": max(events // 20, 1),
                "sites": sites,
                "days": days,
            }
            for start in range(0, events, chunk)
        ],
    )
    return time.perf_counter() - started


def insert_chunks(store: ChdbStore, sql: str, chunks: list[dict[str, Any]]) -> None:
    """Run `sql` once per parameter set of `chunks`, two at a time: every other chunk on the store's session,
    the others on a second chDB session of the same folder in a thread (chDB runs a statement without the
    GIL; the store runs one statement at a time on its own session, as the app needs). The first failure of
    either stops both (after the statement under way) and is raised here."""
    second = store._open_session()  # bench-only: a second session beside the store's, as its console opens
    failed: list[BaseException] = []
    stop = threading.Event()

    def other_half() -> None:
        try:
            for params in chunks[1::2]:
                if stop.is_set():
                    return
                bound, values = bind_params(sql, params)
                second.query(bound, "TabSeparated", params=values)
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)
            stop.set()

    worker = threading.Thread(target=other_half, name="generate-second")
    worker.start()
    try:
        for params in chunks[0::2]:
            if stop.is_set():
                break
            store.command(sql, params)
    except BaseException:
        stop.set()  # the other half stops too; this error is the one raised
        raise
    finally:
        worker.join()
        second.close()
    if failed:
        raise failed[0]


def dashboard(client: TestClient, site_id: int, headers: dict[str, str]) -> float:
    base = f"/api/sites/{site_id}/reports"
    started = time.perf_counter()
    for path, params in [("summary", {}), ("timeseries", {"interval": "day"})] + [
        (f"breakdown/{d}", {"limit": 10}) for d in BREAKDOWNS
    ]:
        r = client.get(f"{base}/{path}", params={"period": "30d", **params}, headers=headers)
        assert r.status_code == 200, r.text
    return time.perf_counter() - started


def dashboard_one(
    client: TestClient, site_id: int, headers: dict[str, str], filters: list[list[str]] | None = None
) -> float:
    """The same dashboard as one request to the dashboard endpoint (optionally filtered)."""
    return dashboard_body(client, site_id, headers, filters)[0]


def dashboard_body(
    client: TestClient, site_id: int, headers: dict[str, str], filters: list[list[str]] | None = None
) -> tuple[float, dict[str, object]]:
    params = {"period": "30d", "interval": "day", "breakdowns": ",".join(BREAKDOWNS), "limit": 10}
    if filters:
        params["filters"] = json.dumps(filters)
    started = time.perf_counter()
    r = client.get(f"/api/sites/{site_id}/reports/dashboard", params=params, headers=headers)
    if r.status_code == 401:  # a long run outlives the access token: log in again (not timed)
        login(client, headers)
        started = time.perf_counter()
        r = client.get(f"/api/sites/{site_id}/reports/dashboard", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return time.perf_counter() - started, r.json()


def login(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """Log the bench user in; `headers` (updated in place) carry the new access token."""
    token = client.post("/api/auth/login", json={"username": "bench", "password": "bench-password-1"}).json()
    headers["Authorization"] = f"Bearer {token['access_token']}"
    return headers


GOALS = [
    {"name": "Pricing", "kind": "page", "page_pattern": "/pricing/*"},
    {"name": "Signup", "kind": "event", "event_name": "signup"},
    {"name": "Signup pro", "kind": "event", "event_name": "signup", "prop_key": "plan", "prop_value": "pro"},
]
FUNNEL = [
    {"kind": "page", "page_pattern": "/blog/*"},
    {"kind": "page", "page_pattern": "/pricing/*"},
    {"kind": "event", "event_name": "signup"},
]


def goal_report_times(
    client: TestClient, site_id: int, headers: dict[str, str], runs: int
) -> dict[str, list[float]]:
    """The 30-day goals (GOALS, created once), funnel (FUNNEL, a day's window) and retention reports, each timed
    `runs` times after one warm-up: the reports that read the events whatever the caches hold."""
    known = client.get(f"/api/sites/{site_id}/goals", headers=headers).json()
    names = {g["name"] for g in known["items"]}
    for goal in GOALS:
        if goal["name"] not in names:
            r = client.post(f"/api/sites/{site_id}/goals", json=goal, headers=headers)
            assert r.status_code == 201, r.text
    base = f"/api/sites/{site_id}/reports"
    asks = {
        "goals (3 goals)": ("goals", {}),
        "funnel (3 steps, a day's window)": ("funnel", {"steps": json.dumps(FUNNEL), "window": 86400}),
        "retention (weekly cohorts)": ("retention", {}),
    }
    out: dict[str, list[float]] = {}
    for label, (path, params) in asks.items():
        times = []
        for run in range(runs + 1):
            t = time.perf_counter()
            r = client.get(f"{base}/{path}", params={"period": "30d", **params}, headers=headers)
            assert r.status_code == 200, r.text
            if run:  # the first is a warm-up
                times.append(time.perf_counter() - t)
        out[label] = times
    return out


def stats(label: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return f"{label}: p50 {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} runs)"


def peak_rss_mib() -> float:
    """Peak resident memory of this process (the store process: the app and chDB run in it)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def raw_query_times(
    store: ChdbStore, filters: list[list[str]], runs: int, variants: dict[str, dict[str, bool]]
) -> dict[str, list[float]]:
    """The filtered dashboard's one raw query in each variant (keyword arguments of `dashboard_sql`, e.g.
    `final=True`: `events FINAL` as before; `sessions=False`: the events only, no sessions table),
    interleaved run by run so all see the same load; every variant must give the same rows."""
    from pixel.server.api.query import raw_dashboard
    from pixel.server.api.query.filters import parse_filters
    from pixel.server.api.query.periods import resolve
    from pixel.server.api.query.runner import QueryRunner
    from pixel.server.api.query.scope import Scope

    scope = Scope(QueryRunner(store), SITE, resolve("30d", "Europe/Berlin"), parse_filters(filters))
    queries = {
        name: raw_dashboard.dashboard_sql(
            scope,
            replace(scope, range=scope.range.previous()),
            compare=True,
            previous_series=False,
            interval="day",
            dimensions=list(BREAKDOWNS),
            limit=10,
            **kw,
        )
        for name, kw in variants.items()
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    answers = {}
    for _ in range(runs):
        for name, (sql, params) in queries.items():
            started = time.perf_counter()
            answers[name] = sorted(map(repr, raw_dashboard.run(scope, sql, params)))
            times[name].append(time.perf_counter() - started)
    first = next(iter(answers.values()))
    assert all(a == first for a in answers.values()), "the variants differ"
    return times


def report_cache_days(app: Any) -> None:
    """The 30-day period's days in the report cache, built now if need be (timed), as its background worker
    builds them after a cold start: the goals report reads them."""
    from pixel.server.api.query.cache_sql import whole_days
    from pixel.server.api.query.periods import resolve
    from pixel.server.api.query.scope import Scope

    cache = app.state.pixel.report_cache
    scope = Scope(cache.runner, SITE, resolve("30d", "Europe/Berlin"), cache=cache)
    days = whole_days(scope.range)
    assert days is not None
    started = time.perf_counter()
    for i in range((days.last - days.first).days + 1):  # one day a statement, as the worker
        day = days.first + timedelta(days=i)
        cache.ensure(scope, replace(days, first=day, last=day))
    cache.ensure(scope, days)
    print(
        f"  report cache: the 30 days ready in {time.perf_counter() - started:.1f} s; "
        f"peak RSS so far {peak_rss_mib():.0f} MiB",
        flush=True,
    )


def filter_cache_days(store: ChdbStore, app: Any, filters: list[list[str]], periods: int = 2) -> Any:
    """The 30-day period's days and, with `periods` 2, the previous period's (the dashboard compares) in the
    filter cache (`filter_cache`), built now if need be (timed; a joint of two dimensions added to the days built
    without it), or None when the filters are not ones it answers."""
    from pixel.server.api.query import filter_cache
    from pixel.server.api.query.cache_sql import whole_days
    from pixel.server.api.query.filters import SqlParams, parse_filters
    from pixel.server.api.query.periods import resolve
    from pixel.server.api.query.scope import Scope

    cache = app.state.pixel.report_cache
    scope = Scope(cache.runner, SITE, resolve("30d", "Europe/Berlin"), parse_filters(filters), cache=cache)
    name = filter_cache.cached_filter(scope.filters)
    if name is None:
        return None
    fc = filter_cache.for_cache(cache)
    if (
        name.startswith("prop:")
        and cache.runner.query(
            f"SELECT {filter_cache._keeps_empty(scope.filters, (p := SqlParams()))}", p.values
        ).scalar()
    ):
        name = filter_cache.WHOLE + name  # a property filter keeping '': the key's whole split, asked for
    joint = (name,) if filter_cache.is_asked(name) else None
    if joint:
        fc.want(SITE, name)
    started = time.perf_counter()
    out, built = [], []
    for s in (scope, replace(scope, range=scope.range.previous()))[:periods]:
        days = whole_days(s.range)
        assert days is not None
        built += build_each_day(
            fc, s, [days.first + timedelta(days=i) for i in range((days.last - days.first).days + 1)], joint
        )[0]
        out.append(fc.ensure(s, days))
    slow = sorted(t for t in built if t > 0.5)
    print(
        f"  filter cache for {json.dumps(filters)}: {'both periods' if periods == 2 else 'the period'} ready in {time.perf_counter() - started:.1f} s; "
        f"{len(slow)} days built, per day p50 {statistics.median(slow) if slow else 0:.1f} s, "
        f"max {max(slow, default=0):.1f} s; peak RSS so far {peak_rss_mib():.0f} MiB"
    )
    return tuple(out)


def build_each_day(
    fc: Any, scope: Any, days: list[Any], joints: tuple[str, ...] | None = None
) -> tuple[list[float], list[float]]:
    """Ensure each of `days` in the filter cache `fc`, one day per build as the background worker builds them
    (`BackgroundDays.build_pending`), with `joints` added to the days built without them as its joints' worker
    adds them: the wall and CPU seconds of each (the store runs in this process)."""
    from pixel.server.api.query.cache_sql import Days

    walls, cpus = [], []
    for day in days:
        wall, cpu = time.perf_counter(), time.process_time()
        if joints:
            fc.add_joints(scope, Days(day, day), joints)
        else:
            fc.ensure(scope, Days(day, day))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def time_filter_builds(store: ChdbStore, app: Any, days: int, joints: list[str] | None = None) -> None:
    """Empty the filter cache (its rows and builds), then build `days` days one by one (one build each, as the
    background worker does) and print the wall and CPU time of each (the store runs in this process). With
    `joints`, the same again with those joints wanted (built with each day), alternating day by day."""
    from pixel.server.api.query import filter_cache
    from pixel.server.api.query.cache_sql import whole_days
    from pixel.server.api.query.filters import parse_filters
    from pixel.server.api.query.periods import resolve
    from pixel.server.api.query.scope import Scope

    cache = app.state.pixel.report_cache
    flt = parse_filters([["country", "is", "DE"]])
    scope = Scope(cache.runner, SITE, resolve("30d", "Europe/Berlin"), flt, cache=cache)
    fc = filter_cache.for_cache(cache)
    period = whole_days(scope.range)
    assert period is not None
    kinds = [[], joints] if joints else [[]]
    times: dict[int, tuple[list[float], list[float]]] = {k: ([], []) for k in range(len(kinds))}
    for i in range(days):
        for k, wanted in enumerate(kinds):
            for (
                table
            ) in filter_cache.TABLES:  # rows and builds: no superseded rows left to read past afterwards
                store.command(f"TRUNCATE TABLE {table}")
            fc._known.clear()  # the builds it knows of are gone
            fc._joints[SITE] = list(wanted)
            walls, cpus = build_each_day(fc, scope, [period.first + timedelta(days=3 * i)])
            times[k][0].extend(walls)
            times[k][1].extend(cpus)
    for k, wanted in enumerate(kinds):
        walls, cpus = times[k]
        print(
            f"  filter cache, {days} day builds ({', '.join(filter_cache.FILTERS)}; joints: {wanted or 'none'}): "
            f"wall p50 {statistics.median(walls):.2f} s (max {max(walls):.2f}), CPU p50 "
            f"{statistics.median(cpus):.2f} s (max {max(cpus):.2f}); load {load()}",
            flush=True,
        )


def branch_times(
    store: ChdbStore, filters: list[list[str]], runs: int, cached: Any = None
) -> dict[str, list[float]]:
    """Each `UNION ALL` branch of the filtered dashboard's raw query run alone (the copies' windows as the
    whole query sees them), interleaved run by run; the label is the branch's tag expression, shortened."""
    from pixel.server.api.query import raw_dashboard
    from pixel.server.api.query.filters import parse_filters
    from pixel.server.api.query.periods import resolve
    from pixel.server.api.query.runner import QueryRunner
    from pixel.server.api.query.scope import Scope

    scope = Scope(QueryRunner(store), SITE, resolve("30d", "Europe/Berlin"), parse_filters(filters))
    sql, params = raw_dashboard.dashboard_sql(
        scope,
        replace(scope, range=scope.range.previous()),
        compare=True,
        previous_series=False,
        interval="day",
        dimensions=list(BREAKDOWNS),
        limit=10,
        cached=cached,
    )
    bound = params.with_fixed(site=scope.site, tz=scope.range.tz)
    branches = sql.split("\nUNION ALL\n")
    names = []
    for i, branch in enumerate(branches):
        if "PARTITION BY dimension" not in branch:
            kind = "sessions" if "toUInt64(count()) AS sessions" in branch else "events"
        elif "entry" in branch:
            kind = "entry/exit pages"
        else:
            event_level = "GROUPING SETS" in branch or "day_filter_dims" in branch
            kind = "event-level breakdowns" if event_level else "session-level breakdowns"
        tables = ("day_filter_sessions", "day_filter_dims", "session_rows")
        table = next((t for t in tables if f"FROM {t}" in branch), "events")
        if table == "day_filter_sessions" and "PARTITION BY dimension" not in branch:
            kind = "sessions"
        names.append(f"{i}: {kind} on {table}")
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(runs):
        for name, branch in zip(names, branches, strict=True):
            started = time.perf_counter()
            store.query(branch, bound)
            times[name].append(time.perf_counter() - started)
    return times


def drop_cache(store: ChdbStore) -> None:
    """Empty the report cache's tables (as after a restore or an upgrade that drops the cache)."""
    for table in ("day_dimensions", "day_session_edges", "day_builds"):
        store.command(f"TRUNCATE TABLE {table}")


class LiveFeed(threading.Thread):
    """Inserts `rate` pageviews a second for SITE, in batches every 0.25 s (the shipper's default), each
    with a distinct visitor; remembers when each batch was inserted."""

    def __init__(self, store: ChdbStore, rate: int) -> None:
        super().__init__(daemon=True)
        self.store, self.rate = store, rate
        self.done = threading.Event()
        self.inserted: list[tuple[float, int]] = []  # (perf_counter when the insert returned, total so far)

    def run(self) -> None:
        from datetime import UTC, datetime

        total, step = 0, 0.25
        next_at = time.perf_counter()
        while not self.done.is_set():
            n = max(1, int(self.rate * step))
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            self.store.insert_rows(
                "events",
                [
                    {
                        "timestamp": now,
                        "received_at": now,
                        "site": SITE,
                        "event_id": f"feed-{total + i}",
                        "event_name": "pageview",
                        "visitor_id": f"feed-{total + i}",
                        "session_id": f"feed-{total + i}",
                        "path": "/live",
                        "host": SITE,
                    }
                    for i in range(n)
                ],
            )
            total += n
            self.inserted.append((time.perf_counter(), total))
            next_at += step
            time.sleep(max(0.0, next_at - time.perf_counter()))

    def inserted_before(self, moment: float) -> int:
        return max((n for t, n in self.inserted if t <= moment), default=0)


def same_numbers(client: TestClient, site_id: int, headers: dict[str, str]) -> None:
    """The endpoint's answer equals the ten reports' (checked once, not timed)."""
    base = f"/api/sites/{site_id}/reports"
    one = client.get(f"{base}/dashboard", params={"period": "30d", "interval": "day"}, headers=headers).json()
    strip = ("from", "to", "period", "site", "timezone")

    def body(path: str, **params: object) -> dict[str, object]:
        got = client.get(f"{base}/{path}", params={"period": "30d", **params}, headers=headers).json()
        return {k: v for k, v in got.items() if k not in strip}

    assert one["summary"] == body("summary"), "summary differs"
    assert one["timeseries"] == body("timeseries", interval="day"), "timeseries differs"
    for d in BREAKDOWNS:
        assert one["breakdowns"][d] == body(f"breakdown/{d}", limit=10), f"breakdown {d} differs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sites", type=int, default=1, help="events spread over this many sites")
    parser.add_argument(
        "--internal-navigation",
        action="store_true",
        help="when generating: a session's pages after its landing page are internal navigation (see generate)",
    )
    parser.add_argument(
        "--time-ordered",
        action="store_true",
        help="when generating: sessions start in the order they are inserted, so each insert's parts cover a few "
        "hours, as a live store's do (default: every insert spans the whole range, every part overlapping)",
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--flat",
        action="store_true",
        help="the old generator: about one event per session, every dimension drawn per event",
    )
    parser.add_argument("--optimize", action="store_true", help="OPTIMIZE TABLE events FINAL before timing")
    parser.add_argument(
        "--live",
        type=int,
        default=0,
        metavar="N",
        help="also time dashboards each right after N new events of now, today rebuilt every time",
    )
    parser.add_argument(
        "--filters",
        type=json.loads,
        default=DEFAULT_FILTERS,
        help="JSON list of filter sets, each timed on the dashboard endpoint ('[]' for none)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="empty the report cache, time the first dashboard"
    )
    parser.add_argument(
        "--live-rate", type=int, default=0, metavar="N", help="time the endpoint while N events/s arrive"
    )
    parser.add_argument(
        "--compare-final",
        action="store_true",
        help="with --filters: also time each filter's raw query reading events FINAL (before) and now",
    )
    parser.add_argument(
        "--compare-sessions",
        action="store_true",
        help="with --filters: also time each filter's raw query over the events only and with the sessions table",
    )
    parser.add_argument(
        "--compare-breakdowns",
        action="store_true",
        help="with --filters: also time each filter's raw query with the event-level breakdowns by ARRAY JOIN "
        "(before) and by GROUPING SETS (now)",
    )
    parser.add_argument(
        "--compare-copies",
        action="store_true",
        help="with --filters: also time each filter's raw query with copies dropped among every matching row "
        "(before) and only where two parts could hold copies (now)",
    )
    parser.add_argument(
        "--compare-filter-cache",
        action="store_true",
        help="with --filters: also time each filter's raw query with its event numbers from the events "
        "(before) and from the filter cache (now), where the cache answers the filters",
    )
    parser.add_argument(
        "--profile-branches",
        action="store_true",
        help="with --filters: also time each branch of the filtered raw query alone (interleaved)",
    )
    parser.add_argument(
        "--optimize-closed-months",
        action="store_true",
        help="OPTIMIZE each partition (month) of events and session_rows but the current one before timing, as "
        "a store whose closed months were merged into one part each",
    )
    parser.add_argument(
        "--only-issue16", action="store_true", help="skip the ten-request dashboard and per-report timings"
    )
    parser.add_argument(
        "--only-goal-reports",
        action="store_true",
        help="time only the goals (from the report and filter caches, their 30 days built first), funnel and "
        "retention reports (30 days; these two read the events) and stop",
    )
    parser.add_argument(
        "--time-filter-builds",
        type=int,
        default=0,
        metavar="N",
        help="empty the filter cache, then time the build of N days one by one (every third day of "
        "the 30-day period, as the background worker builds them): wall and CPU time of this process",
    )
    parser.add_argument(
        "--joints",
        type=lambda text: text.split(","),
        default=None,
        help="with --time-filter-builds: also time the builds with these joints wanted (e.g. device&source)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the generated data here and reuse it on the next run (generated when empty)",
    )
    parser.add_argument(
        "--store-memory-mb",
        type=int,
        default=Settings().store_memory_mb,
        help="the store's working memory per statement before spilling (0: chDB's own bound)",
    )
    args = parser.parse_args()
    keep = args.data_dir is not None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pixel-bench-api-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ChdbStore(data_dir / "store", memory_mb=args.store_memory_mb)
    t = time.perf_counter()
    applied = store.migrate()
    if applied:
        print(f"  migrations {applied} applied in {time.perf_counter() - t:.1f} s", flush=True)
    if store.scalar("SELECT count() FROM events") == 0:
        print(
            f"generating {args.events:,} events over {args.days} days in {args.sites} site(s)...", flush=True
        )
        took = generate(
            store,
            args.events,
            args.days,
            args.sites,
            flat=args.flat,
            internal_navigation=args.internal_navigation,
            time_ordered=args.time_ordered,
        )
        print(f"  generated in {took:.1f} s", flush=True)
    else:
        print(
            f"reusing the events in {data_dir} (generated {store.scalar('SELECT max(received_at) FROM events')})"
        )
    if args.optimize:
        t = time.perf_counter()
        store.command("OPTIMIZE TABLE events FINAL")
        print(f"  optimized in {time.perf_counter() - t:.1f} s")
    if args.optimize_closed_months:
        t = time.perf_counter()
        current = time.strftime("%Y%m", time.gmtime())
        for table in ("events", "session_rows"):
            for (partition,) in store.query(
                f"SELECT DISTINCT partition_id FROM system.parts WHERE table = '{table}' AND active ORDER BY 1"
            ).rows:
                if partition != current:
                    store.command(f"OPTIMIZE TABLE {table} PARTITION ID '{partition}' FINAL")
        print(f"  closed months of events and session_rows optimized in {time.perf_counter() - t:.1f} s")
    parts = store.scalar("SELECT count() FROM system.parts WHERE table = 'events' AND active")
    rows = store.scalar(f"SELECT count() FROM events WHERE site = '{SITE}'")
    print(f"  {rows:,} events for {SITE}; {parts} active parts")
    settings = Settings(data_dir=data_dir)
    meta = open_meta(settings)
    if not meta.all("SELECT id FROM users WHERE username = ?", "bench"):
        meta.create_user("bench", hash_password("bench-password-1"), "admin")
    found = meta.all("SELECT id FROM sites WHERE domain = ?", SITE)
    site_id = (
        found[0]["id"]
        if found
        else meta.insert(
            "sites", {"domain": SITE, "name": SITE, "timezone": "Europe/Berlin", "created_at": 0.0}
        )
    )
    if args.cold:
        drop_cache(store)
    print(f"  load average before: {load()}", flush=True)
    app = create_app(settings, store)
    with TestClient(app) as client:
        headers = login(client, {})
        if args.only_goal_reports:
            report_cache_days(app)
            filter_cache_days(store, app, [["prop:plan", "is", "pro"]], periods=1)  # the property goal's rows
            for label, times in goal_report_times(client, site_id, headers, args.runs).items():
                print("  " + stats(label, times), flush=True)
            print(f"  peak RSS of the store process: {peak_rss_mib():.0f} MiB; load average after: {load()}")
            store.close()
            return
        if args.time_filter_builds:
            time_filter_builds(store, app, args.time_filter_builds, args.joints)
        if args.cold:
            started = time.perf_counter()
            first = dashboard_one(client, site_id, headers)
            print(f"  cold: first dashboard endpoint on an empty cache: {first * 1000:.0f} ms", flush=True)
            later = []
            while time.perf_counter() - started < 300:
                later.append(dashboard_one(client, site_id, headers))
                if later[-1] < 0.3 and len(later) >= 3 and max(later[-3:]) < 0.3:
                    break
                time.sleep(0.5)
            print(
                f"  cold: {len(later)} more dashboards until three in a row under 300 ms, "
                f"{time.perf_counter() - started:.1f} s after the first; "
                f"times {', '.join(f'{t * 1000:.0f}' for t in later[:12])}{' ...' if len(later) > 12 else ''} ms",
                flush=True,
            )
        for filters in args.filters:
            cached_days = filter_cache_days(store, app, filters)  # built before timing, as the worker would
            dashboard_one(client, site_id, headers, filters)  # warm-up
            times = [dashboard_one(client, site_id, headers, filters) for _ in range(args.runs)]
            print("  " + stats(f"filtered endpoint {json.dumps(filters)}", times), flush=True)
            variants = {}
            if args.compare_final:
                variants["events FINAL (session 3)"] = {"final": True}
            if args.compare_sessions or args.compare_final:
                variants["events, copies dropped (session 4)"] = {"sessions": False}
            if args.compare_sessions:
                variants["sessions table where it answers"] = {}
            if args.compare_breakdowns:
                variants["breakdowns by ARRAY JOIN (session 5)"] = {"grouping_sets": False}
                variants["breakdowns by GROUPING SETS (session 6)"] = {}
            if args.compare_copies:
                variants["copies dropped among every row (session 6)"] = {"copies_where_possible": False}
                variants["copies dropped where two parts meet (session 7)"] = {}
            if args.compare_filter_cache and cached_days is not None:
                variants["event numbers from the events (session 7)"] = {}
                variants["event numbers from the filter cache (session 8)"] = {"cached": cached_days}
            if args.profile_branches:
                for name, ts in branch_times(store, filters, args.runs, cached_days).items():
                    print("  " + stats(f"    branch {name}", ts), flush=True)
            if variants:
                times = raw_query_times(store, filters, args.runs, variants)
                for name, ts in times.items():
                    print("  " + stats(f"    its raw query, {name}", ts), flush=True)
        if args.live_rate:
            report_cache_days(app)  # a running store's cache: the 30 days built (today again by each process)
            # the pageviews before the feed, from an answer that cannot lag: nothing arrives meanwhile
            base_pv = int(
                dashboard_body(client, site_id, headers)[1]["summary"]["metrics"]["pageviews"]["value"]
            )
            feed = LiveFeed(store, args.live_rate)
            feed.start()
            time.sleep(6.0)  # the feed runs for a while before the first request
            times, fresh, lags = [], 0, []
            for _ in range(max(args.runs, 20)):
                asked = time.perf_counter()
                elapsed, body = dashboard_body(client, site_id, headers)
                times.append(elapsed)
                seen = int(body["summary"]["metrics"]["pageviews"]["value"]) - base_pv
                fresh += seen >= feed.inserted_before(asked - 5.0)
                lags.append(feed.inserted_before(asked) - seen)
                time.sleep(0.2)
            feed.done.set()
            feed.join()
            print("  " + stats(f"endpoint while {args.live_rate} events/s arrive", times), flush=True)
            print(
                f"  live: {fresh}/{len(times)} answers include every event inserted 5 s before the request; "
                f"events not yet shown at the request: median {statistics.median(lags):.0f}, max {max(lags)}",
                flush=True,
            )
        if args.only_issue16:
            print(f"  peak RSS of the store process: {peak_rss_mib():.0f} MiB; load average after: {load()}")
            store.close()
            return
        cold = dashboard(client, site_id, headers)  # warm-up: builds the report cache for days not built yet
        print(f"  first dashboard (cache build for unbuilt days): {cold * 1000:.0f} ms", flush=True)
        totals = [dashboard(client, site_id, headers) for _ in range(args.runs)]
        same_numbers(client, site_id, headers)
        ones = [dashboard_one(client, site_id, headers) for _ in range(args.runs)]
        per_report = {}
        base = f"/api/sites/{site_id}/reports"
        for path, params in [("summary", {}), ("timeseries", {"interval": "day"})] + [
            (f"breakdown/{d}", {"limit": 10}) for d in BREAKDOWNS
        ]:
            times = []
            for _ in range(5):
                t = time.perf_counter()
                client.get(f"{base}/{path}", params={"period": "30d", **params}, headers=headers)
                times.append(time.perf_counter() - t)
            per_report[path] = statistics.median(times)
        live: list[float] = []
        live_one: list[float] = []
        if args.live:
            from datetime import UTC, datetime

            # the worst case: every dashboard rebuilds today first
            app.state.pixel.report_cache.rebuild_min_seconds = 0.0
            for run in range(args.runs):
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                store.insert_rows(
                    "events",
                    [
                        {
                            "timestamp": now,
                            "received_at": now,
                            "site": SITE,
                            "event_id": f"live-{run}-{i}",
                            "event_name": "pageview",
                            "visitor_id": f"live-{i}",
                            "session_id": f"live-{run}-{i}",
                            "path": "/live",
                            "host": SITE,
                        }
                        for i in range(args.live)
                    ],
                )
                live.append(dashboard(client, site_id, headers))
                store.insert_rows(
                    "events",
                    [
                        {
                            "timestamp": now,
                            "received_at": now,
                            "site": SITE,
                            "event_id": f"live1-{run}-{i}",
                            "event_name": "pageview",
                            "visitor_id": f"live1-{i}",
                            "session_id": f"live1-{run}-{i}",
                            "path": "/live",
                            "host": SITE,
                        }
                        for i in range(args.live)
                    ],
                )
                live_one.append(dashboard_one(client, site_id, headers))
        realtime = []
        for _ in range(args.runs):
            t = time.perf_counter()
            assert client.get(f"{base}/realtime", headers=headers).status_code == 200
            realtime.append(time.perf_counter() - t)
        goals_funnel_retention = goal_report_times(client, site_id, headers, args.runs)
    ms = [t * 1000 for t in sorted(totals)]
    print(
        f"dashboard (summary+timeseries+8 breakdowns, 30d): p50 {statistics.median(ms):.0f} ms, "
        f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms over {args.runs} runs"
    )
    one = sorted(t * 1000 for t in ones)
    print(
        f"dashboard endpoint (the same in one request): p50 {statistics.median(one):.0f} ms, "
        f"min {one[0]:.0f} ms, max {one[-1]:.0f} ms over {args.runs} runs"
    )
    for path, t in per_report.items():
        print(f"  {path:24s} p50 {t * 1000:.0f} ms")
    if live:
        lv = sorted(t * 1000 for t in live)
        print(
            f"dashboard right after {args.live} new events (today rebuilt first): p50 {statistics.median(lv):.0f} ms, "
            f"min {lv[0]:.0f} ms, max {lv[-1]:.0f} ms"
        )
        lv = sorted(t * 1000 for t in live_one)
        print(
            f"dashboard endpoint right after {args.live} new events (today rebuilt first): "
            f"p50 {statistics.median(lv):.0f} ms, min {lv[0]:.0f} ms, max {lv[-1]:.0f} ms"
        )
    rt = sorted(t * 1000 for t in realtime)
    print(f"realtime: p50 {statistics.median(rt):.0f} ms, min {rt[0]:.0f} ms, max {rt[-1]:.0f} ms")
    for label, times in goals_funnel_retention.items():
        print(stats(label, times))
    print(f"peak RSS of the store process: {peak_rss_mib():.0f} MiB; load average after: {load()}")
    store.close()
    if not keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
