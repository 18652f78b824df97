"""The SQL console's guard: read-only SQL over one site's `events`, checked as ClickHouse parses it.

Contract: a console statement reads the table `events` - only the rows of the caller's site - and
nothing else of the server: no other table (in FROM, JOIN, `IN <table>`, subqueries, CTEs), no table
function, no dictionary, no function that reads files, the network, settings or server facts.

0. The parser is the store's own engine, or - for a ClickHouse server before 26.8, which has no
   `parseQueryToJSON` - chDB in memory in this process (`LocalParser`), the same ClickHouse parser.
1. The text goes to ClickHouse as a *parameter* of `formatQuery()` - never as SQL - so a syntax error
   or a second statement (`SELECT 1; DROP ...`) is refused before anything runs, and what comes back
   is one canonical statement without comments.
2. `parseQueryToJSON()` of that statement gives its syntax tree, which is walked node by node against
   allow-lists (deny what is not understood): every node type and every field of it must be known;
   the root is a SELECT (or UNION/INTERSECT/EXCEPT of SELECTs) without INTO OUTFILE, FORMAT or
   SETTINGS; every table named is `events` itself (bare, no database) or a CTE defined in an
   enclosing query (before it, and not its own name inside its own body, which ClickHouse reads as
   the table of that name); there is no table function; the right side of `IN` is a subquery or values, not
   a name; every function is in the allowed set (below), including those `APPLY` names.
3. Allowed functions are read from `system.functions` of the parser: every function of the pure
   categories (arithmetic, strings, dates, arrays, JSON, hashes, aggregates and window functions with
   their combinators, ...), plus a few pure ones from "Other" (`toTypeName`, `formatReadableSize`,
   `throwIf`, `sleep`, ...). Not allowed: "Other" otherwise (server settings, paths, host name,
   version, uptime, current user, files, macros, `joinGet`, ...), dictionaries, introspection,
   machine learning and AI functions, user-defined functions, anything the catalog does not list,
   and the few pure functions one call of which can run for many seconds (`SLOW_FUNCTIONS`: edit
   distances on long strings), since ClickHouse cannot stop a query in the middle of a call.
4. It runs wrapped as `SELECT * FROM (<statement>) AS <tag> LIMIT <rows+1> SETTINGS readonly = 1,
   final = 1, additional_table_filters = {events: site = <site>}, ...` - the wrapped text is parsed
   again and must hold exactly the checked tree - through `Store.console_query`: beside the reports
   (they never wait behind it), stopped from outside at the hard deadline (`Limits.hard_seconds`).
   ClickHouse's own `max_execution_time` cuts a query at `max_seconds` and returns what it has
   (`truncated_reason: "time limit"`); a query still running at `hard_seconds` (a single function call
   ClickHouse cannot interrupt) is answered with a refusal at that moment and cancelled.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pixel.server.api.query.runner import QueryRunner, check_text
from pixel.server.errors import PixelError
from pixel.server.store import Result, Store, StoreError
from pixel.server.store.base import QueryTimeout, StoreBusy, parse_json_compact

TABLE = "events"
ALLOWED_CATEGORIES = frozenset(
    {
        "Aggregate Functions",
        "Arithmetic",
        "Arrays",
        "Bit",
        "Bitmap",
        "Comparison",
        "Conditional",
        "Dates and Times",
        "Distance",
        "Encoding",
        "Financial",
        "Geo",
        "Geo Polygon",
        "Hash",
        "IP Address",
        "JSON",
        "Logical",
        "Map",
        "Mathematical",
        "Null",
        "Random Number",
        "Rounding",
        "String",
        "String Replacement",
        "String Search",
        "String Splitting",
        "Time Window",
        "Tuple",
        "Type Conversion",
        "URL",
        "UUID",
    }
)
# Pure functions of the "Other" category (the rest of it reads server state).
ALLOWED_OTHER = frozenset(
    {
        "bar",
        "blockNumber",
        "blockSize",
        "byteSize",
        "countDigits",
        "defaultValueOfArgumentType",
        "defaultValueOfTypeName",
        "finalizeAggregation",
        "formatReadableDecimalSize",
        "formatReadableQuantity",
        "formatReadableSize",
        "formatReadableTimeDelta",
        "identity",
        "ignore",
        "indexHint",
        "initializeAggregation",
        "isConstant",
        "isDecimalOverflow",
        "MACNumToString",
        "MACStringToNum",
        "MACStringToOUI",
        "materialize",
        "minSampleSizeContinuous",
        "minSampleSizeConversion",
        "neighbor",
        "parseReadableSize",
        "parseReadableSizeOrNull",
        "parseReadableSizeOrZero",
        "parseTimeDelta",
        "rowNumberInAllBlocks",
        "rowNumberInBlock",
        "runningAccumulate",
        "runningDifference",
        "runningDifferenceStartingWithFirstValue",
        "sleep",
        "sleepEachRow",
        "throwIf",
        "toColumnTypeName",
        "toTypeName",
        "transform",
        "visibleWidth",
    }
)
# Pure, but one call can run for many seconds (quadratic in the length of its arguments), and ClickHouse
# checks a query's limits and cancellation only between calls: such a call would keep a core busy past
# the hard bound. Aliases of these (levenshteinDistance, ...) are refused with them.
SLOW_FUNCTIONS = frozenset(
    {
        "editDistance",
        "editDistanceUTF8",
        "damerauLevenshteinDistance",
        "jaroSimilarity",
        "jaroWinklerSimilarity",
        "arrayLevenshteinDistance",
        "arrayLevenshteinDistanceWeighted",
        "multiFuzzyMatchAny",
        "multiFuzzyMatchAnyIndex",
        "multiFuzzyMatchAllIndices",
    }
)
# Syntax the parser writes as functions but that system.functions does not list.
PSEUDO_FUNCTIONS = frozenset({"lambda", "exists", "grouping", "untuple", "_CAST"})
_IN_FAMILY = re.compile(r"(global)?(not)?(null)?in(ignoreset)?")
_SYSTEM_DATABASES = ("system", "information_schema")

# Node type -> the fields it may have. Fields holding nodes are walked; a node type or field not
# listed here is refused, so syntax this guard was not written for cannot slip through.
NODES: dict[str, frozenset[str]] = {
    "SelectWithUnionQuery": frozenset(
        {"union_mode", "list_of_modes", "list_of_selects", "is_outfile_append", "is_outfile_truncate"}
        | {"is_into_outfile_with_stdout"}
    ),
    "SelectIntersectExceptQuery": frozenset({"children", "final_operator"}),
    "SelectQuery": frozenset(
        {
            "with",
            "select",
            "tables",
            "prewhere",
            "where",
            "group_by",
            "having",
            "window",
            "qualify",
            "order_by",
            "limit_by_offset",
            "limit_by_length",
            "limit_by",
            "limit_offset",
            "limit_length",
            "interpolate",
            "distinct",
            "group_by_all",
            "order_by_all",
            "group_by_with_totals",
            "group_by_with_rollup",
            "group_by_with_cube",
            "group_by_with_grouping_sets",
            "group_by_with_constant_keys",
            "limit_with_ties",
            "recursive_with",
        }
    ),
    "ExpressionList": frozenset({"children"}),
    "TablesInSelectQuery": frozenset({"children"}),
    "TablesInSelectQueryElement": frozenset({"table_expression", "table_join", "array_join"}),
    "TableExpression": frozenset(
        {"database_and_table_name", "subquery", "table_function", "final", "sample_size", "sample_offset"}
    ),
    "TableJoin": frozenset({"kind", "locality", "strictness", "on_expression", "using_expression_list"}),
    "ArrayJoin": frozenset({"kind", "expression_list"}),
    "TableIdentifier": frozenset({"name", "name_parts", "alias"}),
    "Identifier": frozenset({"name", "name_parts", "alias"}),
    "Function": frozenset(
        {
            "name",
            "alias",
            "arguments",
            "parameters",
            "is_operator",
            "is_lambda_function",
            "is_window_function",
            "kind",
            "window_definition",
            "window_name",
            "nulls_action",
            "no_empty_args",
            "compute_after_window_functions",
        }
    ),
    "Literal": frozenset({"value", "alias"}),
    "Subquery": frozenset({"children", "alias", "cte_name"}),
    "WithElement": frozenset({"name", "subquery", "aliases"}),
    "Asterisk": frozenset({"transformers"}),
    "QualifiedAsterisk": frozenset({"qualifier", "transformers"}),
    "ColumnsRegexpMatcher": frozenset({"pattern", "transformers"}),
    "ColumnsListMatcher": frozenset({"column_list", "transformers"}),
    "QualifiedColumnsRegexpMatcher": frozenset({"pattern", "qualifier", "transformers"}),
    "QualifiedColumnsListMatcher": frozenset({"column_list", "qualifier", "transformers"}),
    "ColumnsTransformerList": frozenset({"children"}),
    "ColumnsExceptTransformer": frozenset({"children", "pattern", "is_strict"}),
    "ColumnsReplaceTransformer": frozenset({"children", "is_strict"}),
    "ColumnsReplaceTransformerReplacement": frozenset({"children", "name"}),
    "ColumnsApplyTransformer": frozenset(
        {"func_name", "lambda", "lambda_arg", "parameters", "column_name_prefix"}
    ),
    "OrderByElement": frozenset(
        {
            "direction",
            "nulls_direction",
            "nulls_direction_was_explicitly_specified",
            "with_fill",
            "expression",
            "collation",
            "fill_from",
            "fill_to",
            "fill_step",
            "fill_staleness",
        }
    ),
    "InterpolateElement": frozenset({"column", "expr"}),
    "WindowDefinition": frozenset(
        {
            "parent_window_name",
            "partition_by",
            "order_by",
            "frame_is_default",
            "frame_type",
            "frame_begin_type",
            "frame_begin_offset",
            "frame_begin_preceding",
            "frame_end_type",
            "frame_end_offset",
            "frame_end_preceding",
        }
    ),
    "WindowListElement": frozenset({"name", "definition"}),
    "SampleRatio": frozenset({"numerator", "denominator"}),
}


class SqlRefused(PixelError, ValueError):
    """The statement breaks a console rule; the message is the reason shown to the user."""


class ConsoleBusy(SqlRefused):
    """Another console query is running or still being stopped (one at a time per store)."""

    retryable = True


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


@dataclass(frozen=True, slots=True)
class Catalog:
    """The functions a console statement may call."""

    exact: frozenset[str]
    lowered: frozenset[str]  # case-insensitive ones, lower-cased
    aggregates: frozenset[str]
    combinators: tuple[str, ...]  # longest first

    def allows(self, name: str) -> bool:
        if name in PSEUDO_FUNCTIONS or name in self.exact or name.lower() in self.lowered:
            return True
        base = name
        while True:  # aggregate combinators: countIf, uniqMergeState, sumArrayIf, ...
            suffix = next((c for c in self.combinators if base.endswith(c) and len(base) > len(c)), None)
            if suffix is None:
                return False
            base = base[: -len(suffix)]
            if base in self.aggregates or base.lower() in self.aggregates:
                return True


def build_catalog(rows: list[list[Any]], combinators: list[str]) -> Catalog:
    """From `system.functions` rows (name, case_insensitive, alias_to, categories, is_aggregate)."""
    by_name = {row[0]: row for row in rows}
    exact: set[str] = set()
    lowered: set[str] = set()
    aggregates: set[str] = set()
    for name, case_insensitive, *_ in rows:
        target = by_name.get(name)
        for _ in range(4):  # follow aliases to the function they name
            if target is None or not target[2]:
                break
            target = by_name.get(target[2]) or by_name.get(str(target[2]).lower())
        if target is None:
            continue
        categories = {c.strip() for c in str(target[3]).split(",") if c.strip()}
        allowed = (categories and categories <= ALLOWED_CATEGORIES) or target[0] in ALLOWED_OTHER
        if not allowed or target[0] in SLOW_FUNCTIONS:
            continue
        (lowered if case_insensitive else exact).add(name.lower() if case_insensitive else name)
        if target[4]:
            aggregates.add(name.lower() if case_insensitive else name)
    return Catalog(
        frozenset(exact),
        frozenset(lowered),
        frozenset(aggregates),
        tuple(sorted((c for c in combinators if c != "Null"), key=len, reverse=True)),
    )


# -- the parser ------------------------------------------------------------------------------------


class Parser:
    """Where statements are formatted, parsed and the function catalog read: the store's own engine."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.runner = QueryRunner(store)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> Result:
        return self.runner.query(sql, params)


