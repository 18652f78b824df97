"""Migration 6 (typed 404 flag, revenue, web vitals, errors) on both engines: a store made at schema version 5,
holding rows, gains the typed columns; the old rows keep every value and read the new columns' defaults; the
upgraded table equals a new one column for column; new rows store the typed values exactly."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pixel.server.store import schema
from pixel.server.store.base import SCHEMA_MIGRATIONS_DDL, Store, StoreError
from pixel.server.store.schema import (
    DERIVED_COLUMNS,
    EVENT_COLUMNS,
    TABLE_COLUMNS,
    TYPED_COLUMNS,
    derived_column_sql,
    migrations,
)

# The events table at version 5 ended with these columns; migration 6 appends the typed ones after them.
V5_LAST_COLUMNS = ["engaged_ms", "scroll_depth", "props"]
TYPED = [
    "not_found",
    "revenue",
    "currency",
    "ttfb_ms",
    "fcp_ms",
    "lcp_ms",
    "cls",
    "inp_ms",
    "ttfb_rating",
    "fcp_rating",
    "lcp_rating",
    "cls_rating",
    "inp_rating",
    "lcp_element",
    "inp_target",
    "error_message",
    "error_source",
    "error_line",
    "error_col",
    "error_hash",
]

OLD_ROWS: list[dict[str, Any]] = [
    {
        "timestamp": "2024-05-06 07:08:09.123",
        "received_at": "2024-05-06 07:08:09.456",
        "site": "old.example",
        "event_id": "old-1",
        "event_name": "purchase",
        "visitor_id": "v1",
        "url": "https://old.example/buy",
        "path": "/buy",
        "country": "DE",
        "latitude": 52.5,
        "longitude": 13.4,
        "engaged_ms": 1200,
        "scroll_depth": 80,
        "props": {"revenue": "49.9", "currency": "EUR"},  # as version 5 stored revenue: text in props
    },
    {
        "timestamp": "2024-05-07 00:00:00.000",
        "received_at": "2024-05-07 00:00:01.000",
        "site": "old.example",
        "event_id": "old-2",
        "event_name": "web_vitals",
        "props": {"lcp": "2400", "lcp_el": "img#hero"},
    },
]
V5_SELECT = (
    "SELECT event_id, toString(timestamp), event_name, visitor_id, url, path, country, round(latitude, 1), "
    "round(longitude, 1), engaged_ms, scroll_depth, props FROM events FINAL ORDER BY event_id"
)
TYPED_SELECT = (
    "SELECT event_id, not_found, toString(revenue), currency, ttfb_ms, fcp_ms, lcp_ms, cls, inp_ms, "
    "ttfb_rating, fcp_rating, lcp_rating, cls_rating, inp_rating, lcp_element, inp_target, error_message, "
    "error_source, error_line, error_col, error_hash FROM events FINAL ORDER BY event_id"
)
DEFAULTS = [0, None, "", None, None, None, None, None, "", "", "", "", "", "", "", "", "", 0, 0, ""]


def v5_events_ddl() -> str:
    """The events table as version 5 created it: today's DDL without the columns migrations 6, 7 and 16 added."""
    ddl = schema._events_ddl("")
    for column in [f",\n    `{name}` {EVENT_COLUMNS[name]}" for name in (*TYPED_COLUMNS, "import_id")] + [
        f",\n    {derived_column_sql(name)}" for name in DERIVED_COLUMNS
    ]:
        assert column in ddl
        ddl = ddl.replace(column, "", 1)
    return ddl


def make_v5_store(store: Store) -> None:
    """A store as `migrate()` left it at version 5."""
    store.command(SCHEMA_MIGRATIONS_DDL)
    for m in migrations()[:5]:
        old = tuple(
            v5_events_ddl() if statement.startswith("CREATE TABLE IF NOT EXISTS events") else statement
            for statement in m.statements
        )
        store.apply_migration(dataclasses.replace(m, statements=old))


def columns(store: Store) -> list[list[Any]]:
    return store.query(
        "SELECT name, type, default_kind, default_expression FROM system.columns "
        "WHERE database = currentDatabase() AND table = 'events' ORDER BY position"
    ).rows


def test_the_typed_columns_are_those_named() -> None:
    assert list(TYPED_COLUMNS) == TYPED
    assert list(EVENT_COLUMNS)[: list(EVENT_COLUMNS).index(TYPED[0])][-3:] == V5_LAST_COLUMNS
    assert [m.version for m in migrations()][5] == 6


