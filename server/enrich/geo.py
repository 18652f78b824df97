"""GeoIP: country (ISO code), region and city from a MaxMind-format database, or from a trusted CDN's headers.

- The database (GeoLite2-City, DB-IP City Lite, or a Country edition) is read with `maxminddb`, its
  records taken as the `geoip2` package's models take them (`GeoLocator._lookup`); its path is
  `settings.geoip_db`, or the file `pixel geoip update` writes (`<data_dir>/geoip/city.mmdb`).
- No database: geo stays empty (`''`) and one warning is logged; the file is looked for again every few seconds,
  and a database replaced on disk (new inode, size or mtime) is reopened without a restart. A broken replacement
  keeps the previous reader and logs the error.
- CDN geo headers (Cloudflare, Vercel, CloudFront) are used only when the operator sets `trust_cdn_geo` — the
  collector spools them only from a trusted proxy — because any client can send `CF-IPCountry` itself.
- Coordinates are rounded to 0.1 degree (about 11 km), i.e. never finer than a city.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import maxminddb

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "city.mmdb"

# Header names (lower case) the collector should spool, when the peer is a trusted proxy, for `trust_cdn_geo`.
CDN_GEO_HEADERS = (
    "cf-ipcountry",
    "cf-region",
    "cf-ipcity",  # Cloudflare ("Add visitor location headers" for region/city)
    "x-vercel-ip-country",
    "x-vercel-ip-country-region",
    "x-vercel-ip-city",  # Vercel
    "cloudfront-viewer-country",
    "cloudfront-viewer-country-region-name",
    "cloudfront-viewer-city",  # CloudFront
)
_CDN_SETS = (
    ("cf-ipcountry", "cf-region", "cf-ipcity"),
    ("x-vercel-ip-country", "x-vercel-ip-country-region", "x-vercel-ip-city"),
    ("cloudfront-viewer-country", "cloudfront-viewer-country-region-name", "cloudfront-viewer-city"),
)
_NOT_A_COUNTRY = {"", "XX", "T1", "ZZ", "A1", "A2", "O1"}  # unknown, Tor, reserved, anonymous proxy


class GeoResult(NamedTuple):
    country: str
    region: str
    city: str
    latitude: float | None = None
    longitude: float | None = None


NO_GEO = GeoResult("", "", "")


def default_db_path(data_dir: Path) -> Path:
    return Path(data_dir) / "geoip" / DEFAULT_DB_NAME


def from_cdn_headers(headers: Mapping[str, str]) -> GeoResult:
    """Geo from a CDN's headers (names in lower case); NO_GEO when none carries a usable country."""
    for country_h, region_h, city_h in _CDN_SETS:
        country = headers.get(country_h, "").strip().upper()
        if country in _NOT_A_COUNTRY:
            continue
        if len(country) != 2 or not country.isalpha():
            continue
        region = unquote(headers.get(region_h, "")).strip()[:100]
        city = unquote(headers.get(city_h, "")).strip()[:100]
        return GeoResult(country, region, city)
    return NO_GEO


def cdn_geo(country: str, headers: Mapping[str, str] | None, db: GeoResult) -> GeoResult:
    """Geo when a trusted CDN sent its headers: the CDN's country wins; the database's region and city are kept
    only when the database agrees on the country (otherwise they would describe another place)."""
    result = from_cdn_headers(headers) if headers else NO_GEO
    if result is NO_GEO:
        country = country.strip().upper()
        if country in _NOT_A_COUNTRY or len(country) != 2 or not country.isalpha():
            return db
        result = GeoResult(country, "", "")
    if not result.region and not result.city and db.country == result.country:
        return db
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _coordinate(value: object) -> float | None:
    """A record's latitude or longitude, rounded (`_round`); None when it has none."""
    return _round(float(value)) if type(value) is float or type(value) is int else None


