"""The metadata database: users, tokens, sites, goals and dashboards, in SQLite in the data folder.

It is separate from the events store (chDB allows one process per folder), so `pixel user add` can
write to it while `pixel serve` runs. WAL mode plus a busy timeout make that concurrent use safe.
Every call opens its own short-lived connection, so it is safe from FastAPI's worker threads.
Migrations are numbered SQL scripts recorded in `PRAGMA user_version`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    # 1: accounts, sites, goals, dashboards
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
        sites TEXT,                       -- JSON list of site ids the user may see, NULL = all
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE refresh_tokens (
        hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE revoked_access (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL
    );
    CREATE TABLE sites (
        id INTEGER PRIMARY KEY,
        domain TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        timezone TEXT NOT NULL,
        allowed_origins TEXT NOT NULL DEFAULT '[]',
        honour_dnt INTEGER NOT NULL DEFAULT 1,
        honour_gpc INTEGER NOT NULL DEFAULT 1,
        excluded_paths TEXT NOT NULL DEFAULT '[]',
        excluded_ips TEXT NOT NULL DEFAULT '[]',
        retention_days INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE goals (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('page', 'event')),
        page_pattern TEXT,
        event_name TEXT,
        prop_key TEXT,
        prop_value TEXT
    );
    CREATE TABLE dashboards (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        widgets TEXT NOT NULL DEFAULT '[]',   -- JSON list, validated by the API models
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
)

JSON_FIELDS = {"sites", "allowed_origins", "excluded_paths", "excluded_ips", "widgets"}
BOOL_FIELDS = {"honour_dnt", "honour_gpc", "disabled"}


def _row(cursor: sqlite3.Cursor, raw: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col, value in zip(cursor.description, raw, strict=True):
        name = col[0]
        if name in JSON_FIELDS and value is not None:
            value = json.loads(value)
        elif name in BOOL_FIELDS:
            value = bool(value)
        out[name] = value
    return out


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v) if k in JSON_FIELDS and v is not None else v) for k, v in values.items()}


class Conflict(ValueError):
    """A unique name (username, domain) is taken."""


class MetaDB:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch(mode=0o600)  # it holds password hashes
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        self.migrate()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = _row
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def migrate(self) -> int:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()["user_version"]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(number)}")
            return len(MIGRATIONS)

    # -- generic helpers --------------------------------------------------------------------

    def one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        with self.connect() as conn:
            return conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return conn.execute(sql, args).fetchall()

    def insert(self, table: str, values: dict[str, Any]) -> int:
        values = _encode(values)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            with self.transaction() as conn:
                cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(values.values()))
                return int(cur.lastrowid or 0)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> bool:
        if not values:
            return self.one(f"SELECT id FROM {table} WHERE id = ?", row_id) is not None
        values = _encode(values)
        assignments = ", ".join(f"{k} = ?" for k in values)
        try:
            with self.transaction() as conn:
                cur = conn.execute(
                    f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), row_id)
                )
                return cur.rowcount > 0
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    def delete(self, table: str, row_id: int) -> bool:
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount > 0

    # -- users --------------------------------------------------------------------------------

    def create_user(
        self, username: str, password_hash: str, role: str, sites: list[int] | None = None
    ) -> int:
        return self.insert(
            "users",
            {
                "username": username,
                "password_hash": password_hash,
                "role": role,
                "sites": sites,
                "created_at": time.time(),
            },
        )

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM users WHERE username = ?", username)

    def user(self, user_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM users WHERE id = ?", user_id)

    def count_admins(self, exclude: int | None = None) -> int:
        row = self.one(
            "SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?",
            exclude if exclude is not None else -1,
        )
        return int(row["n"]) if row else 0

    # -- sites --------------------------------------------------------------------------------

    def site(self, site_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM sites WHERE id = ?", site_id)

    def sites(self) -> list[dict[str, Any]]:
        return self.all("SELECT * FROM sites ORDER BY id")
