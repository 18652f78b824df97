"""Journeys from a per-session path table kept at insert time, against today's read of the events (issue 18).

An experiment, run before making such a table a store migration: it builds candidate tables in a bench store
(one made by bench_journeys.py, e.g. a copy of its data folder: the tables are added to it), filled from the
events with the SELECT a materialized view would run, and times, in one run and alternating, the journeys'
per-session query and the whole tallies query (4 steps across all sessions, country is DE, the last 30 days:
the issue's case) read from the events (`journeys.session_rows_sql`, as the route does) and from each table,
asserting that every source gives the same tallies.

The candidates, one row per (site, 15-minute `slot`, `sid` = the events' session_hash, is_bot), each holding
the slot's pageviews as (timestamp, cityHash64(event_id), path) triples:
- `state`: AggregateFunction(groupArray) (merged with groupArrayMerge);
- `uniq`: AggregateFunction(groupUniqArray) (copy-proof in storage: a copy of a pageview is one element);
- `array`: SimpleAggregateFunction(groupArrayArray), a plain Array column concatenated on merge.
A session's rows are grouped by `sid` over the window's slots; its first pageview's slot is its start's
(a range of whole local days starts and ends on slots). Copies of a pageview in `state` and `array` are
harmless to the answer: the journeys code already folds them (collapsed: like a reload; else distinct triples).

Usage (from the repository root; the store must already hold the events, e.g. bench_journeys.py's):
    .venv/bin/python bench/bench_journeys_paths.py --data-dir <copy of a bench_journeys data folder> --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_api import SITE
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter, SqlParams, filter_sql
from pixel.server.api.query.periods import ch_datetime, resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore

STEP = "Tuple(DateTime64(3, 'UTC'), UInt64, String)"
STEP_VALUE = "(timestamp, cityHash64(event_id), path)"
# name -> (column type, insert-time aggregate of STEP_VALUE, read-time merge of the column)
CANDIDATES: dict[str, tuple[str, str, str]] = {
    "state": (f"AggregateFunction(groupArray, {STEP})", "groupArrayState", "groupArrayMerge"),
    "uniq": (f"AggregateFunction(groupUniqArray, {STEP})", "groupUniqArrayState", "groupUniqArrayMerge"),
    "array": (f"SimpleAggregateFunction(groupArrayArray, Array({STEP}))", "groupArray", "groupArrayArray"),
}


def table(name: str) -> str:
    return f"bench_session_paths_{name}"


def build(store: ChdbStore, name: str) -> float:
    """Makes and fills the candidate table `name` (once); seconds spent filling it (0 when it existed)."""
    kind, state, _ = CANDIDATES[name]
    if store.scalar(f"EXISTS TABLE {table(name)}"):
        return 0.0
    store.command(f"""CREATE TABLE {table(name)} (
        site LowCardinality(String), slot DateTime('UTC'), sid UInt64, is_bot UInt8, steps {kind})
        ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(slot) ORDER BY (site, slot, sid, is_bot)""")
    started = time.perf_counter()
    store.command(f"""INSERT INTO {table(name)}
        SELECT site, toStartOfFifteenMinutes(timestamp) AS slot, cityHash64(session_id) AS sid, is_bot,
            {state}({STEP_VALUE}) FROM events WHERE event_name = 'pageview' GROUP BY site, slot, sid, is_bot""")
    spent = time.perf_counter() - started
    store.command(f"OPTIMIZE TABLE {table(name)} FINAL")
    return spent


def table_session_sql(name: str, scope: Scope, q: jq.JourneyQuery, params: SqlParams) -> str:
    """`journeys.session_rows_sql` (collapsed, no groups, session-level filters) read from a candidate."""
    merge = CANDIDATES[name][2]
    lo = params.add(ch_datetime(scope.range.start - jq.SESSION_REACH), "DateTime64(3)")
    hi = params.add(ch_datetime(scope.range.end + jq.SESSION_REACH), "DateTime64(3)")
    rows = f"site = {{site:String}} AND slot >= {lo} AND slot < {hi} AND is_bot = 0"
    cond = " AND ".join(f"({filter_sql(f, params)})" for f in scope.filters)
    raw = f"arrayMap(t -> t.2, arraySort(arrayMap(t -> (t.1, t.3), {merge}(steps))))"
    seq = f"arrayFilter((p, i) -> i = 1 OR p != raw[i - 1], {raw} AS raw, arrayEnumerate(raw))"
    pages, complete, keep = jq.shape_sql(q, params)
    return f"""SELECT {seq} AS seq, {pages} AS pages, {complete} AS complete
        FROM {table(name)}
        PREWHERE {rows} AND sid IN (SELECT sid FROM session_rows PREWHERE {rows} AND {cond})
        GROUP BY sid
        HAVING min(slot) >= {{start:DateTime64(3)}} AND min(slot) < {{end:DateTime64(3)}} AND {keep}"""


def queries(source: str, scope: Scope, q: jq.JourneyQuery) -> tuple[str, str, dict[str, object]]:
    """(per-session count query, tallies query, parameters) reading `source`: "events" or a candidate."""
    params = SqlParams()
    if source == "events":
        per = jq.session_rows_sql(scope, q, params)
        tallies = jq.tallies_sql(scope, q, params)
    else:
        per = table_session_sql(source, scope, q, params)
        current = jq.session_rows_sql
        jq.session_rows_sql = lambda *_: per  # type: ignore[assignment]
        try:
            tallies = jq.tallies_sql(scope, q, params)
        finally:
            jq.session_rows_sql = current
    return f"SELECT count() FROM ({per})", tallies, params.with_fixed(site=SITE, **scope.range.params)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    store = ChdbStore(args.data_dir / "store")
    store.migrate()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for name in CANDIDATES:
        spent = build(store, name)
        rows, size = store.query(
            "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND table = {t:String}",
            {"t": table(name)},
        ).rows[0]
        print(f"  {table(name)}: {int(rows):,} rows, {int(size) / 1e6:.0f} MB, filled in {spent:.1f} s")
    scope = Scope(
        runner=QueryRunner(store),
        site=SITE,
        range=resolve("30d", "UTC"),
        filters=[Filter("country", "is", "DE")],
    )
    assert jq.filters_from_session_rows(scope), "the window must be one the sessions table covers"
    q = jq.JourneyQuery(steps=4).check()
    sources = ["events", *CANDIDATES]
    built = {s: queries(s, scope, q) for s in sources}
    reference = sorted(map(repr, store.query(built["events"][1], built["events"][2]).rows))
    for s in sources:
        per, tallies, params = built[s]
        assert sorted(map(repr, store.query(tallies, params).rows)) == reference, f"{s}: other tallies"
        print(f"  {s}: {store.scalar(per, params):,} sessions")
    times: dict[str, list[float]] = {}

    def timed(label: str, fn: Callable[[], object]) -> None:
        started = time.perf_counter()
        fn()
        times.setdefault(label, []).append(time.perf_counter() - started)

    for _ in range(args.runs):  # alternating, so that a change of load hits every source alike
        for s in sources:
            per, tallies, params = built[s]
            timed(f"per-session query from {s}", lambda: store.scalar(per, params))  # noqa: B023
            timed(f"tallies from {s}", lambda: store.query(tallies, params))  # noqa: B023
    for label, values in sorted(times.items()):
        print(f"  {label:40s} p50 {statistics.median(values) * 1000:6.0f} ms  (min {min(values) * 1000:.0f})")
    print(f"load average at end: {os.getloadavg()}")
    store.close()


if __name__ == "__main__":
    main()
