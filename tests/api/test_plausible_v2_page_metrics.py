"""POST /api/v2/query: Plausible's page metrics `percentage`, `time_on_page`, `scroll_depth` and `exit_rate` on the
fixed data set plus engagement and scroll events planted here, against numbers computed by plain loops (as run.py's
docstring defines them: Plausible's formulas, rounded as ClickHouse's `round` does); the queries Plausible refuses
get its messages. Both store engines; the clock is pinned."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_plausible_v2 import FIRST, LAST, NOW, ok, post

ENGINES = ("chdb", "clickhouse")
Event = dict[str, Any]
RANGE = ["2024-02-26", "2024-03-17"]


def planted() -> list[Event]:
    """After most pageviews an `engagement` event (engaged time) and after some a `scroll` event (deepest point),
    on the same page, visit and visitor, a few seconds later."""
    out = []
    for i, e in enumerate(x for x in dataset.generate() if x["event_name"] == "pageview"):
        t = dataset.ts(e)
        if i % 3 != 2:
            out.append(
                {
                    **e,
                    "event_id": f"eng{i:05d}",
                    "event_name": "engagement",
                    "timestamp": dataset.ch(t + timedelta(seconds=9)),
                    "engaged_ms": 1000 * (i % 7 + 1) + 250 * (i % 4),
                }
            )
        if i % 4 != 3 or i % 8 == 7:  # ... and a second, shallower one on some pages of a visit
            if i % 8 == 7:
                out.append(
                    {
                        **e,
                        "event_id": f"scs{i:05d}",
                        "event_name": "scroll",
                        "timestamp": dataset.ch(t + timedelta(seconds=5)),
                        "scroll_depth": 3,
                    }
                )
                continue
            out.append(
                {
                    **e,
                    "event_id": f"scr{i:05d}",
                    "event_name": "scroll",
                    "timestamp": dataset.ch(t + timedelta(seconds=11)),
                    "scroll_depth": (i * 37) % 101,
                }
            )
    return out


@pytest.fixture(scope="module", autouse=True)
def engagement(api: Api) -> None:
    api.store.insert_rows("events", planted())


@pytest.fixture(autouse=True)
def pinned(api: Api) -> None:
    api.client.app.state.pixel.report_cache.clock = NOW.timestamp  # type: ignore[attr-defined]


def events(pred: Callable[[Event], bool] | None = None) -> list[Event]:
    return dataset.select(dataset.generate() + planted(), FIRST, LAST, pred)


def ch_round(value: float, digits: int = 0) -> float:
    """ClickHouse's round of a float: x 10^digits, nearest whole number with halves to even, divided back."""
    return round(value * 10**digits) / 10**digits


def page_metrics(evs: list[Event], key: Callable[[Event], str]) -> dict[str, dict[str, Any]]:
    """visitors, time_on_page (engaged seconds per visitor with engagement) and scroll_depth (each visit's deepest
    scroll, averaged over the visits with one) per value of `key`, by plain loops."""
    rows: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        rows[key(e)].append(e)
    out = {}
    for k, row in rows.items():
        engaged = [e for e in row if e["event_name"] == "engagement"]
        deepest: dict[str, int] = {}  # per visit
        for e in row:
            if e["event_name"] == "scroll":
                deepest[e["session_id"]] = max(deepest.get(e["session_id"], 0), e["scroll_depth"])
        engaged_visitors = {e["visitor_id"] for e in engaged}
        out[k] = {
            "visitors": len({e["visitor_id"] for e in row}),
            "time_on_page": int(
                ch_round(sum(e["engaged_ms"] for e in engaged) / 1000 / len(engaged_visitors))
            )
            if engaged_visitors
            else None,
            "scroll_depth": int(ch_round(sum(deepest.values()) / len(deepest))) if deepest else None,
        }
    return out


