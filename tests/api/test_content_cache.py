"""The outbound-link and download reports' per-day cache (`query/content_cache.py`) gives exactly what the raw
events give, and both equal the Python count of `insights_dataset.counted`.

Each site holds `insights_dataset`'s generated events plus clicks one second before and at each local
midnight (from the day before the range to the day after it, by visitors who click on many days) and a
client-retry copy of some events, in three zones (whole-hour DST inside the range, a :30 offset). The
reports are asked without a filter (the cache) and with a filter every event passes (the raw events). Then
late events and a replayed batch arrive and the changed day is rebuilt; a long first build runs in the
background.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.query import content_cache
from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.report_cache import ReportCache
from tests.api import insights_dataset as data
from tests.api.conftest import RAW_ONLY, Api, add_site, report_cache
from tests.api.test_engagement_cache import event

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.links": "Europe/Berlin",
    "newyork.links": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.links": "Asia/Kolkata",
}
RANGE = {"period": "custom", "from": data.FIRST_DAY.isoformat(), "to": data.LAST_DAY.isoformat()}
# Filters every event passes that no cache answers: the raw path, same rows.
EVERYTHING = json.dumps(RAW_ONLY)
DAYS = (data.LAST_DAY - data.FIRST_DAY).days + 1
# report -> (event name, the row's link column, its count column)
REPORTS = {"outbound": ("outbound", "url", "clicks"), "downloads": ("download", "file", "downloads")}


def midnight_clicks(site: str, tz: str) -> list[dict[str, Any]]:
    """A click of each kind one second before and at each local midnight, by a few returning visitors."""
    zone = ZoneInfo(tz)
    out: list[dict[str, Any]] = []
    for i in range(-1, DAYS + 2):
        day = data.FIRST_DAY + timedelta(days=i)
        m = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        for j, t in enumerate((m - timedelta(seconds=1), m)):
            n = 4 * (i + 1) + 2 * j
            s = f"r{(i + j) % 4}-m{i}-{j}"
            out.append(event(site, n, t, s, "outbound", "/", props={"url": f"https://edge.example/{j}"}))
            out.append(
                event(site, n + 1, t, s, "download", "/", props={"url": f"https://{site}/f{i % 3}.pdf"})
            )
    return out


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    out = {}
    for domain, tz in ZONES.items():
        rows = data.generate(domain) + midnight_clicks(domain, tz)
        site_id = add_site(api, domain, tz, rows)
        api.store.insert_rows(
            "events", rows[::7]
        )  # client-retry copies (same event ids): never counted twice
        out[domain] = (site_id, tz, rows)
    yield out


def got(api: Api, site_id: int, report: str, **params: Any) -> dict[str, tuple[int, int]]:
    _, link, clicks = REPORTS[report]
    r = api.client.get(
        f"/api/sites/{site_id}/reports/{report}", params={"limit": 100, **params}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    return {row[link]: (row[clicks], row["visitors"]) for row in r.json()["rows"]}


def expected(
    rows: list[dict[str, Any]], domain: str, tz: str, report: str, first: date, last: date
) -> dict[str, tuple[int, int]]:
    return data.counted(
        data.select(rows, domain, tz, first, last), REPORTS[report][0], lambda e: e["props"]["url"]
    )


def count(api: Api, table: str, site: str) -> int:
    return int(api.store.scalar(f"SELECT count() FROM {table} WHERE site = {{s:String}}", {"s": site}))


def test_cache_equals_raw_equals_python_in_three_zones(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    for domain, (site_id, tz, rows) in sites.items():
        for report in REPORTS:
            want = expected(rows, domain, tz, report, data.FIRST_DAY, data.LAST_DAY)
            assert len(want) > 2 and len({v for _, v in want.values()}) > 1, (domain, report)
            assert got(api, site_id, report, **RANGE) == want, (domain, report)
            assert count(api, "content_links_builds", domain) == DAYS, domain  # the cache answered
            assert got(api, site_id, report, filters=EVERYTHING, **RANGE) == want, (domain, report)
            # one day, and a range inside the built days, read from the same builds
            for first, last in (
                (data.FIRST_DAY, data.FIRST_DAY),
                (data.FIRST_DAY + timedelta(days=3), data.LAST_DAY),
            ):
                params = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
                assert got(api, site_id, report, **params) == expected(rows, domain, tz, report, first, last)
        assert count(api, "content_links_builds", domain) == DAYS, domain  # read, not built again
    # a visitor who clicked one link on several days counts once over the range, not once a day
    site_id, tz, rows = sites["berlin.links"]
    edge = got(api, site_id, "outbound", **RANGE)["https://edge.example/0"]
    assert edge[0] == DAYS and edge[1] == 4


def test_sorted_and_paged_from_the_cache(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    site_id, _tz, _rows = sites["kolkata.links"]
    for report, (_, link, clicks) in REPORTS.items():
        for sort in (clicks, "visitors", link):
            for order in ("asc", "desc"):
                params = {**RANGE, "sort": sort, "order": order, "limit": 2, "page": 2}
                url = f"/api/sites/{site_id}/reports/{report}"
                cached = api.client.get(url, params=params, headers=api.admin).json()
                raw = api.client.get(url, params={**params, "filters": EVERYTHING}, headers=api.admin).json()
                assert cached["rows"] == raw["rows"] and len(cached["rows"]) == 2, (report, sort, order)
                assert cached["total_rows"] == raw["total_rows"] > 2


def test_a_day_changed_by_late_events_and_a_replayed_batch_is_rebuilt(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    domain = "newyork.links"
    site_id, tz, rows = sites[domain]
    got(api, site_id, "outbound", **RANGE)  # built
    before = count(api, "content_links_builds", domain)
    day = data.FIRST_DAY + timedelta(days=5)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    late = [
        event(domain, 90_001, noon, "v1-late", "outbound", "/", props={"url": "https://late.example/"}),
        event(domain, 90_002, noon, "v2-late", "outbound", "/", props={"url": "https://late.example/"}),
        event(domain, 90_003, noon, "v2-late", "download", "/", props={"url": "https://late.example/a.zip"}),
    ]
    api.store.insert_rows("events", late)
    api.store.insert_rows("events", late)  # the same batch replayed: never counted twice
    rows.extend(late)
    for report in REPORTS:
        want = expected(rows, domain, tz, report, data.FIRST_DAY, data.LAST_DAY)
        assert got(api, site_id, report, **RANGE) == want
        assert got(api, site_id, report, filters=EVERYTHING, **RANGE) == want
    assert got(api, site_id, "outbound", **RANGE)["https://late.example/"] == (2, 2)
    assert got(api, site_id, "downloads", **RANGE)["https://late.example/a.zip"] == (1, 1)
    assert count(api, "content_links_builds", domain) == before + 1  # that day only
    newest = api.store.query(
        "SELECT day FROM content_links_builds WHERE site = {s:String} ORDER BY build DESC LIMIT 1",
        {"s": domain},
    ).rows[0][0]
    assert str(newest) == day.isoformat()


def test_a_long_first_build_runs_in_the_background(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    domain, tz = "cold.links", "Asia/Kolkata"
    rows = data.generate(domain, seed=23) + midnight_clicks(domain, tz)
    site_id = add_site(api, domain, tz, rows)
    cache = content_cache.for_cache(report_cache(api))
    started: list[Any] = []
    monkeypatch.setattr(cache, "_start", started.append)  # the worker is run by hand below
    monkeypatch.setattr(report_cache(api), "background_min_rows", 10)
    want = expected(rows, domain, tz, "outbound", data.FIRST_DAY, data.LAST_DAY)
    assert got(api, site_id, "outbound", **RANGE) == want  # the raw events, nothing built on the request
    assert count(api, "content_links_builds", domain) == 0 and len(started) == 1
    cache.build_pending()
    assert count(api, "content_links_builds", domain) == DAYS  # one build per day
    assert got(api, site_id, "outbound", **RANGE) == want
    assert count(api, "content_links_builds", domain) == DAYS and len(started) == 1


def test_one_content_cache_per_report_cache(api: Api) -> None:
    cache = report_cache(api)
    assert content_cache.for_cache(cache) is content_cache.for_cache(cache)
    assert content_cache.for_cache(ReportCache(cache.runner)) is not content_cache.for_cache(cache)
    with pytest.raises(ValueError, match="kind must be one of"):
        content_cache.links_sql(Days(data.FIRST_DAY, data.LAST_DAY), "x", "url", "clicks")
