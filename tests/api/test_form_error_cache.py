"""The forms and errors reports' per-day caches (`query/form_cache.py`, `query/error_cache.py`) give exactly
what the raw events give, and both equal the Python computations `insights_dataset.forms` / `errors`.

Each site holds `insights_dataset`'s generated events plus, one second before and at each local midnight
(from the day before the range to the day after it), a form submission and an error by returning visitors,
each midnight on its own page and browser (so a form and an error group have more pages and browsers than
the `MAX_LISTED` the reports list), and a client-retry copy of some events, in three zones (whole-hour DST
inside the range, a :30 offset). The reports are asked without a filter (the cache) and with a filter every
event passes (the raw events). Then late events and a replayed batch arrive and the changed day is rebuilt;
an import's `ReportCache.changed` rebuilds at once; a long first build runs in the background.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.query import error_cache, form_cache
from pixel.server.api.query.report_cache import ReportCache
from tests.api import insights_dataset as data
from tests.api.conftest import Api, add_site, report_cache
from tests.api.conftest import report as get
from tests.api.test_engagement_cache import event

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.forms": "Europe/Berlin",
    "newyork.forms": "America/New_York",  # DST on 10 March, inside the range
    "kolkata.forms": "Asia/Kolkata",
}
RANGE = {"period": "custom", "from": data.FIRST_DAY.isoformat(), "to": data.LAST_DAY.isoformat()}
# A filter every event passes that no cache carries: the raw path, same rows.
EVERYTHING = json.dumps([["region", "not_contains", "never-in-any-region"]])
DAYS = (data.LAST_DAY - data.FIRST_DAY).days + 1
BUILDS = {"forms": "form_submits_builds", "errors": "error_groups_builds"}
Sites = dict[str, tuple[int, str, list[dict[str, Any]]]]


def midnight_events(site: str, tz: str) -> list[dict[str, Any]]:
    """A submission of form ('edge', '') and a 'midnight' error one second before and at each local
    midnight, by a few returning visitors, on page /m<i> with browser B<i>."""
    zone = ZoneInfo(tz)
    out: list[dict[str, Any]] = []
    for i in range(-1, DAYS + 2):
        day = data.FIRST_DAY + timedelta(days=i)
        m = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        for j, t in enumerate((m - timedelta(seconds=1), m)):
            n = 4 * (i + 1) + 2 * j
            s = f"r{(i + j) % 4}-m{i}-{j}"
            page, browser = f"/m{i + 1:02d}", f"B{i + 1:02d}"
            out.append(
                event(site, n, t, s, "form_submit", page, browser=browser, props={"id": "edge", "action": ""})
            )
            out.append(
                event(
                    site,
                    n + 1,
                    t,
                    s,
                    "error",
                    page,
                    browser=browser,
                    error_message="midnight",
                    error_source="https://x.example/m.js",
                    error_line=j,
                )
            )
    return out


@pytest.fixture(scope="module")
def sites(api: Api) -> Iterator[Sites]:
    """domain -> (site id, zone, its events)."""
    out = {}
    for domain, tz in ZONES.items():
        rows = data.generate(domain) + midnight_events(domain, tz)
        site_id = add_site(api, domain, tz, rows)
        api.store.insert_rows(
            "events", rows[::7]
        )  # client-retry copies (same event ids): never counted twice
        out[domain] = (site_id, tz, rows)
    yield out


def forms(api: Api, site_id: int, **params: Any) -> dict[tuple[str, str], dict[str, Any]]:
    rows = get(api, site_id, "forms", limit=100, **params)["rows"]
    return {(r["form_id"], r["action"]): r for r in rows}


def errors(api: Api, site_id: int, **params: Any) -> dict[tuple[str, str, int], dict[str, Any]]:
    rows = get(api, site_id, "errors", limit=100, **params)["rows"]
    return {(r["message"], r["source"], r["line"]): r for r in rows}


def series(api: Api, site_id: int, interval: str, **params: Any) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = get(api, site_id, "errors/timeseries", interval=interval, **params)[
        "points"
    ]
    return points


def expected_series(events: list[dict[str, Any]], tz: str, interval: str) -> dict[str, tuple[int, int]]:
    """bucket -> (error events, visitors with an error), buckets from the local day."""
    per: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event_name"] == "error":
            day = date.fromisoformat(data.local_day(e, tz))
            if interval == "week":
                day -= timedelta(days=day.weekday())
            elif interval == "month":
                day = day.replace(day=1)
            per.setdefault(day.isoformat(), []).append(e)
    return {b: (len(evs), len({e["visitor_id"] for e in evs})) for b, evs in per.items()}


def count(api: Api, table: str, site: str) -> int:
    return int(api.store.scalar(f"SELECT count() FROM {table} WHERE site = {{s:String}}", {"s": site}))


def check_all(
    api: Api, site_id: int, domain: str, tz: str, rows: list[dict[str, Any]], first: date, last: date
) -> None:
    """Cached (no filter) and raw (a filter every event passes) answers equal Python's over first..last."""
    params = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
    evs = data.select(rows, domain, tz, first, last)
    want_forms, want_errors = data.forms(evs), data.errors(evs)
    assert forms(api, site_id, **params) == want_forms, (domain, first, last)
    assert forms(api, site_id, filters=EVERYTHING, **params) == want_forms, (domain, first, last)
    assert errors(api, site_id, **params) == want_errors, (domain, first, last)
    assert errors(api, site_id, filters=EVERYTHING, **params) == want_errors, (domain, first, last)
    for interval in ("day", "week", "month"):
        want = expected_series(evs, tz, interval)
        for filters in ({}, {"filters": EVERYTHING}):
            points = series(api, site_id, interval, **params, **filters)
            got = {p["bucket"]: (p["errors"], p["visitors"]) for p in points if p["errors"]}
            assert got == want, (domain, interval, filters)