class LocalParser(Parser):
    """chDB in memory in this process, for a ClickHouse server without parseQueryToJSON (before 26.8).
    Only for processes that hold no chDB data folder (chDB admits one per process): `pixel api` and
    `pixel ship` on the server engine."""

    _lock = threading.Lock()
    _session: Any = None

    def __init__(self) -> None:  # no store: the parser is local
        pass

    def query(self, sql: str, params: dict[str, Any] | None = None) -> Result:
        from pixel.server.store.chdb_engine import bind_params

        with LocalParser._lock:
            try:
                if LocalParser._session is None:
                    from chdb import session

                    LocalParser._session = session.Session(":memory:")
                bound, values = bind_params(sql, check_text(params or {})) if params else (sql, None)
                body = LocalParser._session.query(bound, "JSONCompact", params=values).bytes()
            except Exception as exc:  # chDB's own error type, or chDB not installed
                raise StoreError(str(exc).strip()) from None
        return parse_json_compact(body)


_parsers: weakref.WeakKeyDictionary[Store, Parser] = weakref.WeakKeyDictionary()
_catalogs: dict[int, tuple[Parser, Catalog]] = {}
_cache_lock = threading.Lock()


def parser_for(store: Store) -> Parser:
    """The store's engine when it has parseQueryToJSON (chDB 4.4, ClickHouse 26.8), else a local chDB."""
    with _cache_lock:
        found = _parsers.get(store)
    if found is None:
        try:
            has = store.scalar("SELECT count() FROM system.functions WHERE name = 'parseQueryToJSON'")
        except StoreError as exc:
            raise SqlRefused(f"cannot read the function catalog: {_first_line(str(exc))}") from None
        found = Parser(store) if has else LocalParser()
        with _cache_lock:
            _parsers[store] = found
    return found


