"""One store interface over two ClickHouse engines (embedded chDB, or a server via clickhouse-connect).

Both engines speak the same SQL with server-side parameters (`{name:Type}`), return results as
JSONCompact parsed into the same Python shapes, and take inserts as JSONEachRow bytes, so the
shipper and the API never know which engine they talk to.

Untrusted queries (the SQL console) go through `console_query`: they run beside the reports, not in
their queue, and a watchdog gives up on them at a wall-clock deadline, answers `QueryTimeout` at once
and asks the engine to cancel the query. One console query runs at a time per store: while one runs,
or one that passed its deadline is still being stopped, the next is refused at once with `StoreBusy`
instead of piling up work.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import orjson

from pixel.server.errors import PixelError
from pixel.server.store import sessions
from pixel.server.store.schema import Migration, migrations, retention_statement

log = logging.getLogger(__name__)

# Which migrations a store has applied (`Store.migrate`).
SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
    "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
)


class StoreError(PixelError, RuntimeError):
    """A query or insert the engine refused (bad SQL, bad data): retrying will not help."""


class StoreUnavailable(StoreError):
    """The engine cannot be reached right now (server down, network): retry later."""

    retryable = True


class StoreClosed(StoreUnavailable):
    """The store was closed (its process is stopping): the statement was not run, and a closed store never opens
    its engine again (chDB admits one embedded store folder per process, so a session reopened behind a close
    would hold the process's chDB until it exits). Unavailable, not refused: a writer keeps what it was writing
    (the shipper's batch stays in the spool for the next store process)."""


class QueryTimeout(StoreError):
    """A console query passed its wall-clock deadline; it was answered for and cancelled. Not retryable: the
    same query would run as long again."""


class StoreBusy(StoreError):
    """Another console query is running, or one that passed its deadline is still being stopped."""

    retryable = True


@dataclass(slots=True)
class Result:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


def parse_json_compact(body: bytes) -> Result:
    if not body.strip():
        return Result([], [], [])
    doc = orjson.loads(body)
    meta = doc.get("meta", [])
    return Result([m["name"] for m in meta], [m["type"] for m in meta], doc.get("data", []))


def dedup_token(*parts: object) -> str:
    """A stable insert-deduplication token for a batch identified by `parts` (spool ranges)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


class Store(ABC):
    """The events store. Subclasses implement the three engine calls; the rest is shared."""

    engine: str = ""
    # Statements that may have changed a table, issued through this object so far: every `command` and
    # every insert, counted before it runs (a failed one too). Every engine keeps it (in its `_execute`
    # without an output format and in its `insert_json`). Two readings that are equal mean this object
    # wrote nothing in between; whether nobody else did is `sole_writer`.
    writes: int = 0
    # Whether this object is its tables' only writer (the embedded engine: one process per data folder),
    # so that an unchanged `writes` means unchanged tables. False where other processes may write (a server).
    sole_writer: bool = False
    # The working memory (MiB) one statement may hold before its aggregations spill to disk, as set by this
    # object (`store/memory.py`); 0 where none is set here (a server's memory is its operator's).
    spill_budget_mb: int = 0

    def background(self) -> AbstractContextManager[None]:
        """This thread's statements inside the block are background work (a cache's build): an engine that
        runs one statement at a time runs the others' first (`store/turns.py`); a server runs them side by side.
        """
        return nullcontext()

    @abstractmethod
    def _execute(self, sql: str, params: Mapping[str, Any] | None, fmt: str | None) -> bytes:
        """Run one statement; return the output bytes in `fmt` (None: no output expected)."""

    @abstractmethod
    def insert_json(
        self, table: str, data: bytes, *, token: str | None = None, settings: Mapping[str, int] | None = None
    ) -> None:
        """Insert JSONEachRow `data` into `table`; `token` deduplicates a replayed insert; `settings` are the
        insert's own ClickHouse settings (names checked by `insert_settings`, integer values)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    def _console_execute(self, sql: str, tag: str) -> bytes:
        """Run one untrusted read-only statement (its text contains `tag`) away from the report path;
        return JSONCompact bytes."""

    @abstractmethod
    def _console_cancel(self, tag: str) -> None:
        """Ask the engine to stop the running statement whose text contains `tag` (no waiting)."""

    # -- shared -----------------------------------------------------------------------------

    def console_tag(self) -> str:
        """A fresh marker to put in a console statement's text (an alias), so it can be found to cancel."""
        return f"pixel_console_{uuid.uuid4().hex}"

    def console_query(self, sql: str, tag: str, deadline_seconds: float) -> Result:
        """Run `sql` (which contains `tag`) with a hard wall-clock bound: the answer comes by the deadline,
        with the result, the engine's error (StoreError), QueryTimeout, or StoreBusy at once."""
        busy = self.__dict__.setdefault("_console_busy", threading.Lock())
        if not busy.acquire(blocking=False):
            raise StoreBusy(
                "another console query is running or still being stopped; try again in a few seconds"
            )
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["body"] = self._console_execute(sql, tag)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                done.set()
                busy.release()

        threading.Thread(target=work, name="pixel-console-query", daemon=True).start()
        if not done.wait(deadline_seconds):
            try:
                self._console_cancel(tag)
            except StoreError as exc:
                log.warning("store: cancelling console query %s failed: %s", tag, exc)
            raise QueryTimeout(f"stopped at the time limit ({deadline_seconds:g} s)")
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, StoreError):
                raise error
            raise StoreError(str(error)) from None
        return parse_json_compact(outcome["body"])

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._execute(sql, params, None)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return parse_json_compact(self._execute(sql, params, "JSONCompact"))

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.query(sql, params).scalar()

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None) -> None:
        if rows:
            # One call serialises the whole batch; JSONEachRow also reads a JSON array of objects.
            self.insert_json(table, orjson.dumps(rows), token=token)

    def apply_migration(self, m: Migration) -> None:
        """Run migration `m`'s statements and record it as applied in `schema_migrations` (made by
        `SCHEMA_MIGRATIONS_DDL`): one step of `migrate`; tests make the stores older Pixels left with it."""
        for statement in m.statements:
            self.command(statement)
        self.command(
            "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": m.version, "n": m.name},
        )

    def migrate(self, retention_days: int = 0) -> list[int]:
        """Apply the migrations not yet recorded; return the versions applied. Idempotent."""
        self.command(SCHEMA_MIGRATIONS_DDL)
        done = {row[0] for row in self.query("SELECT version FROM schema_migrations").rows}
        applied = []
        for m in migrations(retention_days):
            if m.version in done:
                continue
            self.apply_migration(m)
            log.info("store: applied migration %d (%s)", m.version, m.name)
            applied.append(m.version)
        has_ttl = "TTL" in (
            self.scalar(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
            )
            or ""
        )
        if retention_days > 0 or has_ttl:
            self.command(retention_statement(retention_days))
            self.command(sessions.retention_statement(retention_days))  # the sessions table keeps as long
        return applied


def insert_settings(settings: Mapping[str, int] | None) -> dict[str, int]:
    """`settings` checked: names of letters, digits and `_`, integer values (they are written into the SQL)."""
    checked: dict[str, int] = {}
    for name, value in (settings or {}).items():
        if not (name.isascii() and name.replace("_", "").isalnum()) or type(value) is not int:
            raise ValueError(f"not an insert setting: {name}={value!r}")
        checked[name] = value
    return checked
