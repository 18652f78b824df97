"""The cluster DDL (docs/scaling.md) is generated from the single-node schema; its text is fixed here and every
statement goes through ClickHouse's own parser (chDB's `formatQuery`)."""

from __future__ import annotations

import pytest

from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.cluster import cluster_ddl
from pixel.server.store.schema import EVENT_COLUMNS


def test_generated_text() -> None:
    ddl = cluster_ddl("pixel_cluster", "analytics", retention_days=400)
    assert len(ddl) == 5
    assert ddl[0] == "CREATE DATABASE IF NOT EXISTS analytics ON CLUSTER 'pixel_cluster'"
    events_local = ddl[1]
    assert events_local.startswith(
        "CREATE TABLE IF NOT EXISTS analytics.events_local ON CLUSTER 'pixel_cluster' (\n"
        "    `timestamp` DateTime64(3, 'UTC'),\n"
    )
    assert events_local.endswith(
        "\n)\n"
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}')\n"
        "PARTITION BY toYYYYMM(timestamp)\n"
        "ORDER BY (site, toDate(timestamp), event_id)\n"
        "TTL toDateTime(timestamp) + INTERVAL 400 DAY\n"
        "SETTINGS index_granularity = 8192"
    )
    for name, kind in EVENT_COLUMNS.items():  # the same columns as a single node
        assert f"    `{name}` {kind}" in events_local
    assert ddl[2] == (
        "CREATE TABLE IF NOT EXISTS analytics.events ON CLUSTER 'pixel_cluster' AS analytics.events_local\n"
        "ENGINE = Distributed('pixel_cluster', 'analytics', 'events_local', cityHash64(site, visitor_id))"
    )
    assert ddl[3].endswith(
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/analytics/dead_letters_local', '{replica}')\n"
        "PARTITION BY toYYYYMM(failed_at)\n"
        "ORDER BY failed_at\n"
        "TTL toDateTime(failed_at) + INTERVAL 30 DAY"
    )
    assert ddl[4] == (
        "CREATE TABLE IF NOT EXISTS analytics.dead_letters ON CLUSTER 'pixel_cluster' AS analytics.dead_letters_local\n"
        "ENGINE = Distributed('pixel_cluster', 'analytics', 'dead_letters_local', rand())"
    )
    assert all("non_replicated_deduplication_window" not in s for s in ddl)


def test_no_retention_no_ttl_on_events() -> None:
    events_local = cluster_ddl("c1")[1]
    assert "TTL" not in events_local


@pytest.mark.parametrize("bad", ["", "my-cluster", "x'; DROP TABLE events; --", "1abc"])
def test_names_must_be_identifiers(bad: str) -> None:
    with pytest.raises(ValueError, match="must be an identifier"):
        cluster_ddl(bad)
    with pytest.raises(ValueError, match="must be an identifier"):
        cluster_ddl("ok", bad)


def test_every_statement_parses_with_clickhouse(tmp_path) -> None:
    store = ChdbStore(tmp_path / "store")
    try:
        for statement in cluster_ddl("pixel_cluster", retention_days=30):
            formatted = store.scalar("SELECT formatQuery({q:String})", {"q": statement})
            assert "ON CLUSTER pixel_cluster" in formatted
    finally:
        store.close()
