"""Speed of the insight reports (engagement, content events, performance, errors, revenue) at 10 M events.

Data: bench/bench_api.py's generator (`--base-events`, default 7.5 M, over `--days` 30, one site), plus the
events the insight reports read, derived from a share of its pageviews (same visitor, session, path, time
and dimensions): scroll and engagement reports (15 % of pageviews each), web_vitals (5 %, every metric
measured with its rating), errors (1 %, 12 groups), purchases (1 %, EUR, a refund in ten), form submissions
(1 %) and 404 pageviews (1 %) - about 10 M events in all. Reuse it with `--data-dir` (generated when empty;
the insight events derived once when it holds bench_api's events without them; keep it outside the
repository).

Times each report through the real FastAPI app in-process (ASGI, no network) for `period=30d`, without a
filter and with one (`country is DE`, `device is mobile`, `page contains /blog`, `utm_campaign is spring`), `--runs` times after `--warmup` untimed requests, and prints
p50/min/max; the first builds of the per-day caches (engagement, outbound, downloads, performance, forms,
errors) are made (and timed) before, and the reports they answer are timed on the raw events too (a filter
every event passes, alone and beside each one-filter case the link cache answers). Anchor in the same run: the page
breakdown with the same filter (a filter makes it read the raw events, as every insight report but the
unfiltered engagement does; unfiltered it would read the report cache), so the figures can be read as
ratios on a shared machine; the load average is printed before and after.

`--engagement-ab`: only the engagement report with filters the caches do not carry (`ENGAGEMENT_AB`: a page,
a UTM field, a region, a property), on the raw events, the current query against the one before it (kept
below, `old_engagement_sql`), alternating in one run, the answers asserted equal; then outbound and downloads
with the same filters on the raw events.

`--page-ab`: only the engagement report with page filters (`PAGE_AB`), the current query (entries, bounces and
exits from the kept pageviews, copy-proof without dropping copies) against the one before it (kept below,
`old_page_filtered_sql`), alternating in one run, the answers asserted equal, with wall and CPU time.

`--cached-ab`: only the engagement report with page and UTM filters (`CACHED_AB`), which the per-day caches answer
since session 9, against the raw events (the same report function without the report cache), alternating in
one run, the answers asserted equal, with wall and CPU time (the caches built first).

Usage (from the repository root):
    nice -n -10 .venv/bin/python bench/bench_insights.py --runs 7 --data-dir /tmp/pixel-bench-insights
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import SITE, generate, load, peak_rss_mib
from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query import cache_sql, content, engagement, engagement_cache, raw_events
from pixel.server.api.query.filters import SqlParams, parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.raw_dashboard import DashboardParams
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

COPIED = (
    "timestamp, received_at, site, visitor_id, session_id, url, host, path, title, ref_host, source, medium, "
    "channel, utm_source, utm_campaign, country, region, city, browser, os, device_type, screen, language, is_bot"
)
# Each derived event: its name and the extra columns, from a pageview `p` with hash `h` (the share it takes
# is `h % 100` within the bounds given).
DERIVED = {
    "scroll": ((0, 15), "scroll_depth", "toUInt8(bitShiftRight(h, 8) % 101)"),
    "engagement": ((15, 30), "engaged_ms", "toUInt32(bitShiftRight(h, 8) % 120000)"),
    "web_vitals": (
        (30, 35),
        "lcp_ms, lcp_rating, inp_ms, inp_rating, cls, cls_rating, fcp_ms, fcp_rating, ttfb_ms, ttfb_rating",
        "toFloat64(bitShiftRight(h, 8) % 6000) AS l, multiIf(l <= 2500, 'good', l <= 4000, 'needs-improvement', 'poor'), "
        "toFloat64(bitShiftRight(h, 20) % 800) AS i, multiIf(i <= 200, 'good', i <= 500, 'needs-improvement', 'poor'), "
        "(bitShiftRight(h, 30) % 400) / 1000 AS c, multiIf(c <= 0.1, 'good', c <= 0.25, 'needs-improvement', 'poor'), "
        "toFloat64(bitShiftRight(h, 40) % 4000) AS f, multiIf(f <= 1800, 'good', f <= 3000, 'needs-improvement', 'poor'), "
        "toFloat64(bitShiftRight(h, 50) % 2500) AS t, multiIf(t <= 800, 'good', t <= 1800, 'needs-improvement', 'poor')",
    ),
    "error": (
        (35, 36),
        "error_message, error_source, error_line",
        "concat('Error ', toString(h % 12)), 'https://bench.example/app.js', toUInt32(h % 12 * 10)",
    ),
    "purchase": (
        (36, 37),
        "revenue, currency",
        "toDecimal64(if(h % 10 = 0, -20, (bitShiftRight(h, 8) % 20000) / 100), 4), 'EUR'",
    ),
    "form_submit": ((37, 38), "props", "map('id', concat('form', toString(h % 5)), 'action', '/submit')"),
    "pageview": (
        (38, 39),
        "not_found, referrer",
        "toUInt8(1), concat('https://old.example/', toString(h % 50))",
    ),
}


def derive(store: ChdbStore) -> float:
    started = time.perf_counter()
    for name, ((lo, hi), columns, values) in DERIVED.items():
        store.command(
            f"""INSERT INTO events ({COPIED}, event_id, event_name, {columns})
            SELECT {COPIED}, concat(event_id, '-{name}'), '{name}', {values}
            FROM (SELECT *, cityHash64(event_id) AS h FROM events
                  WHERE site = '{SITE}' AND event_name = 'pageview' AND not_found = 0 AND h % 100 >= {lo} AND h % 100 < {hi})"""
        )
    return time.perf_counter() - started


REPORTS = [
    ("anchor: breakdown/page", "breakdown/page", {}),
    ("engagement", "engagement", {}),
    ("outbound", "outbound", {}),
    ("downloads", "downloads", {}),
    ("forms", "forms", {}),
    ("not-found", "not-found", {}),
    ("performance", "performance", {}),
    ("performance/pages", "performance/pages", {}),
    ("performance/timeseries", "performance/timeseries", {"interval": "day"}),
    ("errors", "errors", {}),
    ("errors/timeseries", "errors/timeseries", {"interval": "day"}),
    ("revenue/source", "revenue/source", {}),
    ("revenue/page", "revenue/page", {}),
]
FILTER = [["country", "is", "DE"]]
# A second one-filter case (another dimension the link cache carries).
FILTER2 = [["device", "is", "mobile"]]
# One filter on a set of pages and one on a UTM field (the caches answer some reports on neither).
FILTER3 = [["page", "contains", "/blog"]]
FILTER4 = [["utm_campaign", "is", "spring"]]
# The reports answered from a per-day cache without a filter are also timed on the raw events, as before
# the cache (a filter every event passes: the raw query plus one cheap condition).
# (a property beside a country filter: since store migrations 29-30 the caches answer a page filter, since 32 a
# region filter, since 38-39 a title or property filter alone or beside page filters, which would time no raw path)
RAW = [["prop:never-set-property", "is", ""], ["country", "not_contains", "never"]]
CACHED = ("engagement", "outbound", "downloads", "performance", "forms", "errors")
# The reports whose cache also answers the filters above; each filtered case is timed on the raw events too
# (the filter plus RAW's, which the cache does not carry), in the same run.
CACHED_FILTERED = ("engagement", "outbound", "downloads")
# The reports timed on the raw events too (those answered from the caches above).
RAW_TOO = (*CACHED, "performance/pages", "performance/timeseries", "errors/timeseries")

# Filters on the raw engagement query (timed on it directly, whichever cache would answer them in the report).
ENGAGEMENT_AB = [
    [["page", "contains", "/blog"]],
    [["utm_campaign", "is", "spring"]],
    [["region", "is", "DE-0"]],
    [["prop:plan", "is", "pro"]],
    [["page", "not_contains", "never-in-any-path"]],  # every event passes
]


def old_engagement_sql(scope: Scope, params: SqlParams, tail: str) -> str:
    """The raw engagement query before session 8 (window functions over visits grouped by the session id
    string, copies dropped in every visit by the exact (day, event id)), for the A/B comparison."""
    marks = ", ".join(f"countIf(has_scroll AND depth >= {m}) AS s{m}" for m in engagement.SCROLL_MARKS)
    where = f"{scope.where(params)} AND event_name IN ('pageview', 'engagement', 'scroll')"
    event = "toDate(timestamp), event_id"
    return f"""WITH
        visits AS (SELECT path, session_id, any(visitor_id) AS visitor_id,
                uniqExactIf({event}, event_name = 'pageview') AS pv,
                minIf(timestamp, event_name = 'pageview') AS first_pv, maxIf(timestamp, event_name = 'pageview') AS last_pv,
                arraySum(x -> x.3, groupUniqArrayIf(({event}, toUInt64(engaged_ms)), event_name = 'engagement'))
                    AS engaged,
                countIf(event_name = 'engagement') > 0 AS has_engaged,
                maxIf(scroll_depth, event_name = 'scroll') AS depth, countIf(event_name = 'scroll') > 0 AS has_scroll
            FROM events WHERE {where}
            GROUP BY path, session_id HAVING pv > 0),
        placed AS (SELECT *,
                argMin(path, (first_pv, path)) OVER (PARTITION BY session_id) AS entry_path,
                argMax(path, (last_pv, path)) OVER (PARTITION BY session_id) AS exit_path,
                sum(pv) OVER (PARTITION BY session_id) AS session_pv
            FROM visits)
    SELECT *, count() OVER () AS total_rows FROM (
        SELECT path AS page, {cache_sql.UNIQ_VALUE}(visitor_id) AS visitors, sum(pv) AS pageviews,
            countIf(has_engaged) AS engaged_visits,
            quantileExactIf(0.5)(engaged, has_engaged) AS median_engaged_ms,
            quantileExactIf(0.75)(engaged, has_engaged) AS p75_engaged_ms,
            countIf(has_scroll) AS scroll_visits, {marks},
            countIf(path = entry_path) AS entries, countIf(path = entry_path AND session_pv <= 1) AS bounces,
            countIf(path = exit_path) AS exits
        FROM placed GROUP BY path)
    {tail}"""


def engagement_ab(store: ChdbStore, runs: int, warmup: int) -> None:
    """The raw engagement report with each of `ENGAGEMENT_AB`'s filters: the current query and the old one
    alternating (`runs` each after `warmup`), every answer asserted equal; prints p50/min/max of each and the
    ratio of the p50s."""
    tail = "ORDER BY visitors DESC, page LIMIT 11"
    for filters in ENGAGEMENT_AB:
        scope = Scope(QueryRunner(store), SITE, resolve("30d", "Europe/Berlin"), parse_filters(filters))
        times: dict[str, list[float]] = {"current": [], "old": []}
        answers: dict[str, list[dict[str, object]]] = {}
        for i in range(warmup + runs):
            for name in ("current", "old") if i % 2 == 0 else ("old", "current"):
                started = time.perf_counter()
                if name == "current":
                    params = DashboardParams()
                    rows = raw_events.run(scope, engagement.raw_sql(scope, params, tail), params)
                else:
                    old_params = SqlParams()
                    rows = scope.run(old_engagement_sql(scope, old_params, tail), old_params)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= warmup:
                    times[name].append(elapsed)
                answers.setdefault(name, rows)
                assert rows == answers[name], (filters, name)
        assert answers["current"] == answers["old"], filters
        p50 = {k: statistics.median(v) for k, v in times.items()}
        label = ", ".join(" ".join(f) for f in filters)
        print(
            f"  engagement + {label} (raw): current p50 {p50['current']:.0f} ms (min {min(times['current']):.0f}), "
            f"old p50 {p50['old']:.0f} ms (min {min(times['old']):.0f}), current/old {p50['current'] / p50['old']:.2f}, "
            f"{len(answers['current'])} rows",
            flush=True,
        )
        for kind in ("outbound", "download"):
            link_ab(scope, kind, runs, warmup, label)


# Filters on the page or a UTM field, answered from the per-day caches since session 9 (the page's visit figures
# from the plain engagement cache with its entries and exits from the kept pageviews; the UTM fields from the
# cache by dimension), timed against the raw events in the same run.
CACHED_AB = [
    [["page", "contains", "/blog"]],
    [["page", "is", "/pricing/7"]],
    [["utm_campaign", "is", "spring"]],
    [["utm_source", "is_not", "newsletter"]],
    [["country", "is", "DE"]],
    [["browser", "is", "Chrome"]],
]


def cached_ab(cache: Any, runs: int, warmup: int) -> None:
    """The engagement report with each of `CACHED_AB`'s filters through `engagement.engagement`: with the
    report cache (current) and without it (the raw events, as before), alternating in one process, every
    answer asserted equal; p50 of the wall time and of this process's CPU time (chDB runs in it)."""
    for filters in CACHED_AB:

        def report(name: str, filters: list[list[str]] = filters) -> object:
            scope = Scope(
                cache.runner,
                SITE,
                resolve("30d", "Europe/Berlin"),
                parse_filters(json.dumps(filters)),
                cache=cache if name == "current" else None,
            )
            return engagement.engagement(scope, limit=10)

        alternate(filters, ("current", "raw"), report, runs, warmup)


