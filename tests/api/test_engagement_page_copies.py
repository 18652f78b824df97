"""The engagement report with a page filter places entries, bounces and exits among the kept pageviews
(`engagement.page_filtered_sql`, from the engagement cache's ordered session paths): a client-retry copy
carries its original's time, path and event id, so it moves neither end of a session and does not make a
bounce into two pageviews, while two distinct pageviews at one instant on one page are two. Exact figures for hand-made
sessions, copies stored in parts of their own, in three zones, on both engines, equal to the raw path.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import RAW_ONLY, Api, add_site
from tests.api.test_engagement_cache import RANGE, event, rows_of

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")
ZONES = {
    "berlin.engcopies": "Europe/Berlin",
    "newyork.engcopies": "America/New_York",
    "kolkata.engcopies": "Asia/Kolkata",
}
DOCS = [["page", "contains", "docs"]]
# The same filter beside one no cache carries (every event passes it): the raw events' path.
RAW = [*DOCS, *RAW_ONLY]


def sessions(site: str, tz: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, client-retry copies of some of them). Local times on 6 March 2024 unless said."""
    zone = ZoneInfo(tz)
    rows: list[dict[str, Any]] = []

    def pv(session: str, hh: int, mm: int, path: str, ss: float = 0.0, day: int = 6) -> dict[str, Any]:
        t = datetime(2024, 3, day, hh, mm, tzinfo=zone) + timedelta(seconds=ss)
        row = event(site, len(rows) + 1, t, session, "pageview", path)
        rows.append(row)
        return row

    copies = [pv("v1-s1", 10, 0, "/docs/a")]  # one pageview kept, and its copy: a bounce
    pv("v2-s2", 10, 5, "/docs/a")  # two distinct pageviews at one instant on one page: not a bounce
    pv("v2-s2", 10, 5, "/docs/a")
    copies.append(pv("v3-s3", 11, 0, "/docs/b"))  # enters on /docs/b (copied), leaves on /docs/a
    pv("v3-s3", 11, 1, "/")
    pv("v3-s3", 11, 2, "/docs/a")
    pv("v4-s4", 12, 0, "/")  # one kept pageview (copied twice): a bounce on /docs/b
    copies += [pv("v4-s4", 12, 1, "/docs/b")] * 2
    pv("v5-s5", 23, 59, "/docs/a", 30.0)  # across local midnight: enters on /docs/a, leaves on /docs/b
    copies.append(pv("v5-s5", 0, 0, "/docs/b", 20.0, day=7))
    return rows, copies


# page -> (pageviews, entries, bounces, exits), by hand from `sessions`
WANT = {"/docs/a": (5, 3, 1, 3), "/docs/b": (3, 2, 1, 2)}
# `page is X` keeps X's visits alone (read from the cache's visit counts): each kept session enters and
# leaves there, a bounce with one pageview on X
WANT_IS = {"/docs/a": (5, 4, 3, 4), "/docs/b": (3, 3, 3, 3)}


@pytest.fixture(scope="module")
def sites(api: Api) -> dict[str, int]:
    out = {}
    for domain, tz in ZONES.items():
        rows, copies = sessions(domain, tz)
        out[domain] = add_site(api, domain, tz, rows)
        for copy in copies:  # each copy in a part of its own
            api.store.insert_rows("events", [copy])
    return out


def test_copies_move_no_entry_exit_or_bounce_and_distinct_pageviews_at_one_instant_count(
    api: Api, sites: dict[str, int]
) -> None:
    for domain, site_id in sites.items():
        rows_of(api, site_id, **RANGE)  # the plain cache built: the page filter reads it
        got = rows_of(api, site_id, filters=json.dumps(DOCS), **RANGE)
        assert figures(got) == WANT, domain
        assert got["/docs/a"]["bounce_rate"] == 33.3 and got["/docs/b"]["bounce_rate"] == 50.0, domain
        assert got["/docs/a"]["exit_rate"] == 60.0 and got["/docs/b"]["exit_rate"] == 66.7, domain
        assert got == rows_of(api, site_id, filters=json.dumps(RAW), **RANGE), domain
        for page, want in WANT_IS.items():
            flt = [["page", "is", page]]
            one = rows_of(api, site_id, filters=json.dumps(flt), **RANGE)
            assert figures(one) == {page: want}, (domain, page)
            assert one == rows_of(api, site_id, filters=json.dumps([*flt, *RAW_ONLY]), **RANGE), domain


def figures(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int, int, int]]:
    """page -> (pageviews, entries, bounces, exits), the bounces from the rounded rate (exact here)."""
    return {
        p: (r["pageviews"], r["entries"], round(r["bounce_rate"] * r["entries"] / 100), r["exits"])
        for p, r in rows.items()
    }
