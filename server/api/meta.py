"""The metadata database: users, their site grants, tokens, sites, goals and dashboards, in SQLite.

It is separate from the events store (chDB allows one process per folder), so `pixel user add` can
write to it while `pixel serve` runs. WAL mode plus a busy timeout make that concurrent use safe.
Every call opens its own short-lived connection, so it is safe from FastAPI's worker threads.

The contract this module keeps:
- Ids are never reused: every table with an id is `AUTOINCREMENT` (from schema version 2), so a token,
  a grant, a bookmark or a log line naming a deleted user, site, goal or dashboard never names the next
  one created.
- Every connection runs with `PRAGMA foreign_keys=ON`: deleting a user deletes its refresh and API tokens
  and its site grants; deleting a site deletes its grants, goals and dashboards. A grant to a site id that
  does not exist cannot be written (`UnknownSites`).
- A user's site grants are rows of `user_sites` (`users.all_sites` = 1 means every site, grants ignored).
  In the dicts returned here a user's `sites` is the sorted list of granted ids, or None for every site.
- `users.generation` counts the changes that end a user's sessions. `update_user` and `end_sessions`
  raise it, and delete the user's refresh tokens, in the same transaction as the change: an access token
  carries the generation it was issued under and is refused once it differs.
- Migrations are numbered steps (SQL scripts or functions) recorded in `PRAGMA user_version`; each runs in
  one transaction with foreign keys off (SQLite's procedure for rebuilding a table) and is committed only
  if `PRAGMA foreign_key_check` finds nothing wrong.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixel.server.errors import PixelError

_V1 = (
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
    """
)