def _first_line(message: str) -> str:
    return message.split("\n")[0][:300]


def canonical(parser: Parser, sql: str) -> str:
    """ClickHouse's own formatting of `sql` if it is exactly one statement; SqlRefused otherwise."""
    if not sql.strip():
        raise SqlRefused("the query is empty")
    try:
        text = parser.query("SELECT formatQuery({q:String})", {"q": sql}).scalar()
    except StoreError as exc:
        message = str(exc)
        if "Multi-statements" in message:
            raise SqlRefused("only one statement is allowed") from None
        raise SqlRefused(f"syntax error: {_first_line(message)}") from None
    return str(text)


def parse(parser: Parser, statement: str) -> dict[str, Any]:
    """The syntax tree of one statement, as ClickHouse's parser gives it."""
    try:
        text = parser.query("SELECT parseQueryToJSON({q:String})", {"q": statement}).scalar()
    except StoreError as exc:
        message = str(exc)
        unsupported = re.search(r"AST node of type '(\w+)' does not support JSON", message)
        if unsupported:
            kind = unsupported[1].removesuffix("Query")
            raise SqlRefused(f"only SELECT queries are allowed; the console cannot check {kind}") from None
        raise SqlRefused(f"cannot analyse the query: {_first_line(message)}") from None
    try:
        tree = json.loads(text)
    except RecursionError:
        raise SqlRefused("the query is nested too deeply") from None
    if not isinstance(tree, dict):
        raise SqlRefused("cannot analyse the query")
    return tree


