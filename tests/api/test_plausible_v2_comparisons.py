"""POST /api/v2/query with `include.comparisons` (previous_period, year_over_year, custom) on the fixed data set:
each row's `comparison` (the same dimension values in the compared range, zeros when absent) and `change`
(Plausible's: bounce rate in points, null from 0; other metrics in percent rounded half away from zero, 100 from
0 to more) against numbers computed here by plain loops. Both store engines; the clock is pinned."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_plausible_v2 import ALL_METRICS, NOW, events_in, expected, ok, post

ENGINES = ("chdb", "clickhouse")


@pytest.fixture(autouse=True)
def pinned(api: Api) -> None:
    api.client.app.state.pixel.report_cache.clock = NOW.timestamp  # type: ignore[attr-defined]


def plausible_change(metric: str, before: float, now: float) -> float | None:
    if metric == "bounce_rate":
        return None if before <= 0 else now - before
    if before == 0:
        return 100 if now > 0 else 0
    ratio = (now - before) * 100 / before
    whole = int(abs(ratio) + 0.5)
    return whole if ratio >= 0 else -whole


def comparison(now: list[float], before: list[float], metrics: list[str], dims: list[str]) -> dict[str, Any]:
    return {
        "dimensions": dims,
        "metrics": before,
        "change": [plausible_change(m, b, n) for m, b, n in zip(metrics, before, now, strict=True)],
    }


ZEROS = {"visitors": 0, "visits": 0, "pageviews": 0, "events": 0, "views_per_visit": 0.0, "bounce_rate": 0}
ZEROS["visit_duration"] = 0


@pytest.mark.parametrize(
    ("date_range", "spec", "main", "other", "shown"),
    [
        # 11 days: the 11 days before
        (
            ["2024-03-07", "2024-03-17"],
            {"mode": "previous_period"},
            (date(2024, 3, 7), date(2024, 3, 17)),
            (date(2024, 2, 25), date(2024, 3, 6)),
            ["2024-02-25T00:00:00+01:00", "2024-03-06T23:59:59+01:00"],
        ),
        # this month, cut at today (17 days): the 17 days before (a leap year's February)
        (
            "month",
            {"mode": "previous_period"},
            (date(2024, 3, 1), date(2024, 3, 17)),
            (date(2024, 2, 13), date(2024, 2, 29)),
            ["2024-02-13T00:00:00+01:00", "2024-02-29T23:59:59+01:00"],
        ),
        (
            ["2024-03-11", "2024-03-17"],
            {"mode": "custom", "date_range": ["2024-02-26", "2024-03-03"]},
            (date(2024, 3, 11), date(2024, 3, 17)),
            (date(2024, 2, 26), date(2024, 3, 3)),
            ["2024-02-26T00:00:00+01:00", "2024-03-03T23:59:59+01:00"],
        ),
        # match_day_of_week: this month starts on a Friday; the 17 days before start on Tuesday 13 February,
        # moved to the next Friday (16 February), the length kept
        (
            "month",
            {"mode": "previous_period", "match_day_of_week": True},
            (date(2024, 3, 1), date(2024, 3, 17)),
            (date(2024, 2, 16), date(2024, 3, 3)),
            ["2024-02-16T00:00:00+01:00", "2024-03-03T23:59:59+01:00"],
        ),
        # the next Friday after Tuesday 12 March is the range's own first day: the previous Friday instead
        (
            ["2024-03-15", "2024-03-17"],
            {"mode": "previous_period", "match_day_of_week": True},
            (date(2024, 3, 15), date(2024, 3, 17)),
            (date(2024, 3, 8), date(2024, 3, 10)),
            ["2024-03-08T00:00:00+01:00", "2024-03-10T23:59:59+01:00"],
        ),
        # the same weekday already: unchanged (Monday 4 March for Monday 11 March)
        (
            ["2024-03-11", "2024-03-17"],
            {"mode": "previous_period", "match_day_of_week": True},
            (date(2024, 3, 11), date(2024, 3, 17)),
            (date(2024, 3, 4), date(2024, 3, 10)),
            ["2024-03-04T00:00:00+01:00", "2024-03-10T23:59:59+01:00"],
        ),
        # a year earlier from Monday 11 March 2024: Saturday 11 March 2023, moved to Monday 13 March 2023
        (
            ["2024-03-11", "2024-03-17"],
            {"mode": "year_over_year", "match_day_of_week": True},
            (date(2024, 3, 11), date(2024, 3, 17)),
            (date(2023, 3, 13), date(2023, 3, 19)),
            ["2023-03-13T00:00:00+01:00", "2023-03-19T23:59:59+01:00"],
        ),
        # a year earlier: no data then (zeros; change 100, bounce rate null)
        (
            ["2024-02-26", "2024-03-17"],
            {"mode": "year_over_year"},
            (date(2024, 2, 26), date(2024, 3, 17)),
            (date(2023, 2, 26), date(2023, 3, 17)),
            ["2023-02-26T00:00:00+01:00", "2023-03-17T23:59:59+01:00"],
        ),
    ],
)
def test_aggregate_compared(
    api: Api,
    date_range: Any,
    spec: dict[str, Any],
    main: tuple[date, date],
    other: tuple[date, date],
    shown: list[str],
) -> None:
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ALL_METRICS,
            "date_range": date_range,
            "include": {"comparisons": spec},
        },
    )
    now = expected(events_in(*main), ALL_METRICS, [])[()]
    before_events = events_in(*other)
    before = (
        expected(before_events, ALL_METRICS, [])[()] if before_events else [ZEROS[m] for m in ALL_METRICS]
    )
    assert body["results"] == [
        {"metrics": now, "dimensions": [], "comparison": comparison(now, before, ALL_METRICS, [])}
    ]
    assert body["query"]["comparison_date_range"] == shown
    assert body["query"]["include"]["comparisons"] == spec
    if spec["mode"] == "year_over_year":
        assert body["results"][0]["comparison"]["change"] == [100, 100, 100, 100, None, 100, 100]
    else:
        assert before[0] > 0  # a real comparison, not zeros


def test_breakdown_rows_compared_by_their_values(api: Api) -> None:
    metrics = ["visitors", "pageviews", "bounce_rate"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": metrics,
            "date_range": "7d",
            "dimensions": ["event:page"],
            "include": {"comparisons": {"mode": "previous_period"}},
            "pagination": {"limit": 3},
        },
    )
    now_rows = expected(events_in(date(2024, 3, 11), date(2024, 3, 17)), metrics, [lambda e: e["path"]])
    before_rows = expected(events_in(date(2024, 3, 4), date(2024, 3, 10)), metrics, [lambda e: e["path"]])
    assert len(body["results"]) == 3
    for row in body["results"]:
        key = tuple(row["dimensions"])
        assert row["metrics"] == now_rows[key]
        before = before_rows.get(key, [0, 0, 0])
        assert row["comparison"] == comparison(now_rows[key], before, metrics, row["dimensions"])
    assert body["query"]["comparison_date_range"] == [
        "2024-03-04T00:00:00+01:00",
        "2024-03-10T23:59:59+01:00",
    ]


def test_daily_series_compared_bucket_by_bucket(api: Api) -> None:
    """The n-th day of the range against the n-th day of the compared range (7 days earlier here)."""
    metrics = ["visitors", "pageviews"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": metrics,
            "date_range": ["2024-03-11", "2024-03-17"],
            "dimensions": ["time:day"],
            "include": {"comparisons": {"mode": "previous_period"}},
        },
    )
    now_rows = expected(events_in(date(2024, 3, 11), date(2024, 3, 17)), metrics, [dataset.local_day])
    before_rows = expected(events_in(date(2024, 3, 4), date(2024, 3, 10)), metrics, [dataset.local_day])
    assert [tuple(r["dimensions"]) for r in body["results"]] == sorted(now_rows)
    compared_days = 0
    for row in body["results"]:
        day = date.fromisoformat(row["dimensions"][0])
        earlier = (day - timedelta(days=7)).isoformat()
        before = before_rows.get((earlier,), [0, 0])
        compared_days += (earlier,) in before_rows
        assert row["metrics"] == now_rows[(row["dimensions"][0],)]
        assert row["comparison"] == comparison(row["metrics"], before, metrics, [earlier])
    assert compared_days > 0


@pytest.mark.parametrize(
    ("comparisons", "extra", "message"),
    [
        (
            {"mode": "previous_period", "match_day_of_week": "yes"},
            {},
            "Invalid include.comparisons.match_day_of_week",
        ),
        ({"mode": "last_week"}, {}, "Invalid include.comparisons.mode"),
        ({"mode": "custom"}, {}, "Invalid include.comparisons.date_range"),
        ({"mode": "custom", "date_range": ["2024-03-10", "2024-03-01"]}, {}, "the end is before the start"),
        ({"mode": "previous_period", "date_range": ["2024-03-01", "2024-03-02"]}, {}, "only for mode custom"),
        ("previous_period", {}, "Invalid include.comparisons"),
    ],
)
def test_comparison_errors(api: Api, comparisons: Any, extra: dict[str, Any], message: str) -> None:
    body = {
        "site_id": dataset.SITE,
        "metrics": ["visitors"],
        "date_range": "7d",
        "include": {"comparisons": comparisons},
        **extra,
    }
    r = post(api, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
