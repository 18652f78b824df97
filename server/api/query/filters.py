"""Dimensions, filters and the parameter collector that keeps user values out of the SQL text.

Filters arrive as a JSON list of `[dimension, operator, value]` triples, e.g.
`[["country", "is", "DE"], ["page", "contains", "/blog"], ["prop:plan", "is", "pro"]]`.
They apply to events (an event-level WHERE), so every report sees the same subset.

Every part of a filter must be text the store can hold and compare: valid Unicode (no unpaired
surrogate such as a JSON `"\\ud800"`), no NUL character, at most `MAX_VALUE` characters; anything
else is a 400 `invalid_filter` naming the filter, on every report that takes filters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pixel.server.api.errors import bad_request
from pixel.server.api.query.runner import QueryRunner
from pixel.server.store.schema import EVENTS

# Event-level dimensions: name -> trusted SQL expression.
DIMENSIONS: dict[str, str] = {
    "page": "path",
    "hostname": "host",
    "title": "title",
    "referrer": "ref_host",
    "source": "source",
    "medium": "medium",
    "channel": "channel",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "country": "country",
    "region": "region",
    "city": "city",
    "browser": "browser",
    "browser_version": "browser_version",
    "os": "os",
    "os_version": "os_version",
    "device": "device_type",
    "screen": "screen",
    "language": "language",
    "event": "event_name",
}
# Session-level dimensions (breakdowns only): first / last pageview path of each session.
# A session's entry / exit page: the path of its first / last pageview; of pageviews at the same instant,
# the least / greatest path (a fixed rule: argMin/argMax alone keep whichever row they met first, which
# varies with threads and parts, and the report cache must give the same answer as the raw events).
SESSION_DIMENSIONS = {
    "entry_page": "argMin(path, (timestamp, path))",
    "exit_page": "argMax(path, (timestamp, path))",
}
PROP_PREFIX = "prop:"
OPERATORS = ("is", "is_not", "contains", "not_contains", "matches", "not_matches")
MAX_FILTERS = 20
MAX_VALUE = 1000
_PROP_KEY = re.compile(r"^[\w.\-$:@ ]{1,100}$")


@dataclass
class SqlParams:
    """Collects parameter values and hands out `{pN:Type}` placeholders for them."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, kind: str = "String") -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"

    def with_fixed(self, **fixed: Any) -> dict[str, Any]:
        return {**fixed, **self.values}


def dimension_sql(dimension: str, params: SqlParams) -> str:
    """The SQL expression for an event-level dimension, or a 400 naming the valid ones."""
    if dimension in DIMENSIONS:
        return DIMENSIONS[dimension]
    if dimension.startswith(PROP_PREFIX):
        key = dimension[len(PROP_PREFIX) :]
        if not _PROP_KEY.match(key):
            raise bad_request(f"invalid property name {key!r}", "invalid_dimension")
        return f"props[{params.add(key)}]"
    valid = ", ".join([*DIMENSIONS, *SESSION_DIMENSIONS, "prop:<name>"])
    raise bad_request(f"unknown dimension {dimension!r}; valid: {valid}", "invalid_dimension")


@dataclass(frozen=True, slots=True)
class Filter:
    dimension: str
    operator: str
    value: str

    def as_list(self) -> list[str]:
        return [self.dimension, self.operator, self.value]


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored in or compared with a String column (None: it can)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"it holds an unpaired surrogate (U+{ord(value[exc.start]):04X}), which is not valid Unicode text"
        )
    if "\0" in value:
        return "it holds a NUL character"
    return None


def parse_filters(raw: str | list[Any] | None) -> list[Filter]:
    """Validate a filter list given as JSON text or as already-decoded data."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad_request(
                "filters must be a JSON list of [dimension, operator, value]", "invalid_filter"
            ) from None
    if not isinstance(raw, list):
        raise bad_request("filters must be a JSON list of [dimension, operator, value]", "invalid_filter")
    if len(raw) > MAX_FILTERS:
        raise bad_request(f"at most {MAX_FILTERS} filters", "invalid_filter")
    out: list[Filter] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            raise bad_request(
                f"each filter is [dimension, operator, value] strings, not {item!r}", "invalid_filter"
            )
        dimension, operator, value = item
        for part, text in (("dimension", dimension), ("operator", operator), ("value", value)):
            problem = text_problem(text)
            if problem:
                raise bad_request(
                    f"filter {len(out) + 1}: the {part} cannot be used: {problem}", "invalid_filter"
                )
        if operator not in OPERATORS:
            raise bad_request(f"filter operator must be one of {', '.join(OPERATORS)}", "invalid_filter")
        if dimension in SESSION_DIMENSIONS:
            raise bad_request(f"{dimension} is a breakdown only; filter on page instead", "invalid_filter")
        dimension_sql(dimension, SqlParams())  # validates the name
        if len(value) > MAX_VALUE:
            raise bad_request(f"filter values are limited to {MAX_VALUE} characters", "invalid_filter")
        out.append(Filter(dimension, operator, value))
    return out


def filter_sql(flt: Filter, params: SqlParams) -> str:
    return compare_sql(dimension_sql(flt.dimension, params), flt.operator, params.add(flt.value))


def keyed_value_sql(flt: Filter, params: SqlParams) -> str:
    """The condition `filter_sql` puts on the events, on a cache's rows keyed by `dimension` (the events'
    column name) and `value` instead of one column per dimension."""
    column = params.add(dimension_sql(flt.dimension, params))
    return f"dimension = {column} AND {compare_sql('value', flt.operator, params.add(flt.value))}"


def compare_sql(expr: str, operator: str, value: str) -> str:
    """`expr` compared by a filter's `operator` with `value` (a parameter placeholder): the condition
    `filter_sql` puts on a dimension's column, for a column that holds the dimension under another name
    (a cache's `value` column of rows keyed by dimension)."""
    return {
        "is": f"{expr} = {value}",
        "is_not": f"{expr} != {value}",
        "contains": f"positionCaseInsensitiveUTF8({expr}, {value}) > 0",
        "not_contains": f"positionCaseInsensitiveUTF8({expr}, {value}) = 0",
        "matches": f"match({expr}, {value})",
        "not_matches": f"NOT match({expr}, {value})",
    }[operator]


def base_where(
    filters: list[Filter],
    params: SqlParams,
    *,
    include_bots: bool = False,
    start: str = "{start:DateTime64(3)}",
    end: str = "{end:DateTime64(3)}",
) -> str:
    """Site, time range, bots and filters: the WHERE every report starts from."""
    parts = ["site = {site:String}", f"timestamp >= {start}", f"timestamp < {end}"]
    if not include_bots:
        parts.append("is_bot = 0")
    parts.extend(filter_sql(f, params) for f in filters)
    return " AND ".join(parts)


def source() -> str:
    return EVENTS


def check_regexes(runner: QueryRunner, filters: list[Filter]) -> None:
    """Compile every `matches` pattern in ClickHouse (RE2) up front: a bad one is a 400 even when
    no row would have reached it."""
    from pixel.server.store import StoreError

    for flt in filters:
        if flt.operator in ("matches", "not_matches"):
            try:
                runner.query("SELECT match('', {re:String})", {"re": flt.value})
            except StoreError as exc:
                detail = str(exc).split("\n")[0][:300]
                raise bad_request(
                    f"invalid regular expression {flt.value!r}: {detail}", "invalid_filter"
                ) from None