def _english(place: object) -> str:
    """A database place's English name ('' when it has none), as geoip2's `.name` gives it with its default
    locale."""
    if type(place) is not dict:
        return ""
    names = place.get("names")
    name = names.get("en") if type(names) is dict else None
    return name if type(name) is str else ""


class GeoLocator:
    """IP -> GeoResult with an LRU cache; reopens the database when the file changes."""

    def __init__(self, path: Path | None, check_interval: float = 5.0, cache_size: int = 65_536) -> None:
        self.path = path
        self.check_interval = check_interval
        self._reader: maxminddb.Reader | None = None
        self._city = False
        self._stamp: tuple[int, int, int] | None = None
        self._last_check = 0.0
        self._warned_missing = False
        self.generation = 0
        self.lookup = functools.lru_cache(maxsize=cache_size)(self._lookup)
        self.columns = functools.lru_cache(maxsize=cache_size)(self._columns)
        self._refresh(force=True)

    @property
    def available(self) -> bool:
        return self._reader is not None

    @property
    def database_type(self) -> str:
        return self._reader.metadata().database_type if self._reader else ""

    def maybe_reload(self) -> None:
        """Cheap: at most one stat() every `check_interval` seconds."""
        if time.monotonic() - self._last_check >= self.check_interval:
            self._refresh()

    def _refresh(self, force: bool = False) -> None:
        self._last_check = time.monotonic()
        if self.path is None:
            if force:
                log.warning(
                    "GeoIP: no database configured (PIXEL_GEOIP_DB); country, region and city stay empty"
                )
            return
        try:
            st = os.stat(self.path)
        except OSError:
            if not self._warned_missing:
                log.warning(
                    "GeoIP: database %s not found; country, region and city stay empty until it appears "
                    "(run `pixel geoip update`)",
                    self.path,
                )
                self._warned_missing = True
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            reader = maxminddb.open_database(str(self.path))
        except Exception as exc:  # a torn or foreign file: keep what we had
            log.error("GeoIP: cannot open %s (%s); keeping the previous database", self.path, exc)
            self._stamp = stamp
            return
        old, self._reader = self._reader, reader
        self._city = "City" in reader.metadata().database_type
        self.generation += 1  # tells callers' own per-IP caches to start over
        self._stamp = stamp
        self._warned_missing = False
        self.lookup.cache_clear()
        self.columns.cache_clear()
        if old is not None:
            old.close()
            log.info("GeoIP: reloaded %s (%s)", self.path, reader.metadata().database_type)

    def _columns(self, ip: str) -> dict[str, str | float | None]:
        """The row's geo columns for `ip` (cached as one dict, so the pipeline stores them with one update)."""
        geo = self.lookup(ip)
        return {
            "country": geo.country,
            "region": geo.region,
            "city": geo.city,
            "latitude": geo.latitude,
            "longitude": geo.longitude,
        }

    def _lookup(self, ip: str) -> GeoResult:
        """The database's record for `ip`, read as the geoip2 package's models read it (country ISO code; the
        most specific subdivision's and the city's English names; the location rounded by `_round`), straight
        from the maxminddb record: building geoip2's model objects cost several times the lookup itself."""
        reader = self._reader
        if reader is None or not ip:
            return NO_GEO
        try:
            record = reader.get(ip)
        except ValueError:  # not an IP address
            return NO_GEO
        if type(record) is not dict:  # not in the database (None), or a database of another shape
            return NO_GEO
        country = record.get("country")
        iso = country.get("iso_code") if type(country) is dict else None
        if type(iso) is not str:
            iso = ""
        if not self._city:
            return GeoResult(iso, "", "")
        subdivisions = record.get("subdivisions")
        region = _english(subdivisions[-1]) if type(subdivisions) is list and subdivisions else ""
        location = record.get("location")
        if type(location) is not dict:
            location = {}
        return GeoResult(
            iso,
            region,
            _english(record.get("city")),
            _coordinate(location.get("latitude")),
            _coordinate(location.get("longitude")),
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.lookup.cache_clear()
        self.columns.cache_clear()
