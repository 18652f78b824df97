"""Running a checked statement (see the package docstring, step 4): the limits of a console query, the
statement wrapped with the site filter and the limits as settings, and `run`, which checks, wraps, checks the
wrapped text again and runs it through `Store.console_query` beside the reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from pixel.server.api.sqlguard.parser import Parser, canonical, first_line, parse, parser_for
from pixel.server.api.sqlguard.rules import TABLE, ConsoleBusy, SqlRefused
from pixel.server.api.sqlguard.tree import check_statement
from pixel.server.store import Store, StoreError
from pixel.server.store.base import QueryTimeout, StoreBusy


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int = 10_000
    max_seconds: float = 10.0
    max_result_bytes: int = 50 * 1024 * 1024
    max_memory: int = 1024 * 1024 * 1024
    # Threads a console query may use: all cores but one, so reports and the shipper keep a core.
    max_threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))

    @property
    def hard_seconds(self) -> float:
        """The wall-clock bound of a console request's query: ClickHouse's own limit plus a margin
        for it to return what it has; past it the query is cancelled and refused."""
        return self.max_seconds + min(1.0, self.max_seconds / 2)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _inner(tree: dict[str, Any]) -> Any:
    """The statement inside `SELECT * FROM (<statement>) AS tag ...` (None when the shape differs)."""
    try:
        select = tree["list_of_selects"]["children"][0]
        element = select["tables"]["children"][0]["table_expression"]
        return element["subquery"]["children"][0]
    except (KeyError, IndexError, TypeError):
        return None


def wrap(statement: str, site: str, limits: Limits, tag: str) -> str:
    site_filter = _quote(f"site = {_quote(site)}")
    return (
        f"SELECT * FROM (\n{statement}\n) AS {tag} LIMIT {int(limits.max_rows) + 1}\n"
        f"SETTINGS readonly = 1, final = 1, max_execution_time = {float(limits.max_seconds)}, "
        f"timeout_overflow_mode = 'break', max_result_rows = {int(limits.max_rows) + 1}, "
        f"max_result_bytes = {int(limits.max_result_bytes)}, result_overflow_mode = 'break', "
        f"max_memory_usage = {int(limits.max_memory)}, max_threads = {int(limits.max_threads)}, "
        f"additional_table_filters = {{'{TABLE}': {site_filter}}}"
    )


def run(
    store: Store, sql: str, site: str, limits: Limits = Limits(), parser: Parser | None = None
) -> dict[str, Any]:
    parser = parser or parser_for(store)
    statement = canonical(parser, sql)
    first = statement.lstrip("( \n").split(None, 1)[0].upper() if statement.strip() else ""
    if first not in ("SELECT", "WITH"):
        raise SqlRefused(f"only SELECT queries are allowed (this is {first or 'empty'})")
    tree = check_statement(parser, statement)
    tag = store.console_tag()
    wrapped = wrap(statement, site, limits, tag)
    # What runs is exactly what was checked: the wrapped text holds the same tree.
    if canonical(parser, wrapped) and _inner(parse(parser, wrapped)) != tree:
        raise SqlRefused("the query changes meaning when wrapped; simplify it")
    started = time.monotonic()
    try:
        result = store.console_query(wrapped, tag, limits.hard_seconds)
    except QueryTimeout:
        raise SqlRefused(
            f"the query was stopped at the time limit ({limits.hard_seconds:g} s); "
            "a single expression over many or long values can take that long"
        ) from None
    except StoreBusy as exc:
        raise ConsoleBusy(str(exc)) from None
    except StoreError as exc:
        raise SqlRefused(f"the query failed: {first_line(str(exc))}") from None
    elapsed = time.monotonic() - started
    rows = result.rows
    truncated = len(rows) > limits.max_rows
    timed_out = elapsed >= limits.max_seconds
    return {
        "columns": [{"name": n, "type": t} for n, t in zip(result.columns, result.types, strict=True)],
        "rows": rows[: limits.max_rows],
        "row_count": min(len(rows), limits.max_rows),
        "truncated": truncated or timed_out,
        "truncated_reason": "row limit" if truncated else ("time limit" if timed_out else None),
        "elapsed_ms": round(elapsed * 1000, 1),
    }
