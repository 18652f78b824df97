"""Journeys speed on the embedded store: N events over D days (bench_api.py's generator), 4-step journeys.

Times, through the real FastAPI app in-process (ASGI, no network), the journeys report over the last 30 days:
4 steps across all sessions with one filter (country is DE: the issue's figure), 4 steps from a page with that
filter, 4 steps without a filter, and the next pages of a page; and, as an anchor in the same run, one scan
of the same rows (`count()` of the site's events FINAL with the filter), so figures taken under different
machine load can be compared as ratios. Each journeys case is timed twice in the same run, alternating: with
the current code (`journeys.path_tallies`) and with the query before session 8 (`previous_tallies_sql` /
`previous_path_tallies` below: every session's facts grouped with the path in the key, ranked by windows;
each session's pages gathered as tuples), swapped in for the route; both answers are checked equal. The next
pages of a page (`neighbours`, two steps, few distinct paths) run the current code only. Profiles: the
filter's set of sessions alone, the per-session query alone (its rows counted in the store), current and
previous, the window's pageviews grouped by session alone, the whole tallies query alone, current and previous
(the route's time less the API's and Python's). Prints p50 / p90 and the CPU time's p50 per case, and the
load average. An older candidate, the tallies grouped by page ids (`ids_tallies_sql` / `ids_path_tallies`,
not faster, see bench/README.md), is kept here, held equal to the route by tests, but no longer timed.

The route reads the events here, never the per-day cache of session paths (`path_cache`, timed against the events
by bench_journeys_cache.py). Reuse generated data with `--data-dir` (generated when empty; keep it outside the repository).

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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.bench_api import SITE, generate
from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.query import journeys as jq
from pixel.server.api.query import path_cache
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore

FILTER = json.dumps([["country", "is", "DE"]])


def ids_tallies_sql(scope: Scope, q: jq.JourneyQuery, params: SqlParams) -> str:
    """A candidate for `journeys.tallies_sql`, kept here to be timed against it (not faster, see
    bench/README.md): the same tallies with pages grouped and ranked by numeric ids. The query of the
    journeys' `Tallies`, summed in the store so that only they come back (the paths
    themselves never are: a large site has about as many distinct paths as sessions, and as many links as
    pairs of pages).

    Each session of `session_rows_sql` is turned into its tallies by ARRAY JOIN, one row per (kind, column,
    page, next page, path, complete), and they are summed: `PATH` the path itself, `PAGE` (column, page) for
    each page, `LINK` (column, page, next page) for each pair in a row, `DROPOFF` (edge column, edge page) of a
    complete path, `TOTAL` one per session. Columns are 0-based; `end` mode aligns on the last. Then only
    what the answer shows is kept: the top `limit` paths (busiest first, then by pages and complete, as
    Python orders tuples: UTF-8 text compares byte by byte as code points do, arrays element by element),
    every `PAGE`, and the links and drop-offs with each page outside its column's `per_step` busiest (ranked
    as `_ranked` does) replaced by NULL (the `other` node) and summed again.

    Pages are grouped, summed and matched by **id**, their label's `cityHash64` (UInt64), not by their text:
    the expanded rows carry 8-byte ids and id arrays, and a label travels only with the rows that are ranked
    by it (a `PAGE` row its page's, a `PATH` row its pages'), as the `any` of its group. The links and
    drop-offs come back with page ids (`page_id`, `next_id`; NULL for `other`), which `ids_path_tallies` names
    from the `PAGE` rows. Two labels with one hash within a site's window
    would be counted as one page (a collision of 64-bit hashes among a window's distinct labels is
    negligible, as for the session and event id hashes)."""
    n = int(q.steps)
    if q.mode == "end":
        col, edge_col, edge_page = (
            f"toUInt8({n} - length(ids) + i - 1)",
            f"toUInt8({n} - length(ids))",
            "ids[1]",
        )
    else:
        col, edge_col, edge_page = "toUInt8(i - 1)", "toUInt8(length(ids) - 1)", "ids[-1]"
    no_ids, no_names = "CAST([], 'Array(UInt64)')", "CAST([], 'Array(String)')"
    facts = f"""arrayConcat(
            [(toUInt8({jq.PATH}), toUInt8(0), toUInt64(0), toUInt64(0), ids, complete, '', pages),
             (toUInt8({jq.TOTAL}), toUInt8(0), toUInt64(0), toUInt64(0), {no_ids}, 0, '', {no_names})],
            arrayMap((x, p, i) -> (toUInt8({jq.PAGE}), {col}, x, toUInt64(0), {no_ids}, 0, p, {no_names}),
                ids, pages, arrayEnumerate(ids)),
            arrayMap((x, y, i) -> (toUInt8({jq.LINK}), {col}, x, y, {no_ids}, 0, '', {no_names}),
                arrayPopBack(ids), arrayPopFront(ids), arrayEnumerate(arrayPopBack(ids))),
            if(complete, [(toUInt8({jq.DROPOFF}), {edge_col}, {edge_page}, toUInt64(0), {no_ids}, 0, '',
                {no_names})], []))"""
    named = f"kind NOT IN ({jq.LINK}, {jq.DROPOFF}) OR has(kept, (c, a))"
    return f"""SELECT kind, c, if({named}, a, NULL) AS page_id,
        if(kind = {jq.LINK} AND has(kept, (toUInt8(c + 1), b)), b, NULL) AS next_id,
        any(label) AS page, names AS path, done, sum(n) AS n
    FROM (
        SELECT kind, c, a, b, label, names, done, n,
            groupArrayIf((c, a), kind = {jq.PAGE} AND rank <= {int(q.per_step)}) OVER () AS kept
        FROM (
            SELECT kind, c, a, b, label, names, done, n,
                row_number() OVER (PARTITION BY kind, c ORDER BY n DESC, label, names, done) AS rank
            FROM (
                SELECT f.1 AS kind, f.2 AS c, f.3 AS a, f.4 AS b, f.5 AS path_ids, f.6 AS done,
                    any(f.7) AS label, any(f.8) AS names, count() AS n
                FROM (SELECT pages, complete, arrayMap(p -> cityHash64(p), pages) AS ids
                    FROM ({jq.session_rows_sql(scope, q, params)}))
                ARRAY JOIN {facts} AS f
                GROUP BY kind, c, a, b, path_ids, done))
        WHERE kind != {jq.PATH} OR rank <= {int(q.limit)})
    GROUP BY kind, c, page_id, next_id, names, done"""


def ids_path_tallies(scope: Scope, q: jq.JourneyQuery) -> jq.Tallies:
    """`journeys.path_tallies` over `ids_tallies_sql`: the journeys' tallies summed by the store; the page
    ids of the links and drop-offs are given back their labels here, from the `PAGE` rows (every page kept
    in a column has its `PAGE` row; a NULL id is the `other` node)."""
    params = SqlParams()
    out = jq.Tallies()
    paths: list[tuple[tuple[str, ...], bool, int]] = []
    rows = scope.run(ids_tallies_sql(scope, q, params), params)
    names = {(int(r["c"]), r["page_id"]): r["page"] for r in rows if int(r["kind"]) == jq.PAGE}

    def name(c: int, page_id: Any) -> str | None:
        return None if page_id is None else names[(c, page_id)]

    for r in rows:
        kind, c, n = int(r["kind"]), int(r["c"]), int(r["n"])
        if kind == jq.PATH:
            paths.append((tuple(r["path"]), bool(r["done"]), n))
        elif kind == jq.PAGE:
            out.pages[(c, r["page"])] += n
        elif kind == jq.LINK:
            out.links[(c, name(c, r["page_id"]), name(c + 1, r["next_id"]))] += n
        elif kind == jq.DROPOFF:
            out.dropoff[(c, name(c, r["page_id"]))] += n
        else:
            out.total += n
    out.top = sorted(paths, key=lambda p: (-p[2], p[0], p[1]))
    return out


NEW_STEPS = "arraySort((p, t) -> (t, p), groupArray(path), groupArray(timestamp))"
OLD_STEPS = "arrayMap(t -> t.2, arraySort(groupArray((timestamp, path))))"


def previous_session_rows_sql(scope: Scope, q: jq.JourneyQuery, params: SqlParams) -> str:
    """`journeys.session_rows_sql` before session 8 (kept to be timed against it): each session's (time,
    label) pairs gathered as tuples (`groupArray` of a tuple), sorted, then the labels taken out. Cases with
    collapsed repeats and no page groups only (the bench's)."""
    sql = jq.session_rows_sql(scope, q, params)
    assert q.collapse_repeats and not q.all_groups() and NEW_STEPS in sql, "the bench's cases only"
    return sql.replace(NEW_STEPS, OLD_STEPS)


def previous_tallies_sql(scope: Scope, q: jq.JourneyQuery, params: SqlParams) -> str:
    """`journeys.tallies_sql` before session 8, kept to be timed against it (same answers): every session
    turned into its facts by ARRAY JOIN with the path in the grouping key, then a `row_number` window over
    every grouped row (paths included) to rank them and the kept pages as an `OVER ()` array on each row to
    fold the links and drop-offs."""
    n = int(q.steps)
    if q.mode == "end":
        col, edge_col, edge_page = (
            f"toUInt8({n} - length(pages) + i - 1)",
            f"toUInt8({n} - length(pages))",
            "pages[1]",
        )
    else:
        col, edge_col, edge_page = "toUInt8(i - 1)", "toUInt8(length(pages) - 1)", "pages[-1]"
    none = "CAST([], 'Array(String)')"
    facts = f"""arrayConcat(
            [(toUInt8({jq.PATH}), toUInt8(0), '', '', pages, complete),
             (toUInt8({jq.TOTAL}), toUInt8(0), '', '', {none}, 0)],
            arrayMap((p, i) -> (toUInt8({jq.PAGE}), {col}, p, '', {none}, 0), pages, arrayEnumerate(pages)),
            arrayMap((p, x, i) -> (toUInt8({jq.LINK}), {col}, p, x, {none}, 0),
                arrayPopBack(pages), arrayPopFront(pages), arrayEnumerate(arrayPopBack(pages))),
            if(complete, [(toUInt8({jq.DROPOFF}), {edge_col}, {edge_page}, '', {none}, 0)], []))"""
    named = f"has(kept, (c, a)) OR kind NOT IN ({jq.LINK}, {jq.DROPOFF})"
    return f"""SELECT kind, c, if({named}, a, NULL) AS page,
        if(kind != {jq.LINK} OR has(kept, (toUInt8(c + 1), b)), b, NULL) AS next_page,
        path, done, sum(n) AS n
    FROM (
        SELECT kind, c, a, b, path, done, n,
            groupArrayIf((c, a), kind = {jq.PAGE} AND rank <= {int(q.per_step)}) OVER () AS kept
        FROM (
            SELECT kind, c, a, b, path, done, n,
                row_number() OVER (PARTITION BY kind, c ORDER BY n DESC, a, path, done) AS rank
            FROM (
                SELECT f.1 AS kind, f.2 AS c, f.3 AS a, f.4 AS b, f.5 AS path, f.6 AS done, count() AS n
                FROM ({previous_session_rows_sql(scope, q, params)}) ARRAY JOIN {facts} AS f
                GROUP BY kind, c, a, b, path, done))
        WHERE kind != {jq.PATH} OR rank <= {int(q.limit)})
    GROUP BY kind, c, page, next_page, path, done"""


def previous_path_tallies(scope: Scope, q: jq.JourneyQuery) -> jq.Tallies:
    """`journeys.path_tallies` over `previous_tallies_sql`."""
    params = SqlParams()
    out = jq.Tallies()
    paths: list[tuple[tuple[str, ...], bool, int]] = []
    for r in scope.run(previous_tallies_sql(scope, q, params), params):
        kind, c, n = int(r["kind"]), int(r["c"]), int(r["n"])
        if kind == jq.PATH:
            paths.append((tuple(r["path"]), bool(r["done"]), n))
        elif kind == jq.PAGE:
            out.pages[(c, r["page"])] += n
        elif kind == jq.LINK:
            out.links[(c, r["page"], r["next_page"])] += n
        elif kind == jq.DROPOFF:
            out.dropoff[(c, r["page"])] += n
        else:
            out.total += n
    out.top = sorted(paths, key=lambda p: (-p[2], p[0], p[1]))
    return out


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


def timed(fns: list[Callable[[], object]], runs: int) -> list[tuple[list[float], list[float]]]:
    """Each of `fns` run `runs` times, alternating (one of each in turn, so that a change of machine load
    falls on all of them alike), after one warm run each: the wall times and the CPU times of each (the
    process's, chDB's threads included: less swayed by other processes' load than the wall time)."""
    for fn in fns:
        fn()  # warm
    out: list[tuple[list[float], list[float]]] = [([], []) for _ in fns]
    for _ in range(runs):
        for k, fn in enumerate(fns):
            cpu, started = time.process_time(), time.perf_counter()
            fn()
            out[k][0].append(time.perf_counter() - started)
            out[k][1].append(time.process_time() - cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    # the route over the events, as this bench has always timed it (the cache of session paths, which would
    # otherwise be built in the background while timing: bench_journeys_cache.py)
    path_cache.rows_sql = lambda *_: None  # type: ignore[assignment]
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
    prev_params = SqlParams()
    prev_tallies_alone = previous_tallies_sql(scope, jq.JourneyQuery(steps=4).check(), prev_params)
    prev_fixed = prev_params.with_fixed(site=SITE, **scope.range.params)
    prev_rows_params = SqlParams()
    prev_per_session = previous_session_rows_sql(scope, jq.JourneyQuery(steps=4).check(), prev_rows_params)
    prev_rows_fixed = prev_rows_params.with_fixed(site=SITE, **scope.range.params)
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
        "profile: the per-session query, rows counted (previous)": lambda: store.scalar(
            f"SELECT count() FROM ({prev_per_session})", prev_rows_fixed
        ),
        "profile: pageviews grouped by session_hash": lambda: store.scalar(group_sql, {"site": SITE}),
        "profile: the tallies query alone (in the store)": lambda: store.query(tallies_alone, tally_fixed),
        "profile: the tallies query alone (previous)": lambda: store.query(prev_tallies_alone, prev_fixed),
    }
    for name, fn in journeys_cases.items():
        assert fn() == version(fn, previous_path_tallies)(), f"{name}: the two versions disagree"
        cases[name] = fn
        cases[f"{name} (previous)"] = version(fn, previous_path_tallies)
    cases["next pages of a page"] = get("/next", page=top_page)
    body = get("", steps=4, filters=FILTER)()
    assert isinstance(body, dict)
    print(f"events in store: {have:,}; sessions in the filtered journeys: {body['sessions']:,}")
    print(f"filter's set from the sessions table: {jq.filters_from_session_rows(scope)}")
    print(f"load average before: {os.getloadavg()}")
    anchor = 0.0
    groups: list[list[str]] = []  # a case and its previous version timed together
    for name in cases:
        if name.endswith("(previous)"):
            groups[-1].append(name)
        else:
            groups.append([name])
    for names in groups:
        for name, (times, cpu) in zip(names, timed([cases[x] for x in names], args.runs), strict=True):
            times.sort()
            p50 = statistics.median(times)
            anchor = anchor or p50
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(
                f"  {name:58s} p50 {p50 * 1000:7.0f} ms  p90 {p90 * 1000:7.0f} ms  ratio {p50 / anchor:5.2f}"
                f"  cpu p50 {statistics.median(cpu) * 1000:6.0f} ms",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")
    store.close()


if __name__ == "__main__":
    main()
