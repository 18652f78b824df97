"""An access-log line's stored row as JSON bytes, joined from parts made once per distinct page, address, user
agent and visitor of the day, instead of a row dict enriched step by step.

What the live enrichment stores for an access-log line (no params, no ids of its own, no device signals) is a
function of these besides the line's time and event id:
- the page: the event name, URL, referrer and title give the row template (`rowcache`), then the privacy step
  (PII parameters, e-mail addresses) and the sources step (source, UTMs, channel) rewrite only its own columns;
- the address on its UTC day: the geo columns (kept across days) and the day's keyed address hash;
- the user agent: the device columns and the bot verdict;
- the visitor of the day (site, address, user agent, the day's salt): the server-side visitor id;
- the session: the identity state's session of that visitor at the line's time (`IdentityResolver.session_of`,
  the same state and the same pruning schedule as the live `resolve`).
So `PartRows.row` keeps each part as ready JSON members and writes a row as `{` per-line members, page, address
and agent members `}`: the same columns with the same values as the row dict (JSONEachRow reads members by
name; tests compare both paths on generated logs, in order and shuffled, with and without the site's rules).

It answers None, and the caller takes the line through the live enrichment as before, whenever the parts would
not be the whole story:
- the user agent is a bot's (the live path also moves the identity state for it, then the line is skipped);
- the line's address could be written in one of the row's texts (the address scrub would change the row): every
  spelling of an address lies in one run of `privacy._RUN_CHARS` holding at least two separators, so a part's
  texts without such a run (checked once per part, `_suspect`) are clean for every address; the others are
  checked with the scrub's own test for the line's address (per address for its geo texts, per line for the
  page's and the agent's); an address the scrub matches literally (not an IP address) always goes the live way;
- the site's own rules exclude the page's path or the address's network (the live path drops the line and
  counts why); the rules are read again once per batch (`refresh`), and a change starts the parts over;
- making a part raised (the live path then does what `Enricher.enrich` does with an error).
`usable` is False, and every line goes the live way, for a site the appliance drops as unregistered.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.enrich.privacy import _SEP, IpSpelling, _scrub, ip_spelling
from pixel.server.enrich.siterules import SiteRule, _in_networks
from pixel.server.importer.rowcache import RowTemplates

# Every column the visitor's parts may write (network: `GeoLocator.columns` and the keyed hash; device:
# `Enricher._ua_columns`); checked against each part made; the page's part must hold none of them.
NETWORK_COLUMNS = frozenset({"country", "region", "city", "latitude", "longitude", "ip_hash"})
DEVICE_COLUMNS = frozenset(
    {"browser", "browser_version", "os", "os_version", "device_type", "device_brand", "device_model"}
)
VISITOR_COLUMNS = NETWORK_COLUMNS | DEVICE_COLUMNS | {"is_bot"}
# Each kind of part is kept up to MAX_PARTS parts and MAX_CHARS characters of keys and members (a hostile log of
# long distinct URLs or agents: lines are up to MAX_LINE long); a full cache starts over (time, never a row).
MAX_PARTS = 50_000
MAX_CHARS = 32_000_000
_RUN = re.compile(r"[0-9a-f:%._-]+")


def _suspect(text: str) -> bool:
    """True when `text` might hold a spelling of some address (a run of address characters with two
    separators or more), or is not ASCII (its lower-casing may move characters: left to the scrub itself)."""
    if not text.isascii():
        return True
    for run in _RUN.findall(text.lower()):
        if len(_SEP.findall(run)) >= 2:
            return True
    return False


def _members(columns: dict[str, Any]) -> bytes:
    """`columns` as JSON object members, each after a comma (`,"a":1,"b":"x"`), or b''."""
    data = orjson.dumps(columns)
    return b"," + data[1:-1] if len(data) > 2 else b""


class _Page:
    __slots__ = ("members", "suspect")

    def __init__(self, members: bytes, suspect: tuple[str, ...]) -> None:
        self.members = members
        self.suspect = suspect


class _Network:
    """The columns of an address on a day (geo, keyed hash), its spelling for the scrub, and whether its lines
    go the live way (a literal address, or a geo text holding it)."""

    __slots__ = ("members", "spelling", "live")

    def __init__(self, members: bytes, spelling: IpSpelling | None, live: bool) -> None:
        self.members = members
        self.spelling = spelling  # None: no address to scrub
        self.live = live


class _Device:
    """The columns of a user agent, whether it is a bot's, and its texts that might hold an address."""

    __slots__ = ("members", "bot", "suspect")

    def __init__(self, members: bytes, bot: bool, suspect: tuple[str, ...]) -> None:
        self.members = members
        self.bot = bot
        self.suspect = suspect