def test_cache_equals_raw_equals_python_in_three_zones(api: Api, sites: Sites) -> None:
    for domain, (site_id, tz, rows) in sites.items():
        check_all(api, site_id, domain, tz, rows, data.FIRST_DAY, data.LAST_DAY)
        for table in BUILDS.values():
            assert count(api, table, domain) == DAYS, (domain, table)  # the caches answered
        # one day, and a range inside the built days, read from the same builds
        check_all(api, site_id, domain, tz, rows, data.FIRST_DAY, data.FIRST_DAY)
        check_all(api, site_id, domain, tz, rows, data.FIRST_DAY + timedelta(days=3), data.LAST_DAY)
        for table in BUILDS.values():
            assert count(api, table, domain) == DAYS, (domain, table)  # read, not built again
    # more pages and browsers than listed; a visitor on many days counts once over the range
    site_id, _tz, _rows = sites["berlin.forms"]
    edge = forms(api, site_id, **RANGE)[("edge", "")]
    assert edge["submissions"] == 2 * DAYS and edge["visitors"] == 4
    assert edge["page_count"] == DAYS + 1 and edge["pages"] == [f"/m{i:02d}" for i in range(1, 11)]
    late = errors(api, site_id, **RANGE)[("midnight", "https://x.example/m.js", 0)]
    assert late["count"] == DAYS and late["browser_count"] == DAYS
    assert late["browsers"] == [f"B{i:02d}" for i in range(2, 12)]


def test_sorted_and_paged_from_the_cache(api: Api, sites: Sites) -> None:
    site_id, _tz, _rows = sites["kolkata.forms"]
    for report, sorts in (
        ("forms", ("submissions", "visitors", "form")),
        ("errors", ("count", "visitors", "last_seen", "first_seen", "message")),
    ):
        for sort in sorts:
            for order in ("asc", "desc"):
                params = {**RANGE, "sort": sort, "order": order, "limit": 2, "page": 2}
                cached = get(api, site_id, report, **params)
                raw = get(api, site_id, report, filters=EVERYTHING, **params)
                assert cached["rows"] == raw["rows"] and len(cached["rows"]) == 2, (report, sort, order)
                assert cached["total_rows"] == raw["total_rows"] > 2


