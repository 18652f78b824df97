"""Copies inside one batch are collapsed before the insert, the last kept, as the store would keep it
(`inserter.without_copies`); the insert then skips the store's own look for them (`UNIQUE_KEYS`). Readers count on
a part holding no two rows of one key (site, UTC day, event id): checked on the parts with `count()`, no FINAL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.eventformat import CHECKED
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper, ShipperStats
from pixel.server.shipper.inserter import BatchInserter, without_copies
from pixel.server.shipper.reader import Batch
from pixel.server.store.chdb_engine import ChdbStore

from .test_poison import drain, rows, spool

DAY = 86_400
T = 1_764_201_600  # 2025-11-27 00:00:00 UTC
NOW_MS = (T + 3 * DAY) * 1000


def row(event_id: str, timestamp: float, site: str = "a.example", path: str = "/") -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": timestamp, "site": site, "path": path}


CASES: list[tuple[str, list[dict[str, Any]], list[int]]] = [
    ("no copies", [row("a", T), row("b", T), row("c", T + 5)], [0, 1, 2]),
    ("one copy, the last kept", [row("a", T, path="/1"), row("b", T), row("a", T + 1, path="/2")], [1, 2]),
    ("three of one id", [row("a", T), row("a", T + 1), row("a", T + 2), row("b", T)], [2, 3]),
    ("another site is another key", [row("a", T), row("a", T, site="b.example")], [0, 1]),
    ("another UTC day is another key", [row("a", T - 0.001), row("a", T)], [0, 1]),
    ("the day's last millisecond", [row("a", T + DAY - 0.001), row("a", T + 1)], [1]),
    ("integer seconds", [row("a", T), row("a", T + 10)], [1]),
    ("order kept", [row("c", T), row("a", T), row("b", T), row("a", T), row("c", T)], [2, 3, 4]),
]


@pytest.mark.parametrize(("name", "given_rows", "kept"), CASES, ids=[c[0] for c in CASES])
def test_without_copies(name: str, given_rows: list[dict[str, Any]], kept: list[int]) -> None:
    out = without_copies(given_rows)
    assert out is not None
    assert [id(r) for r in out] == [id(given_rows[i]) for i in kept]
    if len({r["event_id"] for r in given_rows}) == len(given_rows):
        assert out is given_rows  # nothing built when no id repeats


def test_a_repeated_id_without_a_number_of_seconds_is_left_to_the_store() -> None:
    assert without_copies([row("a", T), {**row("a", T), "timestamp": "2025-11-27 00:00:00"}]) is None
    unique = [{**row("a", T), "timestamp": "2025-11-27 00:00:00"}, row("b", T)]
    assert without_copies(unique) is unique  # no repeated id: nothing to decide


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["x.example", "y.example"]),
            st.integers(min_value=(T - DAY) * 1000, max_value=(T + 2 * DAY) * 1000),
        ),
        max_size=30,
    )
)
def test_without_copies_keeps_the_last_row_of_each_key(drawn: list[tuple[str, str, int]]) -> None:
    given_rows = [row(eid, ms / 1000, site) for eid, site, ms in drawn]
    last = {(eid, site, ms // 86_400_000): i for i, (eid, site, ms) in enumerate(drawn)}
    out = without_copies(given_rows)
    assert out is not None
    assert [id(r) for r in out] == [id(given_rows[i]) for i in sorted(last.values())]


def pageview(event_id: str, path: str, ts_ms: int) -> dict[str, Any]:
    return {
        "event_name": "pageview",
        "event_id": event_id,
        "ts": ts_ms,
        "site": "a.example",
        "page": {"url": f"https://a.example{path}"},
    }


def test_copies_in_one_batch_reach_the_store_once_the_last_kept(tmp_path: Path, store: ChdbStore) -> None:
    """One request sent twice (a client's retry), an id repeated in one request, an id on two UTC days: one row
    per key in the parts themselves (count() without FINAL), the last of each key."""
    settings_ = Settings(data_dir=tmp_path / "data", batch_max_rows=1000, max_event_age_days=100_000)
    day2 = (T + 2 * DAY) * 1000
    first = orjson.dumps([pageview("r1", "/first", day2 + 1000), pageview("r2", "/x", day2 + 2000)])
    retry = orjson.dumps([pageview("r1", "/retried", day2 + 1000), pageview("r2", "/x", day2 + 2000)])
    inside = orjson.dumps([pageview("i1", "/one", day2 + 5000), pageview("i1", "/two", day2 + 6000)])
    days = orjson.dumps([pageview("d1", "/day1", day2 - 1), pageview("d1", "/day2", day2)])
    spool(settings_, [first, retry, inside, days], NOW_MS, flags=CHECKED.encode())
    shipper = Shipper(settings_, store)
    drain(shipper)
    assert shipper.stats.inserted == 8 and shipper.stats.dead == 0
    assert rows(
        store, "SELECT event_id, path, toDate(timestamp) FROM events ORDER BY event_id, timestamp"
    ) == [
        ["d1", "/day1", "2025-11-28"],
        ["d1", "/day2", "2025-11-29"],
        ["i1", "/two", "2025-11-29"],
        ["r1", "/retried", "2025-11-29"],
        ["r2", "/x", "2025-11-29"],
    ]
    assert rows(store, "SELECT count() FROM system.parts WHERE table = 'events' AND active") == [[1]]


def test_rows_left_to_the_store_are_collapsed_by_it(store: ChdbStore) -> None:
    """Timestamps the inserter cannot read as seconds: the store's own look for copies is kept."""
    stamp = "2025-11-27 10:00:00.000"
    batch = Batch(
        rows=[
            {"event_id": "s1", "site": "a.example", "timestamp": stamp, "received_at": stamp, "path": "/a"},
            {"event_id": "s1", "site": "a.example", "timestamp": stamp, "received_at": stamp, "path": "/b"},
        ]
    )
    BatchInserter(store, ShipperStats()).insert(batch, "tokenstore1")
    assert rows(store, "SELECT event_id, path FROM events") == [["s1", "/b"]]
