"""The shipper's rows stored through `Store.insert_events` (chDB: one Arrow table) hold exactly the values the
JSONEachRow rows (the engine-neutral path the shipper used before) give, on both engines; replays under the
same token land once; what an Arrow table cannot hold is judged by the store as before."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.enrich import Enricher
from pixel.server.settings import Settings
from pixel.server.shipper.reader import SpoolReader
from pixel.server.spool.record import encode_record
from pixel.server.spool.writer import SpoolWriter
from pixel.server.store.base import Store, StoreError
from pixel.server.store.chdb_engine import ChdbStore

ROOT = Path(__file__).resolve().parents[2]
CITY = ROOT / "tests" / "enrich" / "data" / "GeoLite2-City-Test.mmdb"
NOW_MS = 1_764_260_000_123
CHROME = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
BOT = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def stored(store: Store) -> list[list[Any]]:
    return store.query("SELECT * FROM events ORDER BY event_id").rows


def both_ways(store: Store, rows: list[dict[str, Any]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """The rows stored through the JSON rows (the old path), then through the engine's `insert_events`."""
    Store.insert_events(store, copy.deepcopy(rows), token="jsonrows")
    old = stored(store)
    store.command("TRUNCATE TABLE events")
    store.insert_events(copy.deepcopy(rows), token="enginerows")
    new = stored(store)
    store.command("TRUNCATE TABLE events")
    return old, new


def spool_mix(settings_: Settings) -> None:
    """Realistic and odd events, as the collector spools them: geo-located and unknown addresses, a bot,
    UTMs, revenue, web vitals, an error, a 404, properties with NUL characters, the compact format."""
    writer = SpoolWriter(settings_.spool_dir, fsync_interval=0)
    ips = [b"81.2.69.142", b"216.160.83.56", b"89.160.20.112", b"2001:db8::1", b"203.0.113.9"]
    for i in range(60):
        event: dict[str, Any] = {
            "event_name": ["pageview", "scroll", "web_vitals", "error", "purchase"][i % 5],
            "ts": NOW_MS - 1000 * i - i % 7,
            "site": "mix.example",
            "visitor_id": f"v{i % 9}" if i % 4 else None,
            "session_id": f"s{i % 9}" if i % 4 else None,
            "page": {
                "url": f"https://mix.example/p/{i % 11}?utm_source=news&utm_medium=email&gclid=x{i}",
                "title": f"Seite {i} — über “quotes” \\ tab\there",
                "referrer": ["", "https://www.google.com/", "https://t.co/abc", "android-app://com.x/"][
                    i % 4
                ],
            },
            "device": {"screen": "1920x1080", "lang": "de-DE", "tz": "Europe/Berlin"},
            "engaged_ms": i * 1234,
            "scroll_depth": i % 101,
            "params": {"plan": "pro", f"k{i}\u0000": "v\u0000al", "n": i, "flag": i % 2 == 0},
        }
        if event["event_name"] == "web_vitals":
            event["params"].update(
                {"lcp": 1234.5 + i, "cls": 0.1 + i / 1000, "inp": 88, "lcp_el": "img.hero"}
            )
        if event["event_name"] == "error":
            event["params"].update(
                {"message": f"boom {i}", "source": "https://mix.example/app.js", "line": i}
            )
        if event["event_name"] == "purchase":
            event["params"].update({"revenue": ["49.90", 12.5, "-3.0001", 0][i % 4], "currency": "eur"})
        if i % 13 == 0:
            event["not_found"] = 1
        body = orjson.dumps([event, {"n": "signup", "h": "mix.example", "p": {"u": f"/compact/{i}"}}])
        ua = BOT if i % 10 == 9 else CHROME
        writer.append(encode_record(NOW_MS, ips[i % len(ips)], ua, b"de-DE,de;q=0.9", b"", b"", b"", body))
    writer.rotate()
    writer.close()


def test_a_spool_gives_identical_rows_through_both_paths(store: Store, tmp_path: Path) -> None:
    """Fails before the change: there was no `insert_events`, only the JSON rows."""
    settings_ = Settings(data_dir=tmp_path / "data", geoip_db=str(CITY), max_event_age_days=100_000)
    spool_mix(settings_)
    enricher = Enricher(settings_)
    batch = SpoolReader(settings_, enricher).plan({})
    enricher.close()
    assert len(batch.rows) == 120 and not batch.dead
    old, new = both_ways(store, batch.rows)
    assert new == old
    assert len(new) == 120
    columns = store.query("SELECT * FROM events LIMIT 0").columns
    by_column = {
        name: {tuple(row)[i] if not isinstance(row[i], dict) else None for row in new}
        for i, name in enumerate(columns)
    }
    assert {"GB", "US", "SE", ""} <= by_column["country"]  # the test database's addresses, and unknown ones
    assert any(v not in (None, "") for v in by_column["latitude"])
    assert {49.9, 12.5, -3.0001, 0} <= by_column["revenue"]
    assert 1236.5 in by_column["lcp_ms"] and {0, 1} == by_column["not_found"]
    assert all("\x00" not in str(row) for row in new)


