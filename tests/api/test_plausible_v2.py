"""POST /api/v2/query (Plausible Stats API v2): the query shapes of Plausible's documentation examples
answered on the fixed data set, against numbers computed here in plain Python; errors in Plausible's shape;
access like the rest of the API; malformed queries never a 500. Both store engines; the clock is pinned."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api import dataset
from tests.api.conftest import VIEWER_PASSWORD, Api

ENGINES = ("chdb", "clickhouse")
NOW = datetime(2024, 3, 17, 12, 0, tzinfo=UTC)
FIRST, LAST = date(2024, 2, 26), date(2024, 3, 17)
ALL_METRICS = [
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
]
Event = dict[str, Any]


@pytest.fixture(autouse=True)
def pinned(api: Api) -> None:
    api.client.app.state.pixel.report_cache.clock = NOW.timestamp  # type: ignore[attr-defined]


def post(api: Api, body: Any, headers: dict[str, str] | None = None) -> Any:
    """JSON as clients send it (escapes such as a lone surrogate's stay escaped)."""
    head = {**(headers or api.admin), "Content-Type": "application/json"}
    return api.client.post("/api/v2/query", content=json.dumps(body).encode(), headers=head)


def ok(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = post(api, body)
    assert r.status_code == 200, r.text
    return r.json()


def up(x: float, digits: int = 0) -> float:
    return int(x * 10**digits + 0.5) / 10**digits


def expected(
    events: list[Event], metrics: list[str], dims: list[Callable[[Event], str]]
) -> dict[tuple[str, ...], list[float]]:
    """Rows by dimension values, as run.py's docstring defines them, by plain loops."""
    sessions: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        sessions[e["session_id"]].append(e)
    s_pv = {s: sum(e["event_name"] == "pageview" for e in evs) for s, evs in sessions.items()}
    s_dur = {
        s: int((max(map(dataset.ts, evs)) - min(map(dataset.ts, evs))).total_seconds() * 1000)
        for s, evs in sessions.items()
    }
    rows: dict[tuple[str, ...], list[Event]] = defaultdict(list)
    for e in events:
        rows[tuple(d(e) for d in dims)].append(e)
    out = {}
    for key, evs in rows.items():
        visits = {e["session_id"] for e in evs}
        pv = sum(e["event_name"] == "pageview" for e in evs)
        n = len(visits)
        values = {
            "visitors": len({e["visitor_id"] for e in evs}),
            "visits": n,
            "pageviews": pv,
            "events": len(evs),
            "views_per_visit": up(pv / n, 2),
            "bounce_rate": int(up(sum(s_pv[s] <= 1 for s in visits) * 100 / n)),
            "visit_duration": int(up(sum(s_dur[s] for s in visits) / 1000 / n)),
        }
        out[key] = [values[m] for m in metrics]
    return out


def rows_of(body: dict[str, Any]) -> dict[tuple[str, ...], list[float]]:
    return {tuple(r["dimensions"]): r["metrics"] for r in body["results"]}


def events_in(first: date, last: date, pred: Callable[[Event], bool] | None = None) -> list[Event]:
    return dataset.select(dataset.generate(), first, last, pred)


# -- documentation examples -------------------------------------------------------------------------


def test_aggregate_all_metrics_custom_range(api: Api) -> None:
    """Docs: "Simple aggregate query" with every metric, custom date range."""
    body = ok(
        api, {"site_id": dataset.SITE, "metrics": ALL_METRICS, "date_range": ["2024-02-26", "2024-03-17"]}
    )
    want = expected(events_in(FIRST, LAST), ALL_METRICS, [])[()]
    assert body["results"] == [{"metrics": want, "dimensions": []}]
    assert want[0] == 15 and want[2] == sum(
        e["event_name"] == "pageview" for e in events_in(FIRST, LAST)
    )  # the replayed copies and the noise rows never count
    assert body["meta"] == {}
    assert body["query"]["date_range"] == ["2024-02-26T00:00:00+01:00", "2024-03-17T23:59:59+01:00"]
    assert body["query"]["include"] == {"imports": False, "time_labels": False, "total_rows": False}
    assert body["query"]["pagination"] == {"limit": 10000, "offset": 0}
    assert body["query"]["order_by"] == [["visitors", "desc"]]


def test_relative_range_7d_ends_today_in_site_zone(api: Api) -> None:
    body = ok(api, {"site_id": dataset.SITE, "metrics": ["visitors", "pageviews"], "date_range": "7d"})
    want = expected(events_in(date(2024, 3, 11), LAST), ["visitors", "pageviews"], [])[()]
    assert body["results"][0]["metrics"] == want
    assert body["query"]["date_range"] == ["2024-03-11T00:00:00+01:00", "2024-03-17T23:59:59+01:00"]
    month = ok(api, {"site_id": dataset.SITE, "metrics": ["events"], "date_range": "month"})
    assert month["results"][0]["metrics"] == [len(events_in(date(2024, 3, 1), date(2024, 3, 31)))]
    everything = ok(api, {"site_id": dataset.SITE, "metrics": ["events"], "date_range": "all"})
    assert everything["results"][0]["metrics"] == [len(events_in(FIRST, LAST))]


def test_breakdown_by_country_and_browser(api: Api) -> None:
    """Docs: "Country and city analysis" (two visit dimensions), with visitors and bounce rate."""
    metrics = ["visitors", "bounce_rate", "visit_duration"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": metrics,
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:country", "visit:browser"],
            "filters": [["is_not", "visit:country", [""]]],
        },
    )
    want = expected(events_in(FIRST, LAST), metrics, [lambda e: e["country"], lambda e: e["browser"]])
    assert rows_of(body) == want
    order = [(r["metrics"][0], r["dimensions"]) for r in body["results"]]
    assert order == sorted(order, key=lambda x: (-x[0], x[1]))  # visitors desc, then dimensions asc


def test_timeseries_by_day_with_time_labels(api: Api) -> None:
    """Docs: "Timeseries query" with include.time_labels: every day is labelled, empty days have no row."""
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "pageviews"],
            "date_range": ["2024-03-01", "2024-03-10"],
            "dimensions": ["time:day"],
            "include": {"time_labels": True},
        },
    )
    evs = events_in(date(2024, 3, 1), date(2024, 3, 10))
    want = expected(evs, ["visitors", "pageviews"], [dataset.local_day])
    assert rows_of(body) == want
    assert [r["dimensions"][0] for r in body["results"]] == [k[0] for k in sorted(want)]
    assert ("2024-03-07",) not in rows_of(body)
    assert body["meta"]["time_labels"] == [
        (date(2024, 3, 1) + timedelta(days=i)).isoformat() for i in range(10)
    ]
    # the event at 23:30 UTC on 5 March is on 6 March in Berlin
    assert rows_of(body)[("2024-03-06",)] == want[("2024-03-06",)]


