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
- Migrations are numbered steps (SQL scripts or functions, in `metaschema.py`) recorded in
  `PRAGMA user_version`; each runs in one transaction with foreign keys off (SQLite's procedure for
  rebuilding a table) and is committed only if `PRAGMA foreign_key_check` finds nothing wrong.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixel.server.api.metaschema import MIGRATIONS, V1_SCHEMA
from pixel.server.errors import PixelError

# The version-1 schema, importable here as before (tests build a version-1 database from it).
_V1 = V1_SCHEMA

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


@dataclass(frozen=True, slots=True)
class Bound:
    """At most `limit` rows of a table may share the values of `match` (column -> value, None for NULL): `insert(bound=...)`
    counts them and inserts in one write transaction, so two writers racing cannot both pass the last place.
    `what` and `holder` name them for a person ("goals", "a site")."""

    what: str
    holder: str
    limit: int
    match: dict[str, Any]


class LimitReached(PixelError, ValueError):
    """The insert would pass its `Bound`; nothing was written."""

    def __init__(self, bound: Bound) -> None:
        self.bound = bound
        super().__init__(
            f"{bound.holder} holds at most {bound.limit} {bound.what}; delete one before adding another"
        )


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

    def insert(self, table: str, values: dict[str, Any], bound: Bound | None = None) -> int:
        """The new row's id; with `bound`, raises `LimitReached` (nothing written) when the rows it counts are
        already at its limit."""
        if table in ("users", "user_sites"):
            raise ValueError("users are created with create_user")
        values = _encode(values)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            with self.transaction() as conn:
                if bound is not None:
                    where = " AND ".join(
                        f"{column} IS NULL" if value is None else f"{column} = ?"
                        for column, value in bound.match.items()
                    )
                    args = tuple(value for value in bound.match.values() if value is not None)
                    held = conn.execute(
                        f"SELECT count(*) AS held FROM {table} WHERE {where or '1'}", args
                    ).fetchone()["held"]
                    if held >= bound.limit:
                        raise LimitReached(bound)
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
