"""The raw dashboard drops the copies of an event only where two parts of a month could hold them
(`copy_windows`), and gives the numbers it gives when it drops them among every matching row.

The windows and the check after the query are tested as tables of parts. On a real store (both engines,
background merges stopped, each test in a month of its own):
- a month stored in one insert (one part, with copies in the same insert that the insert collapses) has
  no window, and a month stored in three inserts (the third with client-retry copies) is covered;
- the dashboard over both months gives Python's numbers (one copy per event) and the rows of the old way;
- a copy arriving later in a part of its own puts a window over its day;
- a copy inserted after the parts were read and before the query ran makes `run` run the query again
  (the numbers count it once);
- a store that lists no parts for `events` (as a Distributed table on the cluster engine) drops copies
  everywhere.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pixel.server.api.query import copy_windows, raw_dashboard
from pixel.server.api.query.copy_windows import DAY, Part
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_daycache import _row
from tests.api.test_raw_dashboard_breakdowns import _keeps
from tests.chfront import ChFront

ENGINES = ("chdb", "clickhouse")
DIMENSIONS = ["page", "event", "country", "browser", "entry_page", "exit_page"]
FILTERS = [[], [["country", "is", "DE"]], [["page", "contains", "PRICING"]], [["event", "is", "signup"]]]
T0 = 1_700_000_000  # a unix second


def _p(partition: str, block: int, first: int, last: int) -> Part:
    return Part(partition, block, T0 + first, T0 + last)


WINDOW_CASES: list[tuple[str, list[Part], list[tuple[int, int]]]] = [
    ("one part", [_p("a", 1, 0, 10 * DAY)], []),
    ("parts of two months side by side", [_p("a", 1, 0, 10 * DAY), _p("b", 2, 0, 10 * DAY)], []),
    ("two parts more than two days apart", [_p("a", 1, 0, DAY), _p("a", 2, 3 * DAY + 2, 5 * DAY)], []),
    (
        "two parts a day apart: the days between",
        [_p("a", 1, 0, DAY), _p("a", 2, 2 * DAY, 5 * DAY)],
        [(2 * DAY - DAY, DAY + 1 + DAY)],
    ),
    (
        "parts in time order meet at their edges",
        [_p("a", 1, 0, 10 * DAY), _p("a", 2, 10 * DAY, 20 * DAY)],
        [(9 * DAY, 11 * DAY + 1)],
    ),
    (
        "overlapping parts: their span",
        [_p("a", 1, 0, 10 * DAY), _p("a", 2, 5, 10 * DAY - 5)],
        [(0, 10 * DAY + 1)],
    ),
    (
        "windows that touch are merged",
        [_p("a", 1, 0, 10 * DAY), _p("a", 2, 10 * DAY, 20 * DAY), _p("a", 3, 11 * DAY, 12 * DAY)],
        [(9 * DAY, 13 * DAY + 1)],
    ),
]


@pytest.mark.parametrize(("parts", "want"), [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_windows(parts: list[Part], want: list[tuple[int, int]]) -> None:
    assert copy_windows.windows(tuple(parts)) == tuple((T0 + a, T0 + b) for a, b in want)


def _every_pair(parts: tuple[Part, ...]) -> tuple[tuple[int, int], ...]:
    """The windows by definition: every pair of parts of one partition, merged (the reference)."""
    found = []
    for i, p in enumerate(parts):
        for q in parts[i + 1 :]:
            if p.partition == q.partition:
                start = max(max(p.first, q.first) - DAY, min(p.first, q.first))
                end = min(min(p.last, q.last) + 1 + DAY, max(p.last, q.last) + 1)
                if start < end:
                    found.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


@pytest.mark.parametrize("seed", range(4))
def test_windows_equal_every_pair_on_random_parts(seed: int) -> None:
    """`windows` pairs each part only with the earlier ones ending less than two days before it: the same
    windows as every pair, for parts in any order, spans from seconds to days, two partitions."""
    rng = random.Random(seed)
    for _ in range(500):
        parts = []
        span = rng.choice([DAY // 2, 3 * DAY, 30 * DAY])
        for block in range(rng.randint(0, 12)):
            first = rng.randint(0, span)
            parts.append(_p(rng.choice("ab"), block, first, first + rng.choice([0, rng.randint(0, 4 * DAY)])))
        rng.shuffle(parts)
        assert copy_windows.windows(tuple(parts)) == _every_pair(tuple(parts)), parts


BEFORE = (_p("a", 5, 0, 10 * DAY), _p("a", 7, 9 * DAY, 20 * DAY), _p("b", 3, 40 * DAY, 50 * DAY))
HOLD_CASES: list[tuple[str, tuple[Part, ...] | None, bool]] = [
    ("nothing new", BEFORE, True),
    ("merged old blocks only", (_p("a", 7, 0, 20 * DAY), BEFORE[2]), True),
    ("a new part a day inside a window", (*BEFORE, _p("a", 8, 9 * DAY + 60, 10 * DAY)), True),
    ("a new part less than a day from its edge", (*BEFORE, _p("a", 8, 10 * DAY + 60, 10 * DAY + 120)), False),
    ("a new part outside every window", (*BEFORE, _p("a", 8, 3 * DAY, 3 * DAY)), False),
    ("a merge that took in a new block", (_p("a", 8, 0, 20 * DAY), BEFORE[2]), False),
    ("a new month", (*BEFORE, _p("c", 9, 70 * DAY, 70 * DAY)), False),
    ("the parts cannot be read", None, False),
]


@pytest.mark.parametrize(("after", "holds"), [c[1:] for c in HOLD_CASES], ids=[c[0] for c in HOLD_CASES])
def test_still_holds(after: tuple[Part, ...] | None, holds: bool) -> None:
    wins = copy_windows.windows(BEFORE)
    assert wins == ((T0 + 8 * DAY, T0 + 11 * DAY + 1),)
    assert copy_windows.still_holds(BEFORE, wins, after) is holds


def _r(first: int, last: int, rows: int) -> Part:
    """A part of month "a" over [T0 + first, T0 + last] seconds (last inclusive) holding `rows` rows."""
    return Part("a", 1, T0 + first, T0 + last, rows)


def _w(*spans: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple((T0 + a, T0 + b) for a, b in spans)


ROWS_CASES: list[tuple[str, list[Part], tuple[tuple[int, int], ...], list[tuple[int, int]], int]] = [
    # (case, parts, windows, periods read, rows estimated inside both)
    ("no window", [_r(0, 99, 1000)], (), [(T0, T0 + 100)], 0),
    ("a window over the whole part", [_r(0, 99, 1000)], _w((0, 100)), [(T0, T0 + 100)], 1000),
    ("a quarter of the part", [_r(0, 99, 1000)], _w((25, 50)), [(T0, T0 + 100)], 250),
    ("the period cuts the window", [_r(0, 99, 1000)], _w((0, 100)), [(T0 + 90, T0 + 200)], 100),
    (
        "two windows, two periods",
        [_r(0, 99, 1000)],
        _w((0, 10), (50, 60)),
        [(T0, T0 + 5), (T0 + 55, T0 + 70)],
        100,
    ),
    ("a window wider than the part", [_r(10, 19, 40)], _w((0, 100)), [(T0 - 50, T0 + 500)], 40),
    ("two parts, one in the window", [_r(0, 9, 10), _r(100, 109, 30)], _w((95, 200)), [(T0, T0 + 300)], 30),
    ("a part of one second", [_r(5, 5, 7)], _w((5, 6)), [(T0, T0 + 10)], 7),
    ("no period", [_r(0, 99, 1000)], _w((0, 100)), [], 0),
]


@pytest.mark.parametrize(
    ("parts", "wins", "spans", "want"), [c[1:] for c in ROWS_CASES], ids=[c[0] for c in ROWS_CASES]
)
def test_rows_within(
    parts: list[Part], wins: tuple[tuple[int, int], ...], spans: list[tuple[int, int]], want: int
) -> None:
    assert copy_windows.rows_within(tuple(parts), wins, spans) == want


def _events(site: str, first: datetime, days: int, seed: int) -> list[dict[str, Any]]:
    """Sessions of 1-4 events over `days` days from `first` (UTC), some on signups."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for s in range(days * 6):
        t = first + timedelta(seconds=rnd.randint(0, days * 86_400 - 3_600))
        visitor = f"v{rnd.randint(0, 30)}"
        for _ in range(rnd.randint(1, 4)):
            name = "signup" if rnd.random() < 0.2 else "pageview"
            path = rnd.choice(["/", "/pricing", "/blog/a", "/docs"])
            rows.append(_row(len(rows), site, t, visitor, f"{site}-{seed}-s{s}", name, path, rnd))
            rows[-1]["event_id"] = f"{site}-{seed}-{len(rows)}"
            t += timedelta(minutes=rnd.randint(1, 20))
    return rows


