"""The SQL console's guard: read-only SQL over one site's events, checked by ClickHouse's own parser.

1. The text goes to ClickHouse as a *parameter* of `formatQuery()` - never as SQL - so a syntax
   error or a second statement (`SELECT 1; DROP ...`, which chDB would otherwise run) is refused
   before anything executes, and what comes back is one canonical statement without comments.
2. Its first keyword must be SELECT or WITH, and `EXPLAIN AST` of it is walked: the root must be a SELECT (or UNION/INTERSECT of
   SELECTs) with no INTO OUTFILE, FORMAT or SETTINGS; the only table is `events`; no table
   functions (`file()`, `url()`, `s3()`, `remote()`, ...); no functions that reach outside the
   query (dictionaries, `joinGet`, `file`, ...).
3. It runs wrapped as `SELECT * FROM (<statement>) LIMIT <rows+1>` with `readonly=1`,
   `max_execution_time`, result-size limits in `break` mode, `final=1` (no duplicates) and
   `additional_table_filters` restricting `events` to the one site the request names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pixel.server.api.query import runner
from pixel.server.store import Store, StoreError

ALLOWED_TABLES = {"events"}
HARMLESS_TABLES = {"system.one"}  # the one-row dummy ClickHouse reads for SELECT without FROM
ROOTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery")
QUERY_NODES = {*ROOTS, "SelectQuery", "TablesInSelectQuery"}  # "...Query" AST nodes a SELECT may contain
DENIED_FUNCTIONS = {
    "file",
    "joinget",
    "joingetornull",
    "hascolumnintable",
    "getmacro",
    "filesystemavailable",
    "filesystemfree",
    "filesystemcapacity",
    "filesystemunreserved",
    "getserverport",
    "catboostevaluate",
    "evalmlmethod",
    "currentprofiles",
    "currentroles",
    "enabledprofiles",
    "enabledroles",
    "defaultroles",
    "getclientsetting",
    "getsetting",
    "getsettingordefault",
    "displayname",
    "hostname",
    "fqdn",
    "uptime",
    "serveruuid",
    "getosKernelVersion".lower(),
    "shardnum",
    "shardcount",
    "tcpport",
    "version",
}
DENIED_PREFIXES = (
    "dict",
    "s3",
    "url",
    "hdfs",
    "azure",
    "remote",
    "mysql",
    "postgres",
    "mongo",
    "redis",
    "executable",
    "jdbc",
    "odbc",
    "sqlite",
    "gcs",
    "iceberg",
    "deltalake",
    "hudi",
    "hive",
)
_LINE = re.compile(r"^(?P<indent> *)(?P<node>\w+)(?: (?P<arg>.*?))?(?: \(children \d+\))?$")
_ALIAS = re.compile(r" \(alias [^)]*\)$")


class SqlRefused(ValueError):
    """The statement breaks a console rule; the message is the reason shown to the user."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int = 10_000
    max_seconds: float = 10.0
    max_result_bytes: int = 50 * 1024 * 1024
    max_memory: int = 1024 * 1024 * 1024


def canonical(store: Store, sql: str) -> str:
    """ClickHouse's own formatting of `sql` if it is exactly one statement; SqlRefused otherwise."""
    if not sql.strip():
        raise SqlRefused("the query is empty")
    try:
        text = runner.query(store, "SELECT formatQuery({q:String})", {"q": sql}).scalar()
    except StoreError as exc:
        message = str(exc)
        if "Multi-statements" in message:
            raise SqlRefused("only one statement is allowed") from None
        raise SqlRefused(f"syntax error: {_first_line(message)}") from None
    return str(text)


def _first_line(message: str) -> str:
    return message.split("\n")[0][:300]


