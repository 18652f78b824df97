"""Comparisons of a report with another range (`periods.against`: previous period, same dates a year
earlier, or a custom range) for timeseries and breakdowns; the summary and the dashboard compare through
`reports.summary(..., against=)` and `dashboard.dashboard(..., against=)`.

Contract:
- A compared timeseries gets `compare`: the other range's `from`/`to` and its points, bucket by bucket in
  the same order (point i of the other range is aligned with point i of this one; the lists have the same
  length when both ranges have as many buckets, else the shorter one ends early).
- A compared breakdown row gets `previous` (its metrics in the other range, matched by value; 0 when the value
  does not appear there among its first `reports.MAX_LIMIT` rows by the same sort) and `change`: per metric
  the percent change, None without a base, as the summary's (`reports.change`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pixel.server.api.query import reports
from pixel.server.api.query.periods import Range
from pixel.server.api.query.scope import Scope


def range_fields(rng: Range) -> dict[str, str]:
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat()}


def timeseries(scope: Scope, against: Range, interval: str, metrics: list[str]) -> dict[str, Any]:
    """The other range's timeseries, to put under `compare` of this range's."""
    other = reports.timeseries(replace(scope, range=against), interval, metrics)
    return {**range_fields(against), "points": other["points"]}


def breakdown(scope: Scope, against: Range, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """`body` (this range's breakdown) with `previous` and `change` on every row and on `other`."""
    kwargs = {**kwargs, "limit": reports.MAX_LIMIT, "page": 1}
    other = reports.breakdown(replace(scope, range=against), body["dimension"], **kwargs)
    found = {row["value"]: row for row in other["rows"]}
    metrics: list[str] = body["metrics"]

    def compared(row: dict[str, Any]) -> dict[str, Any]:
        before = found.get(row["value"], {})
        previous = {m: before.get(m, 0) for m in metrics}
        return {
            **row,
            "previous": previous,
            "change": {m: reports.change(m, row[m], previous[m]) for m in metrics},
        }

    out = {**body, "rows": [compared(r) for r in body["rows"]], "compare": range_fields(against)}
    if body.get("other") is not None:
        out["other"] = {**body["other"], "previous": None, "change": None}
    return out
