"""The check of a statement's syntax tree against the rules (see the package docstring, step 2): walked node by
node, every node type and field known, every table `events` or a CTE in scope, no table function, every
function in the catalog, `IN` followed by a subquery or values. Anything else raises `SqlRefused`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pixel.server.api.sqlguard.parser import Parser, catalog, parse
from pixel.server.api.sqlguard.rules import NODES, TABLE, Catalog, SqlRefused

_IN_FAMILY = re.compile(r"(global)?(not)?(null)?in(ignoreset)?")
_SYSTEM_DATABASES = ("system", "information_schema")


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