def test_time_month_and_week(api: Api) -> None:
    base = {"site_id": dataset.SITE, "metrics": ["pageviews"], "date_range": ["2024-02-26", "2024-03-17"]}
    month = ok(api, {**base, "dimensions": ["time:month"]})
    evs = events_in(FIRST, LAST)
    assert rows_of(month) == expected(evs, ["pageviews"], [lambda e: dataset.local_day(e)[:8] + "01"])
    week = ok(api, {**base, "dimensions": ["time:week"], "include": {"time_labels": True}})

    def monday(e: Event) -> str:
        d = date.fromisoformat(dataset.local_day(e))
        return (d - timedelta(days=d.weekday())).isoformat()

    assert rows_of(week) == expected(evs, ["pageviews"], [monday])
    assert week["meta"]["time_labels"] == ["2024-02-26", "2024-03-04", "2024-03-11"]


def test_filters_in_and_contains_on_pages(api: Api) -> None:
    """Docs: filtering by several values (IN) and by a page substring, top pages."""
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "pageviews"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["event:page"],
            "filters": [["is", "visit:browser", ["Firefox", "Chrome"]], ["contains", "event:page", ["blog"]]],
        },
    )
    evs = events_in(FIRST, LAST, lambda e: e["browser"] in ("Firefox", "Chrome") and "blog" in e["path"])
    assert rows_of(body) == expected(evs, ["visitors", "pageviews"], [lambda e: e["path"]])
    assert set(rows_of(body)) <= {("/blog/a",), ("/blog/b",)} and rows_of(body)


