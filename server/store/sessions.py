"""The sessions table (`session_rows`): per site, 15-minute slot, session and session-level dimensions, what
the filtered dashboard needs of a session, kept at insert time by a materialized view on `events`.

One row per (site, `slot` = the event's UTC 15-minute slot, `sid` = cityHash64(session_id), visitor and the
values of the dimensions in `COLUMNS`) once merged: a session whose dimensions stay the same (country,
device, source, UTM of its visit) has one row per slot it touched, a few times fewer rows than events.
Every zone's midnight and hour start on a 15-minute slot, so a range of whole local days (or hours) is a
set of whole slots, and a slot's events share their local day and hour.

Copy-proof by construction (the pipeline is at-least-once; `events` collapses client-retry copies only on
merge): a copy of an event carries the same values, so it lands in the same row, and every state is one a
copy does not change: `min`/`max` of timestamps, `min`/`max` of the pageviews' keys (`entry_key`, `exit_key`:
the timestamp's milliseconds as 8 big-endian bytes, then the path, so that byte order is (time, path) order and
the least path enters a tie, the greatest exits), `uniqExact` of the 64-bit hash of (day, `event_id`) (the key
`raw_dashboard` groups copies by) for the event and pageview counts. Readers must GROUP BY (the table merges
rows lazily), merge the states and read the paths with `ENTRY_SQL` / `EXIT_SQL`.

Why keys and not `argMin(path, (timestamp, path))` states (migration 36 replaced them): a tuple's comparisons
and states go through ClickHouse's generic value path, which made the view the largest part of an insert's
cost; two strings compare and merge as bytes (bench/README.md, "Ingest on a quiet machine; the sessions table's entry
and exit as keys").
Stated exception: a copy whose timestamp differs from its original's (the tracker sends one timestamp per
event, so it does not) would be counted in both slots.

Migration 12 makes it and its view (new events flow in at once) and records in `session_rows_backfill` that the
events stored before still have to be copied in; `sessions_backfill.SessionsBackfill` does that in the
background of `pixel serve`, newest UTC hour first, and records after each chunk how far it got (`filled_from`:
every event at or after it is in the table). A chunk inserted twice (a kill between its insert and its record,
or events the view also counted) changes nothing: the states are copy-proof. A store that ran migration 12
before the backfill moved to the background (it filled the table inline) has no row in `session_rows_backfill`:
complete. Readers use the table only for ranges at or after `filled_from` (`sessions_backfill.covers`).
"""

from __future__ import annotations

# Session-table dimension -> column type, the same names as the events' columns (filters.DIMENSIONS maps
# the API's names onto them: `device` -> device_type, `referrer` -> ref_host).
COLUMNS: dict[str, str] = {
    "is_bot": "UInt8",
    "ref_host": "LowCardinality(String)",
    "source": "LowCardinality(String)",
    "medium": "LowCardinality(String)",
    "channel": "LowCardinality(String)",
    "utm_source": "String",
    "utm_medium": "String",
    "utm_campaign": "String",
    "utm_term": "String",
    "utm_content": "String",
    "country": "LowCardinality(String)",
    "browser": "LowCardinality(String)",
    "os": "LowCardinality(String)",
    "device_type": "LowCardinality(String)",
}

SLOT_SQL = "toStartOfFifteenMinutes(timestamp)"
_TS = "DateTime64(3, 'UTC')"
_KEY = ("site", "slot", "sid", "visitor_id", *COLUMNS)

# A pageview's key: its timestamp's milliseconds since the epoch as 8 big-endian bytes (byte order is number
# order for times after 1970), then its path. A row without a pageview holds a key above every real one for the
# entry (a first byte 0xFF: no real time reaches it) and the empty string, below every real one, for the exit.
_PAGE_KEY = "concat(reverse(reinterpretAsFixedString(toUnixTimestamp64Milli(timestamp))), path)"
_NO_ENTRY = "'\\xFF'"
# A session's entry and exit page from its rows grouped (only sessions with a pageview have one).
ENTRY_SQL = "substring(min(entry_key), 9)"
EXIT_SQL = "substring(max(exit_key), 9)"


