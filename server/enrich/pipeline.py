"""The enrichment pipeline the shipper calls for every event (see the package docstring).

`Enricher.enrich(row, event, facts)` fills the enrichment columns of `row` in place and returns True, or returns
False when the event must not be stored at all: its site is not registered (when `PIXEL_UNREGISTERED_SITES`
drops them), Do-Not-Track / Global Privacy Control on a site that honours it, or the site's own rules exclude it.
Each such drop is counted by reason in `Enricher.dropped` (`drop_samples()` gives them as metric samples).
`enrich_batch` does the same for a batch and returns the rows to keep. Everything slow is cached per distinct
value (user agent, IP, URL, referrer, campaign), so a realistic mix costs
little per event (figures in bench/README.md).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixel.server.enrich.bots import BotDetector
from pixel.server.enrich.columns import non_empty
from pixel.server.enrich.geo import GeoLocator, cdn_geo, default_db_path
from pixel.server.enrich.identity import IdentityResolver
from pixel.server.enrich.iphash import DailySalt
from pixel.server.enrich.privacy import (
    DEFAULT_PII_PARAMS,
    clean_props,
    clean_query,
    clean_url,
    clean_user_id,
    redact_emails,
    scrub_row,
)
from pixel.server.enrich.siterules import SiteRules, drops_unregistered
from pixel.server.enrich.sources import SourceClassifier, campaign
from pixel.server.enrich.useragent import UserAgentParser
from pixel.server.gcpause import gc_paused
from pixel.server.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RequestFacts:
    """Server-side facts of the request that carried an event, as the collector spooled them."""

    received_ms: int
    ip: str
    user_agent: str
    accept_language: str
    origin_host: str
    cdn_country: str = ""  # CF-IPCountry from a trusted proxy, when the operator enabled CDN geo headers
    dnt: bool = False  # `DNT: 1` request header
    gpc: bool = False  # `Sec-GPC: 1` request header
    # More CDN geo headers (lower-case name -> value, see geo.CDN_GEO_HEADERS), same trust rule as cdn_country
    cdn_geo: Mapping[str, str] | None = None


# One step of the pipeline: fills columns of the row in place; False = drop the event (only site rules drops).
Step = Callable[[dict[str, Any], dict[str, Any], RequestFacts], bool]


class Enricher:
    """Runs `steps`, a declared list of named steps, in order over each event; the first that returns False
    drops it. The order is part of the privacy guarantees, and each constraint has its reason:

    1. site rules: first, so a dropped event (unregistered site, DNT/GPC, the site's own rules) costs nothing
       more and leaves no trace: its address is never hashed, nothing of it enters a cache or the identity
       state. Path rules see the path as the site sent it, before privacy rewrites it.
    2. network columns (ip_hash, geo): before identity, which keys visitors and sessions on this ip_hash.
    3. device and bots (UA columns, is_bot): reads only the request; placed here so the row's columns come in
       the order they always have (rows are stored byte-for-byte as before).
    4. privacy (PII parameters, e-mail addresses, user id, props, an error's source URL): before sources, so the source columns and
       the sources' cache are derived from the cleaned referrer only; it reads the URL's campaign key (UTMs,
       click id) before the URL is cleaned and hands it on.
    5. sources (source, UTMs, channel): after privacy, as said; before the address scrub, because its derived
       columns can echo the address too (a referrer `http://<ip>/`, a `utm_source` holding it).
    6. address scrub (`scrub_row`): after every step that writes text into the row, so no column keeps the
       visitor's own address; before identity, so an echoed address never reaches the identity state, which
       is saved to the data folder (identity.json).
    7. identity (visitor and session ids, cross-domain links): last, on the finished row; its ids are hashes.

    Steps pass nothing but the row, except two values kept on the instance for the event under way
    (`_ip_hash`, `_campaign_key`); `enrich` is not re-entrant (one shipper thread calls it).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.salt = DailySalt(settings.state_dir / "salts")
        geoip_db = settings.geoip_db
        path = default_db_path(settings.data_dir) if not geoip_db else geoip_db
        self.geo = GeoLocator(Path(path))
        self.cdn_geo = bool(settings.cdn_geo_headers)
        self.ua = UserAgentParser()
        self.bots = BotDetector()
        self.sources = SourceClassifier()
        self.pii = frozenset(p.lower() for p in (*DEFAULT_PII_PARAMS, *settings.pii_params))
        dnt_sites = tuple(s.lower() for s in settings.dnt_sites)
        self.dnt_all = "*" in dnt_sites
        self.dnt_sites = frozenset(dnt_sites)
        self.site_rules = SiteRules(settings.meta_db_path)
        self.drop_unregistered = drops_unregistered(settings.unregistered_sites, settings.host)
        self.dropped: Counter[str] = Counter()  # events not stored, by reason
        self._unregistered_seen: set[str] = set()  # named in the log (a bounded number of them)
        if self.drop_unregistered:
            log.info(
                "events for sites not registered through the API are dropped (PIXEL_UNREGISTERED_SITES=%s)",
                settings.unregistered_sites,
            )
        # Per-distinct-value caches of whole column groups: one dict.update per event instead of many stores.
        self._clean_url = functools.lru_cache(maxsize=50_000)(self._clean_url_uncached)
        self._ua_columns = functools.lru_cache(maxsize=20_000)(self._ua_columns_uncached)
        self._ip_columns = functools.lru_cache(maxsize=65_536)(self._ip_columns_uncached)
        # An address's geo columns do not depend on the day: kept across days, until the database changes
        self._geo_columns = functools.lru_cache(maxsize=65_536)(self._geo_columns_uncached)
        self._day_start = self._day_end = 0
        self._geo_generation = -1
        self.identity = IdentityResolver(
            self.salt,
            session_timeout=float(settings.session_timeout),
            link_window=float(settings.link_window),
            link_groups=tuple(settings.link_groups),
        )
        self.identity.load(self.identity_path)
        self.errors = 0
        # Handed from one step to a later one, for the event under way (`enrich` is not re-entrant): the network
        # step's ip_hash (as computed: the scrub must not change what identity keys on) and the privacy step's
        # campaign key (the URL's UTMs and click id, read before the URL is cleaned).
        self._ip_hash = ""
        self._campaign_key: tuple[str, ...] = ()
        self.steps: tuple[tuple[str, Step], ...] = (
            ("site rules", self._site_rules_step),
            ("network columns", self._network_step),
            ("device and bots", self._device_step),
            ("privacy", self._privacy_step),
            ("sources", self._sources_step),
            ("address scrub", self._scrub_step),
            ("identity", self._identity_step),
        )
        self._steps = tuple(step for _, step in self.steps)  # what `enrich` runs, one bound method each

    def _ua_columns_uncached(self, ua: str) -> tuple[dict[str, Any], str]:
        info = self.ua.parse(ua)
        columns = non_empty(
            {
                "browser": info.browser,
                "browser_version": info.browser_version,
                "os": info.os,
                "os_version": info.os_version,
                "device_type": info.device_type,
                "device_brand": info.device_brand,
                "device_model": info.device_model,
            }
        )
        return columns, self.bots.ua_reason(ua) or ("ua-parser-spider" if info.is_spider else "")

    def _geo_columns_uncached(self, ip: str) -> dict[str, Any]:
        return non_empty(self.geo.columns(ip))

    def _ip_columns_uncached(self, ip: str) -> dict[str, str]:
        return {**self._geo_columns(ip), "ip_hash": self.salt.hash_ip(ip, self._day_start)}

    def _new_day(self, received_ms: int) -> None:
        """A new UTC day (new salt) or a reloaded geo database: the per-IP cache (its hash is the day's) starts
        over; the per-IP geo cache only when the database changed."""
        self._day_start = received_ms - received_ms % 86_400_000
        self._day_end = self._day_start + 86_400_000
        if self._geo_generation != self.geo.generation:
            self._geo_columns.cache_clear()
        self._geo_generation = self.geo.generation
        self._ip_columns.cache_clear()

    def _clean_url_uncached(self, url: str) -> tuple[str, str, tuple[str, ...]]:
        cleaned, query, params = clean_url(url, self.pii)
        return cleaned, query, campaign(params)

    @property
    def identity_path(self) -> Path:
        return self.settings.state_dir / "identity.json"

    def enrich(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """Fill the enrichment columns; False = drop the event (DNT/GPC). Never raises: a bug here must not
        hold the shipper's batch forever, so an unexpected error is logged and the row keeps only its ip_hash (and
        loses the visitor's address wherever it was echoed, as always)."""
        try:
            return self._enrich(row, event, facts)
        except Exception:
            self.errors += 1
            if self.errors <= 10 or self.errors % 10_000 == 0:
                log.exception(
                    "enrichment failed for an event (%d so far); stored with ip_hash only", self.errors
                )
            if self.drop_unregistered and (row.get("site") or "").lower() not in self.site_rules.domains:
                return self._unregistered(
                    row.get("site") or ""
                )  # failing closed: no unregistered site stored
            row["ip_hash"] = self.salt.hash_ip(facts.ip, facts.received_ms)
            scrub_row(row, facts.ip)  # whatever failed, the raw address is not stored
            return True

    def _unregistered(self, site: str) -> bool:
        """Counts and logs (a few names, then now and then) an event of a site nobody registered."""
        self.dropped["unregistered site"] += 1
        if len(self._unregistered_seen) < 20 and site not in self._unregistered_seen:
            self._unregistered_seen.add(site)
            none = "" if self.site_rules.domains else "; no site is registered yet (POST /api/sites)"
            log.warning("dropping the events of %r: not a registered site%s", site[:100], none)
        elif self.dropped["unregistered site"] % 100_000 == 0:
            log.warning("%d events of unregistered sites dropped so far", self.dropped["unregistered site"])
        return False

    def drop_samples(self) -> list[tuple[str, float]]:
        """`dropped` as Prometheus samples of a counter labelled by reason."""
        return [(f'{{reason="{reason.replace(" ", "_")}"}}', n) for reason, n in sorted(self.dropped.items())]

    # -- the steps, in the order of `steps` ----------------------------------------------------

    def _enrich(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        for step in self._steps:
            if not step(row, event, facts):
                return False
        return True

    def _site_rules_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """False (counted in `dropped`) for an unregistered site that is dropped, Do-Not-Track / GPC on a site
        that honours it, or the site's own rules (set through the API)."""
        site = row.get("site") or ""
        if self.drop_unregistered and not self.site_rules.registered(site):
            return self._unregistered(site)
        if (facts.dnt or facts.gpc) and (self.dnt_all or site.lower() in self.dnt_sites):
            self.dropped["dnt" if facts.dnt else "gpc"] += 1
            return False
        rule = self.site_rules.get(site)
        reason = (
            rule.drop_reason(row.get("path") or "", facts.ip, facts.origin_host, facts.dnt, facts.gpc)
            if rule is not None
            else ""
        )
        if reason:
            self.dropped[reason] += 1
            return False
        return True

    def _network_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """ip_hash and geo, cached per IP for the day (the database's; a trusted CDN's headers override it)."""
        self.geo.maybe_reload()
        ip = facts.ip
        received_ms = facts.received_ms
        if not self._day_start <= received_ms < self._day_end or self._geo_generation != self.geo.generation:
            self._new_day(received_ms)
        ip_columns = self._ip_columns(ip)
        row.update(ip_columns)
        self._ip_hash = ip_columns["ip_hash"]
        if self.cdn_geo and (facts.cdn_country or facts.cdn_geo):
            geo = cdn_geo(facts.cdn_country, facts.cdn_geo, self.geo.lookup(ip))
            row["country"], row["region"], row["city"] = geo.country, geo.region, geo.city
            row["latitude"], row["longitude"] = geo.latitude, geo.longitude
        return True

    def _device_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """Device columns and the bot verdict: the UA's are one cached entry, then the request's own signs."""
        columns, ua_bot = self._ua_columns(facts.user_agent)
        row.update(columns)
        if ua_bot or self.bots.request_reason(event, facts.accept_language):
            row["device_type"] = "bot"
            row["is_bot"] = 1
        return True

    def _privacy_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """PII parameters out of the URL, query and referrer, e-mail addresses out of path and title, no e-mail
        as user id, props cleaned. Keeps the URL's campaign key for the sources step (`_campaign_key`)."""
        pii = self.pii
        url = row.get("url") or ""
        if url:
            row["url"], query, self._campaign_key = self._clean_url(url)
        else:
            query, params = clean_query((row.get("query") or "").lstrip("?"), pii)
            self._campaign_key = campaign(params)
        row["query"] = query
        referrer = row.get("referrer") or ""
        if referrer and ("?" in referrer or "@" in referrer or "#" in referrer):
            row["referrer"] = clean_url(referrer, pii)[0]
        path = row.get("path") or ""
        if "@" in path or "%40" in path:
            row["path"] = redact_emails(path)
        title = row.get("title") or ""
        if "@" in title:
            row["title"] = redact_emails(title)
        user_id = row.get("user_id")
        if user_id:
            row["user_id"] = clean_user_id(user_id)
        props = row.get("props")
        if props:
            clean_props(props)
        source = row.get("error_source")  # an error's script URL: PII parameters out, as from page URLs
        if source and ("?" in source or "#" in source):
            row["error_source"] = clean_url(source, pii)[0]
        return True

    def _sources_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """Source, UTMs and channel, from the cleaned referrer and the privacy step's campaign key."""
        row.update(
            self.sources.columns(
                row.get("referrer") or "", row.get("host") or "", row.get("site") or "", self._campaign_key
            )
        )
        return True

    def _scrub_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """The visitor's own address, out of every text the row now holds (the derived columns too)."""
        scrub_row(row, facts.ip)
        return True

    def _identity_step(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> bool:
        """Visitor and session ids, cross-domain links (its ids are hashes: they hold no address)."""
        self.identity.resolve(row, event, facts.ip, self._ip_hash, facts.user_agent, facts.received_ms)
        return True

    def enrich_batch(
        self,
        rows: Sequence[dict[str, Any]],
        events: Sequence[dict[str, Any]],
        facts_list: Sequence[RequestFacts],
    ) -> list[dict[str, Any]]:
        """Enrich a batch in order; returns the rows to store (DNT/GPC drops left out). The cyclic GC is paused
        meanwhile (`pixel.server.gcpause`)."""
        enrich = self.enrich
        with gc_paused():
            return [
                row
                for row, event, facts in zip(rows, events, facts_list, strict=True)
                if enrich(row, event, facts)
            ]

    def close(self) -> None:
        """Call at shutdown: saves the identity state (sessions, links) for the next start."""
        self.geo.close()
        try:
            self.identity.save(self.identity_path)
        except OSError as exc:
            log.warning("enrichment: cannot save the identity state to %s (%s)", self.identity_path, exc)