def test_or_not_wildcard_and_case_insensitive(api: Api) -> None:
    f = [
        "or",
        [
            ["matches_wildcard", "event:page", ["/blog/*"]],
            ["not", ["is", "visit:country", ["de", "us"], {"case_sensitive": False}]],
        ],
    ]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["events"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:country"],
            "filters": [f],
        },
    )
    evs = events_in(FIRST, LAST, lambda e: e["path"].startswith("/blog/") or e["country"] not in ("DE", "US"))
    assert rows_of(body) == expected(evs, ["events"], [lambda e: e["country"]])
    assert rows_of(body)[("FR",)] == [sum(e["country"] == "FR" for e in events_in(FIRST, LAST))]
    sensitive = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["events"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "filters": [["is", "visit:country", ["de"]]],
        },
    )
    assert sensitive["results"][0]["metrics"] == [0]


def test_custom_property_breakdown_of_an_event(api: Api) -> None:
    """Docs: "Custom properties" breakdown, restricted to one event name."""
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "events"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["event:props:plan"],
            "filters": [["is", "event:name", ["signup"]]],
        },
    )
    evs = events_in(FIRST, LAST, lambda e: e["event_name"] == "signup")
    want = expected(evs, ["visitors", "events"], [lambda e: e["props"].get("plan", "")])
    assert rows_of(body) == want and set(want) == {("pro",), ("free",)}


def test_pagination_order_by_and_total_rows(api: Api) -> None:
    """Docs: "Pagination" with include.total_rows, and an explicit order_by."""
    base = {
        "site_id": dataset.SITE,
        "metrics": ["pageviews"],
        "date_range": ["2024-02-26", "2024-03-17"],
        "dimensions": ["event:page"],
        "order_by": [["event:page", "asc"]],
        "include": {"total_rows": True},
    }
    pages = sorted({e["path"] for e in events_in(FIRST, LAST)})
    body = ok(api, {**base, "pagination": {"limit": 2, "offset": 1}})
    assert [r["dimensions"][0] for r in body["results"]] == pages[1:3]
    assert body["meta"]["total_rows"] == len(pages) == 5
    past = ok(api, {**base, "pagination": {"limit": 2, "offset": 50}})
    assert past["results"] == [] and past["meta"]["total_rows"] == 5


