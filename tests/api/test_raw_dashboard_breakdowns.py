"""The filtered dashboard's event-level breakdowns (`raw_dashboard._event_breakdowns`, one `GROUPING SETS`
aggregation) give known answers: per dimension the first values by visitors (ties by value) with their
visitors, pageviews and events, and an "other" row, computed here in Python over one copy of each matching
event; pageviews only for `page`, other events only for `event`, events holding the key for `prop:<key>`.

On test_daycache's generated sets (three zones) with a property on the signups, inserted in two halves plus
client-retry copies in a third insert, background merges stopped so the copies stay in parts of their own.
The way before (`grouping_sets=False`: every row copied once per dimension by `ARRAY JOIN`) gives the same
rows for the whole dashboard query.
"""

from __future__ import annotations

import json
import random
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
from tests.api.test_daycache import FIRST, LAST, RANGE, ZONES, generate

ENGINES = ("chdb", "clickhouse")

DIMENSIONS = ["page", "event", "prop:plan", "country", "referrer", "browser", "utm_campaign", "hostname"]
COLUMNS = {
    "page": "path",
    "event": "event_name",
    "country": "country",
    "referrer": "ref_host",
    "browser": "browser",
    "utm_campaign": "utm_campaign",
    "hostname": "host",
    "device": "device_type",
}
FILTERS = [
    [],
    [["country", "is", "DE"]],
    [["browser", "is", "Firefox"], ["device", "is_not", "mobile"]],
    [["page", "contains", "BLOG"]],
    [["event", "is", "signup"]],
]
LIMIT = 2


def _rows(site: str, tz: str) -> list[dict[str, Any]]:
    """test_daycache's rows, every other signup with a `plan` property (one with an empty value)."""
    rows = generate(site, tz, seed=29)
    rnd = random.Random(5)
    signups = [r for r in rows if r["event_name"] == "signup"]
    for i, row in enumerate(signups[::2]):
        row["props"] = {"plan": "" if i == 0 else rnd.choice(["free", "pro", "team"])}
    return rows


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[str, list[dict[str, Any]]]]]:
    """Per zone: (site, rows) of a site whose events came in two halves and then again in part."""
    api.store.command("SYSTEM STOP MERGES events")
    out = {}
    try:
        for base, tz in ZONES.items():
            site = f"breakdowns-{base}"
            rows = _rows(site, tz)
            api.store.insert_rows("events", rows[0::2])
            api.store.insert_rows("events", rows[1::2])
            api.store.insert_rows("events", rows[::5])  # client-retry copies in a new insert
            out[base] = (site, rows)
        yield out
    finally:
        api.store.command("SYSTEM START MERGES events")


def _value(row: dict[str, Any], dimension: str) -> str | None:
    """The row's value for the dimension, None where the breakdown is not about the row."""
    if dimension == "page" and row["event_name"] != "pageview":
        return None
    if dimension == "event" and row["event_name"] == "pageview":
        return None
    if dimension.startswith("prop:"):
        return row["props"].get(dimension[len("prop:") :])
    return str(row.get(COLUMNS[dimension], ""))


def _keeps(row: dict[str, Any], filters: list[list[str]]) -> bool:
    for dimension, operator, value in filters:
        have = str(row.get(COLUMNS[dimension], ""))  # a filter is on every matching event, any kind
        ok = {
            "is": have == value,
            "is_not": have != value,
            "contains": value.lower() in have.lower(),
        }[operator]
        if not ok:
            return False
    return True


def _line(
    d: str, events: list[dict[str, Any]], bucket: str | None, rank: int, values: int
) -> tuple[Any, ...]:
    visitors = len({r["visitor_id"] for r in events})
    pageviews = sum(r["event_name"] == "pageview" for r in events)
    return (f"b:{d}", bucket, visitors, pageviews, len(events), values, rank)


