"""Parse and validate a Plausible Stats API v2 query body into a `Query`.

Every problem is a `QueryError` whose message reads like Plausible's own (`{"error": "..."}` with 400): an
unknown metric or dimension is "Unknown metric/dimension", one Plausible has but Pixel does not answer is
"Unsupported ..." naming it. Nothing here touches the store; `run` turns a `Query` into SQL.

Supported (the README lists the same):
- metrics: visitors, visits, pageviews, views_per_visit, bounce_rate, visit_duration, events, conversion_rate and
  group_conversion_rate (with an event:goal dimension or filter), percentage, time_on_page and scroll_depth (with an event:page
  dimension or filter, as Plausible), exit_rate (with exactly the visit:exit_page dimension, no event filter);
- dimensions: event:goal (the site's goals by name), event:page, event:hostname, event:name, event:props:<key>, visit:source, visit:referrer,
  visit:channel, visit:utm_source/medium/campaign/term/content, visit:device, visit:browser,
  visit:browser_version, visit:os, visit:os_version, visit:country, visit:region, visit:city, visit:screen,
  visit:language, visit:entry_page, visit:exit_page (also as filters); time, time:hour, time:day, time:week,
  time:month;
- filters: is, is_not, contains, contains_not, matches, matches_not, matches_wildcard, matches_wildcard_not
  (with `{"case_sensitive": false}` for is/contains), nested with and, or, not; event:goal with is or contains,
  at the top level;
- date_range: day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all, or [first, last] dates (inclusive);
- order_by, include (imports, time_labels, total_rows, comparisons: previous_period, year_over_year or custom
  with its date_range; match_day_of_week), pagination (limit up to 10,000, offset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pixel.server.api.query.filters import text_problem
from pixel.server.errors import PixelError

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "conversion_rate",
    "group_conversion_rate",
    "percentage",
    "time_on_page",
    "scroll_depth",
    "exit_rate",
)
UNSUPPORTED_METRICS = (
    "average_revenue",
    "total_revenue",
)
PAGE = "event:page"
EXIT_PAGE = "visit:exit_page"
ONLY_IN_THIS_RANGE = ("percentage", "time_on_page", "scroll_depth", "exit_rate")  # not with comparisons
# Plausible property -> trusted SQL expression over the events table.
PROPERTIES: dict[str, str] = {
    "event:page": "path",
    "event:hostname": "host",
    "event:name": "event_name",
    "visit:source": "source",
    "visit:referrer": "ref_host",
    "visit:channel": "channel",
    "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_term": "utm_term",
    "visit:utm_content": "utm_content",
    "visit:device": "device_type",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:country": "country",
    "visit:region": "region",
    "visit:city": "city",
    "visit:screen": "screen",
    "visit:language": "language",
    # per visit (run.py computes them over the visit's pageviews in the range, before the filters)
    "visit:entry_page": "v_entry_page",
    "visit:exit_page": "v_exit_page",
}
VISIT_EDGES = ("visit:entry_page", "visit:exit_page")
GOAL = "event:goal"  # the site's goals by name (run.py turns each into its condition)
GOAL_OPERATORS = ("is", "contains")
UNSUPPORTED_PROPERTIES = (
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
    "visit:country_name",
    "visit:region_name",
    "visit:city_name",
)
PROPS_PREFIX = "event:props:"
TIME_DIMENSIONS = {
    "time": None,
    "time:hour": "hour",
    "time:day": "day",
    "time:week": "week",
    "time:month": "month",
}
RELATIVE_RANGES = ("day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all")
OPERATORS = (
    "is",
    "is_not",
    "contains",
    "contains_not",
    "matches",
    "matches_not",
    "matches_wildcard",
    "matches_wildcard_not",
)
UNSUPPORTED_OPERATORS = ("has_done", "has_not_done")
MAX_LIMIT = 10_000
MAX_FILTER_DEPTH = 5
MAX_FILTER_LEAVES = 50
MAX_CLAUSES = 100
MAX_VALUE = 1000
_PROP_KEY = re.compile(r"^[\w.\-$:@ ]{1,100}$")
KEYS = (
    "site_id",
    "metrics",
    "date_range",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
    "date",
)


class QueryError(PixelError, ValueError):
    """A query Plausible would refuse; the message is the body's `error`."""


