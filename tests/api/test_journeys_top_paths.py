"""The journeys' tallies summed by the store (`journeys.path_tallies`: the top paths kept by `groupArraySorted`
over the distinct paths, each step's busiest pages picked and the links and drop-offs folded in one gathered row)
against a Python reference computed here from the events, on random sites (hypothesis): few pages, so that
paths and pages tie at the `limit` and `per_step` cut-offs; a path that is a prefix of another (`/a` then
`/a/b`); non-ASCII labels; reloads, back-and-forth, two views at one instant, a replayed delivery (a copy of an
event); sessions that started the day before the range or that cross local midnight out of it; every mode;
with and without a session-level filter. The previous query (kept in bench/bench_journeys.py to be timed
against the route) is held to the same reference."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_journeys import previous_path_tallies
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.filters import Filter
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.chdb_engine import ChdbStore

ZONE = "Europe/Berlin"
DAY = datetime(2024, 3, 5, tzinfo=ZoneInfo(ZONE))  # the range: this local day
PAGES = ["/a", "/a/b", "/b", "/é", "/日本"]
# (steps, start, end): every mode, the start / end among the pages
MODES = [(2, None, None), (4, None, None), (3, "/a", None), (3, None, "/b"), (4, "/a", "/b")]

view = st.tuples(st.sampled_from(PAGES), st.sampled_from([0, 0, 1, 7]), st.booleans())  # page, gap min, copy
session = st.tuples(
    # start: minutes from the range's local midnight (before it, inside, or just before its end)
    st.sampled_from([-3, 0, 30, 600, 1000, 1435]),
    st.lists(view, min_size=1, max_size=7),
    st.sampled_from(["DE", "DE", "FR"]),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    s = ChdbStore(tmp_path_factory.mktemp("journeys-top") / "store")
    s.migrate()
    yield s
    s.close()


def site_events(
    site: str, sessions: list[tuple[int, list[tuple[str, int, bool]], str]]
) -> list[dict[str, Any]]:
    out = []
    for k, (start, views, country) in enumerate(sessions):
        t = DAY + timedelta(minutes=start)
        for i, (page, gap, copy) in enumerate(views):
            t += timedelta(minutes=gap)
            e = {
                "timestamp": t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "received_at": t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "site": site,
                "host": site,
                "event_id": f"{site}-{k}-{i}",
                "event_name": "pageview",
                "visitor_id": f"v{k}",
                "session_id": f"s{k}",
                "path": page,
                "url": f"https://{site}{page}",
                "country": country if i == 0 else "FR",  # the filter matches a session by its first view
                "props": {},
                "is_bot": 0,
            }
            out.extend([e, dict(e)] if copy else [e])
    return out


def reference(events: list[dict[str, Any]], q: jq.JourneyQuery, country: str | None) -> dict[str, Any]:
    """The journeys answer from the events, in Python: each session's pageviews (a copy counted once) in
    (time, page) order, repeats collapsed or not, sessions whose first view is in the local day, shaped for
    the mode, then `journeys.shape` (the Python shaping of the distinct paths)."""
    by_session: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in events:
        by_session[e["session_id"]][e["event_id"]] = e
    lo, hi = DAY.astimezone(UTC), (DAY + timedelta(days=1)).astimezone(UTC)
    counts: dict[tuple[tuple[str, ...], bool], int] = defaultdict(int)
    for views in by_session.values():
        if country and not any(e["country"] == country for e in views.values()):
            continue
        ordered = sorted((e["timestamp"], e["path"]) for e in views.values())
        if not lo.strftime("%Y-%m-%d %H:%M:%S") <= ordered[0][0] < hi.strftime("%Y-%m-%d %H:%M:%S"):
            continue
        path: list[str] = []
        for _, page in ordered:
            if not (q.collapse_repeats and path and path[-1] == page):
                path.append(page)
        n = q.steps
        if q.start and q.end:
            if q.start not in path:
                continue
            i = path.index(q.start)
            window = path[i : i + n]
            if q.end not in window:
                continue
            j = window.index(q.end)
            counts[(tuple(window[: j + 1]), i + j + 1 == len(path))] += 1
        elif q.start:
            if q.start not in path:
                continue
            i = path.index(q.start)
            counts[(tuple(path[i : i + n]), len(path) - i <= n)] += 1
        elif q.end:
            if q.end not in path:
                continue
            j = path.index(q.end)
            first = max(0, j - n + 1)
            counts[(tuple(path[first : j + 1]), first == 0)] += 1
        else:
            counts[(tuple(path[:n]), len(path) <= n)] += 1
    return jq.shape(q, [(pages, complete, s) for (pages, complete), s in counts.items()])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sessions=st.lists(session, min_size=1, max_size=25),
    mode=st.sampled_from(MODES),
    collapse=st.booleans(),
    limit=st.integers(1, 4),
    per_step=st.integers(1, 3),
    country=st.sampled_from([None, "DE"]),
)
def test_store_tallies_equal_the_reference_with_ties_at_the_cut_offs(
    store: ChdbStore,
    sessions: list[tuple[int, list[tuple[str, int, bool]], str]],
    mode: tuple[int, str | None, str | None],
    collapse: bool,
    limit: int,
    per_step: int,
    country: str | None,
) -> None:
    site = f"top-{uuid.uuid4().hex[:12]}.example"
    events = site_events(site, sessions)
    store.insert_rows("events", events)
    steps, start, end = mode
    q = jq.JourneyQuery(steps, start, end, [], collapse, limit, per_step).check()
    sc = Scope(
        runner=QueryRunner(store),
        site=site,
        range=resolve("custom", ZONE, date_from="2024-03-05", date_to="2024-03-05"),
        filters=[Filter("country", "is", country)] if country else [],
    )
    want = reference(events, q, country)
    assert jq.answer(q, jq.path_tallies(sc, q)) == want
    if collapse:  # the bench's previous query handles the collapsed case
        assert jq.answer(q, previous_path_tallies(sc, q)) == want


def test_top_paths_tie_at_the_limit_broken_by_pages_then_complete(store: ChdbStore) -> None:
    """Hand-computed: 2 steps, limit 3. Paths (/a,/b) complete 2 sessions; then 1 each: (/a) complete,
    (/a,/a/b) complete, (/a,/b) open, (/é) complete: the top 3 are (/a,/b) 2, then by pages, a prefix first:
    (/a) 1, (/a,/a/b) 1; (/a,/b) open and (/é) are cut."""
    site = f"top-{uuid.uuid4().hex[:12]}.example"
    sessions = [
        (0, [("/a", 0, False), ("/b", 1, False)], "DE"),
        (60, [("/a", 0, False), ("/b", 1, True)], "DE"),
        (120, [("/é", 0, False)], "DE"),
        (180, [("/a", 0, False), ("/b", 1, False), ("/日本", 1, False)], "DE"),
        (240, [("/a", 0, False), ("/a/b", 1, False)], "DE"),
        (300, [("/a", 0, False), ("/a", 1, False)], "DE"),  # a reload: (/a) complete
    ]
    store.insert_rows("events", site_events(site, sessions))
    q = jq.JourneyQuery(steps=2, limit=3, per_step=1).check()
    sc = Scope(
        runner=QueryRunner(store),
        site=site,
        range=resolve("custom", ZONE, date_from="2024-03-05", date_to="2024-03-05"),
    )
    t = jq.path_tallies(sc, q)
    assert t.total == 6
    assert t.top == [(("/a", "/b"), True, 2), (("/a",), True, 1), (("/a", "/a/b"), True, 1)]
    assert dict(t.pages) == {(0, "/a"): 5, (0, "/é"): 1, (1, "/b"): 3, (1, "/a/b"): 1}
    # step 1 keeps /a, step 2 keeps /b: /é and /a/b are folded into `other`
    assert dict(t.links) == {(0, "/a", "/b"): 3, (0, "/a", None): 1}
    assert dict(t.dropoff) == {(1, "/b"): 2, (0, "/a"): 1, (1, None): 1, (0, None): 1}