@pytest.fixture(scope="module")
def stopped(api: Api) -> Iterator[None]:
    for table in ("events", "session_rows"):
        api.store.command(f"SYSTEM STOP MERGES {table}")
    try:
        yield
    finally:
        for table in ("events", "session_rows"):
            api.store.command(f"SYSTEM START MERGES {table}")


def _scope(api: Api, site: str, first: date, last: date, filters: list[list[str]]) -> Scope:
    rng = resolve("custom", "UTC", date_from=first.isoformat(), date_to=last.isoformat())
    return Scope(QueryRunner(api.store), site, rng, parse_filters(json.dumps(filters)))


def _rows(scope: Scope, **kw: Any) -> tuple[list[str], raw_dashboard.DashboardParams]:
    sql, params = raw_dashboard.dashboard_sql(
        scope,
        None,
        compare=False,
        previous_series=False,
        interval="day",
        dimensions=DIMENSIONS,
        limit=3,
        **kw,
    )
    return sorted(map(repr, raw_dashboard.run(scope, sql, params))), params


def _summary(scope: Scope, filters: list[list[str]], rows: list[dict[str, Any]], **kw: Any) -> None:
    """The summary row equals Python's over one copy of each matching event."""
    sql, params = raw_dashboard.dashboard_sql(
        scope, None, compare=False, previous_series=False, interval="day", dimensions=[], limit=3, **kw
    )
    got = [r for r in raw_dashboard.run(scope, sql, params) if r["tag"] == "s"]
    lo, hi = scope.range.start, scope.range.end
    once = [
        r
        for r in {r["event_id"]: r for r in rows}.values()
        if lo <= dataset.ts(r) < hi and _keeps(r, filters)
    ]
    want = {
        "visitors": len({r["visitor_id"] for r in once}),
        "pageviews": sum(r["event_name"] == "pageview" for r in once),
        "events": len(once),
    }
    assert len(got) == 1 and {k: int(got[0][k]) for k in want} == want, (filters, kw)


