"""Runs report SQL on a store, escaping parameter values when the engine needs it.

ClickHouse reads query-parameter values in its *Escaped* text format (a backslash starts an escape,
a raw tab or newline is an error). Whether the engine wrapper already escapes them is probed once
per store, so values such as `C:\\path` or multi-line SQL reach ClickHouse unchanged either way.

A string value that is not valid Unicode (an unpaired surrogate from a JSON `"\\ud800"`) cannot be
sent to the store at all: it is a 400 `invalid_value` before anything runs, whatever request it
came with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pixel.server.store import Result, Store

_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)
_needs_escaping: dict[int, bool] = {}
_lock = threading.Lock()


def _escaping(store: Store) -> bool:
    key = id(store)
    with _lock:
        if key not in _needs_escaping:
            probe = "\\\\"
            _needs_escaping[key] = store.scalar("SELECT {v:String}", {"v": probe}) != probe
        return _needs_escaping[key]


def check_text(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` as a dict if every string in it is valid Unicode; a 400 `invalid_value` otherwise."""
    from pixel.server.api.errors import bad_request

    for value in params.values():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise bad_request(
                    f"a value in this request holds an unpaired surrogate (U+{ord(value[exc.start]):04X}), "
                    "which is not valid Unicode text",
                    "invalid_value",
                ) from None
    return dict(params)


def escape_params(store: Store, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    check_text(params)
    if not _escaping(store):
        return dict(params)
    return {k: (v.translate(_ESCAPES) if isinstance(v, str) else v) for k, v in params.items()}


def query(store: Store, sql: str, params: Mapping[str, Any] | None = None) -> Result:
    return store.query(sql, escape_params(store, params))


def command(store: Store, sql: str, params: Mapping[str, Any] | None = None) -> None:
    store.command(sql, escape_params(store, params))
