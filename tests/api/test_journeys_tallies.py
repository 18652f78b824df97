"""The journeys answer is summed by the store (`journeys.path_tallies`: only the top paths, the pages per step and
the links and drop-offs with the `other` node already folded come back), on both engines: hand-computed answers
for ties (paths equal in sessions, a path that is a prefix of another, complete or not; pages equal in sessions
at a step) and the `other` node in links and drop-offs, aligned on the first or the last step; the same answer
as the Python shaping of every distinct path (`journeys.shape` over `path_counts`) for every mode, three zones,
reloads and back-and-forth, sessions crossing local midnight; a bounded number of rows whatever the number
of distinct paths; and a session-level filter's set read from the sessions table, against the reference."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter, SqlParams
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import journeys_data as jd
from tests.chfront import ChFront

TIES = "ties.example"  # a UTC site with the hand-made tie sessions below, on 5 March 2024


def tie_events() -> list[dict[str, Any]]:
    """Seven sessions on 5 March 2024 (UTC), one minute between pageviews."""
    sessions = {
        "t1": ["/a"],
        "t2": ["/a", "/b"],
        "t3": ["/b"],
        "t4": ["/a", "/b", "/c", "/d"],
        "t5": ["/c", "/a"],
        "t6": ["/c", "/b"],
        "t7": ["/c", "/b"],
    }
    out = []
    for k, (session, pages) in enumerate(sessions.items()):
        t = datetime(2024, 3, 5, 9 + k, 0, tzinfo=UTC)
        for i, page in enumerate(pages):
            e = jd._ev(900_000 + 10 * k + i, t + timedelta(minutes=i), session, page)
            out.append({**e, "site": TIES, "host": TIES, "event_id": f"tie-{k}-{i}"})
    return out


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    data_dir = tmp_path_factory.mktemp("journeys-tallies")
    s: Store
    if request.param == "clickhouse":
        front: ChFront = request.getfixturevalue("api_chfront")
        s = ClickHouseStore(front.url, database=f"pixel_jt_{data_dir.name.replace('-', '_')}")
    else:
        s = ChdbStore(data_dir / "store")
    s.migrate()
    events = jd.events()
    s.insert_rows("events", events + tie_events())
    s.insert_rows("events", events[:7])  # a replayed delivery
    yield s
    s.close()


def scope(store: Store, site: str, tz: str, first: str, last: str, **kw: Any) -> Scope:
    rng = resolve("custom", tz, date_from=first, date_to=last)
    return Scope(runner=QueryRunner(store), site=site, range=rng, **kw)


def ties(store: Store) -> Scope:
    return scope(store, TIES, "UTC", "2024-03-05", "2024-03-05")


def test_ties_top_paths_and_other_node_from_the_first_step(store: Store) -> None:
    """2 steps, 3 paths, 1 page per step. Paths: (/c,/b) 2; then 1 each, by pages (a prefix first), then
    incomplete before complete: (/a), (/a,/b) open, (/a,/b), (/b), (/c,/a). Step 1: /a 3 and /c 3 tie, /a
    (the least) is kept; step 2: /b 4, /a 1."""
    q = jq.JourneyQuery(steps=2, limit=3, per_step=1)
    body = jq.journeys(ties(store), q)
    assert body["sessions"] == 7
    assert [(p["pages"], p["complete"], p["sessions"]) for p in body["paths"]] == [
        (["/c", "/b"], True, 2),
        (["/a"], True, 1),
        (["/a", "/b"], False, 1),
    ]
    assert body["columns"] == [
        {
            "step": 1,
            "nodes": [
                {"page": "/a", "sessions": 3, "dropoff": 1},
                {"page": None, "sessions": 4, "dropoff": 1},
            ],
        },
        {
            "step": 2,
            "nodes": [
                {"page": "/b", "sessions": 4, "dropoff": 3},
                {"page": None, "sessions": 1, "dropoff": 1},
            ],
        },
    ]
    assert body["links"] == [
        {"step": 1, "source": "/a", "target": "/b", "sessions": 2},
        {"step": 1, "source": None, "target": "/b", "sessions": 2},
        {"step": 1, "source": None, "target": None, "sessions": 1},
    ]


def test_ties_aligned_on_the_end_page(store: Store) -> None:
    """2 steps up to /b: (/a,/b) 2 and (/c,/b) 2 (by pages), (/b) 1 on the last step; every path complete
    (each session entered on its first page), drop-offs on the first page of each path."""
    q = jq.JourneyQuery(steps=2, end="/b", limit=2, per_step=1)
    body = jq.journeys(ties(store), q)
    assert body["sessions"] == 5
    assert [(p["pages"], p["complete"], p["sessions"]) for p in body["paths"]] == [
        (["/a", "/b"], True, 2),
        (["/c", "/b"], True, 2),
    ]
    assert body["columns"] == [
        {
            "step": 1,
            "nodes": [
                {"page": "/a", "sessions": 2, "dropoff": 2},
                {"page": None, "sessions": 2, "dropoff": 2},
            ],
        },
        {"step": 2, "nodes": [{"page": "/b", "sessions": 5, "dropoff": 1}]},
    ]
    assert body["links"] == [
        {"step": 1, "source": "/a", "target": "/b", "sessions": 2},
        {"step": 1, "source": None, "target": "/b", "sessions": 2},
    ]


MODES = jd.MODE_CASES


@pytest.mark.parametrize("site", list(jd.ZONES))
@pytest.mark.parametrize("steps,start,end", MODES)
@pytest.mark.parametrize("collapse", [True, False])
@pytest.mark.parametrize("limit,per_step", [(3, 2), (100, 50)])
def test_store_tallies_equal_the_shaping_of_every_path(
    store: Store,
    site: str,
    steps: int,
    start: str | None,
    end: str | None,
    collapse: bool,
    limit: int,
    per_step: int,
) -> None:
    groups = ["/blog/*"] if start == "/blog/*" else []
    q = jq.JourneyQuery(steps, start, end, groups, collapse, limit, per_step).check()
    sc = scope(store, site, jd.ZONES[site], "2024-03-04", "2024-03-07")
    want = jq.shape(q, jq.path_counts(sc, q))
    assert want["sessions"] > 5
    assert jq.answer(q, jq.path_tallies(sc, q)) == want


def test_store_tallies_with_a_filter(store: Store) -> None:
    sc = scope(
        store,
        jd.BERLIN,
        jd.ZONES[jd.BERLIN],
        "2024-03-04",
        "2024-03-07",
        filters=[Filter("country", "is", "DE")],
    )
    q = jq.JourneyQuery(steps=4, limit=5, per_step=3).check()
    want = jq.shape(q, jq.path_counts(sc, q))
    assert want["sessions"] > 5
    assert jq.answer(q, jq.path_tallies(sc, q)) == want


def test_rows_sent_back_are_bounded_by_limit_and_per_step(store: Store) -> None:
    """Whatever the number of distinct paths, the store sends `limit` paths, one row per (step, page), and
    links and drop-offs between at most `per_step` + 1 nodes per step."""
    sc = scope(store, jd.BERLIN, jd.ZONES[jd.BERLIN], "2024-03-04", "2024-03-07")
    q = jq.JourneyQuery(steps=4, limit=1, per_step=1).check()
    distinct_paths = jq.path_counts(sc, q)
    assert len(distinct_paths) > 20
    params = SqlParams()
    rows = sc.run(jq.tallies_sql(sc, q, params), params)
    kinds = [int(r["kind"]) for r in rows]
    assert kinds.count(jq.PATH) == 1
    assert kinds.count(jq.TOTAL) == 1
    assert kinds.count(jq.PAGE) == len(
        {(c, p) for pages, _, _ in distinct_paths for c, p in enumerate(pages)}
    )
    assert kinds.count(jq.LINK) <= 3 * 2 * 2
    assert kinds.count(jq.DROPOFF) <= 4 * 2


@pytest.mark.parametrize("site", list(jd.ZONES))
@pytest.mark.parametrize("steps,start,end", [(4, None, None), (3, "/", None), (4, None, "/signup")])
def test_session_level_filter_read_from_the_sessions_table(
    store: Store, site: str, steps: int, start: str | None, end: str | None
) -> None:
    """A country filter: the set of sessions comes from session_rows, the answer is the reference's (every
    session with an event in Germany, its whole path, replayed copies and midnight crossings included)."""
    sc = scope(
        store, site, jd.ZONES[site], "2024-03-04", "2024-03-07", filters=[Filter("country", "is", "DE")]
    )
    assert jq.filters_from_session_rows(sc)
    q = jq.JourneyQuery(steps=steps, start=start, end=end, limit=100, per_step=50).check()
    paths = jd.session_paths(
        jd.events(), site, date(2024, 3, 4), date(2024, 3, 7), pred=lambda e: e["country"] == "DE"
    )
    expected = jd.shaped(paths, steps, start, end)
    assert sum(expected.values()) > 5
    body = jq.journeys(sc, q)
    assert {(tuple(p["pages"]), p["complete"]): p["sessions"] for p in body["paths"]} == expected
    assert body["sessions"] == sum(expected.values())
