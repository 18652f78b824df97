"""The events insert alone on chDB, three ways alternating in one process so all meet the same machine load:
- "JSON in file": what the store does (`ChdbStore.insert_json`): the JSONEachRow bytes in an in-memory file
  that `INSERT ... FROM INFILE` reads;
- "JSON inline": the same bytes appended to the INSERT statement's text (the store's way before issue 16);
- "Arrow table": the same rows as one Arrow table read by chDB's `Python()` table function (tried for issue 16,
  not kept).

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
import gc
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
from pixel.server.store.chdb_engine import ChdbStore
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pixel-bench-insert-"))
    rows = enriched_rows(args.rows, tmp / "data")
    store = ChdbStore(tmp / "store")
    store.migrate()
    ways = {"JSON in file": insert_json, "JSON inline": insert_inline, "Arrow table": insert_arrow}
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
    assert store.scalar("SELECT count() FROM events") == len(rows) * args.rounds * len(ways)
    store.close()
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