def test_pages_with_percentage_time_on_page_and_scroll_depth(api: Api) -> None:
    """Docs' "Top pages" with the page metrics: each page's visitors as a percent of all visitors (1 decimal),
    engaged seconds per visitor that reported some, the visits' deepest scroll averaged."""
    evs = events()
    per_page = page_metrics(evs, lambda e: e["path"])
    total = len({e["visitor_id"] for e in evs})
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "percentage", "time_on_page", "scroll_depth"],
            "date_range": RANGE,
            "dimensions": ["event:page"],
        },
    )
    got = {tuple(r["dimensions"]): r["metrics"] for r in body["results"]}
    want = {
        (page,): [
            m["visitors"],
            ch_round(m["visitors"] * 100 / total, 1),
            m["time_on_page"],
            m["scroll_depth"],
        ]
        for page, m in per_page.items()
    }
    assert got == want
    assert len(want) > 3 and any(v[2] is not None for v in want.values()) and any(v[3] for v in want.values())


def test_aggregate_with_a_page_filter(api: Api) -> None:
    """time_on_page and scroll_depth of the pages a filter keeps (no dimension); percentage is then 100."""
    keep = ("/pricing", "/")
    evs = events(lambda e: e["path"] in keep)
    m = page_metrics(evs, lambda e: "all")["all"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["time_on_page", "scroll_depth", "percentage", "visitors"],
            "date_range": RANGE,
            "filters": [["is", "event:page", list(keep)]],
        },
    )
    assert body["results"] == [
        {"dimensions": [], "metrics": [m["time_on_page"], m["scroll_depth"], 100.0, m["visitors"]]}
    ]


def test_percentage_of_a_filtered_breakdown(api: Api) -> None:
    """Docs' "Countries" with percentage, filtered to desktop: the total is the filtered query's visitors."""
    evs = events(lambda e: e["device_type"] == "desktop")
    total = len({e["visitor_id"] for e in evs})
    by_country: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        by_country[e["country"]].add(e["visitor_id"])
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["percentage", "visitors"],
            "date_range": RANGE,
            "dimensions": ["visit:country"],
            "filters": [["is", "visit:device", ["desktop"]]],
            "order_by": [["percentage", "desc"], ["visit:country", "asc"]],
        },
    )
    want = sorted(
        ((c, ch_round(len(v) * 100 / total, 1), len(v)) for c, v in by_country.items()),
        key=lambda x: (-x[2], x[0]),
    )
    assert [(r["dimensions"][0], *r["metrics"]) for r in body["results"]] == want


def test_exit_rate_by_exit_page(api: Api) -> None:
    """Docs' "Exit pages" with exit_rate: the visits that left from a page in percent of that page's pageviews
    (1 decimal), ordered by it; a visit's exit page is its last pageview in the range (ties: the greatest path)."""
    evs = events()
    views: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e["event_name"] == "pageview":
            views[e["session_id"]].append(e)
    exits: dict[str, int] = defaultdict(int)
    for vs in views.values():
        exits[max(vs, key=lambda e: (dataset.ts(e), e["path"]))["path"]] += 1
    page_views: dict[str, int] = defaultdict(int)
    for e in evs:
        page_views[e["path"]] += e["event_name"] == "pageview"
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visits", "exit_rate"],
            "date_range": RANGE,
            "dimensions": ["visit:exit_page"],
            "order_by": [["exit_rate", "desc"], ["visit:exit_page", "asc"]],
        },
    )
    want = sorted(
        ((p, n, ch_round(n * 100 / page_views[p], 1)) for p, n in exits.items()),
        key=lambda x: (-x[2], x[0]),
    )
    assert [(r["dimensions"][0], *r["metrics"]) for r in body["results"]] == want
    assert len(want) > 2 and any(x[2] < 100 for x in want)


