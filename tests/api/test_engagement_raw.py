"""The engagement report over the raw events (a filter the per-day caches do not carry): every figure equals the
Python computation of `insights_dataset.engagement` over the events the filter keeps, each event once.

The raw query drops the copies of an event only inside `copy_windows`' windows and reads every other row as it
is. Checked on both engines, background merges stopped:
- March 2024 (three zones; `insights_dataset` plus sessions across every local midnight): each site stored in
  one insert, with client-retry copies of every seventh event in a part of their own (inside a window), for
  filters of every kind: those no cache carries (the title, a property, the event name, a carried one beside
  them) and, as a check of the caches on the same data, page, UTM, region and city filters, the
  engagement, outbound links and downloads reports;
- a month stored in one insert has no window: read as it is, same answer;
- copies inserted into that month after the parts were read and before the query ran (outside the windows
  the query was built with): the report reads the parts again and answers with each event once, where the
  query alone would have counted the copies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from pixel.server.api.query import content, engagement, raw_dashboard, raw_events
from pixel.server.api.query.filters import parse_filters
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from tests.api import insights_dataset as data
from tests.api.conftest import Api
from tests.api.test_content_cache_filters import passes
from tests.api.test_engagement_cache import RANGE, midnight_sessions, rows_of

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.engraw": "Europe/Berlin",
    "newyork.engraw": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.engraw": "Asia/Kolkata",
}
REGIONS = [("DE-BE", "Berlin"), ("DE-HH", "Hamburg"), ("US-NY", "New York"), ("", "")]
PLANS = ["pro", "free", ""]
# Python's value of a filter's dimension on one event.
FIELD = {
    "page": lambda e: e["path"],
    "utm_campaign": lambda e: e.get("utm_campaign", ""),
    "region": lambda e: e.get("region", ""),
    "city": lambda e: e.get("city", ""),
    "title": lambda e: e.get("title", ""),
    "prop:plan": lambda e: e.get("props", {}).get("plan", ""),
    "event": lambda e: e["event_name"],
}
FILTERS = [
    [["page", "contains", "DOC"]],
    [["page", "is", "/"]],
    [["page", "not_matches", "^/(blog|checkout)"]],
    [["utm_campaign", "is", "spring"]],
    [["utm_campaign", "is_not", ""]],
    [["region", "is", "DE-BE"]],
    [["city", "contains", "burg"]],
    [["title", "contains", "BLOG"]],
    [["title", "is_not", "Page /"]],
    [["prop:plan", "is", "pro"]],
    [["prop:plan", "is_not", "free"]],
    [["event", "is_not", "scroll"]],
    [["country", "is", "DE"], ["page", "contains", "pri"]],  # a carried filter beside one not carried
]
SHIFT = timedelta(days=300)  # the month of the window tests: March 2024 less 300 days (May 2023)


def with_dimensions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per session a region and city and a plan property; every eleventh event a region, a city and a plan of
    its own (a filter cuts such a session); each event its page's title."""
    sessions = sorted({e["session_id"] for e in rows})
    index = {s: i for i, s in enumerate(sessions)}
    for i, e in enumerate(rows):
        k = index[e["session_id"]] + (1 if i % 11 == 0 else 0)
        e["region"], e["city"] = REGIONS[k % len(REGIONS)]
        e["title"] = f"Page {e['path']}"
        e["props"] = {**e.get("props", {}), "plan": PLANS[k % len(PLANS)]}
    return rows


def keeps(filters: list[list[str]]) -> Any:
    def keep(e: dict[str, Any]) -> bool:
        value = {**FIELD, "country": lambda e: e.get("country", "")}
        return all(passes(op, v)(str(value[dim](e))) for dim, op, v in filters)

    return keep


