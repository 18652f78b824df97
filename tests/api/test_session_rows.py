"""The sessions table (`session_rows`, kept at insert time by a view on `events`) and the filtered dashboard
read from it (`session_dashboard`): the same rows as the dashboard over the events, before (`events FINAL`)
and now (copies dropped among matching rows), and the numbers of a Python computation.

On test_daycache's generated sets (three zones, sessions across local midnights, dimensions drawn per event
so a session has several rows): every session of two or more events spans two inserts, then client-retry
copies of every 5th event and a replay of a whole batch arrive in inserts of their own, merges stopped so
nothing collapses. Both engines (chDB and a ClickHouse server through clickhouse-connect).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pixel.server.api.query import raw_dashboard, session_dashboard
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_dashboard_endpoint import ALL_METRICS, MANY, dashboard, individual
from tests.api.test_daycache import FIRST, RANGE, ZONES, generate
from tests.api.test_raw_dashboard_copies import _picked

ENGINES = ("chdb", "clickhouse")

# Filters the sessions table answers (session-level dimensions only), and one it does not (page).
SESSION_FILTERS = [
    "[]",
    json.dumps([["country", "is", "DE"]]),
    json.dumps([["browser", "is", "Firefox"], ["device", "is_not", "mobile"]]),
    json.dumps([["country", "contains", "d"]]),
]
Sites = dict[str, tuple[int, str, list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[Sites]:
    """Per zone: (site id, domain, rows) inserted in two halves, then copies and a replayed half (twice: as it
    was, which the events table's deduplication window drops with its view's block, and in another order)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    api.store.command("SYSTEM STOP MERGES events")
    api.store.command("SYSTEM STOP MERGES session_rows")
    out = {}
    try:
        for base, tz in ZONES.items():
            site = f"sessions-{base}"
            site_id = meta.insert("sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0})
            rows = generate(site, tz, seed=41)
            api.store.insert_rows("events", rows[0::2])  # every session of 2+ events spans two inserts
            api.store.insert_rows("events", rows[1::2])
            api.store.insert_rows("events", rows[::5])  # client-retry copies
            api.store.insert_rows("events", rows[1::2])  # a replayed batch: the table drops it whole
            api.store.insert_rows("events", rows[1::2][::-1])  # a replay in another order: stored again
            out[base] = (site_id, site, rows)
        yield out
    finally:
        api.store.command("SYSTEM START MERGES events")
        api.store.command("SYSTEM START MERGES session_rows")


def _rows(scope: Scope, interval: str, **kw: Any) -> tuple[str, list[str]]:
    sql, params = raw_dashboard.dashboard_sql(
        scope, scope, compare=True, previous_series=True, interval=interval, dimensions=MANY, limit=3, **kw
    )
    return sql, sorted(map(repr, raw_dashboard.run(scope, sql, params)))


def test_copies_and_replays_are_stored_unmerged(api: Api, sites: Sites) -> None:
    for _, site, rows in sites.values():
        stored = api.store.scalar("SELECT count() FROM events WHERE site = {s:String}", {"s": site})
        assert stored == len(rows) + len(rows[::5]) + len(rows[1::2])  # the same-order replay dropped
        # the view wrote a block per insert: rows of one session and slot are there several times
        raw = api.store.scalar("SELECT count() FROM session_rows WHERE site = {s:String}", {"s": site})
        merged = api.store.scalar(
            f"SELECT count() FROM (SELECT 1 FROM session_rows WHERE site = {{s:String}} "
            f"GROUP BY {', '.join(('slot', 'sid', 'visitor_id', *session_dashboard.COLUMNS))})",
            {"s": site},
        )
        assert raw > merged > 0


@pytest.mark.parametrize("filters", SESSION_FILTERS)
def test_sessions_table_gives_the_rows_of_the_events(api: Api, sites: Sites, filters: str) -> None:
    runner = QueryRunner(api.store)
    for base, (_, site, _) in sites.items():
        for interval, rng in (
            ("day", resolve("custom", ZONES[base], date_from=RANGE["from"], date_to=RANGE["to"])),
            ("hour", resolve("custom", ZONES[base], date_from=RANGE["from"], date_to=RANGE["from"])),
            ("week", resolve("custom", ZONES[base], date_from=RANGE["from"], date_to=RANGE["to"])),
        ):
            scope = Scope(runner, site, rng, parse_filters(filters))
            sql, new = _rows(scope, interval)
            assert "FROM session_rows" in sql and "FROM events" in sql  # page/event/prop breakdowns: events
            assert "entry_page" in sql
            _, events = _rows(scope, interval, sessions=False)
            _, final = _rows(scope, interval, final=True)
            assert new == events == final and len(new) > 20, (base, interval, filters)


def test_other_filters_and_ranges_read_the_events(api: Api, sites: Sites) -> None:
    runner = QueryRunner(api.store)
    _, site, _ = sites["kolkata.example"]
    rng = resolve("custom", "Asia/Kolkata", date_from=RANGE["from"], date_to=RANGE["to"])
    for filters in ([["page", "contains", "blog"]], [["city", "is", "x"]], [["prop:plan", "is", "pro"]]):
        scope = Scope(runner, site, rng, parse_filters(filters))
        assert not session_dashboard.usable([scope], "day")
        assert "FROM session_rows" not in _rows(scope, "day")[0]
    scope = Scope(runner, site, rng, parse_filters([["country", "is", "DE"]]))
    assert session_dashboard.usable([scope], "day") and not session_dashboard.usable([scope], "minute")
    # a range not on 15-minute slots (the last hour, say)
    from dataclasses import replace
    from datetime import timedelta

    odd = replace(rng, start=rng.start + timedelta(minutes=7))
    assert not session_dashboard.usable([replace(scope, range=odd)], "day")


@pytest.mark.parametrize("filters", SESSION_FILTERS[1:])
def test_endpoint_equals_reports_and_python(api: Api, sites: Sites, filters: str) -> None:
    for base, (site_id, _, rows) in sites.items():
        params: dict[str, Any] = {**RANGE, "filters": filters}
        want = individual(
            api, site_id, MANY, interval="day", metrics=ALL_METRICS, limit=3, previous=True, **params
        )
        got = dashboard(
            api, site_id, MANY, interval="day", metrics=ALL_METRICS, limit=3, previous=True, **params
        )
        assert got == want, (base, filters)
        metrics = {k: v["value"] for k, v in got["summary"]["metrics"].items()}
        flt = [f for f in json.loads(filters) if f[1] != "contains"]
        if len(flt) == len(json.loads(filters)):
            assert metrics == dataset.summary(_picked(rows, ZONES[base], flt)), (base, filters)
        assert metrics["visitors"] > 0


def test_midnight_sessions_are_there(sites: Sites) -> None:
    """A session whose events came in both inserts and cross a local midnight, in every zone."""
    from zoneinfo import ZoneInfo

    for base, (_, _, rows) in sites.items():
        zone = ZoneInfo(ZONES[base])
        by_session: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_session.setdefault(row["session_id"], []).append(i)
        assert any(
            {i % 2 for i in idx} == {0, 1}
            and len({dataset.ts(rows[i]).astimezone(zone).date() for i in idx}) > 1
            for idx in by_session.values()
        ), base
    assert FIRST.isoformat() == RANGE["from"]
