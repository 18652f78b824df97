"""Rows of the events table as one Arrow table: the embedded engine's insert format for the shipper's batches.

The shipper's rows are dicts keyed by column names of `schema.EVENT_COLUMNS` (a row leaves out the columns at
their default). `events_table` turns a batch of them into one Arrow table with one column per column any row
holds; a row without it gets a null there, which the insert stores as the column's default (ClickHouse's
`insert_null_as_default`), as a JSONEachRow insert does for a missing key. Every stored value is the one the
JSON rows (`encode_json_rows`) give, which tests/store/test_insert_columnar.py checks on both engines:
- `DateTime64(3)` columns: rows hold seconds as a float (ms / 1000); the table holds the whole milliseconds
  (`round(seconds * 1000)`, exact for any time a row can hold), where JSON writes the float's shortest text.
- `Float32` columns travel as the float's shortest text, parsed by the store as JSON's text is (a double
  narrowed to Float32 by a cast could round differently); `Decimal` columns as the row's text.
- NUL characters are removed from every string (columns, property names and values), as `encode_json_rows`
  removes them: looked for in the built table's strings, and the rows cleaned in place only when one is found.
A batch the table cannot hold exactly (a value of the wrong type, a time beyond `TIME_RANGE`) raises
`Unserialisable`; the engine then sends it as JSON rows, so the store accepts or refuses it as before.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson

from pixel.server.store.schema import EVENT_COLUMNS

# Seconds a time column of a row can hold (1970-01-01 .. 2100-01-02): the shipper's rows always are within
# (`normalize` keeps a timestamp near its receive time); a value beyond goes the JSON way, for the store to judge.
TIME_RANGE = (0.0, 4_102_531_200.0)


class Unserialisable(TypeError):
    """A row holds a value its column's Arrow type cannot take (the JSON path's orjson.JSONEncodeError)."""


def strip_nul(rows: Iterable[dict[str, Any]]) -> None:
    """Remove every NUL character from the rows' strings, in place (columns, property names and values)."""
    for row in rows:
        for key, value in row.items():
            if type(value) is str:
                if "\x00" in value:
                    row[key] = value.replace("\x00", "")
            elif type(value) is dict:
                row[key] = {
                    k.replace("\x00", ""): v.replace("\x00", "") if type(v) is str else v
                    for k, v in value.items()
                }


def encode_json_rows(rows: list[dict[str, Any]]) -> bytes:
    """`rows` as a JSON array for a JSONEachRow insert, with every NUL character removed from its strings
    (columns, property names and values). Raises TypeError when a row cannot be serialised."""
    data = orjson.dumps(rows)
    if b"\\u0000" in data:  # orjson writes NUL as \u0000; rare, so the rows are cleaned only then
        strip_nul(rows)
        data = orjson.dumps(rows)
    return data


# How a column travels: "ms" (DateTime64(3): float seconds -> whole ms), "text" (parsed by the store from the
# string), "int", "float", "str", "map".
def _kind(ch_type: str) -> str:
    inner = ch_type.removeprefix("Nullable(").removeprefix("LowCardinality(")
    if inner.startswith("DateTime64(3"):
        return "ms"
    if inner.startswith(("Float32", "Decimal")):
        return "text"
    if inner.startswith("Float64"):
        return "float"
    if inner.startswith(("UInt", "Int")):
        return "int"
    if inner.startswith("Map("):
        return "map"
    return "str"


KINDS: dict[str, str] = {name: _kind(kind) for name, kind in EVENT_COLUMNS.items()}


@functools.cache
def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    return {
        "ms": pa.float64(),
        "text": pa.float64(),  # converted to text after the table is built (a Decimal is text already)
        "float": pa.float64(),
        "int": pa.int64(),
        "map": pa.map_(pa.string(), pa.string()),
        "str": pa.string(),
    }


def events_table(rows: list[dict[str, Any]]) -> Any:
    """The rows as one `pyarrow.Table` (see the module docstring); a key that is not a column of the events
    table is left out (the JSON insert skips unknown fields). Raises `Unserialisable`."""
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    present: set[str] = set()
    for row in rows:
        present.update(row)
    names = [name for name in EVENT_COLUMNS if name in present]  # another key is left out, as JSON's is
    types = _arrow_types()
    text_columns = {
        name: all(type(row.get(name)) is not float for row in rows) for name in names if KINDS[name] == "text"
    }
    fields = [pa.field(name, pa.string() if text_columns.get(name) else types[KINDS[name]]) for name in names]
    for attempt in (0, 1):
        try:
            table = pa.Table.from_pylist(rows, schema=pa.schema(fields))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise Unserialisable(f"a row does not fit its column's type: {exc}") from None
        if attempt == 0 and _has_nul(table):
            strip_nul(rows)
            continue
        break
    columns = []
    for name in names:
        column = table.column(name)
        kind = KINDS[name]
        if kind == "ms":
            low, high = pc.min_max(column).values()
            if low.as_py() is not None and not (
                TIME_RANGE[0] <= low.as_py() and high.as_py() < TIME_RANGE[1]
            ):
                raise Unserialisable(f"{name} is outside the times a row can hold")
            column = pc.round(pc.multiply(column, 1000.0)).cast(pa.int64()).cast(pa.timestamp("ms", "UTC"))
        elif kind == "text" and not text_columns[name]:
            column = pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=names)


def _has_nul(table: Any) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    for column in table.columns:
        if pa.types.is_map(column.type):
            parts = [chunk.keys for chunk in column.chunks] + [chunk.items for chunk in column.chunks]
        elif pa.types.is_string(column.type):
            parts = column.chunks
        else:
            continue
        for part in parts:
            if len(part) and pc.any(pc.match_substring(part, "\x00")).as_py():
                return True
    return False
