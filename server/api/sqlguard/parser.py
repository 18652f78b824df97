"""Where console statements are formatted and parsed, and the function catalog read (see the package
docstring, steps 0, 1 and 3): the store's own engine when it has `parseQueryToJSON`, else chDB in memory in
this process (`LocalParser`). One parser per store and one catalog per parser, read once and kept.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from typing import Any

from pixel.server.api.query.runner import QueryRunner, check_text
from pixel.server.api.sqlguard.rules import Catalog, SqlRefused, build_catalog
from pixel.server.store import Result, Store, StoreError
from pixel.server.store.base import parse_json_compact


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
            raise SqlRefused(f"cannot read the function catalog: {first_line(str(exc))}") from None
        found = Parser(store) if has else LocalParser()
        with _cache_lock:
            _parsers[store] = found
    return found


def first_line(message: str) -> str:
    """The first line of an engine's error message, cut to a length a refusal can show."""
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
        raise SqlRefused(f"syntax error: {first_line(message)}") from None
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
        raise SqlRefused(f"cannot analyse the query: {first_line(message)}") from None
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
        raise SqlRefused(f"cannot read the function catalog: {first_line(str(exc))}") from None
    found = build_catalog(rows, combinators)
    with _cache_lock:
        _catalogs[id(parser)] = (parser, found)
    return found
