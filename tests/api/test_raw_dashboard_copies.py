"""The filtered dashboard (the raw path) drops copies of an event among its matching rows only, and still
gives exactly the numbers of `events FINAL`.

On test_daycache's generated sets (three zones, sessions across local midnights), inserted so that every
session of two or more events spans two inserts (every other event in each) and with client-retry copies
(the same events again, `event_id` included, in a third insert), background merges stopped so the copies
stay in parts of their own: the dashboard with a filter equals the individual reports (which read
`events FINAL`), its summary equals a plain Python computation over one copy of each event, and the query
of the way before (`final=True`) gives the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.query import raw_dashboard
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_dashboard_endpoint import ALL_METRICS, MANY, dashboard, individual
from tests.api.test_daycache import EVERYTHING, FIRST, LAST, RANGE, ZONES, generate, get

ENGINES = ("chdb", "clickhouse")

FILTERS = [
    EVERYTHING,
    json.dumps([["country", "is", "DE"]]),
    json.dumps([["browser", "is", "Firefox"], ["device", "is_not", "mobile"]]),
    json.dumps([["page", "contains", "BLOG"]]),  # from the filter cache (migration 31)
    json.dumps([["page", "contains", "BLOG"], ["region", "not_contains", "never-in-any-region"]]),  # raw
]


def _picked(rows: list[dict[str, Any]], tz: str, flt: list[list[str]]) -> list[dict[str, Any]]:
    """One copy of each event of the range (bots left out) that the filter (is / is_not / contains on a
    column of the test rows) keeps: what the dashboard's summary is about."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(FIRST, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    column = {
        "country": "country",
        "browser": "browser",
        "device": "device_type",
        "page": "path",
        "region": "region",
    }

    def keeps(row: dict[str, Any]) -> bool:
        for dimension, operator, value in flt:
            have = str(row.get(column[dimension], ""))
            ok = {
                "is": have == value,
                "is_not": have != value,
                "contains": value.lower() in have.lower(),
                "not_contains": value.lower() not in have.lower(),
            }[operator]
            if not ok:
                return False
        return True

    latest = {r["event_id"]: r for r in rows}
    return [r for r in latest.values() if not r["is_bot"] and lo <= dataset.ts(r) < hi and keeps(r)]


@pytest.fixture(scope="module")
def copies(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """Per zone: (site id, domain, rows) of a site whose events came in two halves and then again in part."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    api.store.command("SYSTEM STOP MERGES events")
    out = {}
    try:
        for base, tz in ZONES.items():
            site = f"copies-{base}"
            site_id = meta.insert("sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0})
            rows = generate(site, tz, seed=23)
            api.store.insert_rows("events", rows[0::2])  # every session of 2+ events spans two inserts
            api.store.insert_rows("events", rows[1::2])
            api.store.insert_rows("events", rows[::5])  # client-retry copies in a new insert
            out[base] = (site_id, site, rows)
        yield out
    finally:
        api.store.command("SYSTEM START MERGES events")


def test_copies_are_there_unmerged(
    api: Api, copies: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    for _, site, rows in copies.values():
        stored = api.store.scalar("SELECT count() FROM events WHERE site = {s:String}", {"s": site})
        final = api.store.scalar("SELECT count() FROM events FINAL WHERE site = {s:String}", {"s": site})
        assert (stored, final) == (len(rows) + len(rows[::5]), len(rows))


def test_sessions_span_inserts_and_midnight(copies: dict[str, tuple[int, str, list[dict[str, Any]]]]) -> None:
    """The data has what the tests below are about: a session whose events came in both inserts and cross
    a local midnight."""
    for base, (_, _, rows) in copies.items():
        zone = ZoneInfo(ZONES[base])
        by_session: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_session.setdefault(row["session_id"], []).append(i)
        crossing = [
            s
            for s, idx in by_session.items()
            if {i % 2 for i in idx} == {0, 1}
            and len({dataset.ts(rows[i]).astimezone(zone).date() for i in idx}) > 1
        ]
        assert crossing, base


@pytest.mark.parametrize("filters", FILTERS)
def test_filtered_dashboard_equals_final_reports(
    api: Api, copies: dict[str, tuple[int, str, list[dict[str, Any]]]], filters: str
) -> None:
    for base, (site_id, _, rows) in copies.items():
        params: dict[str, Any] = {**RANGE, "filters": filters}
        want = individual(
            api, site_id, MANY, interval="day", metrics=ALL_METRICS, limit=3, previous=True, **params
        )
        got = dashboard(
            api, site_id, MANY, interval="day", metrics=ALL_METRICS, limit=3, previous=True, **params
        )
        assert got == want, (base, filters)
        metrics = {k: v["value"] for k, v in got["summary"]["metrics"].items()}
        assert metrics == dataset.summary(_picked(rows, ZONES[base], json.loads(filters))), (base, filters)
        assert metrics["pageviews"] > 0
    # hourly buckets over one day in the New York site
    site_id = copies["newyork.example"][0]
    hourly = {"period": "custom", "from": RANGE["from"], "to": RANGE["from"], "filters": filters}
    want = individual(
        api, site_id, MANY, interval="hour", metrics=ALL_METRICS, limit=3, previous=False, **hourly
    )
    got = dashboard(
        api, site_id, MANY, interval="hour", metrics=ALL_METRICS, limit=3, previous=False, **hourly
    )
    assert got == want, filters


def test_the_query_of_before_gives_the_same_rows(
    api: Api, copies: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    runner = QueryRunner(api.store)
    for base, (_, site, _) in copies.items():
        rng = resolve("custom", ZONES[base], date_from=RANGE["from"], date_to=RANGE["to"])
        for filters in FILTERS:
            scope = Scope(runner, site, rng, parse_filters(filters))
            rows = {}
            for final in (False, True):
                sql, params = raw_dashboard.dashboard_sql(
                    scope,
                    scope,
                    compare=True,
                    previous_series=True,
                    interval="day",
                    dimensions=MANY,
                    limit=3,
                    final=final,
                )
                assert ("FINAL" in sql) is final
                rows[final] = sorted(map(repr, raw_dashboard.run(scope, sql, params)))
            assert rows[False] == rows[True] and len(rows[False]) > 20, (base, filters)


def test_dashboard_summary_matches_python(
    api: Api, copies: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    """The unfiltered summary (report cache) agrees too: the copies count once everywhere."""
    for base, (site_id, _, rows) in copies.items():
        got = get(api, site_id, "summary", **RANGE)
        metrics = {k: v["value"] for k, v in got["metrics"].items()}
        assert metrics == dataset.summary(_picked(rows, ZONES[base], [])), base
