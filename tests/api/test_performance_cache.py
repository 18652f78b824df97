"""The performance reports' per-day cache (`query/performance_cache.py`) gives exactly what the raw events
give, and both equal the Python computation of `insights_dataset.vitals`.

Each site holds `insights_dataset`'s generated events (a fifth of the metrics unmeasured) plus web vitals
one second before and at each local midnight (from the day before the range to the day after it), on a
page where LCP is never measured (its p75 None, sorted last), and a client-retry copy of some events, in
three zones (whole-hour DST inside the range, a :30 offset). The reports are asked without a filter (the
cache) and with a filter every event passes (the raw events). Then late events and a replayed batch arrive
and the changed day is rebuilt; a long first build runs in the background.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.query import performance_cache
from pixel.server.api.query.report_cache import ReportCache
from tests.api import insights_dataset as data
from tests.api.conftest import Api, add_site, report_cache
from tests.api.conftest import report as get
from tests.api.test_engagement_cache import event

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.vitals": "Europe/Berlin",
    "newyork.vitals": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.vitals": "Asia/Kolkata",
}
RANGE = {"period": "custom", "from": data.FIRST_DAY.isoformat(), "to": data.LAST_DAY.isoformat()}
# A filter every event passes that no cache carries: the raw path, same rows.
EVERYTHING = json.dumps([["region", "not_contains", "never-in-any-region"]])
DAYS = (data.LAST_DAY - data.FIRST_DAY).days + 1


def vitals(n: int, cls: float, with_lcp: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"ttfb_ms": float(100 + n % 2000), "cls": cls, "inp_ms": float(50 + 37 * n % 700)}
    if with_lcp:
        out["lcp_ms"] = float(1000 + 131 * n % 4000)
    return {
        **out,
        **{
            f"{metric}_rating": data.rating(metric, out[column])
            for metric, (column, _, _) in data.VITALS.items()
            if column in out
        },
    }


def midnight_vitals(site: str, tz: str) -> list[dict[str, Any]]:
    """Web vitals one second before and at each local midnight; on /no-lcp, LCP never measured."""
    zone = ZoneInfo(tz)
    out: list[dict[str, Any]] = []
    for i in range(-1, DAYS + 2):
        day = data.FIRST_DAY + timedelta(days=i)
        m = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        for j, t in enumerate((m - timedelta(seconds=1), m)):
            n = 2 * (i + 1) + j
            path, lcp = ("/no-lcp", False) if j else ("/", True)
            device = ("desktop", "mobile", "tablet")[i % 3]
            cls = round(0.05 * (n % 7), 3)
            out.append(
                event(
                    site,
                    n,
                    t,
                    f"r{n % 4}-m{n}",
                    "web_vitals",
                    path,
                    device_type=device,
                    **vitals(n, cls, lcp),
                )
            )
    return out


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[dict[str, tuple[int, str, list[dict[str, Any]]]]]:
    """domain -> (site id, zone, its events)."""
    out = {}
    for domain, tz in ZONES.items():
        rows = data.generate(domain) + midnight_vitals(domain, tz)
        site_id = add_site(api, domain, tz, rows)
        api.store.insert_rows(
            "events", rows[::7]
        )  # client-retry copies (same event ids): never counted twice
        out[domain] = (site_id, tz, rows)
    yield out


def answers(api: Api, site_id: int, **params: Any) -> dict[str, Any]:
    """Every performance answer for the range of `params` (the series by day, week and month)."""
    out = {
        "overview": get(api, site_id, "performance", **params),
        "pages": get(api, site_id, "performance/pages", limit=100, **params)["rows"],
    }
    for interval in ("day", "week", "month"):
        out[interval] = get(api, site_id, "performance/timeseries", interval=interval, **params)["points"]
    return out


def count(api: Api, table: str, site: str) -> int:
    return int(api.store.scalar(f"SELECT count() FROM {table} WHERE site = {{s:String}}", {"s": site}))


def check_python(got: dict[str, Any], evs: list[dict[str, Any]], tz: str, first: date, last: date) -> None:
    overview = got["overview"]
    assert overview["overall"] == data.vitals(evs)
    assert {r.pop("device"): r for r in overview["by_device"]} == data.vitals_by(evs, "device_type")
    assert {r.pop("page"): r for r in got["pages"]} == data.vitals_by(evs, "path")
    assert [p["bucket"] for p in got["day"]] == data.days(first, last)
    for point in got["day"]:
        day = data.vitals([e for e in evs if data.local_day(e, tz) == point["bucket"]])
        assert point == {
            "bucket": point["bucket"],
            "samples": day["samples"],
            **{m: day[m]["p75"] for m in data.VITALS},
        }


def test_cache_equals_raw_equals_python_in_three_zones(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    for domain, (site_id, tz, rows) in sites.items():
        cached = answers(api, site_id, **RANGE)
        assert count(api, "page_vitals_builds", domain) == DAYS, domain  # the cache answered
        assert answers(api, site_id, filters=EVERYTHING, **RANGE) == cached, domain
        check_python(cached, data.select(rows, domain, tz), tz, data.FIRST_DAY, data.LAST_DAY)
        # one day, and a range inside the built days, read from the same builds
        for first, last in (
            (data.FIRST_DAY, data.FIRST_DAY),
            (data.FIRST_DAY + timedelta(days=3), data.LAST_DAY),
        ):
            params = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
            sub = answers(api, site_id, **params)
            assert sub == answers(api, site_id, filters=EVERYTHING, **params)
            check_python(sub, data.select(rows, domain, tz, first, last), tz, first, last)
        assert count(api, "page_vitals_builds", domain) == DAYS, domain  # read, not built again
    # a page whose LCP was never measured: p75 None, sorted last either way, as on the raw path
    site_id, _, _ = sites["berlin.vitals"]
    for order in ("asc", "desc"):
        params = {**RANGE, "sort": "lcp", "order": order, "limit": 100}
        rows = get(api, site_id, "performance/pages", **params)["rows"]
        assert rows[-1]["page"] == "/no-lcp" and rows[-1]["lcp"]["p75"] is None
        assert rows == get(api, site_id, "performance/pages", filters=EVERYTHING, **params)["rows"]


def test_a_day_changed_by_late_events_and_a_replayed_batch_is_rebuilt(
    api: Api, sites: dict[str, tuple[int, str, list[dict[str, Any]]]]
) -> None:
    domain = "kolkata.vitals"
    site_id, tz, rows = sites[domain]
    answers(api, site_id, **RANGE)  # built
    before = count(api, "page_vitals_builds", domain)
    day = data.FIRST_DAY + timedelta(days=5)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    late = [
        event(
            domain,
            90_000 + n,
            noon,
            f"v{n}-late",
            "web_vitals",
            "/late",
            device_type="tv",
            **vitals(n, 0.3, True),
        )
        for n in range(3)
    ]
    api.store.insert_rows("events", late)
    api.store.insert_rows("events", late)  # the same batch replayed: never counted twice
    rows.extend(late)
    cached = answers(api, site_id, **RANGE)
    assert answers(api, site_id, filters=EVERYTHING, **RANGE) == cached
    assert [d["samples"] for d in cached["overview"]["by_device"] if d["device"] == "tv"] == [3]
    check_python(cached, data.select(rows, domain, tz), tz, data.FIRST_DAY, data.LAST_DAY)
    assert count(api, "page_vitals_builds", domain) == before + 1  # that day only
    newest = api.store.query(
        "SELECT day FROM page_vitals_builds WHERE site = {s:String} ORDER BY build DESC LIMIT 1",
        {"s": domain},
    ).rows[0][0]
    assert str(newest) == day.isoformat()


def test_a_long_first_build_runs_in_the_background(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    domain, tz = "cold.vitals", "America/New_York"
    rows = data.generate(domain, seed=23) + midnight_vitals(domain, tz)
    site_id = add_site(api, domain, tz, rows)
    cache = performance_cache.for_cache(report_cache(api))
    started: list[Any] = []
    monkeypatch.setattr(cache, "_start", started.append)  # the worker is run by hand below
    monkeypatch.setattr(report_cache(api), "background_min_rows", 10)
    want = data.vitals(data.select(rows, domain, tz))
    assert get(api, site_id, "performance", **RANGE)["overall"] == want  # raw events, nothing built
    assert count(api, "page_vitals_builds", domain) == 0 and len(started) == 1
    cache.build_pending()
    assert count(api, "page_vitals_builds", domain) == DAYS  # one build per day
    assert get(api, site_id, "performance", **RANGE)["overall"] == want
    assert count(api, "page_vitals_builds", domain) == DAYS and len(started) == 1


def test_one_performance_cache_per_report_cache(api: Api) -> None:
    cache = report_cache(api)
    assert performance_cache.for_cache(cache) is performance_cache.for_cache(cache)
    assert performance_cache.for_cache(ReportCache(cache.runner)) is not performance_cache.for_cache(cache)