def _covered(params: raw_dashboard.DashboardParams, moment: datetime, sessions: bool = False) -> bool:
    windows = params.session_windows if sessions else params.windows
    return any(a <= moment.timestamp() < b for a, b in windows)


@pytest.fixture(scope="module")
def two_months(api: Api, stopped: None) -> tuple[str, list[dict[str, Any]]]:
    """January 2023 in one insert (copies inside it), February 2023 in two halves plus copies in a third."""
    site = "copy-windows.example"
    january = _events(site, datetime(2023, 1, 3, tzinfo=UTC), 27, seed=3)
    february = _events(site, datetime(2023, 2, 1, tzinfo=UTC), 27, seed=4)
    api.store.insert_rows("events", january + january[::7])  # copies in the same insert: collapsed
    api.store.insert_rows("events", february[0::2])
    api.store.insert_rows("events", february[1::2])
    api.store.insert_rows("events", february[::5])  # client-retry copies in a part of their own
    return site, january + february


def test_a_month_in_one_part_has_no_window(api: Api, two_months: tuple[str, list[dict[str, Any]]]) -> None:
    site, rows = two_months
    stored = api.store.scalar(
        "SELECT count() FROM events WHERE site = {s:String} AND timestamp < '2023-02-01'", {"s": site}
    )
    assert stored == sum(r["timestamp"] < "2023-02-01" for r in rows)  # the insert collapsed its copies
    scope = _scope(api, site, date(2023, 1, 1), date(2023, 2, 28), [])
    _, params = _rows(scope)
    assert params.parts is not None and params.session_parts is not None
    for sessions in (False, True):  # the events' parts and the sessions table's
        assert not _covered(params, datetime(2023, 1, 15, tzinfo=UTC), sessions)
        assert not _covered(params, datetime(2023, 1, 30, tzinfo=UTC), sessions)
        assert _covered(params, datetime(2023, 2, 2, tzinfo=UTC), sessions)
        assert _covered(params, datetime(2023, 2, 20, tzinfo=UTC), sessions)


