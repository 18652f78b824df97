"""The events schema and its versioned, idempotent migrations (one SQL dialect for both engines).

How duplicates are kept out of query results (the pipeline is at-least-once):

1. Shipper retries (crash between insert and checkpoint, or a timed-out insert that did land)
   re-send *exactly the same batch*: the shipper writes the batch's spool ranges to its checkpoint
   before inserting and replays that same range first after a restart. Each insert carries
   `insert_deduplication_token` = hash of those ranges, and the table keeps a deduplication window
   (`non_replicated_deduplication_window`; replicated tables dedup by default), so ClickHouse
   drops a replayed block whole, before it is ever visible.
2. Client retries (the tracker re-sends an event whose 204 it never saw) arrive in new requests
   with the same `event_id`. `events` is a ReplacingMergeTree whose sorting key ends with
   `event_id`, so such copies collapse on merge, and readers use `FINAL` (the store's
   `EVENTS` source below) so copies not yet merged never show either.

The sorting key begins with site and day so that every report (always one site, a time range)
reads only its own granules; partitions are monthly so TTL retention drops whole parts.
"""

from __future__ import annotations

from dataclasses import dataclass

# What every reader should select FROM, so duplicates never show.
EVENTS = "events FINAL"

# Column name -> ClickHouse type, in table order. Rows are written as JSONEachRow with these keys;
# any key left out takes the column default.
EVENT_COLUMNS: dict[str, str] = {
    "timestamp": "DateTime64(3, 'UTC')",
    "received_at": "DateTime64(3, 'UTC')",
    "site": "LowCardinality(String)",
    "event_id": "String",
    "event_name": "LowCardinality(String)",
    "visitor_id": "String",
    "session_id": "String",
    "user_id": "String",
    "url": "String",
    "host": "LowCardinality(String)",
    "path": "String",
    "query": "String",
    "title": "String",
    "referrer": "String",
    # Sources (enrichment)
    "ref_host": "LowCardinality(String)",
    "source": "LowCardinality(String)",
    "medium": "LowCardinality(String)",
    "channel": "LowCardinality(String)",
    "utm_source": "String",
    "utm_medium": "String",
    "utm_campaign": "String",
    "utm_term": "String",
    "utm_content": "String",
    "click_id": "LowCardinality(String)",  # which click id was present: gclid, fbclid, ...
    # Geo (enrichment)
    "country": "LowCardinality(String)",
    "region": "LowCardinality(String)",
    "city": "String",
    # Device (enrichment + tracker)
    "browser": "LowCardinality(String)",
    "browser_version": "LowCardinality(String)",
    "os": "LowCardinality(String)",
    "os_version": "LowCardinality(String)",
    "device_type": "LowCardinality(String)",
    "device_brand": "LowCardinality(String)",
    "device_model": "LowCardinality(String)",
    "screen": "LowCardinality(String)",
    "language": "LowCardinality(String)",
    "timezone": "LowCardinality(String)",
    "is_bot": "UInt8",
    "ip_hash": "String",  # keyed hash with a daily salt; the raw IP is never stored
    # Engagement (tracker)
    "engaged_ms": "UInt32",
    "scroll_depth": "UInt8",
    "props": "Map(String, String)",
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _events_ddl(ttl: str) -> str:
    cols = ",\n    ".join(f"`{name}` {kind}" for name, kind in EVENT_COLUMNS.items())
    return f"""CREATE TABLE IF NOT EXISTS events (
    {cols}
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site, toDate(timestamp), event_id)
{ttl}SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192"""


DEAD_LETTERS_DDL = """CREATE TABLE IF NOT EXISTS dead_letters (
    `received_at` DateTime64(3, 'UTC'),
    `failed_at` DateTime64(3, 'UTC'),
    `segment` String,
    `offset` UInt64,
    `reason` String,
    `payload` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY failed_at
TTL toDateTime(failed_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000"""


def migrations(retention_days: int = 0) -> tuple[Migration, ...]:
    ttl = f"TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY\n" if retention_days > 0 else ""
    return (
        Migration(1, "events and dead letters", (_events_ddl(ttl), DEAD_LETTERS_DDL)),
    )


def retention_statement(retention_days: int) -> str:
    """ALTER that brings an existing table's TTL in line with the retention setting."""
    if retention_days > 0:
        return f"ALTER TABLE events MODIFY TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY"
    return "ALTER TABLE events REMOVE TTL"
