"""The cluster upgrade DDL (`cluster_upgrade_ddl`): a cluster made by an older `cluster_ddl` gains the columns of
the later migrations on `events_local` and on the Distributed `events`; the text is fixed here, every statement
goes through ClickHouse's parser, and, run without `ON CLUSTER` on version-5 tables in chDB, it gives both
tables the columns of a new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.store.cluster import cluster_upgrade_ddl
from pixel.server.store.schema import EVENT_COLUMNS, TABLE_COLUMNS, TYPED_COLUMNS

try:
    from test_schema_v6 import v5_events_ddl
except ImportError:  # tests/ made a package
    from tests.store.test_schema_v6 import v5_events_ddl


def test_generated_text_after_version_5() -> None:
    ddl = cluster_upgrade_ddl("pixel_cluster", "analytics", after_version=5)
    adds = ", ".join(f"ADD COLUMN IF NOT EXISTS `{c}` {EVENT_COLUMNS[c]}" for c in TYPED_COLUMNS)
    assert ddl[:2] == [
        f"ALTER TABLE analytics.events_local ON CLUSTER 'pixel_cluster' {adds}",
        f"ALTER TABLE analytics.events ON CLUSTER 'pixel_cluster' {adds}",
    ]
    assert ddl[2:4] == [  # migration 7: the import id
        f"ALTER TABLE analytics.{t} ON CLUSTER 'pixel_cluster' ADD COLUMN IF NOT EXISTS `import_id` "
        "LowCardinality(String)"
        for t in ("events_local", "events")
    ]
    # migration 16: the session id's hash, added on both, stored in the local table's parts
    assert ddl[4:] == [
        *(
            f"ALTER TABLE analytics.{t} ON CLUSTER 'pixel_cluster' ADD COLUMN IF NOT EXISTS `session_hash` UInt64 "
            "MATERIALIZED cityHash64(session_id)"
            for t in ("events_local", "events")
        ),
        "ALTER TABLE analytics.events_local ON CLUSTER 'pixel_cluster' MATERIALIZE COLUMN `session_hash` "
        "SETTINGS mutations_sync = 1",
        # migration 37: closed months merged into one part, a MergeTree setting of the local table only
        "ALTER TABLE analytics.events_local ON CLUSTER 'pixel_cluster' MODIFY SETTING "
        "min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1",
    ]
    assert adds.startswith(
        "ADD COLUMN IF NOT EXISTS `not_found` UInt8, ADD COLUMN IF NOT EXISTS `revenue` Nullable(Decimal(18, 4)), "
        "ADD COLUMN IF NOT EXISTS `currency` LowCardinality(String), "
    )
    assert adds.endswith("ADD COLUMN IF NOT EXISTS `error_hash` String")


def test_from_the_first_version_the_coordinates_come_first() -> None:
    ddl = cluster_upgrade_ddl("c1")
    assert len(ddl) == 10
    assert ddl[0] == (
        "ALTER TABLE pixel.events_local ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS latitude Nullable(Float32) "
        "AFTER city, ADD COLUMN IF NOT EXISTS longitude Nullable(Float32) AFTER latitude"
    )
    assert ddl[1].startswith("ALTER TABLE pixel.events ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS latitude")
    assert len(cluster_upgrade_ddl("c1", after_version=7)) == 4
    assert len(cluster_upgrade_ddl("c1", after_version=16)) == 1
    assert cluster_upgrade_ddl("c1", after_version=37) == []


@pytest.mark.parametrize("bad", ["", "my-cluster", "x'; DROP TABLE events; --"])
def test_names_must_be_identifiers(bad: str) -> None:
    with pytest.raises(ValueError, match="must be an identifier"):
        cluster_upgrade_ddl(bad)
    with pytest.raises(ValueError, match="must be an identifier"):
        cluster_upgrade_ddl("ok", bad)


def test_statements_parse_and_upgrade_version_5_tables(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "store")
    try:
        ddl = cluster_upgrade_ddl("pixel_cluster", "upg", after_version=5)
        for statement in ddl:
            formatted = store.scalar("SELECT formatQuery({q:String})", {"q": statement})
            assert "ON CLUSTER pixel_cluster" in formatted
        store.command("CREATE DATABASE upg")
        for table in ("events_local", "events"):
            store.command(v5_events_ddl().replace("IF NOT EXISTS events (", f"upg.{table} (", 1))
        store.insert_rows("upg.events_local", [{"site": "a.example", "event_id": "old", "path": "/x"}])
        for statement in ddl + ddl:  # twice: idempotent
            store.command(statement.replace(" ON CLUSTER 'pixel_cluster'", ""))
        for table in ("events_local", "events"):
            columns = store.query(
                "SELECT name, type FROM system.columns WHERE database = 'upg' AND table = {t:String} "
                "ORDER BY position",
                {"t": table},
            ).rows
            assert columns == [[n, k] for n, k in TABLE_COLUMNS.items()]
        assert store.query("SELECT event_id, path, not_found, revenue FROM upg.events_local").rows == [
            ["old", "/x", 0, None]
        ]
    finally:
        store.close()
