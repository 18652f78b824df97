"""A bounded SQLite cache of API answers, so every chart can be drawn when the host is unreachable.

One row per (profile, request): the JSON answer, when it was fetched ("as of") and when it was last
read. When the stored answers exceed `max_bytes`, the least recently used go first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "pixel-desktop"
DEFAULT_MAX_BYTES = 64 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    fetched_at REAL NOT NULL,
    used_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_used ON answers (used_at);
"""


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def request_key(profile: str, path: str, params: dict[str, Any] | None = None) -> str:
    """The same request always gives the same key (parameters sorted, filters as canonical JSON)."""
    return json.dumps([profile, path, params or {}], sort_keys=True, separators=(",", ":"), default=str)


def list_key(profile: str, path: str, params: dict[str, Any] | None = None) -> str:
    """The key of a whole list (every page of it, `ReportSource.every`): never a one-page answer's."""
    return request_key(profile, path, {**(params or {}), "pages": "all"})


class ReportCache:
    def __init__(self, path: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if path is None:
            path = default_cache_dir() / "reports.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, key: str, data: Any, fetched_at: float | None = None) -> None:
        body = json.dumps(data, separators=(",", ":"))
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, body, size, fetched_at, used_at) VALUES (?, ?, ?, ?, ?)",
                (key, body, len(body.encode()), fetched_at if fetched_at is not None else now, now),
            )
            self._evict()

    def get(self, key: str) -> tuple[Any, float] | None:
        """(answer, fetched_at) or None."""
        with self._lock:
            row = self._db.execute("SELECT body, fetched_at FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE answers SET used_at = ? WHERE key = ?", (time.time(), key))
        return json.loads(row[0]), float(row[1])

    def size_bytes(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT coalesce(sum(size), 0) FROM answers").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def clear(self, profile: str | None = None) -> None:
        with self._lock:
            if profile is None:
                self._db.execute("DELETE FROM answers")
            else:
                self._db.execute("DELETE FROM answers WHERE key LIKE ?", (json.dumps([profile])[:-1] + ",%",))

    def _evict(self) -> None:
        total = int(self._db.execute("SELECT coalesce(sum(size), 0) FROM answers").fetchone()[0])
        if total <= self.max_bytes:
            return
        for key, size in self._db.execute("SELECT key, size FROM answers ORDER BY used_at ASC").fetchall():
            self._db.execute("DELETE FROM answers WHERE key = ?", (key,))
            total -= size
            if total <= self.max_bytes:
                break
