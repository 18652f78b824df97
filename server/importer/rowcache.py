"""Rows of the import core made once per distinct page, not once per line: `normalize` is the same function of
the same event fields for every line that asks for the same page.

For an event that has no params and no visitor or session id (every access-log line), what `normalize` stores
is a function of the event name, the page URL, the referrer and the title (the site is the processor's), and of
three per-line values: the line's time (`timestamp` and `received_at`, both the line's time: an import passes the
line's time as the receive time, so the clamp to it never moves it) and the event id. `RowTemplates.row` keeps
the first row made for each distinct (name, URL, referrer, title) (or the reason it could not be stored) and
gives a copy with those per-line values set; the copy's column order is the template's, which is `normalize`'s.
A row's `props` is a new empty dict each time (the enrichment may write into it). The cache is bounded in
templates (`MAX_TEMPLATES`) and in the characters of their keys (`MAX_CHARS`: a log of long distinct URLs): when
full it starts over, which costs time, never a different row.
"""

from __future__ import annotations

from typing import Any

from pixel.server.shipper.normalize import BadEvent, normalize

MAX_TEMPLATES = 50_000
MAX_CHARS = 32_000_000


class RowTemplates:
    def __init__(self, limit: int = MAX_TEMPLATES, max_chars: int | None = None) -> None:
        self.limit = limit
        self.max_chars = MAX_CHARS if max_chars is None else max_chars
        self._chars = 0
        self._made: dict[tuple[str, str, str, str], dict[str, Any] | str] = {}

    def row(
        self,
        event: dict[str, Any],
        name: str,
        url: str,
        referrer: str,
        title: str,
        ts: int,
        event_id: str,
    ) -> dict[str, Any] | str:
        """`normalize(event, ts, min_ms=0, ...)` for `event` (its fields `name`, `url`, `referrer`, `title`,
        `ts`, `event_id`, no params, no ids), or the skip reason `not storable (...)` where it raises."""
        key = (name, url, referrer, title)
        made = self._made.get(key)
        if made is None:
            try:
                fresh = normalize(event, ts, min_ms=0, segment="", offset=0, index=0)
            except BadEvent as exc:
                made = f"not storable ({exc})"
            else:
                made = {**fresh, "props": {}}
            chars = len(name) + len(url) + len(referrer) + len(title)
            if len(self._made) >= self.limit or self._chars + chars > self.max_chars:
                self._made.clear()
                self._chars = 0
            self._made[key] = made
            self._chars += chars
            if not isinstance(made, str):
                return fresh
        if isinstance(made, str):
            return made
        row = made.copy()
        row["timestamp"] = row["received_at"] = ts / 1000
        row["event_id"] = event_id
        row["props"] = {}
        return row