def expected(rows: list[dict[str, Any]], tz: str, filters: list[list[str]]) -> list[tuple[Any, ...]]:
    """The breakdown rows (tag, bucket, visitors, pageviews, events, total_rows, first_rank), sorted."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(FIRST, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    once = {r["event_id"]: r for r in rows}.values()
    picked = [r for r in once if not r["is_bot"] and lo <= dataset.ts(r) < hi and _keeps(r, filters)]
    out = []
    for d in DIMENSIONS:
        per: dict[str, list[dict[str, Any]]] = {}
        for row in picked:
            value = _value(row, d)
            if value is not None:
                per.setdefault(value, []).append(row)
        ranked = sorted(per, key=lambda v: (-len({r["visitor_id"] for r in per[v]}), v))

        out += [_line(d, per[v], v, i + 1, len(per)) for i, v in enumerate(ranked[:LIMIT])]
        if len(ranked) > LIMIT:
            out.append(_line(d, [r for v in ranked[LIMIT:] for r in per[v]], None, LIMIT + 1, len(per)))
    return sorted(out, key=repr)


def breakdown_rows(
    api: Api, site: str, tz: str, filters: list[list[str]], *, grouping_sets: bool = True
) -> list[tuple[Any, ...]]:
    rng = resolve("custom", tz, date_from=RANGE["from"], date_to=RANGE["to"])
    scope = Scope(QueryRunner(api.store), site, rng, parse_filters(json.dumps(filters)))
    sql, params = raw_dashboard.dashboard_sql(
        scope,
        None,
        compare=False,
        previous_series=False,
        interval="day",
        dimensions=DIMENSIONS,
        limit=LIMIT,
        grouping_sets=grouping_sets,
    )
    keys = ("tag", "bucket", "visitors", "pageviews", "events", "total_rows", "first_rank")
    rows = raw_dashboard.run(scope, sql, params)
    return sorted((tuple(r[k] for k in keys) for r in rows if r["tag"].startswith("b:")), key=repr)


def test_copies_are_there_unmerged(api: Api, sites: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
    for site, rows in sites.values():
        stored = api.store.scalar("SELECT count() FROM events WHERE site = {s:String}", {"s": site})
        assert stored == len(rows) + len(rows[::5])


@pytest.mark.parametrize("filters", FILTERS, ids=json.dumps)
def test_event_breakdowns_equal_python(
    api: Api, sites: dict[str, tuple[str, list[dict[str, Any]]]], filters: list[list[str]]
) -> None:
    for base, (site, rows) in sites.items():
        want = expected(rows, ZONES[base], filters)
        assert breakdown_rows(api, site, ZONES[base], filters) == want, (base, filters)
        # the data has what the test is about: an "other" row, a property's empty value, events left out
        # of the page breakdown and pageviews left out of the event breakdown
        if not filters:
            assert any(r[0] == "b:page" and r[1] is None for r in want)
            assert ("b:prop:plan", "") in {r[:2] for r in want} or any(
                r[0] == "b:prop:plan" and r[1] is None for r in want
            )
            page_events = sum(r[4] for r in want if r[0] == "b:page")
            event_events = sum(r[4] for r in want if r[0] == "b:event")
            country_events = sum(r[4] for r in want if r[0] == "b:country")
            assert page_events + event_events == country_events and event_events > 0


@pytest.mark.parametrize("filters", FILTERS[1:], ids=json.dumps)
def test_grouping_sets_give_the_rows_of_the_array_join(
    api: Api, sites: dict[str, tuple[str, list[dict[str, Any]]]], filters: list[list[str]]
) -> None:
    """The whole dashboard query, both periods and every branch: the same rows either way."""
    runner = QueryRunner(api.store)
    dims = [*DIMENSIONS, "entry_page", "exit_page", "city", "channel"]
    for base, (site, _) in sites.items():
        rng = resolve("custom", ZONES[base], date_from=RANGE["from"], date_to=RANGE["to"])
        scope = Scope(runner, site, rng, parse_filters(json.dumps(filters)))
        answers = []
        for grouping_sets in (True, False):
            sql, params = raw_dashboard.dashboard_sql(
                scope,
                scope,
                compare=True,
                previous_series=True,
                interval="day",
                dimensions=dims,
                limit=LIMIT,
                grouping_sets=grouping_sets,
            )
            assert ("GROUPING SETS ((k0)" in sql) is grouping_sets
            answers.append(sorted(map(repr, raw_dashboard.run(scope, sql, params))))
        assert answers[0] == answers[1] and len(answers[0]) > 20, (base, filters)
