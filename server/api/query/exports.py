"""Exports: a report as CSV, the standard dashboard as a ZIP of CSVs, a range's raw events as Parquet.

Every export is a generator of byte chunks, so the API streams it and memory stays bounded by one page of
rows (CSV: `reports.MAX_LIMIT` rows of a breakdown at a time; Parquet: `PARQUET_CHUNK_ROWS` events at a
time, each chunk one row group, asked from the store in the store's own Parquet output and keyed on the
table's sorting key (UTC day, event_id), so pages neither overlap nor skip rows). Numbers are the reports'
own (the same functions answer the JSON routes); CSV cells that a spreadsheet would run as a formula (text
starting with =, +, -, @, tab or carriage return) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pixel.server.api.query import reports
from pixel.server.api.query.filters import SqlParams
from pixel.server.api.query.runner import QueryRunner
from pixel.server.api.query.scope import Scope
from pixel.server.store.schema import EVENTS

PARQUET_CHUNK_ROWS = 50_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV cell: text a spreadsheet would evaluate gets a leading apostrophe; None is empty."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """The header then one CSV line per row, encoded as UTF-8 (one chunk per line)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for r in _with_header(header, rows):
        writer.writerow([cell(v) for v in r])
        yield buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()


def _with_header(header: list[str], rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    yield header
    yield from rows


def breakdown_rows(
    scope: Scope, dimension: str, *, sort: str = "visitors", order: str = "desc", event: str | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    """The header and every row of a breakdown, page by page (the first page is asked now, so a bad
    dimension or sort is a 400 before anything is sent)."""
    first = reports.breakdown(
        scope, dimension, limit=reports.MAX_LIMIT, page=1, sort=sort, order=order, event=event
    )
    metrics = list(first["metrics"])

    def rows() -> Iterator[list[Any]]:
        body, page = first, 1
        while True:
            for r in body["rows"]:
                yield [r["value"], *(r.get(m) for m in metrics)]
            if page * reports.MAX_LIMIT >= int(body.get("total_rows") or 0) or not body["rows"]:
                return
            page += 1
            body = reports.breakdown(
                scope, dimension, limit=reports.MAX_LIMIT, page=page, sort=sort, order=order, event=event
            )

    return [dimension, *metrics], rows()


def timeseries_rows(scope: Scope, interval: str, metrics: list[str]) -> tuple[list[str], list[list[Any]]]:
    body = reports.timeseries(scope, interval, metrics)
    names = list(body["metrics"])
    return ["bucket", *names], [[p["bucket"], *(p.get(m) for m in names)] for p in body["points"]]


def summary_rows(scope: Scope) -> tuple[list[str], list[list[Any]]]:
    body = reports.summary(scope, False, None)
    return ["metric", "value"], [[name, m["value"]] for name, m in body["metrics"].items()]


class _Sink:
    """A write-only stream whose bytes are taken out as they come (ZipFile writes to it unseekably)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    closed = False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def tell(self) -> int:
        raise OSError("not seekable")

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def dashboard_zip(
    scope: Scope, *, interval: str, metrics: list[str], breakdowns: list[str]
) -> Iterator[bytes]:
    """A ZIP of summary.csv, timeseries.csv and breakdown-<dimension>.csv per dimension; every report
    is checked before the first byte, each file streamed as it is written."""
    files: list[tuple[str, tuple[list[str], Iterable[list[Any]]]]] = [
        ("summary.csv", summary_rows(scope)),
        ("timeseries.csv", timeseries_rows(scope, interval, metrics)),
    ]
    for dim in breakdowns:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dim)
        files.append((f"breakdown-{safe}.csv", breakdown_rows(scope, dim)))

    def chunks() -> Iterator[bytes]:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, (header, rows) in files:
                with archive.open(name, "w") as member:
                    for line in csv_lines(header, rows):
                        member.write(line)
                        if sum(map(len, sink.parts)) >= 64 * 1024:
                            yield sink.take()
                yield sink.take()
        yield sink.take()

    return chunks()


def events_parquet(runner: QueryRunner, scope: Scope, *, chunk_rows: int | None = None) -> Iterator[bytes]:
    """The site's raw events in the scope's range (its filters and bots rule applied), ordered by UTC day
    and event id (the table's own order), as one Parquet file written row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    chunk_rows = chunk_rows or PARQUET_CHUNK_ROWS
    sink = _Sink()
    writer: pq.ParquetWriter | None = None
    after: tuple[str, str] | None = None
    while True:
        params = SqlParams()
        where = scope.where(params)
        if after is not None:
            day = params.add(after[0], "Date")
            # the table's own sorting key (site, day, event_id): the store skips what is before the bound
            # and reads the rest in order, so each page costs about its own rows
            key = f"({day}, {params.add(after[1])})"
            where += f" AND toDate(timestamp) >= {day} AND (toDate(timestamp), event_id) > {key}"
        sql = (
            f"SELECT * FROM {EVENTS} WHERE {where} ORDER BY toDate(timestamp), event_id "
            f"LIMIT {int(chunk_rows)} "
            "SETTINGS output_format_parquet_string_as_string = 1"
        )
        values = params.with_fixed(site=scope.site, **scope.range.params)
        data = runner.store._execute(sql, runner.escape_params(values), "Parquet")
        table = pq.read_table(pa.BufferReader(data)) if data else None
        if table is None or table.num_rows == 0:
            break
        if writer is None:
            writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), table.schema, compression="zstd")
        writer.write_table(table)
        yield sink.take()
        last = table.slice(table.num_rows - 1, 1).to_pylist()[0]
        stamp: datetime = last["timestamp"]
        after = (stamp.astimezone(UTC).date().isoformat(), str(last["event_id"]))
        del table, data
    if writer is None:  # no events: an empty file with the table's columns
        data = runner.store._execute(
            f"SELECT * FROM {EVENTS} LIMIT 0 SETTINGS output_format_parquet_string_as_string = 1",
            None,
            "Parquet",
        )
        schema = pq.read_schema(pa.BufferReader(data))
        writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    writer.close()
    yield sink.take()