def late_events(domain: str, tz: str, day: date, base: int) -> list[dict[str, Any]]:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    form = {"id": "late", "action": "/go"}
    return [
        event(domain, base + 1, noon, "v1-late", "form_submit", "/late", browser="Chrome", props=form),
        event(domain, base + 2, noon, "v2-late", "form_submit", "/late", browser="Chrome", props=form),
        event(domain, base + 3, noon, "v2-late", "error", "/late", browser="Edge", error_message="late"),
    ]


def test_a_day_changed_by_late_events_and_a_replayed_batch_is_rebuilt(api: Api, sites: Sites) -> None:
    domain = "newyork.forms"
    site_id, tz, rows = sites[domain]
    forms(api, site_id, **RANGE)  # built
    errors(api, site_id, **RANGE)
    before = {table: count(api, table, domain) for table in BUILDS.values()}
    day = data.FIRST_DAY + timedelta(days=5)
    late = late_events(domain, tz, day, 90_000)
    api.store.insert_rows("events", late)
    api.store.insert_rows("events", late)  # the same batch replayed: never counted twice
    rows.extend(late)
    check_all(api, site_id, domain, tz, rows, data.FIRST_DAY, data.LAST_DAY)
    assert forms(api, site_id, **RANGE)[("late", "/go")]["submissions"] == 2
    assert errors(api, site_id, **RANGE)[("late", "", 0)]["browsers"] == ["Edge"]
    for table in BUILDS.values():
        assert count(api, table, domain) == before[table] + 1, table  # that day only
        newest = api.store.query(
            f"SELECT day FROM {table} WHERE site = {{s:String}} ORDER BY build DESC LIMIT 1", {"s": domain}
        ).rows[0][0]
        assert str(newest) == day.isoformat()


def test_an_import_told_by_changed_rebuilds_without_the_wait(
    api: Api, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    domain = "berlin.forms"
    site_id, tz, rows = sites[domain]
    cache = report_cache(api)
    forms(api, site_id, **RANGE)
    errors(api, site_id, **RANGE)
    monkeypatch.setattr(cache, "rebuild_min_seconds", 3600.0)  # a live stream's rows wait that long
    day = data.FIRST_DAY + timedelta(days=2)
    imported = late_events(domain, tz, day, 91_000)
    api.store.insert_rows("events", imported)
    assert ("late", "/go") not in forms(api, site_id, **RANGE)  # the day's build is younger than the wait
    cache.changed(domain)  # what an import (or its undo) tells the report cache
    rows.extend(imported)
    check_all(api, site_id, domain, tz, rows, data.FIRST_DAY, data.LAST_DAY)
    assert forms(api, site_id, **RANGE)[("late", "/go")]["visitors"] == 2


def test_a_long_first_build_runs_in_the_background(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    domain, tz = "cold.forms", "Asia/Kolkata"
    rows = data.generate(domain, seed=23) + midnight_events(domain, tz)
    site_id = add_site(api, domain, tz, rows)
    evs = data.select(rows, domain, tz)
    monkeypatch.setattr(report_cache(api), "background_min_rows", 10)
    for report, made, want in (
        (
            "forms",
            form_cache.for_cache(report_cache(api)),
            lambda: forms(api, site_id, **RANGE) == data.forms(evs),
        ),
        (
            "errors",
            error_cache.for_cache(report_cache(api)),
            lambda: errors(api, site_id, **RANGE) == data.errors(evs),
        ),
    ):
        started: list[Any] = []
        monkeypatch.setattr(made, "_start", started.append)  # the worker is run by hand below
        assert want()  # the raw events, nothing built on the request
        assert count(api, BUILDS[report], domain) == 0 and len(started) == 1
        made.build_pending()
        assert count(api, BUILDS[report], domain) == DAYS  # one build per day
        assert want()
        assert count(api, BUILDS[report], domain) == DAYS and len(started) == 1


def test_one_cache_each_per_report_cache(api: Api) -> None:
    cache = report_cache(api)
    for module in (form_cache, error_cache):
        assert module.for_cache(cache) is module.for_cache(cache)  # type: ignore[attr-defined]
        assert module.for_cache(ReportCache(cache.runner)) is not module.for_cache(cache)  # type: ignore[attr-defined]
    assert form_cache.for_cache(cache) is not error_cache.for_cache(cache)  # type: ignore[comparison-overlap]