def test_exit_rate_with_a_visit_filter(api: Api) -> None:
    """A filter on a visit property keeps the exits and the pageviews of those visits' events."""
    evs = events(lambda e: e["country"] == "DE")
    views: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e["event_name"] == "pageview":
            views[e["session_id"]].append(e)
    exits: dict[str, int] = defaultdict(int)
    for vs in views.values():
        exits[max(vs, key=lambda e: (dataset.ts(e), e["path"]))["path"]] += 1
    page_views: dict[str, int] = defaultdict(int)
    for e in evs:
        page_views[e["path"]] += e["event_name"] == "pageview"
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["exit_rate"],
            "date_range": RANGE,
            "dimensions": ["visit:exit_page"],
            "filters": [["is", "visit:country", ["DE"]]],
        },
    )
    got = {r["dimensions"][0]: r["metrics"][0] for r in body["results"]}
    assert got == {p: ch_round(n * 100 / page_views[p], 1) for p, n in exits.items()} and got


def test_exit_rate_of_exit_pages_filtered(api: Api) -> None:
    """A filter on the exit page keeps its rows; the denominator stays every pageview of the page (Plausible
    leaves the top-level exit page filters out of it)."""
    evs = events()
    views: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e["event_name"] == "pageview":
            views[e["session_id"]].append(e)
    exits: dict[str, int] = defaultdict(int)
    for vs in views.values():
        exits[max(vs, key=lambda e: (dataset.ts(e), e["path"]))["path"]] += 1
    page_views: dict[str, int] = defaultdict(int)
    for e in evs:
        page_views[e["path"]] += e["event_name"] == "pageview"
    kept = sorted(exits)[:2]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["exit_rate"],
            "date_range": RANGE,
            "dimensions": ["visit:exit_page"],
            "filters": [["is", "visit:exit_page", kept]],
        },
    )
    got = {r["dimensions"][0]: r["metrics"][0] for r in body["results"]}
    assert got == {p: ch_round(exits[p] * 100 / page_views[p], 1) for p in kept}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"metrics": ["scroll_depth"]},
            "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
        ),
        (  # scroll_depth wants a top-level page filter; a nested one is not enough
            {"metrics": ["scroll_depth"], "filters": [["or", [["is", "event:page", ["/"]]]]]},
            "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
        ),
        (
            {"metrics": ["time_on_page"], "dimensions": ["visit:source"]},
            "Metric `time_on_page` can only be queried with event:page filters or dimensions.",
        ),
        (
            {"metrics": ["exit_rate"]},
            'Metric `exit_rate` requires a `"visit:exit_page"` dimension. No other dimensions are allowed.',
        ),
        (
            {"metrics": ["exit_rate"], "dimensions": ["visit:exit_page", "visit:device"]},
            'Metric `exit_rate` requires a `"visit:exit_page"` dimension. No other dimensions are allowed.',
        ),
        (
            {
                "metrics": ["exit_rate"],
                "dimensions": ["visit:exit_page"],
                "filters": [["is", "event:page", ["/"]]],
            },
            "Metric `exit_rate` cannot be queried when filtering on event dimensions.",
        ),
        (
            {"metrics": ["percentage"], "include": {"comparisons": {"mode": "previous_period"}}},
            "Unsupported include.comparisons with percentage",
        ),
        ({"metrics": ["total_revenue"]}, "Unsupported metric 'total_revenue' (Pixel does not answer it)"),
    ],
)
def test_refused_like_plausible(api: Api, patch: dict[str, Any], message: str) -> None:
    r = post(api, {"site_id": dataset.SITE, "date_range": RANGE, **patch})
    assert r.status_code == 400 and r.json()["error"] == message


def test_time_on_page_allowed_with_a_nested_page_filter(api: Api) -> None:
    """time_on_page takes an event:page filter anywhere (Plausible's rule differs from scroll_depth's)."""
    evs = events(lambda e: e["path"] == "/pricing")
    m = page_metrics(evs, lambda e: "all")["all"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["time_on_page"],
            "date_range": RANGE,
            "filters": [["or", [["is", "event:page", ["/pricing"]]]]],
        },
    )
    assert body["results"][0]["metrics"] == [m["time_on_page"]] and m["time_on_page"] is not None
