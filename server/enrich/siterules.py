"""The tracking rules a site owner sets through the API, applied by the shipper before an event is stored.

The API keeps each site's settings in the metadata database (`sites` table, server/api/meta.py): whether it
honours Do-Not-Track and Global Privacy Control, paths and IP ranges to exclude, and the origins allowed to
send its events. The shipper runs in the process that owns that database (`pixel serve`, `pixel ship`), so
it reads the table directly — read-only, again only when the file changed, at most every `interval`
seconds — and drops what a rule excludes (counted in `pixel_shipper_events_dropped_total`, never stored).

- DNT / GPC: the collector spools the request's `DNT: 1` and `Sec-GPC: 1`; a site honouring them drops
  such events (as `PIXEL_DNT_SITES` does for the sites it names).
- Excluded paths: shell-style globs on the event's path (`/admin/*`; `*` also matches `/`).
- Excluded IPs: addresses or CIDR ranges, compared with the client address before it is hashed.
- Allowed origins: when the list is not empty (and not `*`), an event whose request came from a page on
  another host (its Origin, else Referer) is dropped; one without either (a server-side sender) is kept.
- Unregistered sites (`PIXEL_UNREGISTERED_SITES`, see `drops_unregistered`): an event whose site is no
  registered domain is dropped. A miss re-checks the database file at once (a stat; it is re-read only when
  it changed), so an event received after its site was registered is never dropped for being unregistered.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import json
import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SiteRule:
    honour_dnt: bool = False
    honour_gpc: bool = False
    excluded_path: re.Pattern[str] | None = None  # the site's globs as one pattern
    excluded_networks: tuple[Network, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()  # empty: any origin

    def drop_reason(self, path: str, ip: str, origin_host: str, dnt: bool, gpc: bool) -> str:
        """Why the event must not be stored, or "" to keep it."""
        if dnt and self.honour_dnt:
            return "dnt"
        if gpc and self.honour_gpc:
            return "gpc"
        if self.excluded_path is not None and self.excluded_path.match(path or "/"):
            return "excluded path"
        if self.excluded_networks and _in_networks(ip, self.excluded_networks):
            return "excluded ip"
        if self.allowed_hosts and origin_host and origin_host.lower() not in self.allowed_hosts:
            return "origin not allowed"
        return ""


@functools.lru_cache(maxsize=65_536)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def _in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    address = _address(ip)
    return address is not None and any(address in net for net in networks)


def _origin_host(origin: str) -> str:
    parts = urlsplit(origin)
    return (parts.netloc or parts.path).lower()


def rule_from_row(
    honour_dnt: object, honour_gpc: object, excluded_paths: str, excluded_ips: str, allowed_origins: str
) -> SiteRule:
    """A rule from one `sites` row as stored (JSON text lists, integer flags)."""
    paths = [p for p in json.loads(excluded_paths or "[]") if isinstance(p, str) and p]
    pattern = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in paths)) if paths else None
    networks = []
    for item in json.loads(excluded_ips or "[]"):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except (TypeError, ValueError):
            log.warning("site rules: ignoring %r in excluded_ips (not an address or range)", item)
    origins = [o for o in json.loads(allowed_origins or "[]") if isinstance(o, str)]
    hosts = frozenset() if "*" in origins else frozenset(_origin_host(o) for o in origins)
    return SiteRule(bool(honour_dnt), bool(honour_gpc), pattern, tuple(networks), hosts)


def drops_unregistered(unregistered_sites: str, host: str) -> bool:
    """Whether events for unregistered sites are dropped: `drop`, or `auto` with a collector that listens on an
    address other machines can reach (anything but a loopback address or `localhost`)."""
    if unregistered_sites != "auto":
        return unregistered_sites == "drop"
    if host.lower() in ("localhost", "localhost."):
        return False
    address = _address(host.strip("[]"))
    return address is None or not address.is_loopback


class SiteRules:
    """The rules of every site in the metadata database at `path`, by domain; re-read when the file changes."""

    def __init__(self, path: Path, interval: float = 2.0) -> None:
        self.path = path
        self.interval = interval
        self._rules: dict[str, SiteRule] = {}
        self._domains: frozenset[str] = frozenset()  # every registered site, with rules or not
        self._checked = float("-inf")
        self._stamp: tuple[tuple[int, int], ...] = ()

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self._refresh()

    def get(self, site: str) -> SiteRule | None:
        self._maybe_refresh()
        if not self._rules:
            return None
        return self._rules.get(site) or self._rules.get(site.lower())

    def registered(self, site: str) -> bool:
        """Whether `site` is a registered domain (case-insensitive); a miss first re-checks the database."""
        self._maybe_refresh()  # a deleted site is seen within `interval`
        site = site.lower()
        if site in self._domains:
            return True
        self._checked = time.monotonic()
        self._refresh()
        return site in self._domains

    @property
    def domains(self) -> frozenset[str]:
        return self._domains

    def _refresh(self) -> None:
        stamp = tuple(_stat(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal"))
        if stamp == self._stamp:
            return
        if stamp[0] == (-1, -1):  # no metadata database (no API here): no rules, no registered site
            self._rules, self._domains, self._stamp = {}, frozenset(), stamp
            return
        rows = read_sites(
            self.path, "domain, honour_dnt, honour_gpc, excluded_paths, excluded_ips, allowed_origins"
        )
        if rows is None:  # e.g. no sites table yet: keep the rules we have, try again later
            return
        rules = {}
        for domain, *fields in rows:
            try:
                rules[domain.lower()] = rule_from_row(*fields)
            except (ValueError, re.error) as exc:
                log.warning("site rules: ignoring the rules of %s: %s", domain, exc)
        domains = frozenset(domain.lower() for domain, *_ in rows)
        self._rules, self._domains, self._stamp = rules, domains, stamp


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def read_sites(path: Path, columns: str, where: str = "") -> list[tuple[Any, ...]] | None:
    """Rows of the API's `sites` table, read-only (the file is never created here); None when it cannot be read
    (missing, or no sites table yet), which is logged."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(f"SELECT {columns} FROM sites {where}").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("site rules: cannot read %s: %s", path, exc)
        return None


def site_retention_days(path: Path) -> dict[str, int]:
    """{domain: days} of the sites that keep their events for a limited time (from the API's `sites` table;
    empty when there is no metadata database)."""
    rows = read_sites(path, "domain, retention_days", "WHERE retention_days > 0") or []
    return {domain.lower(): int(days) for domain, days in rows}