@pytest.mark.parametrize("filters", FILTERS, ids=json.dumps)
@pytest.mark.parametrize("sessions", [True, False], ids=["sessions-table", "events-only"])
def test_same_numbers_as_dropping_everywhere(
    api: Api, two_months: tuple[str, list[dict[str, Any]]], filters: list[list[str]], sessions: bool
) -> None:
    site, rows = two_months
    scope = _scope(api, site, date(2023, 1, 10), date(2023, 2, 20), filters)
    now, _ = _rows(scope, sessions=sessions)
    before, _ = _rows(scope, sessions=sessions, copies_where_possible=False)
    assert now == before
    _summary(scope, filters, rows, sessions=sessions)


class _Counting(QueryRunner):
    """A runner that keeps the statements it runs."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.statements: list[str] = []

    def query(self, sql: str, params: Any = None) -> Any:
        self.statements.append(sql)
        return super().query(sql, params)


@pytest.mark.parametrize("filters", FILTERS, ids=json.dumps)
@pytest.mark.parametrize("sessions", [True, False], ids=["sessions-table", "events-only"])
def test_branches_one_after_another_give_the_same_rows(
    api: Api,
    two_months: tuple[str, list[dict[str, Any]]],
    filters: list[list[str]],
    sessions: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a store without a spill budget (a server's): with at least `SPLIT_ROWS` rows grouped by their key,
    `run` runs the branches as statements one after another, the same rows as the one query; below it, one
    statement. On a store with a budget (chDB's default), one after another whatever the rows grouped."""
    site, _ = two_months
    monkeypatch.setattr(api.store, "spill_budget_mb", 0)
    runner = _Counting(api.store)
    rng = resolve("custom", "UTC", date_from="2023-01-10", date_to="2023-02-20")
    scope = Scope(runner, site, rng, parse_filters(json.dumps(filters)))
    one, params = _rows(scope, sessions=sessions)
    grouped = params.grouped_rows()
    assert grouped > 0  # February's parts overlap
    assert sum(s.lstrip().startswith("SELECT") and "UNION ALL" in s for s in runner.statements) == 1
    monkeypatch.setattr(raw_dashboard, "SPLIT_ROWS", grouped)
    runner.statements.clear()
    split, params = _rows(scope, sessions=sessions)
    assert split == one
    assert [s for s in runner.statements if s in params.branches] == list(params.branches)
    assert len(params.branches) >= 2
    monkeypatch.setattr(raw_dashboard, "SPLIT_ROWS", grouped + 1)
    monkeypatch.setattr(api.store, "spill_budget_mb", 512)
    runner.statements.clear()
    budgeted, params = _rows(scope, sessions=sessions)
    assert budgeted == one
    assert [s for s in runner.statements if s in params.branches] == list(params.branches)
    assert raw_dashboard.BRANCH_JOIN.join(params.branches) not in runner.statements


def test_grouped_rows_of_a_month_in_one_part(api: Api, two_months: tuple[str, list[dict[str, Any]]]) -> None:
    """January is one part with no window: nothing is grouped by its key; February's three overlapping parts
    put about every row of its days read inside windows."""
    site, rows = two_months
    _, january = _rows(_scope(api, site, date(2023, 1, 5), date(2023, 1, 25), []), sessions=False)
    assert january.grouped_rows() == 0
    _, february = _rows(_scope(api, site, date(2023, 2, 1), date(2023, 2, 27), []), sessions=False)
    stored = api.store.scalar(
        "SELECT count() FROM events WHERE site = {s:String} AND timestamp >= '2023-02-01'", {"s": site}
    )
    assert 0.9 * stored <= february.grouped_rows() <= stored