# -- errors and access ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"metrics": ["total_revenue"]}, "Unsupported metric 'total_revenue'"),
        ({"metrics": ["nonsense"]}, "Unknown metric"),
        ({"metrics": []}, "Invalid metrics"),
        ({"dimensions": ["visit:country_name"]}, "Unsupported dimension 'visit:country_name'"),
        ({"dimensions": ["visit:exit_page_hostname"]}, "Unsupported dimension 'visit:exit_page_hostname'"),
        ({"dimensions": ["visit:nope"]}, "Invalid dimension 'visit:nope'"),
        ({"filters": [["has_done", ["is", "event:name", ["x"]]]]}, "Unsupported filter operator"),
        ({"filters": [["is", "time:day", ["2024-01-01"]]]}, "Invalid filter dimension"),
        ({"filters": [["matches", "event:page", ["(unclosed"]]]}, "regular expression"),
        ({"include": {"time_labels": True}}, "requires a time dimension"),
        (
            {"include": {"comparisons": {"mode": "previous_period", "match_day_of_week": 1}}},
            "Invalid include.comparisons.match_day_of_week",
        ),
        ({"order_by": [["bounce_rate", "desc"]]}, "not in metrics or dimensions"),
        ({"date_range": "forever"}, "Invalid date_range"),
        ({"date_range": ["2024-03-10", "2024-03-01"]}, "Invalid date_range"),
        # dates the store cannot hold: near year 1 or 9999 the range arithmetic overflowed (a 500 before)
        (
            {
                "date_range": ["0001-01-01", "0001-01-03"],
                "include": {"comparisons": {"mode": "previous_period"}},
            },
            "Invalid date_range: dates from 1900-01-01 to 2299-12-31",
        ),
        ({"date_range": ["9999-12-30", "9999-12-31"]}, "Invalid date_range: dates from 1900-01-01"),
        ({"date_range": ["0001-01-01T00:00:00+00:00", "0001-01-02T00:00:00+00:00"]}, "dates from 1900-01-01"),
        (
            {"include": {"comparisons": {"mode": "custom", "date_range": ["0001-01-01", "0001-01-02"]}}},
            "Invalid include.comparisons.date_range: dates from 1900-01-01",
        ),
        ({"pagination": {"limit": 0}}, "Invalid pagination.limit"),
        ({"limit": 20}, "unknown key 'limit'"),
    ],
)
def test_errors_have_plausibles_shape(api: Api, patch: dict[str, Any], message: str) -> None:
    body = {"site_id": dataset.SITE, "metrics": ["visitors"], "date_range": "7d", **patch}
    r = post(api, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"] and r.json()["detail"] == r.json()["error"]


def test_access_like_the_rest_of_the_api(api: Api) -> None:
    body = {"site_id": dataset.SITE, "metrics": ["visitors"], "date_range": ["2024-02-26", "2024-03-17"]}
    r = api.client.post("/api/v2/query", json=body)
    assert r.status_code == 401 and r.json()["error"] == "missing_token"
    r = post(api, body, {"Authorization": "Bearer pxt_made-up"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"] == "Bearer"
    viewer = api.headers("viewer", VIEWER_PASSWORD)
    made = api.client.post("/api/tokens", json={"name": "plausible client"}, headers=viewer)
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    good = post(api, body, token)
    assert good.status_code == 200 and good.json()["results"][0]["metrics"] == [15]
    for who in (token, viewer):
        other = post(api, {**body, "site_id": dataset.OTHER_SITE}, who)
        assert other.status_code == 404 and set(other.json()) == {"error", "detail"}
    missing = post(api, {**body, "site_id": "nowhere.example"})
    assert missing.status_code == 404
    assert post(api, {**body, "site_id": dataset.OTHER_SITE}).json()["results"][0]["metrics"] == [1]
    # the token stays read-only everywhere else
    assert api.client.post("/api/sites", json={"domain": "x.example"}, headers=token).status_code == 403


def test_not_json_and_oversized(api: Api) -> None:
    r = api.client.post("/api/v2/query", content=b"{nope", headers=api.admin)
    assert r.status_code == 400 and r.json()["error"] == "Invalid JSON body"
    r = api.client.post("/api/v2/query", content=b" " * (300 * 1024), headers=api.admin)
    assert r.status_code == 413
    for body in (
        b"[" * 200_000,
        b"\xff\xfe{}",
        b'{"site_id": "\\ud800", "metrics": ["visitors"], "date_range": "7d"}',
    ):
        r = api.client.post("/api/v2/query", content=body, headers=api.admin)
        assert r.status_code == 400 and "error" in r.json(), body[:20]


_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 20_000),
    st.sampled_from(
        ["visitors", "event:page", "time:day", "is", "or", "not", "7d", "2024-03-01", "\ud800", ""]
    ),
    st.text(max_size=8),
)
_json = st.recursive(
    _atoms,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["metrics", "date_range", "dimensions", "filters", "order_by", "include", "pagination"]
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.dictionaries(_keys, _json, max_size=5))
def test_malformed_queries_are_400_never_500(api: Api, patch: dict[str, Any]) -> None:
    body = {"site_id": dataset.SITE, "metrics": ["visitors"], "date_range": "7d", **patch}
    r = post(api, body)
    assert r.status_code in (200, 400), r.text
    assert "error" in r.json() if r.status_code == 400 else "results" in r.json()