@dataclass(frozen=True)
class Leaf:
    operator: str
    dimension: str
    clauses: tuple[str, ...]
    case_sensitive: bool = True


@dataclass(frozen=True)
class Node:
    kind: str  # and | or | not
    children: tuple[Leaf | Node, ...]


@dataclass
class Query:
    site_id: str
    metrics: list[str]
    date_range: str | tuple[str, str]
    dimensions: list[str] = field(default_factory=list)
    filters: list[Leaf | Node] = field(default_factory=list)
    raw_filters: list[Any] = field(default_factory=list)
    order_by: list[tuple[str, str]] = field(default_factory=list)
    include: dict[str, bool] = field(default_factory=dict)
    limit: int = MAX_LIMIT
    offset: int = 0
    comparisons: dict[str, Any] | None = None  # {"mode": ..., "date_range"?: [first, last]} as given

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise QueryError(f"Invalid {what}: {_show(value)} (expected a string)")
    problem = text_problem(value)
    if problem:
        raise QueryError(f"Invalid {what}: {problem}")
    if len(value) > MAX_VALUE:
        raise QueryError(f"Invalid {what}: longer than {MAX_VALUE} characters")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_property(name: str, *, allow_time: bool) -> str:
    """`name` if Pixel can group or filter by it, else a `QueryError` in Plausible's words."""
    if name in PROPERTIES or name == GOAL:
        return name
    if name.startswith(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX) :]
        if not _PROP_KEY.match(key):
            raise QueryError(f"Invalid custom property name {key!r}")
        return name
    if name in TIME_DIMENSIONS:
        if allow_time:
            return name
        raise QueryError(f"Invalid filter dimension '{name}': time dimensions cannot be filtered on")
    if name in UNSUPPORTED_PROPERTIES:
        raise QueryError(f"Unsupported dimension '{name}' (Pixel does not answer it)")
    raise QueryError(f"Invalid dimension '{name}'")


def property_sql(name: str, add: Any) -> str:
    """The SQL expression of a checked property; `add(value)` returns a placeholder for a custom prop key."""
    if name.startswith(PROPS_PREFIX):
        return f"props[{add(name[len(PROPS_PREFIX) :])}]"
    return PROPERTIES[name]


def _filter(raw: Any, depth: int, leaves: list[int]) -> Leaf | Node:
    if depth > MAX_FILTER_DEPTH:
        raise QueryError(f"Invalid filters: nested deeper than {MAX_FILTER_DEPTH} levels")
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise QueryError(f"Invalid filter {_show(raw)}")
    op = raw[0]
    if op in ("and", "or"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
            raise QueryError(f"Invalid filter {_show(raw)}: '{op}' takes a non-empty list of filters")
        return Node(op, tuple(_filter(item, depth + 1, leaves) for item in raw[1]))
    if op == "not":
        if len(raw) != 2:
            raise QueryError(f"Invalid filter {_show(raw)}: 'not' takes one filter")
        return Node("not", (_filter(raw[1], depth + 1, leaves),))
    if op in UNSUPPORTED_OPERATORS:
        raise QueryError(f"Unsupported filter operator '{op}' (Pixel does not answer behavioral filters)")
    if op not in OPERATORS:
        raise QueryError(f"Invalid filter {_show(raw)}: unknown operator '{op}'")
    if len(raw) not in (3, 4):
        raise QueryError(f"Invalid filter {_show(raw)}: expected [operator, dimension, [values]]")
    if not isinstance(raw[1], str):
        raise QueryError(f"Invalid filter {_show(raw)}: the dimension must be a string")
    dim = check_property(raw[1], allow_time=False)
    if dim == GOAL and (op not in GOAL_OPERATORS or depth > 1):
        raise QueryError(
            f"Unsupported filter {_show(raw)}: event:goal takes is or contains, at the top level of filters"
        )
    clauses = raw[2]
    if not isinstance(clauses, list) or not clauses or len(clauses) > MAX_CLAUSES:
        raise QueryError(f"Invalid filter {_show(raw)}: expected a list of 1 to {MAX_CLAUSES} values")
    values = tuple(_text(v, "filter value") for v in clauses)
    case_sensitive = True
    if len(raw) == 4:
        mods = raw[3]
        if not isinstance(mods, dict) or set(mods) - {"case_sensitive"}:
            raise QueryError(f"Invalid filter {_show(raw)}: modifiers may only hold case_sensitive")
        flag = mods.get("case_sensitive", True)
        if not isinstance(flag, bool):
            raise QueryError(f"Invalid filter {_show(raw)}: case_sensitive must be true or false")
        if not flag and op not in ("is", "is_not", "contains", "contains_not"):
            raise QueryError(f"Invalid filter {_show(raw)}: case_sensitive applies to is and contains only")
        case_sensitive = flag
    leaves[0] += 1
    if leaves[0] > MAX_FILTER_LEAVES:
        raise QueryError(f"Invalid filters: at most {MAX_FILTER_LEAVES} conditions")
    return Leaf(op, dim, values, case_sensitive)


def _date_range(raw: Any) -> str | tuple[str, str]:
    if isinstance(raw, str):
        if raw in RELATIVE_RANGES:
            return raw
        raise QueryError(f"Invalid date_range {_show(raw)}")
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) for x in raw):
        return (raw[0], raw[1])
    raise QueryError(f"Invalid date_range {_show(raw)}")


