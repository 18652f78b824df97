"""Embedded ClickHouse (chDB) in a data folder.

chDB admits one process per data folder, so the process that opens it (the shipper, with the API
beside it in `pixel serve`) holds an exclusive lock file there, and a second one fails at once with
a clear message instead of corrupting the folder.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixel.server.store.base import Store, StoreError


class FolderInUse(StoreError):
    pass


def _bind(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """Format parameter values as clickhouse-connect does for the server engine.

    chDB parses `{name:Type}` values as ClickHouse escaped text (like the HTTP interface), so a raw
    Python string with a backslash, tab or newline would arrive changed or be refused, and a
    datetime would not parse; formatted like this, both engines get the same values.
    """
    from clickhouse_connect.driver.binding import bind_query

    sql, bound = bind_query(sql, dict(params))
    return sql, {name.removeprefix("param_"): value for name, value in bound.items()}


class ChdbStore(Store):
    engine = "chdb"

    def __init__(self, path: Path | str) -> None:
        from chdb import session  # imported here: the [desktop] extra has no chDB

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path / ".pixel-owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise FolderInUse(
                f"the store folder {self.path} is in use by another Pixel process "
                "(chDB allows one process per folder); stop it first"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.write(self._lock_fd, str(os.getpid()).encode())
        self._session = session.Session(str(self.path))
        # Statements that may write, counted: this process is the folder's only writer, so while the count
        # stands still no table changed (the API's report cache skips its change check then).
        self.writes = 0
        # One statement at a time on the session: the shipper's inserts and the API's queries come from
        # different threads, and a statement failing mid-result must not leak into the next one.
        self._guard = threading.Lock()
        # 64-bit integers as JSON numbers whatever the chDB version (as the server engine asks).
        self._session.query("SET output_format_json_quote_64bit_integers = 0", "TabSeparated")

    def _execute(self, sql: str, params: Mapping[str, Any] | None, fmt: str | None) -> bytes:
        try:
            if params:
                sql, params = _bind(sql, params)
            with self._guard:
                if fmt is None:
                    self.writes += 1
                result = self._session.query(sql, fmt or "TabSeparated", params=params or None)
                return result.bytes() if fmt else b""
        except Exception as exc:  # chDB raises a bare RuntimeError/ChdbError with the server message
            raise StoreError(str(exc).strip()) from None

    def insert_json(self, table: str, data: bytes, *, token: str | None = None) -> None:
        settings = f" SETTINGS insert_deduplication_token='{token}'" if token else ""
        if token and not token.isalnum():
            raise ValueError("dedup token must be alphanumeric")
        sql = f"INSERT INTO {table}{settings} FORMAT JSONEachRow\n"
        text = sql + data.decode("utf-8", "replace")  # chDB parses a str query much faster than bytes
        try:
            with self._guard:
                self.writes += 1
                self._session.query(text, "TabSeparated")
        except Exception as exc:
            raise StoreError(str(exc).strip()) from None

    def close(self) -> None:
        if self._session is not None:
            with self._guard:
                self._session.close()
            self._session = None  # type: ignore[assignment]
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
