"""The engagement report's per-day cache (`query/engagement_cache.py`) gives exactly what the raw events give,
and both equal the Python computation of `insights_dataset.engagement`.

Each site holds `insights_dataset`'s generated events plus sessions across every local midnight of the range
(a page viewed before midnight and scrolled or engaged after it, a bounce whose engagement comes after
midnight, two pageviews at one instant, sessions across the range's first and last midnight) and a
client-retry copy of some events, in three zones (whole-hour DST inside the range, a :30 offset). The report
is asked without a filter (the cache) and with a filter every event passes (the raw events). Then late
events arrive and the changed day is rebuilt; a long first build runs in the background.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.query import engagement_cache
from pixel.server.api.query.report_cache import ReportCache
from tests.api import insights_dataset as data
from tests.api.conftest import RAW_ONLY, Api, report_cache

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.engagement": "Europe/Berlin",
    "newyork.engagement": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.engagement": "Asia/Kolkata",
}
RANGE = {"period": "custom", "from": data.FIRST_DAY.isoformat(), "to": data.LAST_DAY.isoformat()}
# forces the raw path, same rows
EVERYTHING = json.dumps(RAW_ONLY)
DAYS = (data.LAST_DAY - data.FIRST_DAY).days + 1


def event(
    site: str, n: int, t: datetime, session: str, name: str, path: str, **fields: Any
) -> dict[str, Any]:
    return {
        "site": site,
        "host": site,
        "visitor_id": session.split("-")[0],
        "session_id": session,
        "timestamp": data.ch(t),
        "received_at": data.ch(t),
        "event_id": f"{site}-m{n:05d}",
        "event_name": name,
        "path": path,
        "url": f"https://{site}{path}",
        "country": "DE",
        "is_bot": 0,
        "props": {},
        **fields,
    }


def midnight_sessions(site: str, tz: str, seed: int = 5) -> list[dict[str, Any]]:
    """Sessions across each local midnight from the day before the range to the day after it."""
    rnd = random.Random(seed)
    zone = ZoneInfo(tz)
    out: list[dict[str, Any]] = []
    n = 0

    def add(t: datetime, session: str, name: str, path: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        out.append(event(site, n, t, session, name, path, **fields))

    for i in range(-1, DAYS + 2):
        day = data.FIRST_DAY + timedelta(days=i)
        m = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        a, b, c = (rnd.choice(data.PAGES) for _ in range(3))
        s = f"w{i % 7}-a{i}"  # a page viewed before midnight, scrolled and engaged after it; another page after
        add(m - timedelta(minutes=rnd.randint(2, 25)), s, "pageview", a)
        add(m + timedelta(minutes=3), s, "scroll", a, scroll_depth=rnd.choice([10, 25, 60, 100]))
        add(m + timedelta(minutes=4), s, "engagement", a, engaged_ms=rnd.randint(1, 60_000))
        add(m + timedelta(minutes=6), s, "pageview", b)
        add(m + timedelta(minutes=7), s, "engagement", b, engaged_ms=rnd.randint(1, 60_000))
        s = f"w{i % 5}-b{i}"  # a bounce: its one pageview before midnight, its engagement after
        add(m - timedelta(minutes=1), s, "pageview", c)
        add(m + timedelta(minutes=2), s, "engagement", c, engaged_ms=rnd.randint(1, 60_000))
        s = f"w{i % 3}-c{i}"  # two pageviews at one instant before midnight (entry: the least path), one after
        t = m - timedelta(seconds=rnd.randint(5, 600))
        add(t, s, "pageview", "/pricing")
        add(t, s, "pageview", "/docs")
        add(m + timedelta(seconds=rnd.randint(1, 600)), s, "pageview", a)
    return out


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for domain, tz in ZONES.items():
        rows = data.generate(domain) + midnight_sessions(domain, tz)
        api.store.insert_rows("events", rows)
        api.store.insert_rows(
            "events", rows[::7]
        )  # client-retry copies (same event ids): never counted twice
        site_id = meta.insert("sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0})
        out[domain] = (site_id, tz, rows)
    yield out


def rows_of(api: Api, site_id: int, **params: Any) -> dict[str, dict[str, Any]]:
    r = api.client.get(
        f"/api/sites/{site_id}/reports/engagement", params={"limit": 100, **params}, headers=api.admin
    )
    assert r.status_code == 200, r.text
    return {row["page"]: row for row in r.json()["rows"]}


def count(api: Api, table: str, site: str) -> int:
    return int(api.store.scalar(f"SELECT count() FROM {table} WHERE site = {{s:String}}", {"s": site}))


def test_cache_equals_raw_equals_python_in_three_zones(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    for domain, (site_id, tz, rows) in sites.items():
        expected = data.engagement(data.select(rows, domain, tz))
        cached = rows_of(api, site_id, **RANGE)
        assert cached == expected, domain
        assert count(api, "page_engagement_builds", domain) == DAYS, domain  # the cache answered
        # the sessions across midnight were cached apart
        assert count(api, "page_engagement_edges", domain) > 0, domain
        assert rows_of(api, site_id, filters=EVERYTHING, **RANGE) == expected, domain
        # one day, and a range inside the built days, read from the same builds
        for first, last in (
            (data.FIRST_DAY, data.FIRST_DAY),
            (data.FIRST_DAY + timedelta(days=3), data.LAST_DAY),
        ):
            params = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
            assert rows_of(api, site_id, **params) == data.engagement(
                data.select(rows, domain, tz, first, last)
            )
        assert count(api, "page_engagement_builds", domain) == DAYS, domain  # read, not built again
    # the figures are not trivial: the quantiles, scroll shares and both rates vary across pages
    site_id, tz, _ = sites["newyork.engagement"]
    values = rows_of(api, site_id, **RANGE).values()
    assert (
        len({v["median_engaged_ms"] for v in values}) > 2 and len({v["p75_engaged_ms"] for v in values}) > 2
    )
    assert len({v["scroll"]["reached_50"] for v in values}) > 2
    assert len({v["bounce_rate"] for v in values}) > 2 and len({v["exit_rate"] for v in values}) > 2


def test_sorted_and_paged_from_the_cache(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    site_id, tz, rows = sites["kolkata.engagement"]
    expected = data.engagement(data.select(rows, "kolkata.engagement", tz))
    for sort in ("median_engaged_ms", "bounce_rate", "exit_rate", "scroll_75", "page"):
        for order in ("asc", "desc"):
            params = {**RANGE, "sort": sort, "order": order}
            r = api.client.get(
                f"/api/sites/{site_id}/reports/engagement",
                params={**params, "limit": 2, "page": 2},
                headers=api.admin,
            )
            raw = api.client.get(
                f"/api/sites/{site_id}/reports/engagement",
                params={**params, "limit": 2, "page": 2, "filters": EVERYTHING},
                headers=api.admin,
            )
            cached_body, raw_body = r.json(), raw.json()
            assert cached_body["rows"] == raw_body["rows"] and len(cached_body["rows"]) == 2, (sort, order)
            assert cached_body["total_rows"] == raw_body["total_rows"] == len(expected)


def test_a_day_changed_by_late_events_is_rebuilt(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    domain = "berlin.engagement"
    site_id, tz, rows = sites[domain]
    rows_of(api, site_id, **RANGE)  # built
    before = count(api, "page_engagement_builds", domain)
    zone = ZoneInfo(tz)
    day = data.FIRST_DAY + timedelta(days=5)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone).astimezone(UTC)
    late = [
        event(domain, 90_001, noon, "late-s1", "pageview", "/late"),
        event(
            domain, 90_002, noon + timedelta(seconds=30), "late-s1", "engagement", "/late", engaged_ms=4321
        ),
        event(domain, 90_003, noon + timedelta(seconds=40), "late-s1", "scroll", "/late", scroll_depth=80),
        event(domain, 90_004, noon + timedelta(minutes=1), "late-s1", "pageview", "/pricing"),
    ]
    api.store.insert_rows("events", late)
    api.store.insert_rows("events", late[:2])  # and a retried copy of two of them
    rows.extend(late)
    expected = data.engagement(data.select(rows, domain, tz))
    got = rows_of(api, site_id, **RANGE)
    assert got == expected
    assert got["/late"]["median_engaged_ms"] == 4321 and got["/late"]["scroll"]["reached_75"] == 100.0
    assert count(api, "page_engagement_builds", domain) == before + 1  # that day only
    newest = api.store.query(
        "SELECT day FROM page_engagement_builds WHERE site = {s:String} ORDER BY build DESC LIMIT 1",
        {"s": domain},
    ).rows[0][0]
    assert str(newest) == day.isoformat()
    assert rows_of(api, site_id, filters=EVERYTHING, **RANGE) == expected


def test_a_long_first_build_runs_in_the_background(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixel.server.api.app import open_meta

    domain, tz = "cold.engagement", "Asia/Kolkata"
    rows = data.generate(domain, seed=23) + midnight_sessions(domain, tz, seed=9)
    api.store.insert_rows("events", rows)
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": domain, "name": domain, "timezone": tz, "created_at": 0.0}
    )
    cache = engagement_cache.for_cache(report_cache(api))
    started: list[Any] = []
    monkeypatch.setattr(cache, "_start", started.append)  # the worker is run by hand below
    monkeypatch.setattr(report_cache(api), "background_min_rows", 10)
    expected = data.engagement(data.select(rows, domain, tz))
    assert rows_of(api, site_id, **RANGE) == expected  # the raw events, nothing built on the request
    assert count(api, "page_engagement_builds", domain) == 0 and len(started) == 1
    assert rows_of(api, site_id, **RANGE) == expected
    assert len(started) == 1  # one worker for the whole queue
    cache.build_pending()
    assert count(api, "page_engagement_builds", domain) == DAYS  # one build per day
    assert rows_of(api, site_id, **RANGE) == expected
    assert count(api, "page_engagement_builds", domain) == DAYS and len(started) == 1


def test_one_engagement_cache_per_report_cache(api: Api) -> None:
    cache = report_cache(api)
    assert engagement_cache.for_cache(cache) is engagement_cache.for_cache(cache)
    other = ReportCache(cache.runner)
    assert engagement_cache.for_cache(other) is not engagement_cache.for_cache(cache)