# Schema version 2: the same tables, rebuilt with ids that are never reused, grants as rows with foreign
# keys (`user_sites`), and the per-user session generation. `{x}` is where the rebuild's table suffix goes.
_V2_TABLES: dict[str, str] = {
    "users": """
    CREATE TABLE users{x} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
        all_sites INTEGER NOT NULL DEFAULT 1 CHECK (all_sites IN (0, 1)),  -- 0: only the user_sites rows
        disabled INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 1,  -- raised by every change that ends the user's sessions
        created_at REAL NOT NULL
    )""",
    "sites": """
    CREATE TABLE sites{x} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    )""",
    "user_sites": """
    CREATE TABLE user_sites{x} (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, site_id)
    ) WITHOUT ROWID""",
    "refresh_tokens": """
    CREATE TABLE refresh_tokens{x} (
        hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        generation INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    )""",
    "api_tokens": """
    CREATE TABLE api_tokens{x} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL
    )""",
    "goals": """
    CREATE TABLE goals{x} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('page', 'event')),
        page_pattern TEXT,
        event_name TEXT,
        prop_key TEXT,
        prop_value TEXT
    )""",
    "dashboards": """
    CREATE TABLE dashboards{x} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        widgets TEXT NOT NULL DEFAULT '[]',   -- JSON list, validated by the API models
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
}

# Columns copied from the version-1 tables as they are (refresh tokens are not copied: an upgrade ends
# the sessions opened before it, whose access tokens carry no generation either).
_V2_COPIED = {
    "users": "id, username, password_hash, role, disabled, created_at",
    "sites": "id, domain, name, timezone, allowed_origins, honour_dnt, honour_gpc, excluded_paths, "
    "excluded_ips, retention_days, created_at",
    "api_tokens": "id, user_id, name, hash, prefix, created_at, last_used_at",
    "goals": "id, site_id, name, kind, page_pattern, event_name, prop_key, prop_value",
    "dashboards": "id, site_id, name, widgets, created_at, updated_at",
}


def _v2_ids_never_reused(conn: sqlite3.Connection) -> None:
    """Rebuild every table (SQLite cannot add AUTOINCREMENT in place), keeping the data: users keep their
    ids, passwords, roles and flags; a user's JSON site list becomes `user_sites` rows, minus the ids of
    sites that no longer exist (such a grant would otherwise apply to a later site given the same id)."""
    grants: list[tuple[int, int]] = []
    limited: set[int] = set()
    site_ids = {row["id"] for row in conn.execute("SELECT id FROM sites")}
    for row in conn.execute("SELECT id, sites FROM users").fetchall():
        if row["sites"] is None:
            continue
        limited.add(row["id"])
        try:
            listed = json.loads(row["sites"])
        except ValueError:
            listed = []
        if not isinstance(listed, list):
            listed = []
        for site in listed:
            if isinstance(site, int) and not isinstance(site, bool) and site in site_ids:
                grants.append((row["id"], site))
    for ddl in _V2_TABLES.values():
        conn.execute(ddl.format(x="_v2"))
    for table, columns in _V2_COPIED.items():
        conn.execute(f"INSERT INTO {table}_v2 ({columns}) SELECT {columns} FROM {table}")
    conn.executemany("UPDATE users_v2 SET all_sites = 0 WHERE id = ?", [(u,) for u in sorted(limited)])
    conn.executemany("INSERT OR IGNORE INTO user_sites_v2 (user_id, site_id) VALUES (?, ?)", grants)
    for table in ("refresh_tokens", "api_tokens", "goals", "dashboards", "users", "sites"):
        conn.execute(f"DROP TABLE {table}")
    for table in _V2_TABLES:
        conn.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")
    conn.execute("CREATE INDEX user_sites_by_site ON user_sites (site_id)")
    conn.execute("CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id)")
    conn.execute("CREATE INDEX api_tokens_by_user ON api_tokens (user_id)")
    conn.execute("CREATE INDEX goals_by_site ON goals (site_id)")
    conn.execute("CREATE INDEX dashboards_by_site ON dashboards (site_id)")


Migration = str | Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_V1, _v2_ids_never_reused)

JSON_FIELDS = {"allowed_origins", "excluded_paths", "excluded_ips", "widgets"}
BOOL_FIELDS = {"honour_dnt", "honour_gpc", "disabled", "all_sites"}


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


class Conflict(PixelError, ValueError):
    """A unique name (username, domain) is taken."""


class UnknownSites(PixelError, ValueError):
    """Site ids that name no site (never created, or deleted)."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(set(ids))
        super().__init__(f"unknown site ids: {', '.join(map(str, self.ids))}")


class MigrationError(PixelError, RuntimeError):
    """A migration left rows that break a foreign key; nothing of it was committed."""


class LastAdmin(PixelError, ValueError):
    """The change would leave no active admin of all sites (where there was one)."""


class Keep:
    """`update_user(sites=KEEP)`: leave the user's grants as they are."""


KEEP = Keep()


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
    def connect(self, foreign_keys: bool = True) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = _row
        try:
            conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            conn.execute("PRAGMA busy_timeout=10000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self, foreign_keys: bool = True) -> Iterator[sqlite3.Connection]:
        with self.connect(foreign_keys) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def migrate(self) -> int:
        """Brings the schema to the latest version; returns it. Foreign keys are off during the rebuild
        (as SQLite's procedure requires: dropping a parent table with them on would cascade-delete the
        children) and checked before the commit."""
        with self.transaction(foreign_keys=False) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()["user_version"]
            for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
                if callable(step):
                    step(conn)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(number)}")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise MigrationError(f"foreign keys broken by the migration: {broken[:5]}")
            return len(MIGRATIONS)

    # -- generic helpers --------------------------------------------------------------------

    def one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        with self.connect() as conn:
            return conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return conn.execute(sql, args).fetchall()

    def insert(self, table: str, values: dict[str, Any]) -> int:
        if table in ("users", "user_sites"):
            raise ValueError("users are created with create_user")
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
        if table in ("users", "user_sites"):
            raise ValueError("users are changed with update_user, which ends their sessions")
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
        if table in ("users", "user_sites"):
            raise ValueError("users are deleted with delete_user")
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount > 0

    # -- users --------------------------------------------------------------------------------

    @staticmethod
    def _check_sites(conn: sqlite3.Connection, sites: Iterable[int]) -> list[int]:
        wanted = sorted(set(sites))
        if any(not isinstance(s, int) or isinstance(s, bool) or not 0 < s < 2**63 for s in wanted):
            raise UnknownSites(s for s in wanted if isinstance(s, int))
        known = {
            row["id"]
            for row in conn.execute(
                f"SELECT id FROM sites WHERE id IN ({', '.join('?' for _ in wanted)})", wanted
            )
        }
        if set(wanted) - known:
            raise UnknownSites(set(wanted) - known)
        return wanted

    @staticmethod
    def _with_sites(conn: sqlite3.Connection, user: dict[str, Any] | None) -> dict[str, Any] | None:
        if user is None:
            return None
        if user["all_sites"]:
            user["sites"] = None
        else:
            rows = conn.execute(
                "SELECT site_id FROM user_sites WHERE user_id = ? ORDER BY site_id", (user["id"],)
            )
            user["sites"] = [r["site_id"] for r in rows]
        return user

    def create_user(
        self, username: str, password_hash: str, role: str, sites: list[int] | None = None
    ) -> int:
        """A new user (`sites` None = every site); raises Conflict (name taken) or UnknownSites."""
        try:
            with self.transaction() as conn:
                granted = [] if sites is None else self._check_sites(conn, sites)
                cur = conn.execute(
                    "INSERT INTO users (username, password_hash, role, all_sites, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (username, password_hash, role, int(sites is None), time.time()),
                )
                user_id = int(cur.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO user_sites (user_id, site_id) VALUES (?, ?)", [(user_id, s) for s in granted]
                )
                return user_id
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        sites: list[int] | None | Keep = KEEP,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> bool:
        """Changes a user and ends its sessions (generation raised, refresh tokens deleted) in one
        transaction; a new password also deletes its API tokens. False when the user does not exist;
        raises UnknownSites, or LastAdmin (nothing changed)."""
        with self.transaction() as conn:
            if conn.execute("SELECT id FROM users WHERE id = ?", (user_id,)).fetchone() is None:
                return False
            roots = self._root_admins(conn)
            if role is not None:
                conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))
            if disabled is not None:
                conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))
            if password_hash is not None:
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
                conn.execute("DELETE FROM api_tokens WHERE user_id = ?", (user_id,))
            if not isinstance(sites, Keep):
                granted = [] if sites is None else self._check_sites(conn, sites)
                conn.execute("UPDATE users SET all_sites = ? WHERE id = ?", (int(sites is None), user_id))
                conn.execute("DELETE FROM user_sites WHERE user_id = ?", (user_id,))
                conn.executemany(
                    "INSERT INTO user_sites (user_id, site_id) VALUES (?, ?)", [(user_id, s) for s in granted]
                )
            if roots and not self._root_admins(conn):
                raise LastAdmin("this is the last active admin of all sites")
            self._end_sessions(conn, user_id)
            return True

    @staticmethod
    def _root_admins(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) AS n FROM users WHERE role = 'admin' AND all_sites = 1 AND disabled = 0"
        ).fetchone()
        return int(row["n"])

    def delete_user(self, user_id: int) -> bool:
        """Deletes the user, its grants, refresh and API tokens; raises LastAdmin (nothing deleted)."""
        with self.transaction() as conn:
            roots = self._root_admins(conn)
            gone = conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0
            if roots and not self._root_admins(conn):
                raise LastAdmin("this is the last active admin of all sites")
            return gone

    @staticmethod
    def _end_sessions(conn: sqlite3.Connection, user_id: int) -> None:
        conn.execute("UPDATE users SET generation = generation + 1 WHERE id = ?", (user_id,))
        conn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))

    def end_sessions(self, user_id: int) -> None:
        """Every access and refresh token of the user stops working (API tokens are kept)."""
        with self.transaction() as conn:
            self._end_sessions(conn, user_id)

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
            return self._with_sites(conn, row)

    def user(self, user_id: int) -> dict[str, Any] | None:
        with self.connect() as conn:
            return self._with_sites(
                conn, conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            )

    def users(self) -> list[dict[str, Any]]:
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
            grants: dict[int, list[int]] = {}
            for g in conn.execute("SELECT user_id, site_id FROM user_sites ORDER BY user_id, site_id"):
                grants.setdefault(g["user_id"], []).append(g["site_id"])
        for row in rows:
            row["sites"] = None if row["all_sites"] else grants.get(row["id"], [])
        return rows

    # -- sites --------------------------------------------------------------------------------

    def site(self, site_id: int) -> dict[str, Any] | None:
        return self.one("SELECT * FROM sites WHERE id = ?", site_id)

    def sites(self) -> list[dict[str, Any]]:
        return self.all("SELECT * FROM sites ORDER BY id")

    def unknown_sites(self, ids: Iterable[int]) -> list[int]:
        """The ids among `ids` that name no site."""
        with self.connect() as conn:
            try:
                self._check_sites(conn, ids)
            except UnknownSites as exc:
                return exc.ids
        return []
