"""POST /api/v2/query: `visit:entry_page` and `visit:exit_page` as dimensions and filters (Plausible's "Entry
pages" / "Exit pages" queries) on the fixed data set, against entry/exit pages computed here by plain loops (the
first/last pageview of each visit in the range, ties by path; computed before the other filters). Both store
engines; the clock is pinned."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from tests.api import dataset
from tests.api.conftest import Api
from tests.api.test_plausible_v2 import ALL_METRICS, FIRST, LAST, NOW, events_in, expected, ok, rows_of

ENGINES = ("chdb", "clickhouse")
Event = dict[str, Any]


@pytest.fixture(autouse=True)
def pinned(api: Api) -> None:
    api.client.app.state.pixel.report_cache.clock = NOW.timestamp  # type: ignore[attr-defined]


def edges(events: list[Event]) -> tuple[dict[str, str], dict[str, str]]:
    """Entry and exit page of every visit with a pageview among `events`."""
    views: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e["event_name"] == "pageview":
            views[e["session_id"]].append(e)
    entry = {s: min(evs, key=lambda e: (e["timestamp"], e["path"]))["path"] for s, evs in views.items()}
    exit_ = {s: max(evs, key=lambda e: (e["timestamp"], e["path"]))["path"] for s, evs in views.items()}
    return entry, exit_


def test_entry_pages_breakdown_all_metrics(api: Api) -> None:
    """Docs: "Top entry pages" (dimensions visit:entry_page)."""
    events = events_in(FIRST, LAST)
    entry, _ = edges(events)
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ALL_METRICS,
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:entry_page"],
        },
    )
    want = expected(events, ALL_METRICS, [lambda e: entry[e["session_id"]]])
    assert rows_of(body) == want
    assert len(want) > 1 and sum(v[1] for v in want.values()) == len(entry)  # each visit in one row
    visitors = [r["metrics"][0] for r in body["results"]]
    assert visitors == sorted(visitors, reverse=True)


def test_exit_pages_in_a_range_that_cuts_visits(api: Api) -> None:
    """The 7d range: a visit's pages outside the range are not its entry or exit page here."""
    first = date(2024, 3, 11)
    events = events_in(first, LAST)
    _, exit_ = edges(events)
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "visits", "pageviews"],
            "date_range": "7d",
            "dimensions": ["visit:exit_page", "visit:device"],
        },
    )
    want = expected(
        events,
        ["visitors", "visits", "pageviews"],
        [lambda e: exit_[e["session_id"]], lambda e: e["device_type"]],
    )
    assert rows_of(body) == want and want


@pytest.mark.parametrize(
    ("filters", "pred"),
    [
        # entry "/" visits, only their /pricing events: the entry page is the visit's, not the filtered events'
        (
            [["is", "visit:entry_page", ["/"]], ["is", "event:page", ["/pricing"]]],
            lambda e, entry, exit_: entry.get(e["session_id"]) == "/" and e["path"] == "/pricing",
        ),
        (
            [["contains_not", "visit:exit_page", ["blog"]]],
            lambda e, entry, exit_: e["session_id"] in exit_ and "blog" not in exit_[e["session_id"]],
        ),
        (
            [
                [
                    "or",
                    [
                        ["matches_wildcard", "visit:entry_page", ["/blog/*"]],
                        ["is", "visit:exit_page", ["/signup"]],
                    ],
                ]
            ],
            lambda e, entry, exit_: (
                entry.get(e["session_id"], "").startswith("/blog/") or exit_.get(e["session_id"]) == "/signup"
            ),
        ),
    ],
)
def test_entry_and_exit_page_filters(
    api: Api, filters: list[Any], pred: Callable[[Event, dict[str, str], dict[str, str]], bool]
) -> None:
    events = events_in(FIRST, LAST)
    entry, exit_ = edges(events)
    kept = [e for e in events if pred(e, entry, exit_)]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "visits", "pageviews", "events"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "dimensions": ["visit:entry_page"],
            "filters": filters,
        },
    )
    # grouped by the (unfiltered) entry page of each kept event's visit
    want = expected(kept, ["visitors", "visits", "pageviews", "events"], [lambda e: entry[e["session_id"]]])
    assert rows_of(body) == want and want


def test_entry_page_filter_without_the_dimension(api: Api) -> None:
    events = events_in(FIRST, LAST)
    entry, _ = edges(events)
    kept = [e for e in events if entry.get(e["session_id"]) == "/"]
    body = ok(
        api,
        {
            "site_id": dataset.SITE,
            "metrics": ["visitors", "visits", "bounce_rate"],
            "date_range": ["2024-02-26", "2024-03-17"],
            "filters": [["is", "visit:entry_page", ["/"]]],
        },
    )
    assert body["results"] == [
        {"metrics": expected(kept, ["visitors", "visits", "bounce_rate"], [])[()], "dimensions": []}
    ]
