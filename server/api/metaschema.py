"""The metadata database's schema versions and the steps that migrate one to the next (`MIGRATIONS`).

A step is an SQL script or a function of a connection; `MetaDB.migrate` (`meta.py`) runs the steps past the
database's `PRAGMA user_version`, each in one transaction with foreign keys off, and commits only when
`PRAGMA foreign_key_check` finds nothing broken. Steps are only ever appended: a released step never changes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

V1_SCHEMA = (
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
V2_TABLES: dict[str, str] = {
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
V2_COPIED = {
    "users": "id, username, password_hash, role, disabled, created_at",
    "sites": "id, domain, name, timezone, allowed_origins, honour_dnt, honour_gpc, excluded_paths, "
    "excluded_ips, retention_days, created_at",
    "api_tokens": "id, user_id, name, hash, prefix, created_at, last_used_at",
    "goals": "id, site_id, name, kind, page_pattern, event_name, prop_key, prop_value",
    "dashboards": "id, site_id, name, widgets, created_at, updated_at",
}


def v2_ids_never_reused(conn: sqlite3.Connection) -> None:
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
    for ddl in V2_TABLES.values():
        conn.execute(ddl.format(x="_v2"))
    for table, columns in V2_COPIED.items():
        conn.execute(f"INSERT INTO {table}_v2 ({columns}) SELECT {columns} FROM {table}")
    conn.executemany("UPDATE users_v2 SET all_sites = 0 WHERE id = ?", [(u,) for u in sorted(limited)])
    conn.executemany("INSERT OR IGNORE INTO user_sites_v2 (user_id, site_id) VALUES (?, ?)", grants)
    for table in ("refresh_tokens", "api_tokens", "goals", "dashboards", "users", "sites"):
        conn.execute(f"DROP TABLE {table}")
    for table in V2_TABLES:
        conn.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")
    conn.execute("CREATE INDEX user_sites_by_site ON user_sites (site_id)")
    conn.execute("CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id)")
    conn.execute("CREATE INDEX api_tokens_by_user ON api_tokens (user_id)")
    conn.execute("CREATE INDEX goals_by_site ON goals (site_id)")
    conn.execute("CREATE INDEX dashboards_by_site ON dashboards (site_id)")


# Schema version 3: share links (`server/api/share_links.py`). Only a keyed hash of a link's token is stored;
# `filters`, `periods` and `embed_origins` are JSON lists; a revoked link keeps its row (`revoked_at`).
V3_SHARE_LINKS = """
    CREATE TABLE share_links (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        password_hash TEXT,
        filters TEXT NOT NULL DEFAULT '[]',
        periods TEXT NOT NULL,
        embed_origins TEXT NOT NULL DEFAULT '[]',
        expires_at REAL,
        revoked_at REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX share_links_by_site ON share_links (site_id);
"""

# Saved segments and annotations (`server/api/routers/segments.py`, `annotations.py`, `server/annotations/`).
# A segment's `filters` is a JSON list of filter triples; `shared` = 0 means only its owner sees it.
# An annotation with `site_id` NULL is stack-wide (an upgrade, a restore, a GeoIP update...) and shown on every
# site; `auto_key` is an automatic annotation's idempotency key (UNIQUE: each is written once); `details` is
# JSON (what changed). `auto_state` holds what the automatic writers last observed (a version, a fingerprint).
SEGMENTS_ANNOTATIONS = """
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        filters TEXT NOT NULL DEFAULT '[]',
        shared INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX segments_by_site ON segments (site_id);
    CREATE TABLE annotations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER REFERENCES sites(id) ON DELETE CASCADE,
        starts_at REAL NOT NULL,
        ends_at REAL,
        text TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'manual',
        author_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        author TEXT NOT NULL,
        details TEXT,
        auto_key TEXT UNIQUE,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX annotations_by_site ON annotations (site_id, starts_at);
    CREATE TABLE auto_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
"""

Migration = str | Callable[[sqlite3.Connection], None]
# A site's reporting currency (ISO 4217, '' for none): the revenue report's default currency
# (`server/api/query/revenue.py`).
SITE_CURRENCY = "ALTER TABLE sites ADD COLUMN currency TEXT NOT NULL DEFAULT ''"

MIGRATIONS: tuple[Migration, ...] = (
    V1_SCHEMA,
    v2_ids_never_reused,
    V3_SHARE_LINKS,
    SEGMENTS_ANNOTATIONS,
    SITE_CURRENCY,
    # Alert channels (`server/alerts/config.py`): `secret` (webhook HMAC key, Slack URL, SMTP password) is
    # never returned by the API; `settings` is JSON (SMTP host, port, security, username, sender, recipients).
    """CREATE TABLE alert_channels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'smtp')),
        name TEXT NOT NULL,
        url TEXT NOT NULL DEFAULT '',
        secret TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL DEFAULT '{}',
        enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        created_at REAL NOT NULL,
        last_sent_at REAL,
        last_error TEXT
    )""",
    # Alert rules of the stack's health (`server/alerts/rules.py`): one row per kind (ingestion, disk,
    # certificate, backup), `settings` JSON (on/off and thresholds).
    "CREATE TABLE alert_rules (kind TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at REAL NOT NULL)",
)
