"""The store contract, run on both engines (chDB embedded, ClickHouse server via clickhouse-connect)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from pixel.server.store.base import Store, StoreError, StoreUnavailable, dedup_token
from pixel.server.store.schema import TABLE_COLUMNS, migrations

EVENT = {
    "timestamp": "2024-05-06 07:08:09.123",
    "received_at": "2024-05-06 07:08:09.456",
    "site": "example.org",
    "event_id": "ev-1",
    "event_name": "pageview",
    "visitor_id": "v1",
    "session_id": "s1",
    "url": "https://example.org/a?b=1",
    "host": "example.org",
    "path": "/a",
    "query": "b=1",
    "title": "Ünïcode \"title\" with 'quotes'",
    "is_bot": 1,
    "engaged_ms": 4200,
    "props": {"plan": "pro", "note": "it's \\ fine"},
}


def test_migrate_is_idempotent(bare_store: Store) -> None:
    defined = migrations()
    assert [m.version for m in defined][:1] == [1]
    assert bare_store.migrate() == [m.version for m in defined]
    listing = "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    tables = bare_store.query(listing).rows
    assert bare_store.migrate() == []
    assert bare_store.query(listing).rows == tables  # a second run creates and drops nothing
    assert bare_store.query("SELECT version, name FROM schema_migrations ORDER BY version").rows == [
        [m.version, m.name] for m in defined
    ]
    assert defined[0].name == "events and dead letters"
    assert {"dead_letters", "events", "schema_migrations"} <= {t[0] for t in tables}


def test_events_columns_have_the_schema_types(store: Store) -> None:
    result = store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events' "
        "ORDER BY position"
    )
    assert [(name, kind) for name, kind in result.rows] == [
        (name, kind) for name, kind in TABLE_COLUMNS.items()
    ]


def test_insert_and_query_typed_values_exactly(store: Store) -> None:
    store.insert_rows("events", [EVENT])
    result = store.query(
        "SELECT timestamp, received_at, site, event_id, title, props, is_bot, engaged_ms, country, "
        "toUnixTimestamp64Milli(timestamp) AS ms, count() OVER () AS n FROM events FINAL"
    )
    assert result.columns == [
        "timestamp",
        "received_at",
        "site",
        "event_id",
        "title",
        "props",
        "is_bot",
        "engaged_ms",
        "country",
        "ms",
        "n",
    ]
    assert result.types == [
        "DateTime64(3, 'UTC')",
        "DateTime64(3, 'UTC')",
        "LowCardinality(String)",
        "String",
        "String",
        "Map(String, String)",
        "UInt8",
        "UInt32",
        "LowCardinality(String)",
        "Int64",
        "UInt64",
    ]
    assert result.rows == [
        [
            "2024-05-06 07:08:09.123",
            "2024-05-06 07:08:09.456",
            "example.org",
            "ev-1",
            "Ünïcode \"title\" with 'quotes'",
            {"plan": "pro", "note": "it's \\ fine"},
            1,
            4200,
            "",
            1714979289123,
            1,  # 64-bit integers as numbers, not quoted, on both engines
        ]
    ]
    assert result.dicts()[0]["site"] == "example.org"


@pytest.mark.parametrize(
    "value",
    [
        "it's",
        "O'Brien \\ back\\slash",
        "tab\there, newline\nthere",
        "C:\\new\\table \\\\ two",
        "'; DROP TABLE events; --",
        "{curly} %s %(x)s ünï",
    ],
)
def test_parameters_carry_any_string_unchanged(store: Store, value: str) -> None:
    assert store.scalar("SELECT {v:String}", {"v": value}) == value
    store.insert_rows("events", [{**EVENT, "path": value}])
    assert store.scalar("SELECT count() FROM events WHERE path = {p:String}", {"p": value}) == 1
    assert store.scalar("SELECT count() FROM events") == 1


def test_typed_parameters(store: Store) -> None:
    store.insert_rows(
        "events", [EVENT, {**EVENT, "event_id": "ev-2", "timestamp": "2024-05-07 00:00:00.000"}]
    )
    result = store.query(
        "SELECT event_id FROM events FINAL WHERE site = {site:String} AND timestamp >= {start:DateTime64(3, 'UTC')} "
        "AND timestamp < {end:DateTime64(3, 'UTC')} AND event_id IN {ids:Array(String)} ORDER BY event_id",
        {
            "site": "example.org",
            "start": datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
            "end": "2024-05-06 07:08:09.124",
            "ids": ["ev-1", "ev-2"],
        },
    )
    assert result.rows == [["ev-1"]]
    assert store.scalar("SELECT {n:UInt32} + 1", {"n": 41}) == 42


def test_same_dedup_token_inserts_once(store: Store) -> None:
    token = dedup_token("segment-0001", 0, 4096)
    store.insert_rows("events", [EVENT, {**EVENT, "event_id": "ev-2"}], token=token)
    store.insert_rows("events", [EVENT, {**EVENT, "event_id": "ev-2"}], token=token)
    assert store.scalar("SELECT count() FROM events") == 2


def test_different_tokens_insert_twice_and_final_collapses_same_event_id(store: Store) -> None:
    store.insert_rows("events", [EVENT], token=dedup_token("segment-0001", 0, 100))
    store.insert_rows("events", [EVENT], token=dedup_token("segment-0002", 0, 100))
    assert store.scalar("SELECT count() FROM events") == 2
    assert store.scalar("SELECT count() FROM events FINAL WHERE event_id = {e:String}", {"e": "ev-1"}) == 1


def test_insert_json_takes_jsoneachrow_bytes(store: Store) -> None:
    store.insert_json("events", b'{"site":"a","event_id":"1"}\n{"site":"b","event_id":"2"}\n')
    assert store.query("SELECT site, event_id FROM events ORDER BY site").rows == [["a", "1"], ["b", "2"]]


def _ttl(store: Store) -> str:
    engine_full = store.scalar(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    )
    match = re.search(r"TTL (.*?) SETTINGS", engine_full)
    return match.group(1) if match else ""


def test_retention_ttl_is_applied_changed_and_removed(bare_store: Store) -> None:
    bare_store.migrate(retention_days=30)
    assert _ttl(bare_store) == "toDateTime(timestamp) + toIntervalDay(30)"
    assert bare_store.migrate(retention_days=7) == []
    assert _ttl(bare_store) == "toDateTime(timestamp) + toIntervalDay(7)"
    bare_store.migrate(retention_days=0)
    assert _ttl(bare_store) == ""


def test_retention_drops_old_rows(bare_store: Store) -> None:
    bare_store.migrate(retention_days=30)
    bare_store.insert_rows(
        "events",
        [
            {**EVENT, "event_id": "old", "timestamp": "2001-01-01 00:00:00.000"},
            # the TTL runs on the store's clock: "new" is new by that clock, whatever Pixel's says
            {**EVENT, "event_id": "new", "timestamp": str(bare_store.scalar("SELECT toString(now('UTC'))"))},
        ],
    )
    bare_store.command("OPTIMIZE TABLE events FINAL")
    assert bare_store.query("SELECT event_id FROM events").rows == [["new"]]


def test_bad_sql_is_a_store_error_with_the_server_message(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        store.query("SELEC 1")
    assert not isinstance(info.value, StoreUnavailable)
    message = str(info.value)
    assert message.startswith("Code: 62. DB::Exception: Syntax error")
    assert message.endswith("(SYNTAX_ERROR)")


def test_unknown_table_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"UNKNOWN_TABLE"):
        store.query("SELECT * FROM no_such_table")
    with pytest.raises(StoreError, match=r"no_such_table"):
        store.insert_rows("no_such_table", [{"a": 1}])


def test_bad_row_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"CANNOT_PARSE|INCORRECT_DATA|Cannot parse"):
        store.insert_json("events", b'{"site":"a","engaged_ms":"not a number"}\n')
    assert store.scalar("SELECT count() FROM events") == 0


def test_large_parameters(store: Store) -> None:
    # Over clickhouse-connect's URL limit (4 KiB) it sends parameters as a form instead.
    ids = [f"event-{i:05d}" for i in range(2000)]
    store.insert_rows("events", [{**EVENT, "event_id": ids[7]}, {**EVENT, "event_id": "other"}])
    assert store.query(
        "SELECT event_id FROM events WHERE event_id IN {ids:Array(String)}", {"ids": ids}
    ).rows == [[ids[7]]]
    big = "x'\\" * 5000
    assert store.scalar("SELECT length({v:String})", {"v": big}) == len(big)


def test_rounded_coordinates_are_stored_and_null_when_unknown(store: Store) -> None:
    store.insert_rows(
        "events",
        [
            {"site": "geo.example", "event_id": "with", "latitude": 51.5, "longitude": -0.1},
            {"site": "geo.example", "event_id": "without"},
        ],
    )
    rows = store.query(
        "SELECT event_id, round(latitude, 1), round(longitude, 1) FROM events WHERE site = 'geo.example' "
        "ORDER BY event_id"
    ).rows
    assert rows == [["with", 51.5, -0.1], ["without", None, None]]


def test_an_older_store_gains_the_coordinates_on_migration(store: Store) -> None:
    # A data folder made before migration 5: no coordinate columns, migration 5 not recorded.
    store.command("ALTER TABLE events DROP COLUMN latitude, DROP COLUMN longitude")
    store.command("ALTER TABLE schema_migrations DELETE WHERE version = 5 SETTINGS mutations_sync = 2")
    assert store.migrate() == [5]
    columns = store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events' "
        "AND name IN ('city', 'latitude', 'longitude') ORDER BY position"
    ).rows
    assert columns == [
        ["city", "String"],
        ["latitude", "Nullable(Float32)"],
        ["longitude", "Nullable(Float32)"],
    ]
