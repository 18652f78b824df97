"""The one-request dashboard (`/reports/dashboard`) gives exactly the individual reports' numbers.

On the generated sets of test_daycache (sessions across local midnights, sessions without pageviews,
bots, three zones, DST): every part of the dashboard is compared with the report it stands for, answered
from the report cache (no filter), from the raw events (a filter every event passes), with week and
month buckets, with the previous period's series, with dimensions the cache does not hold. Also: the
cached dashboard takes one query, and bad input gives the same errors as the individual reports.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests.api.conftest import VIEWER_PASSWORD, Api
from tests.api.test_daycache import EVERYTHING, RANGE, ZONES, builds, generate, get, pin_clock

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")

ALL_METRICS = "visitors,pageviews,events,sessions,bounce_rate,visit_duration,views_per_session"
STANDARD = ["page", "entry_page", "referrer", "source", "country", "browser", "os", "device"]
# cached ones, the session kinds, and some the cache does not hold (city, a property): read raw
MANY = STANDARD + ["exit_page", "event", "channel", "utm_campaign", "city", "prop:plan"]


@pytest.fixture(scope="module")
def sites(api: Api) -> dict[str, int]:
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for site, tz in ZONES.items():
        out[site] = meta.insert("sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0})
        api.store.insert_rows("events", generate(site, tz))
    return out


def previous_range(body: dict[str, Any]) -> dict[str, str]:
    first, last = date.fromisoformat(RANGE["from"]), date.fromisoformat(RANGE["to"])
    days = (last - first).days + 1
    return {
        "period": "custom",
        "from": (first - timedelta(days=days)).isoformat(),
        "to": (first - timedelta(days=1)).isoformat(),
    }


def individual(
    api: Api,
    site_id: int,
    dims: list[str],
    *,
    interval: str,
    metrics: str,
    limit: int,
    previous: bool,
    **params: Any,
) -> dict[str, Any]:
    """What the dashboard must say, from the individual report endpoints."""
    out: dict[str, Any] = {
        "summary": get(api, site_id, "summary", **params),
        "timeseries": get(api, site_id, "timeseries", interval=interval, metrics=metrics, **params),
        "previous_timeseries": None,
        "breakdowns": {d: get(api, site_id, f"breakdown/{d}", limit=limit, **params) for d in dims},
    }
    if previous:
        before = {**params, **previous_range(params)}
        out["previous_timeseries"] = get(
            api, site_id, "timeseries", interval=interval, metrics=metrics, **before
        )
    return out


def dashboard(
    api: Api,
    site_id: int,
    dims: list[str],
    *,
    interval: str,
    metrics: str,
    limit: int,
    previous: bool,
    **params: Any,
) -> dict[str, Any]:
    body = get(
        api,
        site_id,
        "dashboard",
        interval=interval,
        metrics=metrics,
        limit=limit,
        breakdowns=",".join(dims),
        previous_timeseries=str(previous).lower(),
        **params,
    )
    if body["previous_timeseries"] is not None:
        for key in ("from", "to"):
            body["previous_timeseries"].pop(key)
    return body


def test_dashboard_equals_the_individual_reports(api: Api, sites: dict[str, int]) -> None:
    for site, site_id in sites.items():
        shapes = [("day", 3, True)] + (
            [("week", 10, False), ("month", 2, True)] if site == "newyork.example" else []
        )
        for interval, limit, previous in shapes:
            want = individual(
                api,
                site_id,
                MANY,
                interval=interval,
                metrics=ALL_METRICS,
                limit=limit,
                previous=previous,
                **RANGE,
            )
            got = dashboard(
                api,
                site_id,
                MANY,
                interval=interval,
                metrics=ALL_METRICS,
                limit=limit,
                previous=previous,
                **RANGE,
            )
            assert builds(api, site) > 0  # answered from the report cache
            assert got == want, (site, interval)
            # the raw path (a filter every event passes) gives the same numbers
            raw = dashboard(
                api,
                site_id,
                MANY,
                interval=interval,
                metrics=ALL_METRICS,
                limit=limit,
                previous=previous,
                filters=EVERYTHING,
                **RANGE,
            )
            assert raw == got, (site, interval)
        # real content, not empty answers
        assert got["summary"]["metrics"]["sessions"]["value"] > 50
        assert got["summary"]["metrics"]["sessions"]["previous"] > 0
        assert (
            got["breakdowns"]["entry_page"]["total_rows"] == 6
            and got["breakdowns"]["page"]["other"] is not None
        )
        assert sum(p["visitors"] for p in got["previous_timeseries"]["points"]) > 0


def test_filters_and_defaults(api: Api, sites: dict[str, int]) -> None:
    site_id = sites["kolkata.example"]
    country = json.dumps([["country", "is", "IN"]])
    want = individual(
        api,
        site_id,
        STANDARD,
        interval="day",
        metrics="visitors,pageviews",
        limit=10,
        previous=False,
        filters=country,
        **RANGE,
    )
    got = get(api, site_id, "dashboard", filters=country, **RANGE)  # the defaults: the standard dashboard
    assert list(got["breakdowns"]) == STANDARD
    assert got["timeseries"]["interval"] == "day" and got["timeseries"]["metrics"] == [
        "visitors",
        "pageviews",
    ]
    assert got == want
    assert (
        got["summary"]["metrics"]["visitors"]["value"]
        < get(api, site_id, "summary", **RANGE)["metrics"]["visitors"]["value"]
    )
    # without comparison, bots included, an hourly series (raw path): still the reports' numbers
    params = {**RANGE, "compare": "false", "include_bots": "true"}
    got = get(api, site_id, "dashboard", interval="hour", breakdowns="country,entry_page", **params)
    assert got["summary"] == get(api, site_id, "summary", **params)
    assert "previous" not in got["summary"]["metrics"]["visitors"]
    assert got["timeseries"] == get(api, site_id, "timeseries", interval="hour", **params)
    assert got["breakdowns"]["entry_page"] == get(api, site_id, "breakdown/entry_page", **params)
    assert got["previous_timeseries"] is None


def test_without_comparison_the_previous_period_is_not_built(api: Api, sites: dict[str, int]) -> None:
    from pixel.server.api.app import open_meta

    site = "fresh.example"  # nothing built for it yet
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": "Europe/Paris", "created_at": 0.0}
    )
    api.store.insert_rows("events", generate(site, "Europe/Paris", seed=4))
    params = {**RANGE, "compare": "false"}
    got = get(api, site_id, "dashboard", breakdowns="page,exit_page", **params)
    built = api.store.query(
        "SELECT min(day), max(day) FROM day_builds WHERE site = {s:String}", {"s": site}
    ).rows[0]
    assert [str(d) for d in built] == [RANGE["from"], RANGE["to"]]  # this period's days only
    assert got["summary"] == get(api, site_id, "summary", **params)
    assert "previous" not in got["summary"]["metrics"]["sessions"] and got["previous_timeseries"] is None
    assert got["breakdowns"]["exit_page"] == get(api, site_id, "breakdown/exit_page", **params)
    assert got["timeseries"] == get(api, site_id, "timeseries", interval="day", **params)


def test_recent_days_merged_range_and_today(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """period=7d: the days before today come from their merged range, today from its own build."""
    import random
    from zoneinfo import ZoneInfo

    from pixel.server.api.app import open_meta
    from tests.api.test_daycache import PAGES, _row

    site = "recent-dash.example"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": "Asia/Tokyo", "created_at": 0.0}
    )
    rnd = random.Random(8)
    now = pin_clock(api, monkeypatch, "Asia/Tokyo", 12)  # the 7d period cannot move between requests
    starts = [now - timedelta(minutes=rnd.randint(1, 15 * 24 * 60)) for _ in range(90)]
    rows = [
        _row(
            i,
            site,
            min(now, starts[i // 3] + timedelta(minutes=(i % 3) * rnd.randint(1, 20))),
            f"v{i // 3 % 37}",
            f"s{i // 3}",
            "pageview" if i % 5 else "signup",
            rnd.choice(PAGES),
            rnd,
        )
        for i in range(270)
    ]
    api.store.insert_rows("events", rows)
    today = now.astimezone(ZoneInfo("Asia/Tokyo")).date()
    before = {
        "period": "custom",
        "from": (today - timedelta(days=13)).isoformat(),
        "to": (today - timedelta(days=7)).isoformat(),
    }
    for interval in ("day", "week"):
        want = individual(
            api, site_id, MANY, interval=interval, metrics=ALL_METRICS, limit=3, previous=False, period="7d"
        )
        body = get(
            api,
            site_id,
            "dashboard",
            period="7d",
            interval=interval,
            metrics=ALL_METRICS,
            limit=3,
            breakdowns=",".join(MANY),
            previous_timeseries="true",
        )
        previous = body.pop("previous_timeseries")
        want.pop("previous_timeseries")
        assert body == want, interval
        # the previous period's series: the 7 days before, as the desktop asked for them before
        previous.pop("from"), previous.pop("to")
        assert previous == get(api, site_id, "timeseries", interval=interval, metrics=ALL_METRICS, **before)
    assert (
        int(
            api.store.scalar(
                "SELECT uniqExact(build) FROM day_dimensions WHERE site = {s:String} AND day = toDate(0)",
                {"s": site},
            )
        )
        >= 1
    )  # a merged range was read
    assert body["summary"]["metrics"]["visitors"]["previous"] > 0


def test_cached_dashboard_is_one_query(
    api: Api, sites: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixel.server.api.query.runner import QueryRunner

    site_id = sites["newyork.example"]
    get(api, site_id, "dashboard", previous_timeseries="true", **RANGE)  # builds what is missing
    counted: list[str] = []
    real = QueryRunner.query

    def counting(runner: QueryRunner, sql: str, params: Any = None) -> Any:
        counted.append(sql)
        return real(runner, sql, params)

    monkeypatch.setattr(QueryRunner, "query", counting)
    body = get(api, site_id, "dashboard", previous_timeseries="true", **RANGE)
    reads = [sql for sql in counted if "day_dimensions" in sql]
    assert len(reads) == 1, counted
    assert len(body["breakdowns"]) == 8 and len(body["previous_timeseries"]["points"]) == 8


def test_bad_input_gives_the_reports_errors(api: Api, sites: dict[str, int]) -> None:
    site_id = sites["berlin.example"]
    cases = [
        ({"breakdowns": "page,nope"}, "invalid_dimension"),
        ({"breakdowns": "prop:bad key!"}, "invalid_dimension"),
        ({"breakdowns": ",".join(f"prop:k{i}" for i in range(31))}, "invalid_dimension"),
        ({"metrics": "visitors,money"}, "invalid_metric"),
        ({"interval": "decade"}, "invalid_interval"),
        ({"period": "12mo", "interval": "minute"}, "invalid_interval"),
        ({"period": "fortnight"}, "invalid_range"),
        ({"filters": json.dumps([["nope", "is", "x"]])}, "invalid_dimension"),
        ({"filters": "not json"}, "invalid_filter"),
    ]
    for params, code in cases:
        r = api.client.get(f"/api/sites/{site_id}/reports/dashboard", params=params, headers=api.admin)
        assert r.status_code == 400 and r.json()["error"] == code, (params, r.text)
    r = api.client.get(f"/api/sites/{site_id}/reports/dashboard", params={"limit": 0}, headers=api.admin)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "limit" in r.json()["detail"]
    assert api.client.get(f"/api/sites/{site_id}/reports/dashboard").status_code == 401
    # a viewer limited to another site cannot read this one
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    r = api.client.get(f"/api/sites/{site_id}/reports/dashboard", headers=viewer)
    assert r.status_code in (403, 404), r.text
    assert api.client.get(f"/api/sites/{api.site_id}/reports/dashboard", headers=viewer).status_code == 200


def _counting_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from pixel.server.api.query.runner import QueryRunner

    counted: list[str] = []
    real = QueryRunner.query

    def counting(runner: QueryRunner, sql: str, params: Any = None) -> Any:
        counted.append(sql)
        return real(runner, sql, params)

    monkeypatch.setattr(QueryRunner, "query", counting)
    return counted


def test_filtered_dashboard_is_one_query_of_the_raw_events(
    api: Api, sites: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters no cache carries (three dimensions), bots or hourly buckets: one read of the raw events (was about
    fourteen), the reports' numbers; on a store with a spill budget (chDB's default), that read's branches one
    after another, each once, with the same answer."""
    site_id = sites["berlin.example"]
    filters = json.dumps(
        [["country", "is_not", "XX"], ["page", "contains", "/"], ["region", "not_contains", "zz"]]
    )
    params = {**RANGE, "filters": filters, "previous_timeseries": "true", "breakdowns": ",".join(MANY)}
    budget = api.store.spill_budget_mb
    monkeypatch.setattr(api.store, "spill_budget_mb", 0)
    counted = _counting_queries(monkeypatch)
    body = get(api, site_id, "dashboard", **params)
    reads = [sql for sql in counted if "FROM events" in sql]
    assert len(reads) == 1, counted
    assert not [sql for sql in counted if "day_dimensions" in sql]
    assert len(body["breakdowns"]) == len(MANY) and body["summary"]["metrics"]["visitors"]["value"] > 0
    counted.clear()
    get(api, site_id, "dashboard", interval="hour", include_bots="true", **RANGE)
    assert len([sql for sql in counted if "FROM events" in sql]) == 1, counted
    if budget:
        monkeypatch.setattr(api.store, "spill_budget_mb", budget)
        counted.clear()
        assert get(api, site_id, "dashboard", **params) == body
        branches = [sql for sql in counted if "FROM events" in sql or "FROM session_rows" in sql]
        assert 2 <= len(branches) == len(set(branches)) and all(reads[0].count(b) == 1 for b in branches)


