"""Automatic annotations in the metadata DB: each written once, keyed by what caused it.

`add_auto` inserts with `INSERT ... ON CONFLICT(auto_key) DO NOTHING`, so two processes (or a retried check)
that see the same cause write one annotation. `rule_changes` names what a site-rules change did, field by field
(lists as added / removed items), and `note_site_rules` writes it as the site's annotation with its author.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the API package imports this one (routers/sites.py)
    from pixel.server.api.meta import MetaDB


AUTHOR = "pixel"  # the author of every automatic annotation
KINDS = (
    "manual",
    "upgrade",
    "restore",
    "site_rules",
    "geoip",
    "tracker",
    "ingestion_gap",
    "shipper_degraded",
)
RULE_FIELDS = (
    "honour_dnt",
    "honour_gpc",
    "excluded_paths",
    "excluded_ips",
    "allowed_origins",
    "retention_days",
)
_LABELS = {
    "honour_dnt": "Do Not Track honoured",
    "honour_gpc": "Global Privacy Control honoured",
    "excluded_paths": "excluded paths",
    "excluded_ips": "excluded IPs",
    "allowed_origins": "allowed origins",
    "retention_days": "retention (days, 0 = forever)",
}


def add_auto(
    meta: MetaDB,
    *,
    kind: str,
    key: str,
    text: str,
    starts_at: float,
    now: float,
    ends_at: float | None = None,
    site_id: int | None = None,
    details: dict[str, Any] | None = None,
    author: str = AUTHOR,
    author_id: int | None = None,
) -> int | None:
    """Write the annotation unless one with `key` exists; its id when written, None when it already was
    (or its site is gone)."""
    if kind not in KINDS or kind == "manual":
        raise ValueError(f"not an automatic annotation kind: {kind!r}")
    with meta.transaction() as conn:
        if (
            site_id is not None
            and conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None
        ):
            return None
        cur = conn.execute(
            "INSERT INTO annotations (site_id, starts_at, ends_at, text, kind, author_id, author, details,"
            " auto_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(auto_key) DO NOTHING",
            (
                site_id,
                starts_at,
                ends_at,
                text,
                kind,
                author_id,
                author,
                json.dumps(details or {}, sort_keys=True),
                key,
                now,
                now,
            ),
        )
        return int(cur.lastrowid or 0) if cur.rowcount else None


def read_state(meta: MetaDB, key: str) -> tuple[Any, float] | None:
    """(what a writer recorded under `key`, decoded JSON; when it did), or None."""
    row = meta.one("SELECT value, updated_at FROM auto_state WHERE key = ?", key)
    return None if row is None else (json.loads(row["value"]), float(row["updated_at"]))


def clear_state(meta: MetaDB, key: str) -> None:
    with meta.transaction() as conn:
        conn.execute("DELETE FROM auto_state WHERE key = ?", (key,))


def write_state(meta: MetaDB, key: str, value: Any, now: float) -> None:
    with meta.transaction() as conn:
        conn.execute(
            "INSERT INTO auto_state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, json.dumps(value, sort_keys=True), now),
        )


def rule_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: change} for each rule field that differs: lists as {"added": [...], "removed": [...]},
    other values as {"from": old, "to": new}. A reordered list is no change."""
    out: dict[str, dict[str, Any]] = {}
    for field in RULE_FIELDS:
        old, new = before.get(field), after.get(field)
        if isinstance(old, list) or isinstance(new, list):
            old_items, new_items = list(old or []), list(new or [])
            added = [x for x in new_items if x not in old_items]
            removed = [x for x in old_items if x not in new_items]
            if added or removed:
                out[field] = {"added": added, "removed": removed}
        elif old != new:
            out[field] = {"from": old, "to": new}
    return out


def describe_rules(changes: dict[str, dict[str, Any]]) -> str:
    parts = []
    for field, change in changes.items():
        label = _LABELS[field]
        if "added" in change:
            bits = [f"+{x}" for x in change["added"]] + [f"-{x}" for x in change["removed"]]
            parts.append(f"{label}: {', '.join(bits)}")
        else:
            parts.append(f"{label}: {change['from']} → {change['to']}")
    return "Site rules changed — " + "; ".join(parts)


def note_site_rules(
    meta: MetaDB,
    site_id: int,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    now: float,
    author: str,
    author_id: int | None,
) -> int | None:
    """The annotation of a change of the site's rules (None when no rule changed), keyed by the site, the
    moment and the change itself."""
    changes = rule_changes(before, after)
    if not changes:
        return None
    digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:16]
    key = f"site_rules:{site_id}:{now!r}:{digest}"
    return add_auto(
        meta,
        kind="site_rules",
        key=key,
        text=describe_rules(changes),
        starts_at=now,
        now=now,
        site_id=site_id,
        details=changes,
        author=author,
        author_id=author_id,
    )