def catalog(parser: Parser) -> Catalog:
    """The allowed functions of the parser's engine (read once per parser)."""
    with _cache_lock:
        cached = _catalogs.get(id(parser))
        if cached is not None and cached[0] is parser:
            return cached[1]
    try:
        rows = parser.query(
            "SELECT name, case_insensitive, alias_to, categories, is_aggregate FROM system.functions"
        ).rows
        combinators = [
            r[0] for r in parser.query("SELECT name FROM system.aggregate_function_combinators").rows
        ]
    except StoreError as exc:
        raise SqlRefused(f"cannot read the function catalog: {_first_line(str(exc))}") from None
    found = build_catalog(rows, combinators)
    with _cache_lock:
        _catalogs[id(parser)] = (parser, found)
    return found


# -- the check -------------------------------------------------------------------------------------


def _children(node: dict[str, Any], key: str) -> Iterator[Any]:
    value = node.get(key)
    if isinstance(value, list):
        yield from value
    elif value is not None:
        yield value


def _args(fn: dict[str, Any]) -> list[Any]:
    arguments = fn.get("arguments")
    if not isinstance(arguments, dict):
        return []
    children = arguments.get("children")
    return children if isinstance(children, list) else []


def _cte_name(item: Any) -> str | None:
    if isinstance(item, dict) and item.get("type") == "WithElement" and isinstance(item.get("name"), str):
        return str(item["name"])
    return None