@pytest.mark.parametrize(
    "filters",
    [
        [["country", "is", "DE"]],
        [["browser", "is", "Firefox"], ["device", "is_not", "tablet"]],
        [["page", "contains", "BLOG"]],
        [["source", "matches", "^(Google|Bing)$"]],
        [["prop:plan", "is", "pro"]],
        [["utm_campaign", "not_contains", "x"]],
        # hostile text: quotes, backslashes, braces, SQL; matches nothing and must say so
        [["page", "is", "'; DROP TABLE events; --\\{p0:String}"]],
        [["prop:a.b$", "is", "x\\y"]],
    ],
)
def test_filtered_dashboard_equals_the_individual_reports(
    api: Api, sites: dict[str, int], filters: list[list[str]]
) -> None:
    site_id = sites["newyork.example"]
    text = json.dumps(filters)
    for interval, previous in (("day", True), ("hour", False)):
        params: dict[str, Any] = {**RANGE, "filters": text}
        if interval == "hour":
            params = {"period": "custom", "from": RANGE["from"], "to": RANGE["from"], "filters": text}
        want = individual(
            api, site_id, MANY, interval=interval, metrics=ALL_METRICS, limit=3, previous=previous, **params
        )
        got = dashboard(
            api, site_id, MANY, interval=interval, metrics=ALL_METRICS, limit=3, previous=previous, **params
        )
        assert got == want, (filters, interval)
    assert api.store.scalar("SELECT count() FROM events") > 0  # the hostile value stayed a value


def test_filtered_dashboard_compared_with_a_range_of_another_length(api: Api, sites: dict[str, int]) -> None:
    site_id = sites["kolkata.example"]
    country = json.dumps([["country", "is_not", "XX"]])
    params = {
        **RANGE,
        "filters": country,
        "compare": "custom",
        "compare_from": "2024-03-07",
        "compare_to": "2024-03-09",
    }
    got = get(api, site_id, "dashboard", **params)
    assert got["summary"] == get(api, site_id, "summary", **params)
    assert got["summary"]["metrics"]["visitors"]["previous"] > 0
