"""Embedded ClickHouse (chDB) in a data folder.

chDB admits one process per data folder, so the process that opens it (the shipper, with the API
beside it in `pixel serve`) holds an exclusive lock file there, and a second one fails at once with
a clear message instead of corrupting the folder.

- A statement that fails part-way leaves nothing behind: chDB hands the output it had already
  written to the *next* statement on the session, so after every failure a marker statement takes
  that leftover (the session is reopened if the marker does not come back alone).
- Console queries run on a second session of the same folder: the reports' session never waits
  behind them, and a console query past its deadline is stopped with `KILL QUERY` from the reports'
  session (see `Store.console_query`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pixel.server.settings import STORE_MEMORY_DEFAULT_MB
from pixel.server.store import memory
from pixel.server.store.base import Store, StoreClosed, StoreError, insert_settings
from pixel.server.store.turns import Turns

log = logging.getLogger(__name__)
_DRAIN_TRIES = 3


class FolderInUse(StoreError):
    pass


class EngineHeld(StoreError):
    """This process's chDB already holds another store folder: chDB opens one folder per process, until every
    session on it is closed."""


# chDB's refusal of a second folder in one process, naming the folder it holds
_HELD = re.compile(r"EmbeddedServer already initialized with path '([^']*)'")


def _memfd_with(data: bytes) -> int | None:
    """A new anonymous in-memory file (close-on-exec) holding `data`, as a descriptor the caller closes; None
    where the system has no `memfd_create` or refuses one (the caller then sends the data inline)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd: int = create("pixel-insert", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        os.close(fd)
        return None
    return fd


def bind_params(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """Format parameter values as clickhouse-connect does for the server engine.

    chDB parses `{name:Type}` values as ClickHouse escaped text (like the HTTP interface), so a raw
    Python string with a backslash, tab or newline would arrive changed or be refused, and a
    datetime would not parse; formatted like this, both engines get the same values.
    """
    from clickhouse_connect.driver.binding import bind_query

    bound_sql, bound = bind_query(sql, dict(params))
    text = bound_sql if isinstance(bound_sql, str) else bound_sql.decode()
    return text, {name.removeprefix("param_"): value for name, value in bound.items()}


class ChdbStore(Store):
    engine = "chdb"
    sole_writer = True  # the folder is locked to this process (see __init__)

    def __init__(self, path: Path | str, *, memory_mb: int = STORE_MEMORY_DEFAULT_MB) -> None:
        """`memory_mb`: each statement's working memory before it spills to disk (`store/memory.py`); 0 leaves
        chDB's own bound (a share of the machine's RAM)."""
        self.path = Path(path)
        self._budget = memory.set_statements(memory_mb)
        self.spill_budget_mb = memory_mb
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
        try:
            os.ftruncate(self._lock_fd, 0)
            os.write(self._lock_fd, str(os.getpid()).encode())
            self._session = self._open_session()
        except BaseException:  # the folder is not this process's after a failed open
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            raise
        self._console: Any = None  # the console's own session, opened on first use
        self._console_guard = threading.Lock()
        self._console_closed = False  # set by close(): no console session is opened after it
        # Statements that may write, counted: this process is the folder's only writer, so while the count
        # stands still no table changed (the API's report cache skips its change check then).
        self.writes = 0
        # One statement at a time on the session: the shipper's inserts and the API's queries come from
        # different threads, and a statement failing mid-result must not leak into the next one. The caches'
        # background builds take their turns after the foreground's (`store/turns.py`).
        self._turns = Turns()

    def background(self) -> AbstractContextManager[None]:
        return self._turns.background()

    def _open_session(self) -> Any:
        from chdb import session

        try:
            opened = session.Session(str(self.path))
        except Exception as exc:  # chDB's own error type
            held = _HELD.search(str(exc))
            if held is None:
                raise
            raise EngineHeld(
                f"this process already holds the chDB store folder {held.group(1)} "
                "(chDB opens one folder per process); close that store first"
            ) from None
        # 64-bit integers as JSON numbers whatever the chDB version (as the server engine asks).
        opened.query("SET output_format_json_quote_64bit_integers = 0", "TabSeparated")
        for statement in self._budget:
            opened.query(statement, "TabSeparated")
        return opened

    def _drained(self, current: Any) -> Any:
        """The session to use after a failed statement on `current`: the same one once a marker
        statement came back alone (it took the failed statement's leftover output), else a new one."""
        for _ in range(_DRAIN_TRIES):
            marker = uuid.uuid4().hex
            try:
                if current.query(f"SELECT '{marker}'", "TabSeparated").bytes() == f"{marker}\n".encode():
                    return current
            except Exception as exc:  # chDB's own error type
                log.debug("store: drain statement failed: %s", exc)
        log.warning("store: a chDB session kept failed output; reopening it")
        try:
            current.close()
        except Exception as exc:
            log.debug("store: closing the old session failed: %s", exc)
        return self._open_session()

    def _execute(self, sql: str, params: Mapping[str, Any] | None, fmt: str | None) -> bytes:
        if params:
            try:
                sql, params = bind_params(sql, params)
            except Exception as exc:
                raise StoreError(str(exc).strip()) from None
        with self._turns.turn():
            session = self._open()
            if fmt is None:
                self.writes += 1
            try:
                result = session.query(sql, fmt or "TabSeparated", params=params or None)
                return result.bytes() if fmt else b""
            except Exception as exc:  # chDB raises a bare RuntimeError/ChdbError with the server message
                self._session = self._drained(session)
                raise StoreError(str(exc).strip()) from None

    def _open(self) -> Any:
        """The session, during a turn; `StoreClosed` once `close()` ran (a thread still running after its
        process's close must not open chDB again behind it)."""
        if self._session is None:
            raise StoreClosed(f"the store {self.path} is closed")
        return self._session

    def _console_execute(self, sql: str, tag: str) -> bytes:
        with self._console_guard:
            if self._console_closed:
                raise StoreClosed(f"the store {self.path} is closed")
            if self._console is None:
                self._console = self._open_session()
            try:
                return bytes(self._console.query(sql, "JSONCompact").bytes())
            except Exception as exc:
                self._console = self._drained(self._console)
                raise StoreError(str(exc).strip()) from None

    def _console_cancel(self, tag: str) -> None:
        if not tag.replace("_", "").isalnum():
            raise ValueError("console tags are [A-Za-z0-9_]")
        head, _, tail = tag.rpartition("_")
        # The two halves apart, so this statement's own text does not match itself.
        self.command(f"KILL QUERY WHERE position(query, concat('{head}_', '{tail}')) > 0 ASYNC")

    def insert_json(
        self, table: str, data: bytes, *, token: str | None = None, settings: Mapping[str, int] | None = None
    ) -> None:
        """Insert `data` (JSONEachRow) into `table` under the deduplication `token`.

        The rows reach chDB as a file, not inside the statement: they are written to an anonymous in-memory
        file (`memfd_create`) that `INSERT ... FROM INFILE '/proc/self/fd/N'` reads, which costs chDB
        markedly less CPU per row than the same bytes appended to the query text (bench/README.md, "Ingest").
        The insert is the same JSONEachRow insert either way (omitted columns get their defaults, the token
        deduplicates a replay). Where `memfd_create` is missing (not Linux), the rows go inline as before.
        The file is closed (and so freed) whatever the insert's outcome."""
        if token and not token.isalnum():
            raise ValueError("dedup token must be alphanumeric")
        pairs = [f"insert_deduplication_token='{token}'"] if token else []
        pairs += [f"{name}={value}" for name, value in insert_settings(settings).items()]
        with_settings = f" SETTINGS {', '.join(pairs)}" if pairs else ""
        memfd = _memfd_with(data)
        if memfd is None:
            text = f"INSERT INTO {table}{with_settings} FORMAT JSONEachRow\n" + data.decode(
                "utf-8", "replace"
            )
        else:  # chDB reads /proc/self/fd/N in this process: a fresh open of the same in-memory file
            text = f"INSERT INTO {table} FROM INFILE '/proc/self/fd/{memfd}' COMPRESSION 'none'{with_settings} FORMAT JSONEachRow"
        try:
            with self._turns.turn():
                session = self._open()
                self.writes += 1
                try:
                    session.query(text, "TabSeparated")
                except Exception as exc:
                    self._session = self._drained(session)
                    raise StoreError(str(exc).strip()) from None
        finally:
            if memfd is not None:
                os.close(memfd)

    def close(self) -> None:
        if self._session is not None:
            if self._console is not None and self._console_guard.locked():
                try:  # a console query still running: stopped at its next check rather than awaited
                    self.command("KILL QUERY WHERE position(query, concat('pixel_', 'console_')) > 0 ASYNC")
                except StoreError as exc:
                    log.warning("store: cancelling console queries on close failed: %s", exc)
            with self._console_guard:
                self._console_closed = True
                if self._console is not None:
                    self._console.close()
                    self._console = None
            # None during a turn: a statement waiting for its turn then finds the store closed
            with self._turns.turn():
                session, self._session = self._session, None
                if session is None:  # another thread's close came first
                    return
                session.close()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