def alternate(
    filters: list[list[str]],
    names: tuple[str, str],
    report: Callable[[str], object],
    runs: int,
    warmup: int,
) -> None:
    """`report(name)` for the two `names` (the new way first), alternating for `warmup` + `runs` rounds, every
    answer asserted equal; prints the p50 of the wall time and of this process's CPU time (chDB runs in it)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    answers: dict[str, object] = {}
    for i in range(warmup + runs):
        for name in names if i % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            got = report(name)
            elapsed = ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            if i >= warmup:
                times[name].append(elapsed)
            answers.setdefault(name, got)
            assert got == answers[name], (filters, name)
    new, old = names
    assert answers[new] == answers[old], filters
    p50 = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu50 = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    label = ", ".join(" ".join(f) for f in filters)
    print(
        f"  engagement + {label}: {new} p50 {p50[new]:.0f} ms (CPU {cpu50[new]:.0f} ms, "
        f"min {min(t[0] for t in times[new]):.0f}, max {max(t[0] for t in times[new]):.0f}), {old} p50 "
        f"{p50[old]:.0f} ms (CPU {cpu50[old]:.0f} ms), {new}/{old} {p50[new] / p50[old]:.2f} "
        f"(CPU {cpu50[new] / cpu50[old]:.2f})",
        flush=True,
    )


# Page filters on the engagement report: the kept pageviews' entries, bounces and exits, copy-proof without
# dropping copies (session 11) against the query before it (copies dropped inside `copy_windows`' windows).
PAGE_AB = [
    [["page", "contains", "/blog"]],
    [["page", "is", "/pricing/7"]],
    [["page", "not_contains", "/blog"]],
    [["country", "is", "DE"], ["page", "is", "/pricing/7"]],  # before session 11: the raw events
]


def old_page_filtered_sql(scope: Scope, days: Any, params: DashboardParams, tail: str) -> str:
    """`engagement.page_filtered_sql` before session 11 (the kept pageviews each once through
    `raw_events.once`, counted per session), for the A/B comparison."""
    from pixel.server.api.query.filters import filter_sql

    pages = " AND ".join(filter_sql(f, params) for f in scope.filters)
    visits = engagement_cache.pages_sql(days, engagement_cache.TABLES[:2], pages)
    where = f"{scope.where(params)} AND event_name = 'pageview'"
    expired = [d for d, build in days.builds if build == 0]
    if expired:
        where += f" AND toDate(timestamp, {{tz:String}}) > toDate('{max(expired).isoformat()}')"
    cols = {"sid": "session_hash", "path": "path", "timestamp": "timestamp"}
    matching = raw_events.once(where, cols, params, scope)
    return f"""WITH
        ends AS (SELECT e.1 AS page, sum(e.2) AS entries, sum(e.3) AS bounces, sum(e.4) AS exits
            FROM (SELECT arrayJoin([(entry_path, 1, toUInt8(n <= 1), 0), (exit_path, 0, 0, 1)]) AS e
                FROM (SELECT argMin(path, (timestamp, path)) AS entry_path,
                        argMax(path, (timestamp, path)) AS exit_path, count() AS n
                    FROM (SELECT * FROM {matching}) GROUP BY sid))
            GROUP BY page)
    SELECT * FROM (
        SELECT v.page AS page, v.visitors AS visitors, v.pageviews AS pageviews,
            v.engaged_visits AS engaged_visits, v.median_engaged_ms AS median_engaged_ms,
            v.p75_engaged_ms AS p75_engaged_ms, v.scroll_visits AS scroll_visits, v.s25 AS s25, v.s50 AS s50,
            v.s75 AS s75, v.s100 AS s100, ends.entries AS entries, ends.bounces AS bounces, ends.exits AS exits,
            v.total_rows AS total_rows
        FROM ({visits}) AS v LEFT JOIN ends ON ends.page = v.page)
    {tail}"""


def page_ab(cache: Any, runs: int, warmup: int) -> None:
    """The engagement report with each of `PAGE_AB`'s filters: `engagement.engagement` (current) against
    the same report with `old_page_filtered_sql`, alternating in one process, the answers asserted equal;
    p50 of the wall time and of this process's CPU time (chDB runs in it). A page filter beside another
    filter was answered by the raw events before: "old" is then the report without the report cache."""
    from pixel.server.api.query.listing import order_page, paged

    tail = order_page("visitors", "desc", engagement.SORTS, "page", 10, 1)
    for filters in PAGE_AB:
        scope = Scope(
            cache.runner,
            SITE,
            resolve("30d", "Europe/Berlin"),
            parse_filters(json.dumps(filters)),
            cache=cache,
        )
        days = (
            engagement_cache.for_cache(cache).days(replace(scope, filters=[]))
            if all(f.dimension == "page" for f in scope.filters)
            else None
        )
        if days is None:  # the page filter beside another: build the cache by dimension before timing
            engagement.engagement(scope, limit=10)

        def report(name: str, scope: Scope = scope, days: Any = days) -> object:
            if name == "current":
                return engagement.engagement(scope, limit=10)
            if days is None:
                return engagement.engagement(replace(scope, cache=None), limit=10)
            params = DashboardParams()
            rows = raw_events.run(scope, old_page_filtered_sql(scope, days, params, tail), params)
            return {"rows": [engagement._row(r) for r in rows], **paged(rows, 10, 1, "visitors", "desc")}

        alternate(filters, ("current", "old"), report, runs, warmup)


def old_links_sql(scope: Scope, kind: str, params: SqlParams, tail: str) -> str:
    """The raw outbound / downloads query before session 8 (copies of every matching event grouped by the
    exact (day, event id)), for the A/B comparison."""
    where = f"{scope.where(params)} AND event_name = '{kind}'"
    events = f"""(SELECT any(props['url']) AS u, any(visitor_id) AS v FROM events WHERE {where}
        GROUP BY toDate(timestamp), event_id)"""
    inner = f"SELECT u AS url, count() AS clicks, {cache_sql.UNIQ_TOTAL}(v) AS visitors FROM {events} GROUP BY url"
    return f"SELECT *, count() OVER () AS total_rows FROM ({inner}) {tail}"


def link_ab(scope: Scope, kind: str, runs: int, warmup: int, label: str) -> None:
    """One link report on the raw events, the current query (`content.outbound` / `downloads`) against the old
    one, alternating, the answers asserted equal."""
    report = content.outbound if kind == "outbound" else content.downloads
    times: dict[str, list[float]] = {"current": [], "old": []}
    answers: dict[str, object] = {}
    for i in range(warmup + runs):
        for name in ("current", "old") if i % 2 == 0 else ("old", "current"):
            started = time.perf_counter()
            if name == "current":
                got: object = [tuple(r.values()) for r in report(scope, limit=10)["rows"]]
            else:
                params = SqlParams()
                rows = scope.run(
                    old_links_sql(scope, kind, params, "ORDER BY clicks DESC, url LIMIT 11"), params
                )
                got = [(r["url"], int(r["clicks"]), int(r["visitors"])) for r in rows[:10]]
            elapsed = (time.perf_counter() - started) * 1000
            if i >= warmup:
                times[name].append(elapsed)
            answers.setdefault(name, got)
            assert got == answers[name], (kind, name)
    assert answers["current"] == answers["old"], (kind, label)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"  {kind} + {label} (raw): current p50 {p50['current']:.0f} ms, old p50 {p50['old']:.0f} ms, "
        f"current/old {p50['current'] / p50['old']:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-events", type=int, default=7_500_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1, help="untimed requests before the timed ones")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated report names (default: all)")
    parser.add_argument(
        "--filters",
        default="",
        help="a JSON list of filter sets timed for each report instead of the default ones "
        '(e.g. \'[[["region", "is", "DE-0"]]]\'); [] is no filter',
    )
    parser.add_argument(
        "--internal-navigation",
        action="store_true",
        help="when generating: a session's pages after its landing page are internal navigation "
        "(bench_api.generate)",
    )
    parser.add_argument(
        "--engagement-ab", action="store_true", help="only the raw engagement A/B (see above)"
    )
    parser.add_argument(
        "--cached-ab",
        action="store_true",
        help="only the engagement report with page / UTM filters, cached against raw (see above)",
    )
    parser.add_argument(
        "--page-ab",
        action="store_true",
        help="only the engagement report with page filters, current against the query before (see above)",
    )
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pixel-bench-insights-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ChdbStore(data_dir / "store")
    store.migrate()
    if store.scalar("SELECT count() FROM events") == 0:
        print(f"generating {args.base_events:,} events over {args.days} days...", flush=True)
        print(
            f"  generated in {generate(store, args.base_events, args.days, 1, internal_navigation=args.internal_navigation):.1f} s",
            flush=True,
        )
        print(f"  insight events derived in {derive(store):.1f} s", flush=True)
    elif store.scalar("SELECT count() FROM events WHERE event_name = 'web_vitals'") == 0:
        # bench_api's data without the insight events (another bench's store): derive them once
        print(f"  insight events derived in {derive(store):.1f} s", flush=True)
    total = store.scalar("SELECT count() FROM events")
    kinds = store.query(
        "SELECT event_name, count() AS n FROM events GROUP BY event_name ORDER BY n DESC"
    ).dicts()
    print(
        f"  {total:,} events: " + ", ".join(f"{k['event_name']} {int(k['n']):,}" for k in kinds), flush=True
    )
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
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    print(f"  load average before: {load()}", flush=True)
    if args.engagement_ab:
        engagement_ab(store, args.runs, args.warmup)
        print(f"  load average after: {load()}", flush=True)
        store.close()
        return
    app = create_app(settings, store)
    with TestClient(app) as client:
        token = client.post(
            "/api/auth/login", json={"username": "bench", "password": "bench-password-1"}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        # The per-day caches' first builds, on the request (in service it runs in the background while
        # the report reads the raw events), so the timed requests read built days.
        cache = app.state.pixel.report_cache
        cache.background_min_rows = 0
        if args.page_ab:
            started = time.perf_counter()
            r = client.get(
                f"/api/sites/{site_id}/reports/engagement", params={"period": "30d"}, headers=headers
            )
            assert r.status_code == 200, r.text
            print(f"  engagement cache ready in {time.perf_counter() - started:.1f} s", flush=True)
            page_ab(cache, args.runs, args.warmup)
            print(f"  load average after: {load()}", flush=True)
            store.close()
            return
        if args.cached_ab:
            for filters in ([], [["utm_campaign", "is", "spring"]]):  # the two caches, built before timing
                started = time.perf_counter()
                params = {"period": "30d", "filters": json.dumps(filters)}
                r = client.get(f"/api/sites/{site_id}/reports/engagement", params=params, headers=headers)
                assert r.status_code == 200, r.text
                print(
                    f"  engagement cache {filters} ready in {time.perf_counter() - started:.1f} s", flush=True
                )
            cached_ab(cache, args.runs, args.warmup)
            print(f"  load average after: {load()}", flush=True)
            store.close()
            return
        for name in CACHED:
            started = time.perf_counter()
            r = client.get(f"/api/sites/{site_id}/reports/{name}", params={"period": "30d"}, headers=headers)
            assert r.status_code == 200, r.text
            print(f"  {name} cache ready in {time.perf_counter() - started:.1f} s", flush=True)
        # The engagement cache by dimension (what a filtered engagement report reads), built on a filtered one.
        started = time.perf_counter()
        params = {"period": "30d", "filters": json.dumps(FILTER)}
        r = client.get(f"/api/sites/{site_id}/reports/engagement", params=params, headers=headers)
        assert r.status_code == 200, r.text
        print(f"  engagement by dimension cache ready in {time.perf_counter() - started:.1f} s", flush=True)
        for label, path, extra in REPORTS:
            if only and label not in only and not label.startswith("anchor"):
                continue
            variants: list[Any]
            if args.filters:
                variants = [f or None for f in json.loads(args.filters)]
            elif label.startswith("anchor"):
                variants = [FILTER]
            else:
                variants = [None, FILTER, FILTER2, FILTER3, FILTER4]
                variants += [RAW] if label in RAW_TOO else []
                variants += [FILTER + RAW, FILTER2 + RAW] if label in CACHED_FILTERED else []
            for filters in variants:
                params = {"period": "30d", **extra, **({"filters": json.dumps(filters)} if filters else {})}

                def once(path: str = path, params: dict[str, str] = params) -> float:
                    started = time.perf_counter()
                    r = client.get(f"/api/sites/{site_id}/reports/{path}", params=params, headers=headers)
                    assert r.status_code == 200, r.text
                    return time.perf_counter() - started

                for _ in range(args.warmup):
                    once()
                ms = sorted(once() * 1000 for _ in range(args.runs))
                named = [f"{d} {o} {v}" for d, o, v in (filters or []) if [d, o, v] not in RAW]
                suffix = (" + " + ", ".join(named) if named else "") + (
                    " (raw events)" if filters and RAW[0] in filters else ""
                )
                name = label + suffix
                print(
                    f"  {name}: p50 {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms "
                    f"({len(ms)} runs)",
                    flush=True,
                )
    print(f"  load average after: {load()}; peak RSS {peak_rss_mib():.0f} MiB", flush=True)
    store.close()


if __name__ == "__main__":
    main()