def parse(body: Any) -> Query:
    """The validated query, or a `QueryError` for the first problem found."""
    if not isinstance(body, dict):
        raise QueryError("Invalid query: expected a JSON object")
    unknown = sorted(k for k in body if k not in KEYS)
    if unknown:
        raise QueryError(f"Invalid query: unknown key '{unknown[0]}'")
    if "site_id" not in body:
        raise QueryError("Missing site_id")
    site_id = _text(body["site_id"], "site_id")
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise QueryError("Invalid metrics: expected a non-empty list")
    for m in metrics:
        if m in UNSUPPORTED_METRICS:
            raise QueryError(f"Unsupported metric '{m}' (Pixel does not answer it)")
        if m not in METRICS:
            raise QueryError(f"Unknown metric '{_show(m)}'")
    if len(set(metrics)) != len(metrics):
        raise QueryError("Invalid metrics: a metric is listed twice")
    if "date_range" not in body:
        raise QueryError("Missing date_range")
    date_range = _date_range(body["date_range"])
    dims = body.get("dimensions", [])
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise QueryError("Invalid dimensions: expected a list of strings")
    for d in dims:
        check_property(d, allow_time=True)
    if len(set(dims)) != len(dims) or len(dims) > 10:
        raise QueryError("Invalid dimensions: at most 10, each once")
    if sum(1 for d in dims if d in TIME_DIMENSIONS) > 1:
        raise QueryError("Invalid dimensions: only one time dimension per query")
    raw_filters = body.get("filters", [])
    if not isinstance(raw_filters, list):
        raise QueryError("Invalid filters: expected a list")
    leaves = [0]
    filters = [_filter(f, 1, leaves) for f in raw_filters]
    for m in ("conversion_rate", "group_conversion_rate"):
        if (
            m in metrics
            and GOAL not in dims
            and not any(isinstance(f, Leaf) and f.dimension == GOAL for f in filters)
        ):
            raise QueryError(f"Metric `{m}` can only be queried with event:goal filters or dimensions.")
    _check_page_metrics(metrics, dims, filters)
    order_by = _order_by(body.get("order_by"), metrics, dims)
    raw_include = body.get("include", {})
    comparisons = _comparisons(raw_include, dims)
    if comparisons is not None:
        for m in ("conversion_rate", "group_conversion_rate", *ONLY_IN_THIS_RANGE):
            if m in metrics:
                raise QueryError(f"Unsupported include.comparisons with {m}")
    include = _include(
        {k: v for k, v in raw_include.items() if k != "comparisons"} if comparisons else raw_include, dims
    )
    limit, offset = _pagination(body.get("pagination", {}))
    if "date" in body:
        raise QueryError("Unsupported key 'date' (give date_range as [first, last] instead)")
    return Query(
        site_id,
        list(metrics),
        date_range,
        list(dims),
        filters,
        raw_filters,
        order_by,
        include,
        limit,
        offset,
        comparisons,
    )


def _leaf_dimensions(node: Leaf | Node) -> set[str]:
    if isinstance(node, Leaf):
        return {node.dimension}
    return {d for c in node.children for d in _leaf_dimensions(c)}


