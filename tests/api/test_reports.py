"""Every report against the fixed data set; expectations computed independently in `dataset`."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.api import dataset
from tests.api.conftest import Api

ENGINES = ("chdb", "clickhouse")

WEEK = {"period": "custom", "from": "2024-03-04", "to": "2024-03-10"}
FIRST, LAST = date(2024, 3, 4), date(2024, 3, 10)


def get(api: Api, path: str, **params: Any) -> dict[str, Any]:
    r = api.client.get(f"/api/sites/{api.site_id}/reports/{path}", params=params, headers=api.admin)
    assert r.status_code == 200, r.text
    return r.json()


def week(api: Api) -> list[dict[str, Any]]:
    return dataset.select(api.events, FIRST, LAST)


def test_summary_matches_independent_computation_with_previous_period(api: Api) -> None:
    body = get(api, "summary", **WEEK)
    now = dataset.summary(week(api))
    before = dataset.summary(dataset.select(api.events, FIRST - timedelta(days=7), FIRST - timedelta(days=1)))
    assert now["visitors"] > 5 and before["visitors"] > 3 and now["sessions"] > now["visitors"] / 2
    for name, value in now.items():
        item = body["metrics"][name]
        assert item["value"] == value, name
        assert item["previous"] == before[name], name
        if name == "bounce_rate":
            assert item["change"] == round(value - before[name], 1)
        else:
            assert item["change"] == round((value - before[name]) * 100.0 / before[name], 1)
    assert body["from"] == "2024-03-03T23:00:00+00:00" and body["to"] == "2024-03-10T23:00:00+00:00"
    assert body["timezone"] == "Europe/Berlin"


def test_bots_excluded_by_default_and_duplicates_never_count(api: Api) -> None:
    plain = get(api, "summary", compare="false", **WEEK)["metrics"]
    with_bots = get(api, "summary", compare="false", include_bots="true", **WEEK)["metrics"]
    assert with_bots["visitors"]["value"] == plain["visitors"]["value"] + 1
    assert with_bots["pageviews"]["value"] == plain["pageviews"]["value"] + 1
    # events[:5] were inserted twice; the independent count only knows one copy of each
    assert plain["pageviews"]["value"] == dataset.summary(week(api))["pageviews"]


def test_timeseries_by_local_day_zero_filled(api: Api) -> None:
    body = get(api, "timeseries", interval="day", metrics="visitors,pageviews,sessions,bounce_rate", **WEEK)
    days = [(FIRST + timedelta(days=i)).isoformat() for i in range(7)]
    assert [p["bucket"] for p in body["points"]] == days
    events = week(api)
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_day[dataset.local_day(e)].append(e)
    for point in body["points"]:
        evs = by_day.get(point["bucket"], [])
        assert point["visitors"] == len({e["visitor_id"] for e in evs}), point
        assert point["pageviews"] == sum(e["event_name"] == "pageview" for e in evs), point
    assert body["points"][3] == {
        "bucket": "2024-03-07",
        "visitors": 0,
        "pageviews": 0,
        "sessions": 0,
        "bounce_rate": 0,
    }
    # the 23:30 UTC pageview on 5 March lands on Berlin's 6 March
    assert any(e["visitor_id"] == "v90" for e in by_day["2024-03-06"])
    # sessions belong to the day of their first event
    starts: dict[str, str] = {}
    for e in sorted(events, key=dataset.ts):
        starts.setdefault(e["session_id"], dataset.local_day(e))
    for point in body["points"]:
        assert point["sessions"] == sum(1 for d in starts.values() if d == point["bucket"])


def test_timeseries_hours_on_dst_day_and_other_intervals(api: Api) -> None:
    body = get(
        api, "timeseries", period="custom", **{"from": "2024-03-31", "to": "2024-03-31"}, interval="hour"
    )
    buckets = [p["bucket"] for p in body["points"]]
    assert len(buckets) == 23  # Berlin skips 02:00 on 31 March 2024
    assert buckets[:3] == ["2024-03-31 00:00:00", "2024-03-31 01:00:00", "2024-03-31 03:00:00"]
    weekly = get(
        api,
        "timeseries",
        period="custom",
        **{"from": "2024-02-26", "to": "2024-03-17"},
        interval="week",
        metrics="visitors",
    )
    assert [p["bucket"] for p in weekly["points"]] == ["2024-02-26", "2024-03-04", "2024-03-11"]
    evs = dataset.select(api.events, date(2024, 3, 4), date(2024, 3, 10))
    assert weekly["points"][1]["visitors"] == len({e["visitor_id"] for e in evs})
    monthly = get(
        api,
        "timeseries",
        period="custom",
        **{"from": "2024-02-26", "to": "2024-03-17"},
        interval="month",
        metrics="pageviews",
    )
    assert [p["bucket"] for p in monthly["points"]] == ["2024-02-01", "2024-03-01"]
    evs = dataset.select(api.events, date(2024, 2, 26), date(2024, 3, 17))
    assert sum(p["pageviews"] for p in monthly["points"]) == sum(e["event_name"] == "pageview" for e in evs)


def _expected_breakdown(events: list[dict[str, Any]], key: str) -> list[tuple[str, int, int, int]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        groups[e[key]].append(e)
    rows = [
        (
            value,
            len({e["visitor_id"] for e in evs}),
            sum(e["event_name"] == "pageview" for e in evs),
            len(evs),
        )
        for value, evs in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def test_breakdowns_top_n_other_and_pagination(api: Api) -> None:
    events = week(api)
    pageviews = [e for e in events if e["event_name"] == "pageview"]
    expected = _expected_breakdown(pageviews, "path")
    body = get(api, "breakdown/page", limit=2, **WEEK)
    assert [(r["value"], r["visitors"], r["pageviews"], r["events"]) for r in body["rows"]] == expected[:2]
    assert body["total_rows"] == len(expected) == 5
    rest = [e for e in pageviews if e["path"] not in {expected[0][0], expected[1][0]}]
    assert body["other"] == {
        "value": "(other)",
        "visitors": len({e["visitor_id"] for e in rest}),
        "pageviews": len(rest),
        "events": len(rest),
    }
    page2 = get(api, "breakdown/page", limit=2, page=2, **WEEK)
    assert [(r["value"], r["visitors"]) for r in page2["rows"]] == [(r[0], r[1]) for r in expected[2:4]]
    page3 = get(api, "breakdown/page", limit=2, page=3, **WEEK)
    assert [r["value"] for r in page3["rows"]] == [expected[4][0]] and page3["other"] is None
    by_pageviews = get(api, "breakdown/page", limit=5, sort="pageviews", order="asc", **WEEK)
    assert [r["pageviews"] for r in by_pageviews["rows"]] == sorted(r[2] for r in expected)

    for dimension, key in (
        ("country", "country"),
        ("browser", "browser"),
        ("source", "source"),
        ("device", "device_type"),
        ("referrer", "ref_host"),
    ):
        body = get(api, f"breakdown/{dimension}", limit=10, **WEEK)
        assert [
            (r["value"], r["visitors"], r["pageviews"], r["events"]) for r in body["rows"]
        ] == _expected_breakdown(events, key), dimension


def test_entry_exit_pages_custom_events_and_properties(api: Api) -> None:
    events = week(api)
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(events, key=dataset.ts):
        if e["event_name"] == "pageview":
            sessions[e["session_id"]].append(e)
    for dimension, pick in (("entry_page", 0), ("exit_page", -1)):
        groups: dict[str, list[str]] = defaultdict(list)
        for evs in sessions.values():
            groups[evs[pick]["path"]].append(evs[0]["visitor_id"])
        expected = sorted(((p, len(set(v)), len(v)) for p, v in groups.items()), key=lambda r: (-r[1], r[0]))
        body = get(api, f"breakdown/{dimension}", limit=10, **WEEK)
        assert [(r["value"], r["visitors"], r["sessions"]) for r in body["rows"]] == expected, dimension

    signups = [e for e in events if e["event_name"] == "signup"]
    assert signups
    body = get(api, "breakdown/event", **WEEK)
    assert [(r["value"], r["events"]) for r in body["rows"]] == [("signup", len(signups))]
    plans = get(api, "breakdown/prop:plan", event="signup", **WEEK)
    expected = defaultdict(set)
    for e in signups:
        expected[e["props"]["plan"]].add(e["visitor_id"])
    assert {r["value"]: r["visitors"] for r in plans["rows"]} == {k: len(v) for k, v in expected.items()}


def test_filters_apply_to_every_report(api: Api) -> None:
    cases = [
        (["country", "is", "DE"], lambda e: e["country"] == "DE"),
        (["country", "is_not", "DE"], lambda e: e["country"] != "DE"),
        (["page", "contains", "BLOG"], lambda e: "blog" in e["path"]),
        (["page", "matches", "^/(pricing|signup)$"], lambda e: e["path"] in ("/pricing", "/signup")),
        (["prop:plan", "is", "pro"], lambda e: e["props"].get("plan") == "pro"),
    ]
    for flt, pred in cases:
        params = {**WEEK, "filters": json.dumps([flt])}
        events = dataset.select(api.events, FIRST, LAST, pred)
        summary = get(api, "summary", compare="false", **params)["metrics"]
        assert {k: v["value"] for k, v in summary.items()} == dataset.summary(events), flt
        series = get(api, "timeseries", interval="day", metrics="visitors", **params)["points"]
        assert sum(p["pageviews"] if "pageviews" in p else 0 for p in series) == 0
        browsers = get(api, "breakdown/browser", **params)
        assert [(r["value"], r["visitors"]) for r in browsers["rows"]] == [
            (r[0], r[1]) for r in _expected_breakdown(events, "browser")
        ], flt
    two = json.dumps([["country", "is", "DE"], ["browser", "is", "Chrome"]])
    events = dataset.select(
        api.events, FIRST, LAST, lambda e: e["country"] == "DE" and e["browser"] == "Chrome"
    )
    assert get(api, "summary", filters=two, **WEEK)["metrics"]["visitors"]["value"] == len(
        {e["visitor_id"] for e in events}
    )


def test_bad_report_input_gets_clear_errors(api: Api) -> None:
    base = f"/api/sites/{api.site_id}/reports"
    cases = [
        ("summary", {"period": "fortnight"}, "invalid_range"),
        ("summary", {"period": "custom", "from": "2024-03-10"}, "invalid_range"),
        ("summary", {"period": "custom", "from": "2024-03-10", "to": "2024-03-01"}, "invalid_range"),
        ("summary", {"period": "custom", "from": "10/03/2024", "to": "2024-03-11"}, "invalid_range"),
        ("summary", {"filters": "not json"}, "invalid_filter"),
        ("summary", {"filters": json.dumps([["country", "like", "DE"]])}, "invalid_filter"),
        ("summary", {"filters": json.dumps([["nope", "is", "DE"]])}, "invalid_dimension"),
        ("summary", {"filters": json.dumps([["entry_page", "is", "/"]])}, "invalid_filter"),
        ("summary", {"filters": json.dumps([["page", "matches", "(unclosed"]])}, "invalid_filter"),
        ("breakdown/nope", {}, "invalid_dimension"),
        ("breakdown/page", {"sort": "bounce"}, "invalid_sort"),
        ("timeseries", {"interval": "decade"}, "invalid_interval"),
        ("timeseries", {"metrics": "visitors,money"}, "invalid_metric"),
        ("timeseries", {"period": "12mo", "interval": "minute"}, "invalid_interval"),
    ]
    for path, params, code in cases:
        r = api.client.get(f"{base}/{path}", params=params, headers=api.admin)
        assert r.status_code == 400, (path, params, r.text)
        assert r.json()["error"] == code, (path, params, r.json())
        assert r.json()["detail"]
    r = api.client.get(f"{base}/breakdown/page", params={"limit": 0}, headers=api.admin)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "limit" in r.json()["detail"]


def test_relative_periods_resolve_in_site_zone(api: Api) -> None:
    for period in ("today", "yesterday", "7d", "30d", "month", "last_month", "12mo", "realtime"):
        body = get(api, "summary", period=period)
        start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        if period == "realtime":
            assert end - start == timedelta(minutes=30)
            continue
        local = start.astimezone(dataset.ZoneInfo(dataset.TZ))
        assert (local.hour, local.minute) == (0, 0), period
    today = get(api, "summary", period="today")
    start = datetime.fromisoformat(today["from"])
    assert (
        start.astimezone(dataset.ZoneInfo(dataset.TZ)).date()
        == datetime.now(UTC).astimezone(dataset.ZoneInfo(dataset.TZ)).date()
    )
    seven = get(api, "summary", period="7d")
    assert datetime.fromisoformat(seven["to"]) - datetime.fromisoformat(seven["from"]) in (
        timedelta(days=7),
        timedelta(days=7, hours=1),
        timedelta(days=7, hours=-1),
    )


def test_goals_conversions_and_rates(api: Api) -> None:
    made = []
    for goal in (
        {"name": "Read blog", "kind": "page", "page_pattern": "/blog/*"},
        {
            "name": "Pro signup",
            "kind": "event",
            "event_name": "signup",
            "prop_key": "plan",
            "prop_value": "pro",
        },
        {"name": "Any signup", "kind": "event", "event_name": "signup"},
    ):
        r = api.client.post(f"/api/sites/{api.site_id}/goals", json=goal, headers=api.admin)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    try:
        body = get(api, "goals", **WEEK)
        events = week(api)
        total = len({e["visitor_id"] for e in events})
        preds = [
            lambda e: e["event_name"] == "pageview" and e["path"].startswith("/blog/"),
            lambda e: e["event_name"] == "signup" and e["props"].get("plan") == "pro",
            lambda e: e["event_name"] == "signup",
        ]
        assert body["total_visitors"] == total
        for row, pred in zip(body["goals"], preds, strict=True):
            hits = [e for e in events if pred(e)]
            visitors = len({e["visitor_id"] for e in hits})
            assert (row["visitors"], row["conversions"]) == (visitors, len(hits)), row
            assert row["conversion_rate"] == round(visitors * 100.0 / total, 2)
        r = api.client.post(
            f"/api/sites/{api.site_id}/goals",
            json={"name": "x", "kind": "page", "page_pattern": "no-slash"},
            headers=api.admin,
        )
        assert r.status_code == 422 and "page_pattern" in r.json()["detail"]
    finally:
        for goal_id in made:
            assert (
                api.client.delete(f"/api/sites/{api.site_id}/goals/{goal_id}", headers=api.admin).status_code
                == 204
            )


def test_funnel_steps_and_dropoff(api: Api) -> None:
    steps = [
        {"kind": "page", "page_pattern": "/"},
        {"kind": "page", "page_pattern": "/pricing"},
        {"kind": "event", "event_name": "signup", "name": "Signed up"},
    ]
    conditions = [
        lambda e: e["event_name"] == "pageview" and e["path"] == "/",
        lambda e: e["event_name"] == "pageview" and e["path"] == "/pricing",
        lambda e: e["event_name"] == "signup",
    ]
    period = {"period": "custom", "from": "2024-02-26", "to": "2024-03-17"}
    events = dataset.select(api.events, date(2024, 2, 26), date(2024, 3, 17))
    for window in (600, 86400 * 30):
        body = get(api, "funnel", steps=json.dumps(steps), window=window, **period)
        expected = dataset.funnel(events, conditions, window)
        assert [s["visitors"] for s in body["steps"]] == expected, window
        assert expected[0] > expected[-1] > 0 or window == 600
        assert [s["dropoff"] for s in body["steps"]] == [0] + [
            a - b for a, b in zip(expected, expected[1:], strict=False)
        ]
        assert body["steps"][2]["name"] == "Signed up" and body["steps"][1]["name"] == "/pricing"
        assert body["steps"][-1]["conversion_rate"] == round(expected[-1] * 100.0 / expected[0], 2)
    bad = api.client.get(
        f"/api/sites/{api.site_id}/reports/funnel", headers=api.admin, params={"steps": json.dumps(steps[:1])}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_funnel"
    bad = api.client.get(
        f"/api/sites/{api.site_id}/reports/funnel",
        headers=api.admin,
        params={"steps": json.dumps([{"kind": "event"}, {"kind": "page", "page_pattern": "/"}])},
    )
    assert bad.status_code == 400 and "event_name" in bad.json()["detail"]


def test_retention_weekly_cohorts(api: Api) -> None:
    body = get(api, "retention", period="custom", **{"from": "2024-02-26", "to": "2024-03-17"})
    weeks = ["2024-02-26", "2024-03-04", "2024-03-11"]
    expected = dataset.retention(dataset.select(api.events, date(2024, 2, 26), date(2024, 3, 17)), weeks)
    assert [c["cohort"] for c in body["cohorts"]] == weeks
    for cohort in body["cohorts"]:
        assert cohort["weeks"] == expected[cohort["cohort"]]
        assert cohort["visitors"] == expected[cohort["cohort"]][0]
    assert body["cohorts"][0]["weeks"][0] > 0 and len(body["cohorts"][2]["weeks"]) == 1


def test_realtime_last_minutes(api: Api) -> None:
    now = datetime.now(UTC)
    rows = []
    for i, (minutes_ago, visitor, path) in enumerate(
        [(1, "r1", "/live"), (2, "r2", "/live"), (3, "r1", "/x"), (12, "r3", "/old"), (40, "r4", "/older")]
    ):
        t = now - timedelta(minutes=minutes_ago)
        rows.append(
            {
                "timestamp": dataset.ch(t),
                "site": dataset.OTHER_SITE,
                "event_id": f"rt{i}",
                "event_name": "pageview",
                "visitor_id": visitor,
                "session_id": visitor,
                "path": path,
            }
        )
    api.store.insert_rows("events", rows)
    api.store.insert_rows("events", rows[:3])  # client-retry copies (same event ids): counted once
    r = api.client.get(f"/api/sites/{api.other_site_id}/reports/realtime", headers=api.admin)
    body = r.json()
    assert body["visitors"] == 2
    assert len(body["pageviews_per_minute"]) == 30
    assert sum(p["pageviews"] for p in body["pageviews_per_minute"]) == 4
    assert body["top_pages"] == [
        {"page": "/live", "visitors": 2, "pageviews": 2},
        {"page": "/x", "visitors": 1, "pageviews": 1},
    ]