def check_ast(lines: list[str]) -> None:
    """Refuse anything but a single-site SELECT over `events` (see the module docstring)."""
    nodes = []
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            raise SqlRefused(f"cannot read the query plan line {line!r}")
        nodes.append((len(m["indent"]), m["node"], (m["arg"] or "").strip()))
    if not nodes:
        raise SqlRefused("empty query plan")
    depth0, root, _ = nodes[0]
    if root not in ROOTS:
        kind = root.removesuffix("Query") or root
        raise SqlRefused(f"only SELECT queries are allowed (this is {kind})")
    root_children = [n for n in nodes[1:] if n[0] == depth0 + 1]
    if len(root_children) != 1 or root_children[0][1] != "ExpressionList":
        raise SqlRefused("INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed")
    for i, (_depth, node, arg) in enumerate(nodes):
        if node == "Set" or node == "SetQuery":
            raise SqlRefused("SETTINGS clauses are not allowed")
        if node.endswith("Query") and node not in QUERY_NODES:
            raise SqlRefused(f"only SELECT queries are allowed ({node})")
        if node == "TableIdentifier":
            name = _ALIAS.sub("", arg).replace("`", "")
            if name in HARMLESS_TABLES:
                continue
            if name.split(".")[0] in ("system", "information_schema", "INFORMATION_SCHEMA"):
                raise SqlRefused(f"system tables are not allowed ({name})")
            if name not in ALLOWED_TABLES:
                raise SqlRefused(f"table {name} is not allowed; query `events`")
        if node == "Function":
            name = _ALIAS.sub("", arg).split(" ")[0].replace("`", "")
            parent = _parent(nodes, i)
            if parent == "TableExpression":
                raise SqlRefused(f"table function {name}() is not allowed")
            lower = name.lower()
            if lower in DENIED_FUNCTIONS or lower.startswith(DENIED_PREFIXES):
                raise SqlRefused(f"function {name}() is not allowed")
        if node == "Identifier":
            name = _ALIAS.sub("", arg).replace("`", "")
            if name.split(".")[0] in ("system", "information_schema", "INFORMATION_SCHEMA"):
                raise SqlRefused(f"system tables are not allowed ({name})")


def _parent(nodes: list[tuple[int, str, str]], index: int) -> str:
    depth = nodes[index][0]
    for j in range(index - 1, -1, -1):
        if nodes[j][0] < depth:
            return nodes[j][1]
    return ""


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run(store: Store, sql: str, site: str, limits: Limits = Limits()) -> dict[str, Any]:
    statement = canonical(store, sql)
    first = statement.lstrip("( \n").split(None, 1)[0].upper() if statement.strip() else ""
    if first not in ("SELECT", "WITH"):
        raise SqlRefused(f"only SELECT queries are allowed (this is {first or 'empty'})")
    try:
        # As a subquery, so the output format applies to the outer SELECT on every engine/driver.
        plan = store.query(f"SELECT explain FROM (EXPLAIN AST {statement})")
    except StoreError as exc:
        message = str(exc)
        if "output options" in message:
            raise SqlRefused("INTO OUTFILE, FORMAT and SETTINGS clauses are not allowed") from None
        if "supports only SELECT" in message:
            raise SqlRefused("only SELECT queries are allowed") from None
        raise SqlRefused(f"cannot analyse the query: {_first_line(message)}") from None
    check_ast([row[0] for row in plan.rows])
    site_filter = _quote(f"site = {_quote(site)}")
    wrapped = (
        f"SELECT * FROM (\n{statement}\n) LIMIT {int(limits.max_rows) + 1}\n"
        f"SETTINGS readonly = 1, final = 1, max_execution_time = {float(limits.max_seconds)}, "
        f"timeout_overflow_mode = 'break', max_result_rows = {int(limits.max_rows) + 1}, "
        f"max_result_bytes = {int(limits.max_result_bytes)}, result_overflow_mode = 'break', "
        f"max_memory_usage = {int(limits.max_memory)}, "
        f"additional_table_filters = {{'events': {site_filter}}}"
    )
    canonical(store, wrapped)  # the wrapped text must still be exactly one statement
    started = time.monotonic()
    try:
        result = store.query(wrapped)
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
