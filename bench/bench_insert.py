"""The events insert alone on chDB, three ways alternating in one process so all meet the same machine load:
- "JSON in file": what the store does (`ChdbStore.insert_json`): the JSONEachRow bytes in an in-memory file
  that `INSERT ... FROM INFILE` reads;
- "JSON inline": the same bytes appended to the INSERT statement's text (the store's way before issue 16);
- "Arrow table": the same rows as one Arrow table read by chDB's `Python()` table function (tried for issue 16,
  not kept);
- "JSON columns": the same rows column-wise (`JSONColumns`: one array of values a column, `null` where a row has
  no such key, which the store reads as the column's default, as for an omitted key), in an in-memory file;
- "JSON compact": row-wise arrays under one header of names (`JSONCompactEachRowWithNames`, `null` likewise), in
  an in-memory file (both tried for issue 20, session 8; not kept: chDB saves less than building them costs).

`--parse-only` inserts each way into a `Null`-engine copy of the events table as well: chDB parses the rows and
discards them, so the figure is the format's parsing alone, apart from the table's write and its materialized
views.

The Arrow table is built as an insert path would have to: from the row dicts (`pa.Table.from_pylist` with the
columns' types; times as whole milliseconds, Float32 and Decimal columns as text for the store to parse as it
parses JSON's). Its build time is printed apart: it runs under the GIL, where the shipper's planning runs.

Rows: bench_enrich's realistic mix through the shipper's own reader (parse, normalize, enrich with the GeoLite2
test database). Each round inserts a fresh batch (new event ids and token) the one way, then the other; the
figure is the process CPU (time.process_time: chDB's threads included, its background merges too) per row, and
the wall time, median over the rounds.

    .venv/bin/python bench/bench_insert.py [--rows 20000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from bench_enrich import CITY, make_mix

from pixel.server.enrich import Enricher
from pixel.server.settings import Settings
from pixel.server.shipper.reader import SpoolReader
from pixel.server.spool.record import encode_record
from pixel.server.spool.writer import SpoolWriter
from pixel.server.store.chdb_engine import ChdbStore, _memfd_with
from pixel.server.store.schema import EVENT_COLUMNS


def enriched_rows(n: int, tmp: Path) -> list[dict]:
    raw, _events, facts = make_mix(n, 20_000, 300)
    settings = Settings(data_dir=tmp, geoip_db=str(CITY), batch_max_rows=n, max_event_age_days=100_000)
    writer = SpoolWriter(settings.spool_dir, max_bytes=1 << 30, fsync_interval=1.0)
    for body, f in zip(raw, facts, strict=True):
        writer.append(
            encode_record(f.received_ms, f.ip.encode(), f.user_agent.encode(), b"en-US", b"", b"", b"", body)
        )
    writer.rotate()
    writer.close()
    enricher = Enricher(settings)
    reader = SpoolReader(settings, enricher)
    rows: list[dict] = []
    offsets: dict[str, int] = {}
    while len(rows) < n:
        batch = reader.plan(offsets)
        if not batch.ranges:
            break
        rows += batch.rows
        offsets |= {name: end for name, _start, end in batch.ranges}
    enricher.close()
    return rows


def _kind(ch_type: str) -> str:
    inner = ch_type.removeprefix("Nullable(").removeprefix("LowCardinality(")
    for prefix, kind in (
        ("DateTime64", "ms"),
        ("Float32", "text"),
        ("Decimal", "text"),
        ("Float64", "float"),
    ):
        if inner.startswith(prefix):
            return kind
    return "int" if inner.startswith(("UInt", "Int")) else "map" if inner.startswith("Map(") else "str"


def arrow_table(rows: list[dict]):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.compute as pc

    present: set[str] = set()
    for row in rows:
        present.update(row)
    names = [name for name in EVENT_COLUMNS if name in present]
    types = {"int": pa.int64(), "float": pa.float64(), "ms": pa.float64(), "str": pa.string()}
    types["map"] = pa.map_(pa.string(), pa.string())
    fields = []
    for name in names:
        kind = _kind(EVENT_COLUMNS[name])
        if kind == "text":
            is_text = all(type(row.get(name)) is not float for row in rows)
            fields.append(pa.field(name, pa.string() if is_text else pa.float64()))
        else:
            fields.append(pa.field(name, types[kind]))
    table = pa.Table.from_pylist(rows, schema=pa.schema(fields))
    columns = []
    for field in fields:
        column = table.column(field.name)
        kind = _kind(EVENT_COLUMNS[field.name])
        if kind == "ms":
            column = pc.round(pc.multiply(column, 1000.0)).cast(pa.int64()).cast(pa.timestamp("ms", "UTC"))
        elif kind == "text" and field.type == pa.float64():
            column = pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=names)


def insert_json(store: ChdbStore, rows: list[dict], token: str) -> float:
    c = time.process_time()
    data = orjson.dumps(rows)
    built = time.process_time() - c
    store.insert_json("events", data, token=token)
    return built


def insert_inline(store: ChdbStore, rows: list[dict], token: str) -> float:
    c = time.process_time()
    data = orjson.dumps(rows)
    built = time.process_time() - c
    sql = f"INSERT INTO events SETTINGS insert_deduplication_token='{token}' FORMAT JSONEachRow\n"
    store._session.query(sql + data.decode(), "TabSeparated")
    return built


def insert_arrow(store: ChdbStore, rows: list[dict], token: str) -> float:
    c = time.process_time()
    pixel_batch = arrow_table(rows)
    built = time.process_time() - c
    columns = ", ".join(f"`{name}`" for name in pixel_batch.column_names)
    sql = (
        f"INSERT INTO events ({columns}) SETTINGS insert_deduplication_token='{token}' "
        f"SELECT {columns} FROM Python(pixel_batch)"
    )
    store._session.query(sql, "TabSeparated")  # chDB finds `pixel_batch` among this frame's variables
    return built


def _columns_of(rows: list[dict]) -> list[str]:
    """Every key of `rows`, in the order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _insert_file(store: ChdbStore, table: str, data: bytes, fmt: str, token: str) -> None:
    """`data` in format `fmt` into `table` through an in-memory file, as `ChdbStore.insert_json` does JSON."""
    fd = _memfd_with(data)
    assert fd is not None, "the bench needs memfd_create (Linux)"
    try:
        sql = (
            f"INSERT INTO {table} FROM INFILE '/proc/self/fd/{fd}' COMPRESSION 'none' "
            f"SETTINGS insert_deduplication_token='{token}' FORMAT {fmt}"
        )
        store._session.query(sql, "TabSeparated")
    finally:
        os.close(fd)