def _walk_with(with_list: Any, functions: Catalog, ctes: frozenset[str], depth: int) -> frozenset[str]:
    """Walk a WITH list; return the CTE names the rest of its query sees.

    Inside the body of CTE `n`, the name `n` is the *table* `n` (ClickHouse resolves a CTE's own name in
    its body to the table of that name, `WITH RECURSIVE` or not), so there only the CTEs of enclosing
    queries and those defined before it in the list count as CTEs, never `n` itself."""
    if (
        not isinstance(with_list, dict)
        or with_list.get("type") != "ExpressionList"
        or set(with_list)
        - {
            "type",
            "children",
        }
    ):
        raise SqlRefused("the console cannot check this part of the query (WITH)")
    seen = ctes
    for item in _children(with_list, "children"):
        name = _cte_name(item)
        _walk(item, functions, (seen - {name}) if name else seen, depth + 1)
        if name:
            seen = seen | {name}
    return seen


def check(tree: dict[str, Any], functions: Catalog) -> None:
    """Refuse anything but a single-site read of `events` (see the module docstring)."""
    if tree.get("type") not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
        kind = str(tree.get("type", "")).removesuffix("Query") or "unknown"
        raise SqlRefused(f"only SELECT queries are allowed (this is {kind})")
    try:
        _walk(tree, functions, frozenset(), 0)
    except RecursionError:
        raise SqlRefused("the query is nested too deeply") from None


