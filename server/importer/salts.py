"""The daily salts of one import: its own, never the live ones.

The live salts (`pixel.server.enrich.iphash.DailySalt`) exist for today and yesterday only and are deleted
after: an old day's salt is gone for good, by design, so an import cannot recompute the ids the live
pipeline gave that day, and must not recreate a salt file for a past day. An import therefore keys its IP
hashes and cookieless visitor ids with a random salt per UTC day of its own, held in memory and in the
import's checkpoint file (0600) only while the import is unfinished, so a resumed import continues with the
same ids; the checkpoint drops them when the import completes. Consequences: within an imported day,
visitors and sessions are counted as the live pipeline counts them; an imported visitor never matches a
live one (they are days apart by the overlap rule anyway), and once the import is done nobody can recompute
its hashes.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pixel.server.enrich.iphash import DailySalt


class ImportSalt(DailySalt):
    def __init__(self, keys: dict[str, str] | None = None) -> None:
        super().__init__(Path("/nonexistent-import-salts"))  # never touched: keys come from _key_for_day
        self.keys: dict[str, str] = dict(keys or {})  # UTC day -> hex key

    def _key_for_day(self, received_ms: int) -> bytes:
        import datetime as dt

        day = dt.datetime.fromtimestamp(received_ms / 1000, dt.UTC).date().isoformat()
        key = self.keys.get(day)
        if key is None:
            key = self.keys[day] = secrets.token_hex(32)
        return bytes.fromhex(key)