def _check_page_metrics(metrics: list[str], dims: list[str], filters: list[Leaf | Node]) -> None:
    """Plausible's rules for the page metrics, with its messages: scroll_depth with an event:page dimension or
    a top-level event:page filter; time_on_page with an event:page dimension or any event:page filter;
    exit_rate with exactly the visit:exit_page dimension and no filter on an event dimension."""
    filtered = set().union(*(_leaf_dimensions(f) for f in filters))
    top_level = {f.dimension for f in filters if isinstance(f, Leaf)}
    if "scroll_depth" in metrics and PAGE not in dims and PAGE not in top_level:
        raise QueryError("Metric `scroll_depth` can only be queried with event:page filters or dimensions.")
    if "time_on_page" in metrics and PAGE not in dims and PAGE not in filtered:
        raise QueryError("Metric `time_on_page` can only be queried with event:page filters or dimensions.")
    if "exit_rate" in metrics:
        if dims != [EXIT_PAGE]:
            raise QueryError(
                'Metric `exit_rate` requires a `"visit:exit_page"` dimension. No other dimensions are allowed.'
            )
        if any(d.startswith("event:") for d in filtered):
            raise QueryError("Metric `exit_rate` cannot be queried when filtering on event dimensions.")


COMPARISON_MODES = ("previous_period", "year_over_year", "custom")


def _comparisons(raw: Any, dims: list[str]) -> dict[str, Any] | None:
    """`include.comparisons` checked: None when absent."""
    if not isinstance(raw, dict) or "comparisons" not in raw:
        return None
    value = raw["comparisons"]
    if not isinstance(value, dict) or not isinstance(value.get("mode"), str):
        raise QueryError("Invalid include.comparisons: expected an object with a mode")
    unknown = sorted(set(value) - {"mode", "date_range", "match_day_of_week"})
    if unknown:
        raise QueryError(f"Invalid include.comparisons: unknown key {_show(unknown[0])}")
    mode = value["mode"]
    if mode not in COMPARISON_MODES:
        raise QueryError(
            f"Invalid include.comparisons.mode {_show(mode)}: one of {', '.join(COMPARISON_MODES)}"
        )
    if not isinstance(value.get("match_day_of_week", False), bool):
        raise QueryError("Invalid include.comparisons.match_day_of_week: expected true or false")
    if mode == "custom":
        pair = value.get("date_range")
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, str) and len(x) == 10 for x in pair)
        ):
            raise QueryError(
                "Invalid include.comparisons.date_range: expected [first, last] dates for mode custom"
            )
    elif "date_range" in value:
        raise QueryError("Invalid include.comparisons.date_range: only for mode custom")
    return dict(value)


def _order_by(raw: Any, metrics: list[str], dims: list[str]) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 20:
        raise QueryError("Invalid order_by: expected a list of [metric or dimension, asc|desc]")
    out = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise QueryError(f"Invalid order_by entry {_show(item)}")
        name, direction = item
        if direction not in ("asc", "desc"):
            raise QueryError(f"Invalid order_by entry {_show(item)}: direction is asc or desc")
        if name not in metrics and name not in dims:
            raise QueryError(
                f"Invalid order_by entry {_show(item)}: '{name}' is not in metrics or dimensions"
            )
        out.append((name, direction))
    return out


def _include(raw: Any, dims: list[str]) -> dict[str, bool]:
    if not isinstance(raw, dict):
        raise QueryError("Invalid include: expected an object")
    out = {}
    for key, value in raw.items():
        if key == "comparisons":
            raise QueryError("Unsupported include.comparisons (Pixel does not answer comparisons here)")
        if key not in ("imports", "time_labels", "total_rows"):
            raise QueryError(f"Invalid include key {_show(key)}")
        if not isinstance(value, bool):
            raise QueryError(f"Invalid include.{key}: expected true or false")
        out[key] = value
    if out.get("time_labels") and not any(d in TIME_DIMENSIONS for d in dims):
        raise QueryError("Invalid include.time_labels: requires a time dimension")
    return out


def _pagination(raw: Any) -> tuple[int, int]:
    if not isinstance(raw, dict) or set(raw) - {"limit", "offset"}:
        raise QueryError("Invalid pagination: expected {limit, offset}")
    limit, offset = raw.get("limit", MAX_LIMIT), raw.get("offset", 0)
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise QueryError(f"Invalid pagination.{name}: expected an integer")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"Invalid pagination.limit: between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= 10**9:
        raise QueryError("Invalid pagination.offset: must not be negative")
    return limit, offset
