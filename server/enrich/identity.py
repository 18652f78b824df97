"""Visitor and session identity, computed by the shipper when the tracker sent none.

- visitor_id: the tracker's device-signal id when present; otherwise a cookieless server-side id, a keyed hash
  of (daily salt, site, IP, user agent) — so, as with Plausible, uniques are per day and the id cannot be
  recomputed once the day's salt is deleted.
- Cross-domain linking: events on sites of the same owner (`settings.link_groups`; none set = every site of this
  appliance has one owner) that share the device signals (UA, screen, language, time zone, pixel ratio) *and*
  the IP hash within `link_window` (15 minutes, sliding) get the visitor id first seen for those signals. Without
  device signals (no-JS hits) nothing is linked, and the same site never merges two different tracker ids, so two
  devices behind one IP stay apart unless every signal matches on two different sites within the window.
- session_id: a new session after `session_timeout` (30 minutes) without an event from that visitor on that site.

All state is in bounded LRU maps (entries also expire by time), kept in the shipper process across batches and
saved to the data folder at shutdown (`save`/`load`), so a restart does not split sessions. Times are server
receive times, never the client's clock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from pixel.server.enrich.iphash import DailySalt

log = logging.getLogger(__name__)


class _ExpiringLRU(OrderedDict):
    """key -> [value, site, last_ms]; least recently touched first; bounded in size and age."""

    def __init__(self, max_entries: int, ttl_ms: int) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.ttl_ms = ttl_ms

    def touch(self, key: Any, entry: list[Any]) -> None:
        self[key] = entry
        self.move_to_end(key)

    def prune(self, now_ms: int) -> None:
        horizon = now_ms - self.ttl_ms
        while self:
            key, entry = next(iter(self.items()))
            if len(self) > self.max_entries or entry[-1] < horizon:
                del self[key]
            else:
                break


def device_signals(event: dict[str, Any], user_agent: str) -> str | None:
    """The signals two sites of one owner both see for one device; None when the event has too few."""
    device = event.get("device")
    if not isinstance(device, dict):
        return None
    screen = device.get("screen")
    tz = device.get("tz")
    if not screen or not tz or not user_agent:
        return None
    return f"{user_agent}\x1f{screen}\x1f{device.get('lang', '')}\x1f{tz}\x1f{device.get('dpr', '')}"


class IdentityResolver:
    def __init__(
        self,
        salt: DailySalt,
        session_timeout: float = 1800.0,
        link_window: float = 900.0,
        link_groups: tuple[str, ...] = (),
        max_entries: int = 500_000,
    ) -> None:
        self.salt = salt
        self.session_timeout_ms = int(session_timeout * 1000)
        self.link_window_ms = int(link_window * 1000)
        self.owner_of = self._owners(link_groups)
        self.sessions = _ExpiringLRU(max_entries, self.session_timeout_ms)
        self.links = _ExpiringLRU(max_entries, self.link_window_ms)
        # (site, tracker id) -> linked id, so a linked visitor's later events on that site keep the linked id
        self.aliases = _ExpiringLRU(max_entries, max(self.session_timeout_ms, self.link_window_ms))
        self._prune_counter = 0

    @staticmethod
    def _owners(groups: tuple[str, ...]) -> dict[str, str] | None:
        """site -> owner key; None means one owner for every site."""
        if not groups:
            return None
        owners: dict[str, str] = {}
        for i, group in enumerate(groups):
            for site in group.replace("|", " ").split():
                owners[site.lower()] = f"g{i}"
        return owners

    def server_visitor_id(self, site: str, ip: str, user_agent: str, received_ms: int) -> str:
        key = self.salt.key_for(received_ms)
        data = f"{site}\x1f{ip}\x1f{user_agent}".encode()
        return hashlib.blake2b(data, key=key, digest_size=16, person=b"pixel-visitor").hexdigest()

    def resolve(
        self,
        row: dict[str, Any],
        event: dict[str, Any],
        ip: str,
        ip_hash: str,
        user_agent: str,
        received_ms: int,
    ) -> None:
        site = row.get("site") or ""
        visitor = row.get("visitor_id") or ""
        if not visitor:
            visitor = self.server_visitor_id(site, ip, user_agent, received_ms)
        signals = device_signals(event, user_agent)
        if signals is not None:
            visitor = self._link(site, visitor, signals, ip_hash, received_ms)
        row["visitor_id"] = visitor
        if not row.get("session_id"):
            row["session_id"] = self._session(site, visitor, received_ms)
        self.counted(received_ms)

    def counted(self, received_ms: int) -> None:
        """One more event resolved: the state is pruned every 1024 events (the schedule is part of what ids
        come out when events arrive out of order, so every caller of `_session` counts through here)."""
        self._prune_counter += 1
        if self._prune_counter >= 1024:
            self.prune(received_ms)

    def session_of(self, site: str, visitor: str, received_ms: int) -> str:
        """What `resolve` gives an event of `visitor` with no session id and no device signals: its session
        id, with the state moved on exactly as `resolve` moves it (the import's rows made from parts)."""
        sid = self._session(site, visitor, received_ms)
        self.counted(received_ms)
        return sid

    def _link(self, site: str, visitor: str, signals: str, ip_hash: str, now: int) -> str:
        owners = self.owner_of
        owner = "*" if owners is None else owners.get(site.lower(), "site:" + site.lower())
        original = visitor
        alias_key = (site, original)
        alias = self.aliases.get(alias_key)
        if alias is not None and now - alias[-1] <= self.aliases.ttl_ms:
            visitor = alias[0]
            alias[-1] = max(alias[-1], now)
            self.aliases.move_to_end(alias_key)
        key = hashlib.blake2b(f"{owner}\x1f{ip_hash}\x1f{signals}".encode(), digest_size=16).digest()
        entry = self.links.get(key)
        if entry is not None and now - entry[-1] <= self.link_window_ms:
            linked, last_site = entry[0], entry[1]
            if linked != visitor and last_site != site:
                visitor = linked  # same device on another site of this owner within the window
                self.aliases.touch(alias_key, [linked, max(now, entry[-1])])
            entry[0], entry[1], entry[-1] = visitor, site, max(entry[-1], now)
            self.links.move_to_end(key)
        else:
            self.links.touch(key, [visitor, site, now])
        return visitor

    def _session(self, site: str, visitor: str, now: int) -> str:
        key = (site, visitor)
        entry = self.sessions.get(key)
        if entry is not None and abs(now - entry[-1]) <= self.session_timeout_ms:
            entry[-1] = max(entry[-1], now)
            self.sessions.move_to_end(key)
            return entry[0]
        sid = hashlib.blake2b(f"{site}\x1f{visitor}\x1f{now}".encode(), digest_size=8).hexdigest()
        self.sessions.touch(key, [sid, now])
        if len(self.sessions) > self.sessions.max_entries:
            self.sessions.prune(now)
        return sid

    # -- across restarts ---------------------------------------------------------------------

    def save(self, path: Path, now_ms: int | None = None) -> None:
        """Writes the live state (only entries not yet expired) so a restarted shipper continues sessions and
        links. Holds visitor/session ids and keyed hashes, never an IP. Atomic, owner-only."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.prune(now_ms)
        state = {
            "version": 1,
            "sessions": [
                [site, visitor, sid, last] for (site, visitor), (sid, last) in self.sessions.items()
            ],
            "links": [[key.hex(), vid, site, last] for key, (vid, site, last) in self.links.items()],
            "aliases": [
                [site, original, vid, last] for (site, original), (vid, last) in self.aliases.items()
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(state))
        os.replace(tmp, path)

    def load(self, path: Path, now_ms: int | None = None) -> None:
        """Reads what `save` wrote, dropping what expired meanwhile; a missing or unreadable file is no state."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        try:
            state = orjson.loads(path.read_bytes())
            if state.get("version") != 1:
                return
            for site, visitor, sid, last in state["sessions"]:
                if now_ms - last <= self.sessions.ttl_ms:
                    self.sessions.touch((site, visitor), [sid, last])
            for key, vid, site, last in state["links"]:
                if now_ms - last <= self.links.ttl_ms:
                    self.links.touch(bytes.fromhex(key), [vid, site, last])
            for site, original, vid, last in state["aliases"]:
                if now_ms - last <= self.aliases.ttl_ms:
                    self.aliases.touch((site, original), [vid, last])
        except FileNotFoundError:
            return
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("identity: ignoring unreadable state file %s (%s)", path, exc)

    def prune(self, now_ms: int) -> None:
        self._prune_counter = 0
        for table in (self.sessions, self.links, self.aliases):
            table.prune(now_ms)
