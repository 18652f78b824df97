"""Journeys' tallies summed by the store with many distinct pages and odd labels, on both engines, for the
route's `journeys.path_tallies` (pages grouped on their label text) and for the page-ids candidate timed by
bench/bench_journeys.py (`ids_path_tallies`: pages grouped by their label's hash, labels put back on the rows
sent back): many distinct pages beyond a step's `per_step` folded into the `other` node in pages, links and
drop-offs exactly as the Python shaping of every path does, and labels holding unicode, quotes and
backslashes coming back unchanged, ranked by their text on ties (UTF-8 bytes, as Python orders code points)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bench.bench_journeys import ids_path_tallies
from pixel.server.api.query import journeys as jq
from pixel.server.api.query.periods import resolve
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store import Store
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.api import journeys_data as jd
from tests.chfront import ChFront

SITE = "ids.example"  # a UTC site, every session on 5 March 2024
ODD = ['/it\'s "x"', "/über", "/日本"]  # three sessions each: tied at step 2, ordered as Python orders them
RARE = ["/Z", "/é", "/back\\slash"]  # two sessions each


def sessions() -> dict[str, list[str]]:
    """60 sessions each with its own second page (`/item/NN`, then `/end` for the even ones), three each
    for the `ODD` pages and two each for the `RARE` ones (the odd-labelled ones reload and come back)."""
    out: dict[str, list[str]] = {}
    for k in range(60):
        out[f"m{k}"] = ["/", f"/item/{k:02d}"] + (["/end"] if k % 2 == 0 else [])
    for page in ODD:
        for j in range(3):
            out[f"o{ODD.index(page)}-{j}"] = ["/", page, page, "/", page]
    for page in RARE:
        for j in range(2):
            out[f"r{RARE.index(page)}-{j}"] = ["/", page]
    return out


def events() -> list[dict[str, Any]]:
    out = []
    for k, (session, pages) in enumerate(sessions().items()):
        t = datetime(2024, 3, 5, 1, 0, tzinfo=UTC) + timedelta(minutes=10 * k)
        for i, page in enumerate(pages):
            e = jd._ev(700_000 + 10 * k + i, t + timedelta(seconds=20 * i), session, page)
            out.append({**e, "site": SITE, "host": SITE, "event_id": f"ids-{k}-{i}"})
    return out


def collapsed(pages: list[str]) -> list[str]:
    return [p for i, p in enumerate(pages) if i == 0 or p != pages[i - 1]]


def reference(q: jq.JourneyQuery) -> dict[str, Any]:
    """The answer computed in Python from the sessions above (all-sessions mode, repeats collapsed)."""
    rows = []
    for pages in sessions().values():
        seq = collapsed(pages)
        rows.append((tuple(seq[: q.steps]), len(seq) <= q.steps, 1))
    return jq.shape(q, rows)


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    data_dir = tmp_path_factory.mktemp("journeys-ids")
    s: Store
    if request.param == "clickhouse":
        front: ChFront = request.getfixturevalue("api_chfront")
        s = ClickHouseStore(front.url, database=f"pixel_ji_{data_dir.name.replace('-', '_')}")
    else:
        s = ChdbStore(data_dir / "store")
    s.migrate()
    s.insert_rows("events", events())
    yield s
    s.close()


def scope(store: Store) -> Scope:
    rng = resolve("custom", "UTC", date_from=date(2024, 3, 5).isoformat(), date_to="2024-03-05")
    return Scope(runner=QueryRunner(store), site=SITE, range=rng)


TALLIES = {"text": jq.path_tallies, "ids": ids_path_tallies}


def answer(store: Store, q: jq.JourneyQuery, how: str) -> dict[str, Any]:
    return jq.answer(q, TALLIES[how](scope(store), q))


def test_the_route_answers_as_the_reference(store: Store) -> None:
    q = jq.JourneyQuery(steps=3, limit=5, per_step=4).check()
    assert jq.journeys(scope(store), q) == reference(q)


@pytest.mark.parametrize("how", list(TALLIES))
def test_many_pages_beyond_per_step_fold_into_other(store: Store, how: str) -> None:
    """Step 2 holds 63 pages with 1 or 2 sessions and three with 3: with `per_step` 3 the three are kept (the
    tie in label order) and the other 66 sessions are one `other` node, in the links and drop-offs too."""
    q = jq.JourneyQuery(steps=2, limit=3, per_step=3).check()
    body = answer(store, q, how)
    assert body == reference(q)
    assert body["sessions"] == 60 + 9 + 6
    step2 = body["columns"][1]["nodes"]
    assert [n["page"] for n in step2] == ODD + [None]
    assert [n["sessions"] for n in step2] == [3, 3, 3, 66]
    assert [n["dropoff"] for n in step2] == [0, 0, 0, 36]  # the 30 odd /item/NN go on to /end
    assert [(x["source"], x["target"], x["sessions"]) for x in body["links"]] == [
        ("/", ODD[0], 3),
        ("/", ODD[1], 3),
        ("/", ODD[2], 3),
        ("/", None, 66),
    ]
    assert [(p["pages"], p["sessions"]) for p in body["paths"]] == [(["/", page], 3) for page in ODD]


@pytest.mark.parametrize("how", list(TALLIES))
@pytest.mark.parametrize("steps", [2, 3, 4])
@pytest.mark.parametrize("limit,per_step", [(1, 1), (3, 2), (5, 4), (100, 50)])
def test_store_tallies_equal_the_reference(
    store: Store, how: str, steps: int, limit: int, per_step: int
) -> None:
    q = jq.JourneyQuery(steps=steps, limit=limit, per_step=per_step).check()
    assert answer(store, q, how) == reference(q)


@pytest.mark.parametrize("how", list(TALLIES))
def test_labels_come_back_unchanged(store: Store, how: str) -> None:
    """Every label with quotes, a backslash or non-ASCII text is returned as stored, in pages, links and paths."""
    q = jq.JourneyQuery(steps=4, limit=100, per_step=50).check()
    body = answer(store, q, how)
    assert body == reference(q)
    shown = {n["page"] for col in body["columns"] for n in col["nodes"]}
    assert set(ODD + RARE) <= shown
    assert {x["target"] for x in body["links"]} >= set(ODD + RARE)
    assert ["/", ODD[1], "/", ODD[1]] in [p["pages"] for p in body["paths"]]