def test_the_same_token_lands_once_and_counts_as_a_write(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "store")
    try:
        store.migrate()
        rows = [
            {
                "timestamp": NOW_MS / 1000,
                "received_at": NOW_MS / 1000,
                "site": "a.example",
                "event_id": f"e{i}",
                "event_name": "pageview",
                "props": {"k": str(i)},
            }
            for i in range(50)
        ]
        writes = store.writes
        store.insert_events(copy.deepcopy(rows), token="tokenone")
        store.insert_events(copy.deepcopy(rows), token="tokenone")  # a replay after a crash
        assert store.scalar("SELECT count() FROM events") == 50
        store.insert_events(copy.deepcopy(rows), token="tokentwo")  # another batch of the same rows
        assert store.scalar("SELECT count() FROM events") == 100
        assert store.writes == writes + 3
        assert store.query("SELECT toUnixTimestamp64Milli(timestamp) FROM events LIMIT 1").rows == [[NOW_MS]]
        with pytest.raises(ValueError):
            store.insert_events(rows, token="not-alnum")
    finally:
        store.close()


def test_what_an_arrow_table_cannot_hold_is_judged_by_the_store_as_before(tmp_path: Path) -> None:
    """A time beyond what a row can hold, a value of the wrong type: the store's verdict is the JSON rows'."""
    store = ChdbStore(tmp_path / "store")
    try:
        store.migrate()
        base = {
            "timestamp": NOW_MS / 1000,
            "received_at": NOW_MS / 1000,
            "site": "a.example",
            "event_name": "pageview",
        }
        for odd in ({"timestamp": 1e19}, {"engaged_ms": "12"}, {"title": ["a", "b"]}, {"props": {"k": 5}}):
            rows = [{**base, "event_id": "good"}, {**base, "event_id": "odd", **odd}]
            outcomes = []
            for insert in (Store.insert_events, ChdbStore.insert_events):
                try:
                    insert(store, copy.deepcopy(rows), token=None)
                    outcomes.append(("stored", stored(store)))
                except StoreError as exc:
                    outcomes.append(("refused", str(exc).split(".")[0]))
                store.command("TRUNCATE TABLE events")
            assert outcomes[0] == outcomes[1], odd
    finally:
        store.close()


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_float32 = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.sampled_from(
    [0.0, -0.0, 52.5199, 1e-7]
)
_row = st.fixed_dictionaries(
    {
        "timestamp": st.integers(946_684_800_000, 4_102_444_799_999).map(lambda ms: ms / 1000),
        "received_at": st.integers(946_684_800_000, 4_102_444_799_999).map(lambda ms: ms / 1000),
        "site": _text,
        "event_name": _text,
    },
    optional={
        "visitor_id": _text,
        "url": _text,
        "title": _text,
        "country": _text,
        "latitude": _float32 | st.none(),
        "longitude": _float32,
        "is_bot": st.integers(0, 1),
        "scroll_depth": st.integers(0, 100),
        "engaged_ms": st.integers(0, 2**32 - 1),
        "props": st.dictionaries(_text, _text, max_size=4),
        "revenue": st.from_regex(r"-?[0-9]{1,13}\.[0-9]{4}", fullmatch=True),
        "lcp_ms": st.floats(min_value=0, max_value=600_000, allow_nan=False),
        "cls": st.floats(min_value=0, max_value=100, allow_nan=False) | st.none(),
        "error_line": st.integers(0, 2**32 - 1),
    },
)


@pytest.fixture(scope="module")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = ChdbStore(tmp_path_factory.mktemp("columnar") / "store")
    store.migrate()
    yield store
    store.close()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(_row, min_size=1, max_size=12))
def test_any_rows_store_the_same_values_both_ways(chdb_store: ChdbStore, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows):
        row["event_id"] = f"e{i:03d}"
    old, new = both_ways(chdb_store, rows)
    assert new == old
    assert len(new) == len(rows)
