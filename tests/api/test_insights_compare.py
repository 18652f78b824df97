"""Comparisons (compare=previous|year|custom) for the summary, timeseries, breakdowns and the dashboard,
against the independent computations of `dataset`; the compared ranges in three time zones."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel.server.api.errors import ApiError
from pixel.server.api.query.periods import compare_range, parse_compare, resolve
from tests.api import dataset
from tests.api.conftest import Api

ENGINES = ("chdb", "clickhouse")
WEEK = {"period": "custom", "from": "2024-03-11", "to": "2024-03-17"}
PREVIOUS = (date(2024, 3, 4), date(2024, 3, 10))


def get(api: Api, path: str, status: int = 200, **params: Any) -> dict[str, Any]:
    r = api.client.get(f"/api/sites/{api.site_id}/reports/{path}", params=params, headers=api.admin)
    assert r.status_code == status, r.text
    return dict(r.json())


def test_summary_compared_with_previous_custom_and_year(api: Api) -> None:
    now = dataset.summary(dataset.select(api.events, date(2024, 3, 11), date(2024, 3, 17)))
    before = dataset.summary(dataset.select(api.events, *PREVIOUS))
    previous = get(api, "summary", **WEEK)["metrics"]
    custom = get(api, "summary", compare="custom", compare_from="2024-03-04", compare_to="2024-03-10", **WEEK)
    assert custom["metrics"] == previous
    for name, value in now.items():
        assert previous[name]["value"] == value and previous[name]["previous"] == before[name], name
    # a year later, compared with the same dates a year earlier: the data set's week
    year = get(api, "summary", compare="year", period="custom", **{"from": "2025-03-04", "to": "2025-03-10"})
    for name, value in before.items():
        item = year["metrics"][name]
        assert item["value"] == 0 and item["previous"] == value, name
        assert item["change"] == (
            round(0 - value, 1) if name == "bounce_rate" else (-100.0 if value else None)
        )
    # a custom comparison of another length, a longer one
    longer = get(api, "summary", compare="custom", compare_from="2024-02-26", compare_to="2024-03-10", **WEEK)
    wide = dataset.summary(dataset.select(api.events, date(2024, 2, 26), date(2024, 3, 10)))
    assert {k: v["previous"] for k, v in longer["metrics"].items()} == wide
    assert "previous" not in get(api, "summary", compare="false", **WEEK)["metrics"]["visitors"]
    assert get(api, "summary", compare="true", **WEEK)["metrics"] == previous


def test_timeseries_and_breakdown_compared(api: Api) -> None:
    body = get(api, "timeseries", interval="day", metrics="visitors,pageviews", compare="previous", **WEEK)
    plain = get(api, "timeseries", interval="day", metrics="visitors,pageviews", **WEEK)
    assert "compare" not in plain and {k: v for k, v in body.items() if k != "compare"} == plain
    other = get(
        api,
        "timeseries",
        interval="day",
        metrics="visitors,pageviews",
        period="custom",
        **{"from": "2024-03-04", "to": "2024-03-10"},
    )
    assert body["compare"] == {"from": other["from"], "to": other["to"], "points": other["points"]}
    assert len(body["compare"]["points"]) == len(body["points"]) == 7

    got = get(api, "breakdown/country", compare="previous", **WEEK)
    now_rows = defaultdict(set)
    for e in dataset.select(api.events, date(2024, 3, 11), date(2024, 3, 17)):
        now_rows[e["country"]].add(e["visitor_id"])
    before_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in dataset.select(api.events, *PREVIOUS):
        before_rows[e["country"]].append(e)
    assert got["compare"] == {"from": other["from"], "to": other["to"]}
    assert {r["value"] for r in got["rows"]} == set(now_rows)
    for row in got["rows"]:
        evs = before_rows.get(row["value"], [])
        visitors = len({e["visitor_id"] for e in evs})
        pageviews = sum(e["event_name"] == "pageview" for e in evs)
        assert row["visitors"] == len(now_rows[row["value"]])
        assert row["previous"] == {"visitors": visitors, "pageviews": pageviews, "events": len(evs)}, row
        want = round((row["visitors"] - visitors) * 100.0 / visitors, 1) if visitors else None
        assert row["change"]["visitors"] == want
    # session-level breakdowns compare too
    entry = get(api, "breakdown/entry_page", compare="year", **WEEK)
    assert all(
        r["previous"] == {"visitors": 0, "sessions": 0} and r["change"]["visitors"] is None
        for r in entry["rows"]
    )


def test_dashboard_compared_with_a_year_before(api: Api) -> None:
    body = get(
        api,
        "dashboard",
        compare="year",
        breakdowns="country",
        period="custom",
        **{"from": "2025-03-04", "to": "2025-03-10"},
    )
    before = dataset.summary(dataset.select(api.events, *PREVIOUS))
    assert {k: v["previous"] for k, v in body["summary"]["metrics"].items()} == before
    series = get(
        api,
        "dashboard",
        compare="custom",
        compare_from="2024-03-04",
        compare_to="2024-03-10",
        previous_timeseries="true",
        **WEEK,
    )
    assert series["previous_timeseries"]["from"] == "2024-03-03T23:00:00+00:00"
    assert series["summary"] == get(api, "dashboard", **WEEK)["summary"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"compare": "lastweek"}, "invalid_compare"),
        ({"compare": "custom"}, "invalid_compare"),
        ({"compare": "custom", "compare_from": "2024-03-10", "compare_to": "2024-03-01"}, "invalid_compare"),
        ({"compare": "custom", "compare_from": "2024-13-01", "compare_to": "2024-03-01"}, "invalid_range"),
        ({"compare": "custom", "compare_from": "2000-01-01", "compare_to": "2024-03-01"}, "invalid_compare"),
    ],
)
def test_bad_comparisons_are_400_with_the_reason(api: Api, params: dict[str, str], code: str) -> None:
    for path in ("summary", "timeseries", "breakdown/page", "dashboard"):
        body = get(api, path, status=400, **WEEK, **params)
        assert body["error"] == code, (path, body)


NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_compared_ranges_in_three_zones(tz: str) -> None:
    zone = ZoneInfo(tz)

    def local(d: date) -> str:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC).isoformat()

    rng = resolve(
        "custom", tz, date_from="2024-02-29", date_to="2024-03-31", now=NOW
    )  # a leap day, a DST change
    year = compare_range(rng, "year")
    assert (year.start.isoformat(), year.end.isoformat()) == (
        local(date(2023, 2, 28)),
        local(date(2023, 4, 1)),
    )
    prev = compare_range(rng, "previous")
    assert (prev.start.isoformat(), prev.end.isoformat()) == (
        local(date(2024, 1, 28)),
        local(date(2024, 2, 29)),
    )
    custom = compare_range(rng, "custom", date_from="2023-12-01", date_to="2023-12-01")
    assert (custom.start.isoformat(), custom.end.isoformat()) == (
        local(date(2023, 12, 1)),
        local(date(2023, 12, 2)),
    )
    month = compare_range(resolve("30d", tz, now=NOW), "year")
    # the same local dates: 2024's 30 days include 29 February, 2023's 29 days do not
    assert month.start.astimezone(zone).date() == date(2023, 2, 20)
    assert month.end.astimezone(zone).date() == date(2023, 3, 21)
    realtime = resolve("realtime", tz, now=NOW)
    assert compare_range(realtime, "year").end == datetime(2023, 3, 20, 12, 0, tzinfo=UTC)


def test_compare_parameter_values() -> None:
    assert [parse_compare(v) for v in ("true", "1", "yes", "previous", "YEAR", "custom")] == [
        "previous",
        "previous",
        "previous",
        "previous",
        "year",
        "custom",
    ]
    assert [parse_compare(v) for v in (None, False, "false", "0", "none", "")] == [None] * 6
    with pytest.raises(ApiError):
        parse_compare("week")
