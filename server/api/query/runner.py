"""Runs report SQL on one store, escaping parameter values when the engine needs it.

ClickHouse reads query-parameter values in its *Escaped* text format (a backslash starts an escape,
a raw tab or newline is an error). Whether the engine wrapper already escapes them is probed once per
`QueryRunner` (one per store: `create_app` makes it beside the report cache), so values such as
`C:\\path` or multi-line SQL reach ClickHouse unchanged either way. The answer lives in the runner,
never in a table keyed by the store's identity, so a new store always gets its own probe.

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
_PROBE = "\\\\"


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


class QueryRunner:
    """Queries and commands on `store` with checked (and, where the engine needs it, escaped) parameters."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._needs_escaping: bool | None = None  # probed on first use
        self._lock = threading.Lock()

    def needs_escaping(self) -> bool:
        """Whether the engine passes parameter values to ClickHouse unescaped (asked once)."""
        with self._lock:
            if self._needs_escaping is None:
                self._needs_escaping = self.store.scalar("SELECT {v:String}", {"v": _PROBE}) != _PROBE
            return self._needs_escaping

    def escape_params(self, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not params:
            return None
        check_text(params)
        if not self.needs_escaping():
            return dict(params)
        return {k: (v.translate(_ESCAPES) if isinstance(v, str) else v) for k, v in params.items()}

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return self.store.query(sql, self.escape_params(params))

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.store.command(sql, self.escape_params(params))
