"""The DDL the store emits for a ClickHouse cluster (see docs/scaling.md), generated from the single-node schema.

Each single-node MergeTree table `T` of `schema.py` becomes, `ON CLUSTER`:
- `T_local`: the same columns, partitioning, sorting key and TTL on the Replicated variant of its engine, with the
  usual `{shard}`/`{replica}` macros and a ZooKeeper/Keeper path per shard;
- `T`: a `Distributed` table over `T_local`, sharded by `cityHash64(site, visitor_id)` for events, so every event
  of a visitor — and every retried copy of an event, which carries the same visitor — lands on one shard. That keeps
  `FINAL` deduplication, sessions and funnels shard-local, and readers keep using the same names (`events FINAL`).

Replicated tables deduplicate inserted blocks by default (`replicated_deduplication_window`), so the single-node
`non_replicated_deduplication_window` setting is dropped; the shipper inserts into the Distributed table with
`distributed_foreground_insert = 1` so its `insert_deduplication_token` reaches the replicas in the same block.
"""

from __future__ import annotations

import re

from pixel.server.store.schema import MATERIALIZE_EVENTS, migrations

# The sharding key of each Distributed table (rand() would scatter duplicates of one event over shards).
SHARDING = {"events": "cityHash64(site, visitor_id)", "dead_letters": "rand()"}
INSERT_SETTINGS = {"distributed_foreground_insert": 1}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) \(")
_ENGINE = re.compile(r"^ENGINE = (\w*MergeTree)(\(\))?$", re.MULTILINE)
_DEDUP = re.compile(r"non_replicated_deduplication_window = \d+(, )?")


def _local(statement: str, cluster: str, database: str) -> tuple[str, str]:
    match = _CREATE.match(statement)
    if match is None or _ENGINE.search(statement) is None:
        raise ValueError(f"not a single-node MergeTree CREATE TABLE: {statement[:60]!r}")
    table = match.group(1)
    local = f"{table}_local"
    ddl = _CREATE.sub(
        f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER '{cluster}' (", statement, count=1
    )
    ddl = _ENGINE.sub(
        lambda m: (
            f"ENGINE = Replicated{m.group(1)}('/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}')"
        ),
        ddl,
        count=1,
    )
    ddl = _DEDUP.sub("", ddl).rstrip()
    if ddl.endswith("SETTINGS"):
        ddl = ddl[: -len("SETTINGS")].rstrip()
    return table, ddl


def cluster_ddl(cluster: str, database: str = "pixel", retention_days: int = 0) -> list[str]:
    """The statements that create Pixel's tables on `cluster` (run once, from any node)."""
    for what, value in (("cluster", cluster), ("database", database)):
        if not _NAME.match(value):
            raise ValueError(f"{what} name must be an identifier (letters, digits, _): {value!r}")
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER '{cluster}'"]
    first = migrations(retention_days)[
        0
    ]  # later migrations carry their own cluster form when they add tables
    for statement in first.statements:
        table, local = _local(statement, cluster, database)
        statements.append(local)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER '{cluster}' AS {database}.{table}_local\n"
            f"ENGINE = Distributed('{cluster}', '{database}', '{table}_local', {SHARDING[table]})"
        )
    return statements


_ALTER_EVENTS = "ALTER TABLE events "


def cluster_upgrade_ddl(cluster: str, database: str = "pixel", after_version: int = 1) -> list[str]:
    """The statements that bring the events tables of a cluster made by an older `cluster_ddl` up to date: each
    later migration that alters `events` (added columns), run `ON CLUSTER` on `events_local` and then on the
    Distributed `events` (whose structure must list the same columns); a derived column's MATERIALIZE and a
    MergeTree setting on `events_local` only. `after_version` is the schema version
    the cluster was made at (its tables are `cluster_ddl`'s of that version); `ADD COLUMN IF NOT EXISTS`
    makes every statement idempotent."""
    for what, value in (("cluster", cluster), ("database", database)):
        if not _NAME.match(value):
            raise ValueError(f"{what} name must be an identifier (letters, digits, _): {value!r}")
    statements = []
    for migration in migrations():
        if migration.version <= after_version:
            continue
        for statement in migration.statements:
            if statement.startswith(_ALTER_EVENTS):
                body = statement[len(_ALTER_EVENTS) :]
                # a mutation that stores a derived column, and a MergeTree setting, apply where the parts are,
                # not to the Distributed table
                tables = (
                    ("events_local",)
                    if statement.startswith(MATERIALIZE_EVENTS) or body.startswith("MODIFY SETTING ")
                    else ("events_local", "events")
                )
                for table in tables:
                    statements.append(f"ALTER TABLE {database}.{table} ON CLUSTER '{cluster}' {body}")
    return statements