def insert_columns(store: ChdbStore, rows: list[dict], token: str, table: str = "events") -> float:
    c = time.process_time()
    data = orjson.dumps({key: [row.get(key) for row in rows] for key in _columns_of(rows)})
    built = time.process_time() - c
    _insert_file(store, table, data, "JSONColumns", token)
    return built


def insert_compact(store: ChdbStore, rows: list[dict], token: str, table: str = "events") -> float:
    c = time.process_time()
    keys = _columns_of(rows)
    # one JSON array of arrays without its outer brackets: the rows, comma-separated, header first
    data = orjson.dumps([keys, *[[row.get(key) for key in keys] for row in rows]])[1:-1]
    built = time.process_time() - c
    _insert_file(store, table, data, "JSONCompactEachRowWithNames", token)
    return built


def insert_json_to(store: ChdbStore, rows: list[dict], token: str, table: str) -> float:
    c = time.process_time()
    data = orjson.dumps(rows)
    built = time.process_time() - c
    _insert_file(store, table, data, "JSONEachRow", token)
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--parse-only", action="store_true", help="also each JSON way into a Null-engine table")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pixel-bench-insert-"))
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    rows = enriched_rows(args.rows, tmp / "data")
    store = ChdbStore(tmp / "store")
    store.migrate()
    ways = {
        "JSON in file": insert_json,
        "JSON inline": insert_inline,
        "Arrow table": insert_arrow,
        "JSON columns": insert_columns,
        "JSON compact": insert_compact,
    }
    stored = len(ways)
    if args.parse_only:
        store.command("CREATE TABLE events_parse_only AS events ENGINE = Null")
        for name, way in (("JSON", insert_json_to), ("columns", insert_columns), ("compact", insert_compact)):
            ways[f"{name}, parse only"] = functools.partial(way, table="events_parse_only")
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    build: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(args.rounds):
        for k, (name, insert) in enumerate(ways.items()):
            batch = copy.deepcopy(rows)
            for i, row in enumerate(batch):
                row["event_id"] = f"r{r}w{k}x{i}"
            gc.collect()
            c, w = time.process_time(), time.perf_counter()
            build[name].append(insert(store, batch, f"r{r}w{k}"))
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    assert store.scalar("SELECT count() FROM events") == len(rows) * args.rounds * stored
    # every way stored the same rows: the first round's batches, event ids aside, hash alike
    digest = "groupBitXor(cityHash64(toJSONString(tuple(* EXCEPT event_id))))"
    digests = {
        store.scalar(f"SELECT {digest} FROM events WHERE startsWith(event_id, 'r0w{k}x')")
        for k in range(stored)
    }
    assert len(digests) == 1, digests
    store.close()
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")
    print(f"{len(rows)} enriched rows a batch, {args.rounds} rounds each way (median)")
    for name in ways:
        c, w, b = (statistics.median(x[name]) / len(rows) * 1e6 for x in (cpu, wall, build))
        rounds = ", ".join(f"{x / len(rows) * 1e6:.1f}" for x in cpu[name])
        print(
            f"  {name:12s} CPU {c:5.1f} us/row (rounds {rounds}), of which building it {b:4.1f}; wall {w:5.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