def links(api: Api, site_id: int, report: str, **params: Any) -> dict[str, tuple[int, int]]:
    """The outbound or downloads report: url -> (clicks, visitors)."""
    r = api.client.get(
        f"/api/sites/{site_id}/reports/{report}", params={"limit": 100, **params}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    count = "clicks" if report == "outbound" else "downloads"
    return {
        row["url" if report == "outbound" else "file"]: (row[count], row["visitors"])
        for row in r.json()["rows"]
    }


@pytest.fixture(scope="module")
def stopped(api: Api) -> Iterator[None]:
    api.store.command("SYSTEM STOP MERGES events")
    try:
        yield
    finally:
        api.store.command("SYSTEM START MERGES events")


@pytest.fixture(scope="module")
def sites(api: Api, stopped: None) -> dict[str, tuple[int, str, list[dict[str, Any]]]]:
    """domain -> (site id, zone, its events)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for domain, tz in ZONES.items():
        rows = with_dimensions(data.generate(domain, seed=43) + midnight_sessions(domain, tz, seed=13))
        api.store.insert_rows("events", rows)
        api.store.insert_rows("events", rows[::7])  # client-retry copies, in a part of their own
        site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0})
        out[domain] = (site_id, tz, rows)
    return out


@pytest.mark.parametrize("filters", FILTERS, ids=json.dumps)
def test_each_filter_the_caches_do_not_carry_equals_python(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]], filters: list[list[str]]
) -> None:
    kept_some = dropped_some = False
    for domain, (site_id, tz, rows) in sites.items():
        chosen = data.select(rows, domain, tz)
        kept = [e for e in chosen if keeps(filters)(e)]
        kept_some |= bool(kept)
        dropped_some |= len(kept) < len(chosen)
        got = rows_of(api, site_id, filters=json.dumps(filters), **RANGE)
        assert got == data.engagement(kept), (domain, filters)
        assert links(api, site_id, "outbound", filters=json.dumps(filters), **RANGE) == data.counted(
            kept, "outbound", lambda e: e["props"]["url"]
        ), (domain, filters)
        assert links(api, site_id, "downloads", filters=json.dumps(filters), **RANGE) == data.counted(
            kept, "download", lambda e: e["props"]["url"]
        ), (domain, filters)
    assert kept_some and dropped_some, filters  # each filter keeps some events and drops others


def _shifted(domain: str, tz: str) -> list[dict[str, Any]]:
    rows = with_dimensions(data.generate(domain, seed=47) + midnight_sessions(domain, tz, seed=17))
    for e in rows:
        e["timestamp"] = data.ch(data.ts(e) - SHIFT)
        e["event_id"] = f"{e['event_id']}-shifted"
    return rows


def _scope(api: Api, domain: str, tz: str, filters: list[list[str]]) -> Scope:
    first, last = data.FIRST_DAY - SHIFT, data.LAST_DAY - SHIFT
    rng = resolve("custom", tz, date_from=first.isoformat(), date_to=last.isoformat())
    return Scope(QueryRunner(api.store), domain, rng, parse_filters(json.dumps(filters)))


def _expected(rows: list[dict[str, Any]], domain: str, tz: str, filters: list[list[str]]) -> dict[str, Any]:
    first: date = data.FIRST_DAY - SHIFT
    last: date = data.LAST_DAY - SHIFT
    return data.engagement(data.select(rows, domain, tz, first=first, last=last, pred=keeps(filters)))


def _report(scope: Scope) -> dict[str, Any]:
    return {r["page"]: r for r in engagement.engagement(scope, limit=100)["rows"]}


def test_a_month_in_one_part_is_read_as_it_is_and_a_later_copy_is_counted_once(
    api: Api, stopped: None
) -> None:
    domain, tz = "late.engraw", "Europe/Berlin"
    rows = _shifted(domain, tz)
    api.store.insert_rows("events", rows + rows[::5])  # copies in the same insert: collapsed
    filters = [["page", "not_matches", "^/blog"]]
    scope = _scope(api, domain, tz, filters)
    want = _expected(rows, domain, tz, filters)
    params = raw_dashboard.DashboardParams()
    sql = engagement.raw_sql(scope, params, "ORDER BY page")
    assert params.parts is not None and not any(
        a <= int(data.ts(e).timestamp()) < b for e in rows for a, b in params.windows
    )  # one part in the month: no window over any of its rows
    assert _report(scope) == want
    # copies arrive after the parts were read, in a part of their own outside the windows read
    api.store.insert_rows("events", rows[::3])
    stale = {r["page"]: r for r in scope.run(sql, params)}
    assert sum(r["pageviews"] for r in stale.values()) > sum(r["pageviews"] for r in want.values())
    again = {r["page"]: engagement._row(r) for r in raw_events.run(scope, sql, params)}
    assert again == want
    assert _report(scope) == want  # read afresh, the copies' part now has a window
    kept = data.select(
        rows, domain, tz, first=data.FIRST_DAY - SHIFT, last=data.LAST_DAY - SHIFT, pred=keeps(filters)
    )
    for report, kind in ((content.outbound, "outbound"), (content.downloads, "download")):
        got = {r["url" if kind == "outbound" else "file"]: r for r in report(scope, limit=100)["rows"]}
        count = "clicks" if kind == "outbound" else "downloads"
        assert {k: (r[count], r["visitors"]) for k, r in got.items()} == data.counted(
            kept, kind, lambda e: e["props"]["url"]
        )