_LIVE = _Page(b"", ())  # a page whose lines go the live way


class _Kept(dict[Any, Any]):
    """Parts of one kind, bounded in number and in characters (`MAX_PARTS`, `MAX_CHARS`)."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def put(self, key: Any, value: Any, chars: int) -> Any:
        """Keep `value` under `key` (`chars`: its key's and members' length), starting over when full."""
        if len(self) >= MAX_PARTS or self.chars + chars > MAX_CHARS:
            self.clear()
            self.chars = 0
        self[key] = value
        self.chars += chars
        return value


class PartRows:
    def __init__(self, enricher: Enricher, templates: RowTemplates, site: str, import_id: str) -> None:
        self.enricher = enricher
        self.templates = templates
        self.site = site
        self.import_id = import_id
        self._pages = _Kept()  # (name, url, referrer, title) -> _Page, a reason, or _LIVE
        self._places = _Kept()  # address -> its geo columns (no hash), across days
        self._networks = _Kept()  # (address, day) -> its _Network
        self._devices = _Kept()  # agent -> _Device
        self._visitors = _Kept()  # (address, agent, day) -> server visitor id
        self._generation = enricher.geo.generation
        # The site's own rules: a page whose path they exclude, an address in a network they exclude, go the
        # live way (which drops the line and counts why).
        self.rule: SiteRule | None = enricher.site_rules.get(site)

    def usable(self) -> bool:
        """False when every line of this site goes the live way: the appliance drops its events (unregistered)."""
        enricher = self.enricher
        return not (enricher.drop_unregistered and not enricher.site_rules.registered(self.site))

    def refresh(self) -> None:
        """Read the site's rules again (the import calls it once per batch); changed, the parts start over."""
        rule = self.enricher.site_rules.get(self.site)
        if rule != self.rule:
            self.rule = rule
            self._pages.clear()
            self._places.clear()
            self._networks.clear()

    def row(
        self, name: str, url: str, referrer: str, title: str, ts: int, event_id: str, ip: str, agent: str
    ) -> bytes | str | None:
        """The line's row as JSON bytes, the reason it is not storable, or None: take it the live way."""
        key = (name, url, referrer, title)
        page = self._pages.get(key)
        if page is None:
            page = self._page(key, ts, event_id)
        if isinstance(page, str):
            return page
        if page is _LIVE:
            return None
        day = ts - ts % 86_400_000
        network = self._networks.get((ip, day))
        if network is None:
            network = self._network(ip, day)
            if network is None:
                return None
        device = self._devices.get(agent)
        if device is None:
            device = self._device(agent)
            if device is None:
                return None
        if network.live or device.bot:
            return None
        spelling = network.spelling
        if spelling is not None:
            for texts in (page.suspect, device.suspect):
                for text in texts:
                    if _scrub(text, spelling) is not text:
                        return None
        visitor = self._visitors.get((ip, agent, day))
        if visitor is None:
            visitor = self._visitors.put(
                (ip, agent, day),
                self.enricher.identity.server_visitor_id(self.site, ip, agent, ts),
                len(ip) + len(agent),
            )
        session = self.enricher.identity.session_of(self.site, visitor, ts)
        t = orjson.dumps(ts / 1000)
        return b"".join(
            (
                b'{"timestamp":',
                t,
                b',"received_at":',
                t,
                f',"event_id":"{event_id}","visitor_id":"{visitor}","session_id":"{session}"'.encode(),
                page.members,
                network.members,
                device.members,
                b"}",
            )
        )

    def _page(self, key: tuple[str, str, str, str], ts: int, event_id: str) -> _Page | str:
        """The page's part, the reason it is not storable, or `_LIVE`."""
        name, url, referrer, title = key
        event: dict[str, Any] = {
            "event_name": name,
            "ts": ts,
            "site": self.site,
            "event_id": event_id,
            "page": {"url": url, "referrer": referrer, "title": title},
        }
        made: _Page | str
        try:
            row = self.templates.row(event, name, url, referrer, title, ts, event_id)
            made = row if isinstance(row, str) else self._page_of(row, event) or _LIVE
        except Exception:  # the live path meets it again and does what the enrichment does with an error
            made = _LIVE
        size = len(name) + len(url) + len(referrer) + len(title)
        return self._pages.put(key, made, size + (len(made.members) if isinstance(made, _Page) else 0))

    def _page_of(self, row: dict[str, Any], event: dict[str, Any]) -> _Page | None:
        """The page's part: the template after the privacy and sources steps, without the per-line columns."""
        path = row.get("path") or ""  # as the site rules see it: before the privacy step
        facts = RequestFacts(int(event["ts"]), "", "", "*", "")
        enricher = self.enricher
        enricher._privacy_step(row, event, facts)
        enricher._sources_step(row, event, facts)
        row["import_id"] = self.import_id
        for column in ("timestamp", "received_at", "event_id"):  # the per-line members write them
            del row[column]
        if row.pop("visitor_id", "") or row.pop("session_id", ""):
            return None  # ids of its own: not the case this module covers
        if row.get("props") or not VISITOR_COLUMNS.isdisjoint(row):
            return None  # a column the visitor's part writes would be written twice
        rule = self.rule
        if rule is not None and rule.excluded_path is not None and rule.excluded_path.match(path or "/"):
            return None
        texts = [value for value in row.values() if type(value) is str]
        return _Page(_members(row), tuple(text for text in texts if _suspect(text)))

    def _network(self, ip: str, day: int) -> _Network | None:
        """The address's part on `day`: its geo columns and scrub verdict (kept across days, until the geo
        database changes) with the day's keyed hash."""
        enricher = self.enricher
        enricher.geo.maybe_reload()
        if enricher.geo.generation != self._generation:  # a new database: an address's geo columns change
            self._generation = enricher.geo.generation
            enricher._geo_columns.cache_clear()
            self._places.clear()
            self._networks.clear()
        where = self._places.get(ip)
        if where is None:
            try:
                spelling = ip_spelling(ip)
                columns = enricher._geo_columns(ip)
                if not NETWORK_COLUMNS.issuperset(columns) or "ip_hash" in columns:
                    return None
                live = spelling is not None and bool(spelling.literal)
                rule = self.rule
                if rule is not None and rule.excluded_networks and _in_networks(ip, rule.excluded_networks):
                    live = True
                if not live and spelling is not None:
                    texts = [value for value in columns.values() if type(value) is str and _suspect(value)]
                    live = any(_scrub(text, spelling) is not text for text in texts)
            except Exception:
                return None
            members = _members(columns)
            where = self._places.put(ip, _Network(members, spelling, live), len(ip) + len(members))
        try:
            hashed = enricher.salt.hash_ip(ip, day)
        except Exception:
            return None
        members = where.members + f',"ip_hash":"{hashed}"'.encode()
        network: _Network = self._networks.put(
            (ip, day), _Network(members, where.spelling, where.live), len(ip) + len(members)
        )
        return network

    def _device(self, agent: str) -> _Device | None:
        try:
            columns, ua_bot = self.enricher._ua_columns(agent)
            if not DEVICE_COLUMNS.issuperset(columns):
                return None
            texts = [value for value in columns.values() if type(value) is str and _suspect(value)]
        except Exception:
            return None
        members = _members(columns)
        device: _Device = self._devices.put(
            agent, _Device(members, bool(ua_bot), tuple(texts)), len(agent) + len(members)
        )
        return device
