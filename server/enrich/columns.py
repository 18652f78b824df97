"""Enrichment columns as rows carry them: only the columns that differ from their type's default.

A row is inserted as JSON (JSONEachRow) and ClickHouse fills every column a row leaves out with its default
("" for String, 0 for numbers, NULL for Nullable — the events table has no other DEFAULT), so an empty
column costs only parse time: on chDB, rows with their many empty columns (no region, no UTMs, no click id)
left out insert markedly faster (bench/README.md, "Enrichment"). The cached column groups the
Enricher merges into each row (per user agent, per IP, per source) are built once without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def non_empty(columns: Mapping[str, Any]) -> dict[str, Any]:
    """`columns` without those holding "", None or the integer 0 (what the store fills in for a missing
    column). A float 0.0 stays: a latitude of 0 is a place, and a missing Nullable coordinate would be NULL."""
    return {
        name: value
        for name, value in columns.items()
        if not (value is None or value == "" or (type(value) is int and value == 0))
    }