def _walk(node: Any, functions: Catalog, ctes: frozenset[str], depth: int) -> None:
    if depth > 500:
        raise SqlRefused("the query is nested too deeply")
    if isinstance(node, list):
        for item in node:
            _walk(item, functions, ctes, depth + 1)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "SetQuery" or "settings" in node or "settings_ast" in node:
        raise SqlRefused("SETTINGS clauses are not allowed")
    if "out_file" in node or "format_ast" in node or "compression" in node:
        raise SqlRefused("INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed")
    if kind == "QueryParameter":
        raise SqlRefused("query parameters ({name:Type}) are not supported; write the value")
    if not isinstance(kind, str) or kind not in NODES:
        name = str(kind).removesuffix("Query")
        if isinstance(kind, str) and kind.endswith("Query"):
            raise SqlRefused(f"only SELECT queries are allowed ({name})")
        raise SqlRefused(f"the console cannot check this part of the query ({name})")
    unknown = set(node) - NODES[kind] - {"type"}
    if unknown:
        raise SqlRefused(
            f"the console cannot check this part of the query ({kind}: {', '.join(sorted(unknown))})"
        )
    if kind == "SelectWithUnionQuery" and any(
        node.get(flag) for flag in ("is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout")
    ):
        raise SqlRefused("INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed")
    if kind == "SelectQuery" and "with" in node:
        ctes = _walk_with(node["with"], functions, ctes, depth)
        node = {k: v for k, v in node.items() if k != "with"}
    elif kind == "TableIdentifier":
        _check_table(node, ctes)
    elif kind == "TableExpression" and node.get("table_function") is not None:
        fn = node["table_function"]
        name = fn.get("name", "?") if isinstance(fn, dict) else "?"
        raise SqlRefused(f"table function {name}() is not allowed")
    elif kind in ("Function", "ColumnsApplyTransformer"):
        _check_function(node, kind, functions)
    elif kind == "Identifier":
        _check_identifier(node)
    elif kind == "Literal":
        return  # a value: nothing in it is a name
    for key, value in node.items():
        if key != "type" and isinstance(value, dict | list):
            _walk(value, functions, ctes, depth + 1)


def _check_table(node: dict[str, Any], ctes: frozenset[str]) -> None:
    name = node.get("name")
    parts = node.get("name_parts")
    if not isinstance(name, str) or (parts is not None and len(parts) != 1):
        shown = name if isinstance(name, str) else ".".join(map(str, parts or []))
        if shown.split(".")[0].lower() in _SYSTEM_DATABASES:
            raise SqlRefused(f"system tables are not allowed ({shown})")
        raise SqlRefused(f"table {shown} is not allowed; query `{TABLE}`")
    if name == TABLE or name in ctes:
        return
    raise SqlRefused(f"table {name} is not allowed; query `{TABLE}`")


def _check_function(node: dict[str, Any], kind: str, functions: Catalog) -> None:
    name = node.get("name") if kind == "Function" else node.get("func_name")
    if kind == "ColumnsApplyTransformer" and not name:
        return  # APPLY with a lambda: the lambda is walked
    if not isinstance(name, str) or not functions.allows(name):
        raise SqlRefused(f"function {name}() is not allowed")
    if kind == "Function" and _IN_FAMILY.fullmatch(name.lower()):
        args = _args(node)
        if len(args) == 2 and isinstance(args[1], dict) and args[1].get("type") == "Identifier":
            target = args[1].get("name")
            raise SqlRefused(f"IN {target} reads a table; after IN write a subquery or a list of values")


def _check_identifier(node: dict[str, Any]) -> None:
    name = node.get("name")
    parts = node.get("name_parts")
    first = parts[0] if isinstance(parts, list) and parts else name
    if (
        isinstance(first, str)
        and first.lower() in _SYSTEM_DATABASES
        and isinstance(parts, list)
        and len(parts) > 1
    ):
        raise SqlRefused(f"system tables are not allowed ({name})")


def check_statement(parser: Parser, statement: str) -> dict[str, Any]:
    """Parse and check one canonical statement; return its tree."""
    tree = parse(parser, statement)
    check(tree, catalog(parser))
    return tree


# -- running ---------------------------------------------------------------------------------------


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
        raise SqlRefused(f"the query failed: {_first_line(str(exc))}") from None
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