def test_a_version_5_store_with_rows_is_migrated(bare_store: Store) -> None:
    make_v5_store(bare_store)
    names = [row[0] for row in columns(bare_store)]
    assert names[-3:] == V5_LAST_COLUMNS and "not_found" not in names  # really the old table
    bare_store.insert_rows("events", OLD_ROWS)
    before = bare_store.query(V5_SELECT).rows
    assert before == [
        [
            "old-1",
            "2024-05-06 07:08:09.123",
            "purchase",
            "v1",
            "https://old.example/buy",
            "/buy",
            "DE",
            52.5,
            13.4,
            1200,
            80,
            {"revenue": "49.9", "currency": "EUR"},
        ],
        [
            "old-2",
            "2024-05-07 00:00:00.000",
            "web_vitals",
            "",
            "",
            "",
            "",
            None,
            None,
            0,
            0,
            {"lcp": "2400", "lcp_el": "img#hero"},
        ],
    ]

    assert bare_store.migrate() == [
        m.version for m in migrations() if m.version > 5
    ]  # 6: typed columns, and after

    assert bare_store.query(V5_SELECT).rows == before  # the old rows keep every value
    assert bare_store.query(TYPED_SELECT).rows == [["old-1", *DEFAULTS], ["old-2", *DEFAULTS]]
    assert [[name, kind] for name, kind, _, _ in columns(bare_store)] == [
        [n, k] for n, k in TABLE_COLUMNS.items()
    ]
    assert bare_store.query("SELECT version, name FROM schema_migrations WHERE version = 6").rows == [
        [6, "events: typed 404 flag, revenue, web vitals, errors"]
    ]
    assert bare_store.migrate() == []  # idempotent

    # new rows beside the old ones, with typed values stored exactly
    bare_store.insert_rows(
        "events",
        [
            {
                "timestamp": "2024-05-08 10:00:00.000",
                "site": "old.example",
                "event_id": "new-1",
                "event_name": "purchase",
                "revenue": "49.9000",
                "currency": "EUR",
                "not_found": 1,
            },
            {
                "timestamp": "2024-05-08 10:00:01.000",
                "site": "old.example",
                "event_id": "new-2",
                "event_name": "web_vitals",
                "ttfb_ms": 800.0,
                "fcp_ms": 1801.0,
                "lcp_ms": 4000.5,
                "cls": 0.1,
                "inp_ms": 312.0,
                "ttfb_rating": "good",
                "fcp_rating": "needs-improvement",
                "lcp_rating": "poor",
                "cls_rating": "good",
                "inp_rating": "needs-improvement",
                "lcp_element": "img#hero",
                "inp_target": "button#slow",
            },
            {
                "timestamp": "2024-05-08 10:00:02.000",
                "site": "old.example",
                "event_id": "new-3",
                "event_name": "error",
                "revenue": "-99999999999999.9999",
                "currency": "JPY",
                "error_message": "Uncaught Error: e",
                "error_source": "https://old.example/app.js",
                "error_line": 4294967295,
                "error_col": 7,
                "error_hash": "1x2y3z",
            },
        ],
    )
    rows = bare_store.query(TYPED_SELECT).rows
    assert rows[3:] == [["old-1", *DEFAULTS], ["old-2", *DEFAULTS]]
    assert rows[:3] == [
        [
            "new-1",
            1,
            "49.9",
            "EUR",
            None,
            None,
            None,
            None,
            None,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            0,
            0,
            "",
        ],
        [
            "new-2",
            0,
            None,
            "",
            800.0,
            1801.0,
            4000.5,
            0.1,
            312.0,
            "good",
            "needs-improvement",
            "poor",
            "good",
            "needs-improvement",
            "img#hero",
            "button#slow",
            "",
            "",
            0,
            0,
            "",
        ],
        [
            "new-3",
            0,
            "-99999999999999.9999",
            "JPY",
            None,
            None,
            None,
            None,
            None,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "Uncaught Error: e",
            "https://old.example/app.js",
            4294967295,
            7,
            "1x2y3z",
        ],
    ]
    # the amount is a decimal with four places, exactly
    assert bare_store.query(
        "SELECT event_id, toDecimalString(revenue, 4), revenue = toDecimal64('49.90', 4) FROM events FINAL "
        "WHERE revenue IS NOT NULL ORDER BY event_id"
    ).rows == [["new-1", "49.9000", 1], ["new-3", "-99999999999999.9999", 0]]
    assert bare_store.scalar("SELECT sum(revenue) FROM events FINAL WHERE currency = 'EUR'") == 49.9


def test_a_new_store_and_an_upgraded_one_have_the_same_table(bare_store: Store, tmp_path) -> None:
    make_v5_store(bare_store)
    bare_store.migrate()
    upgraded = columns(bare_store)
    bare_store.command("DROP TABLE events")
    bare_store.command(schema._events_ddl(""))
    assert columns(bare_store) == upgraded
    # no DEFAULT expressions (rows leave defaults out); the derived columns are computed from the row
    assert [(n, kind, expr) for n, _, kind, expr in upgraded if kind] == [
        (n, "MATERIALIZED", expr) for n, (_, expr) in DERIVED_COLUMNS.items()
    ]


def test_a_fresh_store_applies_migration_6_as_a_no_op(bare_store: Store) -> None:
    assert bare_store.migrate() == [m.version for m in migrations()]
    assert [[n, k] for n, k, _, _ in columns(bare_store)] == [[n, k] for n, k in TABLE_COLUMNS.items()]


def test_an_amount_too_large_for_the_decimal_is_refused_by_the_store(store: Store) -> None:
    # Why the shipper bounds amounts itself (pixel.server.typedfields.MAX_AMOUNT): the store refuses the row
    # rather than wrap the value around, which would send the event to the dead letters.
    with pytest.raises(StoreError, match="too big"):
        store.insert_rows("events", [{"site": "x.example", "event_id": "big", "revenue": "100000000000000"}])
    store.insert_rows("events", [{"site": "x.example", "event_id": "max", "revenue": "99999999999999.9999"}])
    assert store.query("SELECT event_id, toString(revenue) FROM events").rows == [
        ["max", "99999999999999.9999"]
    ]
