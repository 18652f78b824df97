"""The sessions table's entry and exit pages as keys (server/store/sessions.py, migration 36), both engines: a
session's entry is its earliest pageview's path (the least path of a tie), its exit the latest's (the greatest),
whatever the bytes of the times and paths, over rows of several inserts and copies; a store an older Pixel left
with `argMin`/`argMax` states gets the new table and the same entries and exits after its backfill."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel.server.store import sessions
from pixel.server.store.base import Store
from pixel.server.store.sessions import ENTRY_SQL, EXIT_SQL
from pixel.server.store.sessions_backfill import SessionsBackfill, read_state

# Milliseconds whose lowest byte is 0xFF: the next millisecond's lowest byte is 0x00, so keys compared
# little-endian (or as text of varying width) would put it first.
BASE_MS = (1_710_028_800_000 // 256) * 256 + 255
_sessions = itertools.count()


def _timestamp(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _rows(session: str, events: list[tuple[int, str, str]]) -> list[dict[str, object]]:
    return [
        {
            "timestamp": _timestamp(ms),
            "site": "keys.example",
            "event_id": f"{session}-e{i}",
            "event_name": name,
            "visitor_id": f"{session}-v",
            "session_id": session,
            "path": path,
        }
        for i, (ms, name, path) in enumerate(events)
    ]


def _entry_exit(store: Store, session: str) -> tuple[str, str, int]:
    rows = store.query(
        f"SELECT {ENTRY_SQL}, {EXIT_SQL}, uniqExactMerge(pageviews) FROM session_rows "
        "WHERE sid = cityHash64({s:String}) GROUP BY sid",
        {"s": session},
    ).rows
    assert len(rows) == 1
    entry, exit_, pageviews = rows[0]
    return entry, exit_, int(pageviews)


# (case, events as (ms after BASE_MS, event name, path), expected entry, expected exit)
CASES: list[tuple[str, list[tuple[int, str, str]], str, str]] = [
    (
        "a byte carried: the later millisecond has the lower low byte",
        [(1, "pageview", "/b"), (0, "pageview", "/a")],
        "/a",
        "/b",
    ),
    (
        "a carry over two bytes",
        [(65_537, "pageview", "/later"), (0, "pageview", "/sooner")],
        "/sooner",
        "/later",
    ),
    (
        "a tie: the least path enters, the greatest exits",
        [(5, "pageview", "/b"), (5, "pageview", "/a"), (5, "pageview", "/c")],
        "/a",
        "/c",
    ),
    (
        "a custom event before the first pageview",
        [(-9_000, "signup", "/x"), (0, "pageview", "/p"), (10, "click", "/z")],
        "/p",
        "/p",
    ),
    (
        "years apart",
        [(400 * 86_400_000 * 3, "pageview", "/2027"), (-20 * 365 * 86_400_000, "pageview", "/2004")],
        "/2004",
        "/2027",
    ),
    ("the empty path and a longer one at one time", [(7, "pageview", ""), (7, "pageview", "/")], "", "/"),
    (
        "text beyond ASCII",
        [(1, "pageview", "/ü"), (1, "pageview", "/日本"), (0, "pageview", "/z")],
        "/z",
        "/日本",
    ),
    (
        "across a 15-minute slot and a UTC midnight",
        [(3_600_000 * 13, "pageview", "/n"), (-60_000, "pageview", "/m")],
        "/m",
        "/n",
    ),
    ("no pageview: no entry, no exit", [(0, "signup", "/x"), (3, "click", "/y")], "", ""),
]


def test_entry_and_exit_keys_order_by_time_then_path(store: Store) -> None:
    for name, events, entry, exit_ in CASES:
        session = f"case-{next(_sessions)}"
        timed = [(BASE_MS + ms, kind, path) for ms, kind, path in events]
        rows = _rows(session, timed)
        store.insert_rows("events", rows[::2])
        store.insert_rows("events", rows[1::2] + rows[:1])  # the rest, and a copy of the first
        pageviews = sum(1 for _, kind, _ in events if kind == "pageview")
        assert _entry_exit(store, session) == (entry, exit_, pageviews), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-(2**40), max_value=2**40),
            st.sampled_from(["pageview", "pageview", "signup"]),
            st.sampled_from(["/", "/a", "/a/", "/b", "", "/ä", "/a?x=1"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_entry_and_exit_are_the_least_and_greatest_time_and_path(
    store: Store, events: list[tuple[int, str, str]]
) -> None:
    session = f"prop-{next(_sessions)}"
    timed = [(2**41 + ms, kind, path) for ms, kind, path in events]  # 2039-ish down to 1970-ish
    for i in range(0, len(timed), 5):  # several inserts: states merged across parts
        store.insert_rows("events", _rows(session, timed)[i : i + 5])
    pages = sorted((ms, path) for ms, kind, path in timed if kind == "pageview")
    entry, exit_, _ = _entry_exit(store, session)
    assert (entry, exit_) == ((pages[0][1], pages[-1][1]) if pages else ("", ""))


# The table and view as migrations 12-35 made them (entry and exit as argMin/argMax states of (time, path)).
_OLD_COLUMNS = """    `entry` AggregateFunction(argMin, String, Tuple(DateTime64(3, 'UTC'), String)),
    `exit` AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), String)),"""
_OLD_STATES = """    argMinStateIf(path, (timestamp, path), event_name = 'pageview') AS entry,
    argMaxStateIf(path, (timestamp, path), event_name = 'pageview') AS exit,"""
_NEW_COLUMNS = """    `entry_key` SimpleAggregateFunction(min, String),
    `exit_key` SimpleAggregateFunction(max, String),"""


def _old_form() -> tuple[str, str]:
    ddl = sessions.ddl()
    assert _NEW_COLUMNS in ddl
    start = sessions.SELECT.index("    min(if(event_name = 'pageview'")
    end = sessions.SELECT.index("AS exit_key,") + len("AS exit_key,")
    select = sessions.SELECT[:start] + _OLD_STATES + sessions.SELECT[end:]
    return ddl.replace(
        _NEW_COLUMNS, _OLD_COLUMNS
    ), f"CREATE MATERIALIZED VIEW session_rows_mv TO session_rows AS {select}"


def test_migration_36_remakes_an_older_table_and_the_backfill_fills_it(store: Store) -> None:
    old_table, old_view = _old_form()
    store.command("DROP TABLE session_rows_mv")
    store.command("DROP TABLE session_rows")
    store.command(old_table)
    store.command(old_view)
    store.command("DELETE FROM schema_migrations WHERE version = 36")
    cases = []
    for name, evs, entry, exit_ in CASES:
        session = f"old-{next(_sessions)}"
        store.insert_rows("events", _rows(session, [(BASE_MS + ms, kind, path) for ms, kind, path in evs]))
        cases.append((name, session, entry, exit_, sum(1 for _, kind, _ in evs if kind == "pageview")))
    # the older table holds them as argMin / argMax states, with the same answers
    for name, session, entry, exit_, _ in cases:
        got = store.query(
            "SELECT argMinMerge(entry), argMaxMerge(exit) FROM session_rows WHERE sid = cityHash64({s:String}) "
            "GROUP BY sid",
            {"s": session},
        ).rows
        assert got == [[entry, exit_]], name

    assert store.migrate() == [36]
    columns = {
        r[0]
        for r in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'session_rows'"
        ).rows
    }
    assert {"entry_key", "exit_key"} <= columns and not {"entry", "exit"} & columns
    assert store.scalar("SELECT count() FROM session_rows") == 0  # copied in the background, not by migrate
    state = read_state(store)
    assert state is not None and state.pending and not state.planned

    SessionsBackfill(store).run()
    for name, session, entry, exit_, pageviews in cases:
        assert _entry_exit(store, session) == (entry, exit_, pageviews), name
    # new events flow in through the new view
    store.insert_rows("events", _rows("after", [(BASE_MS, "pageview", "/new")]))
    assert _entry_exit(store, "after") == ("/new", "/new", 1)