def test_a_copy_in_a_later_part_puts_a_window_over_its_day(api: Api, stopped: None) -> None:
    site = "copy-windows-later.example"
    rows = _events(site, datetime(2023, 3, 2, tzinfo=UTC), 20, seed=5)
    api.store.insert_rows("events", rows)
    scope = _scope(api, site, date(2023, 3, 1), date(2023, 3, 31), [])
    copy = next(r for r in rows if r["timestamp"] >= "2023-03-11")
    moment = dataset.ts(copy)
    _, params = _rows(scope)
    assert not _covered(params, moment)
    api.store.insert_rows("events", [copy])
    _, params = _rows(scope)
    assert _covered(params, moment) and _covered(params, moment - timedelta(hours=23))
    _summary(scope, [], rows)
    now, _ = _rows(scope)
    assert now == _rows(scope, copies_where_possible=False)[0]


@pytest.mark.parametrize("split", [False, True], ids=["one-query", "branch-by-branch"])
@pytest.mark.parametrize(
    ("sessions", "month"), [(False, 4), (True, 6)], ids=["events-only", "sessions-table"]
)
def test_a_copy_inserted_during_the_query_runs_it_again(
    api: Api, stopped: None, sessions: bool, month: int, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the read of the parts (in `dashboard_sql`) and the query (in `run`), copies arrive in a
    part of their own on days no window covers: `run` sees the new part and drops them everywhere (for the
    sessions table: merges every row per key). Both the summary (event counts) and the sessions (a session's
    pageviews: its bounce) count each copied event once."""
    if split:
        monkeypatch.setattr(raw_dashboard, "SPLIT_ROWS", 0)
    site = f"copy-windows-race-{month + split}.example"
    rows = _events(site, datetime(2023, month + split, 2, tzinfo=UTC), 20, seed=6)
    api.store.insert_rows("events", rows)
    scope = _scope(api, site, date(2023, month + split, 1), date(2023, month + split, 28), [])
    sql, params = raw_dashboard.dashboard_sql(
        scope,
        None,
        compare=False,
        previous_series=False,
        interval="day",
        dimensions=[],
        limit=3,
        sessions=sessions,
    )
    read = params.session_parts if sessions else params.parts
    assert read is not None and (params.parts is None) == sessions
    assert not any(_covered(params, dataset.ts(r), sessions) for r in rows)
    assert params.grouped_rows() == 0  # no window: nothing grouped, one query unless forced
    table = "session_rows" if sessions else "events"
    stored = api.store.scalar(f"SELECT count() FROM {table} WHERE site = {{s:String}}", {"s": site})
    api.store.insert_rows("events", rows[::4])
    got = {r["tag"]: r for r in raw_dashboard.run(scope, sql, params) if r["tag"] in ("s", "es")}
    assert int(got["s"]["events"]) == len(rows)
    assert int(got["s"]["pageviews"]) == sum(r["event_name"] == "pageview" for r in rows)
    per_session: dict[str, int] = {}
    for r in rows:
        per_session[r["session_id"]] = per_session.get(r["session_id"], 0) + (r["event_name"] == "pageview")
    assert int(got["es"]["session_pageviews"]) == sum(per_session.values())
    assert int(got["es"]["bounces"]) == sum(n <= 1 for n in per_session.values())
    # the flag set: every row of the parts read before (one part, inside the period) is grouped
    assert params.values[params.everywhere or ""] == 1 and params.grouped_rows() == stored


def test_no_parts_listed_drops_copies_everywhere(api_chfront: ChFront) -> None:
    """A database whose `events` has no parts (as a Distributed table on the cluster engine), and a read
    that fails, give no parts: the flag that drops copies everywhere is set."""
    empty = ClickHouseStore(api_chfront.url, database=f"pixel_copy_windows_{random.randrange(10**9)}")
    empty.migrate()
    try:
        assert copy_windows.read_parts(empty) is None
        scope = Scope(
            QueryRunner(empty),
            "x.example",
            resolve("custom", "UTC", date_from="2023-05-01", date_to="2023-05-07"),
            parse_filters("[]"),
        )
        rows, params = _rows(scope)
        assert params.parts is None and params.everywhere is not None
        assert params.values[params.everywhere] == 1
        assert params.grouped_rows() == 0  # no parts, no estimate: one query, as before
    finally:
        empty.close()
    missing = ClickHouseStore(api_chfront.url, database="pixel_copy_windows_no_such_database")
    try:
        assert copy_windows.read_parts(missing) is None
    finally:
        missing.close()