def ddl(ttl_days: int = 0) -> str:
    dims = ",\n    ".join(f"`{name}` {kind}" for name, kind in COLUMNS.items())
    ttl = f"TTL slot + INTERVAL {int(ttl_days)} DAY\n" if ttl_days > 0 else ""
    return f"""CREATE TABLE IF NOT EXISTS session_rows (
    `site` LowCardinality(String),
    `slot` DateTime('UTC'),
    `sid` UInt64,
    `visitor_id` String,
    {dims},
    `first_seen` SimpleAggregateFunction(min, {_TS}),
    `last_seen` SimpleAggregateFunction(max, {_TS}),
    `entry_key` SimpleAggregateFunction(min, String),
    `exit_key` SimpleAggregateFunction(max, String),
    `pageviews` AggregateFunction(uniqExact, UInt64),
    `events` AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(slot)
ORDER BY ({", ".join(_KEY)})
{ttl}SETTINGS index_granularity = 8192"""


def select(where: str = "") -> str:
    """The SELECT over `events` rows (those matching `where`, if given) that makes session_rows' rows (the
    view's and the backfill's)."""
    return f"""SELECT site, {SLOT_SQL} AS slot, cityHash64(session_id) AS sid, visitor_id, {", ".join(COLUMNS)},
    min(timestamp) AS first_seen, max(timestamp) AS last_seen,
    min(if(event_name = 'pageview', {_PAGE_KEY}, {_NO_ENTRY})) AS entry_key,
    max(if(event_name = 'pageview', {_PAGE_KEY}, '')) AS exit_key,
    uniqExactStateIf(cityHash64(toDate(timestamp), event_id), event_name = 'pageview') AS pageviews,
    uniqExactState(cityHash64(toDate(timestamp), event_id)) AS events
FROM events{f" WHERE {where}" if where else ""}
GROUP BY {", ".join(_KEY)}"""


SELECT = select()

MV_DDL = f"CREATE MATERIALIZED VIEW IF NOT EXISTS session_rows_mv TO session_rows AS {SELECT}"

# The backfill's progress, one row per step (the newest `step` is the state). `planned` = 0: nothing known
# yet (the table answers no range); 1: every event stored before the view has a timestamp >= `low`, and the
# events at or after `filled_from` are in the table; `pending` = 0: complete.
STATE_DDL = """CREATE TABLE IF NOT EXISTS session_rows_backfill (
    `step` UInt32,
    `pending` UInt8,
    `planned` UInt8,
    `low` DateTime64(3, 'UTC'),
    `filled_from` DateTime('UTC'),
    `at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY step"""

# Migration 12's record: the events stored before the view are still to be copied in (no scan of them).
# A store without events (a new one) has nothing to copy: no record, complete. `count()` of a whole table is
# read from the parts' metadata.
PENDING = """INSERT INTO session_rows_backfill (step, pending, planned, low, filled_from)
SELECT 1, 1, 0, 0, 0 WHERE (SELECT count() FROM events) > 0"""


def remade(ttl_days: int = 0) -> tuple[str, ...]:
    """Migration 36: the table made again in this module's form (entry and exit as keys; an older table's
    `argMin`/`argMax` states cannot be turned into keys), and the events stored before copied in again by the
    background backfill as after migration 12 (readers use the raw events for the hours not yet copied).
    Every statement may run again after a crash part-way."""
    return (
        "DROP TABLE IF EXISTS session_rows_mv",
        "DROP TABLE IF EXISTS session_rows",
        "DROP TABLE IF EXISTS session_rows_backfill",
        ddl(ttl_days),
        MV_DDL,
        STATE_DDL,
        PENDING,
    )


# One chunk of the backfill: the events with timestamps in [{start}, {end}).
BACKFILL_CHUNK = "INSERT INTO session_rows " + select(
    "timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}"
)

STATE_SQL = """SELECT step, pending, planned, toUnixTimestamp64Milli(low) AS low_ms,
    toUnixTimestamp(filled_from) AS filled_from
FROM session_rows_backfill ORDER BY step DESC LIMIT 1"""


def retention_statement(retention_days: int) -> str:
    """ALTER that gives session_rows the events' retention (schema.retention_statement's twin)."""
    if retention_days > 0:
        return f"ALTER TABLE session_rows MODIFY TTL slot + INTERVAL {int(retention_days)} DAY"
    return "ALTER TABLE session_rows REMOVE TTL"
