"""The enricher's per-address caches across UTC days: the keyed IP hash is the day's (its cache starts over each
day, and a day seen again hashes with that day's key), while an address's geo columns, which do not depend on the
day, are looked up once and kept until the geo database changes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.importer.salts import ImportSalt
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize

DATA = Path(__file__).parent / "data"
IP = "81.2.69.142"  # in MaxMind's test databases: GB, and London in the City one
DAY1, DAY2 = 1_672_531_200_000, 1_672_617_600_000  # 2023-01-01 and 2023-01-02, 00:00 UTC
KEYS = {"2023-01-01": "11" * 32, "2023-01-02": "22" * 32}


def enriched(enricher: Enricher, ms: int) -> dict[str, Any]:
    event = {
        "event_name": "pageview",
        "ts": ms,
        "site": "example.com",
        "page": {"url": "https://example.com/"},
    }
    row = normalize(event, ms, min_ms=0, segment="", offset=0, index=0)
    assert enricher.enrich(row, event, RequestFacts(ms, IP, "Mozilla/5.0", "en", ""))
    return row


def expected_hash(day: str) -> str:
    return hashlib.blake2b(IP.encode(), key=bytes.fromhex(KEYS[day]), digest_size=16).hexdigest()


def counting_geo(enricher: Enricher) -> list[str]:
    calls: list[str] = []
    lookup = enricher.geo.columns

    def columns(ip: str) -> dict[str, Any]:
        calls.append(ip)
        return lookup(ip)

    columns.cache_clear = lookup.cache_clear  # type: ignore[attr-defined]  # the locator clears it on a reload
    enricher.geo.columns = columns  # type: ignore[method-assign]
    return calls


def test_the_hash_is_each_days_and_the_geo_lookup_is_kept_across_days(tmp_path: Path) -> None:
    enricher = Enricher(Settings(data_dir=tmp_path, geoip_db=str(DATA / "GeoLite2-City-Test.mmdb")))
    enricher.salt = ImportSalt(dict(KEYS))
    calls = counting_geo(enricher)
    rows = [enriched(enricher, ms) for ms in (DAY1, DAY1 + 60_000, DAY2, DAY2 + 60_000, DAY1 + 120_000)]
    assert [row["ip_hash"] for row in rows] == [
        expected_hash("2023-01-01"),
        expected_hash("2023-01-01"),
        expected_hash("2023-01-02"),
        expected_hash("2023-01-02"),
        expected_hash("2023-01-01"),  # back to the first day: its own key again
    ]
    assert {(row["country"], row["city"]) for row in rows} == {("GB", "London")}
    assert calls == [IP]  # one lookup for three day changes
    enricher.close()


def test_a_new_geo_database_is_read_on_the_next_day_and_after(tmp_path: Path) -> None:
    db = tmp_path / "geo.mmdb"
    shutil.copy(DATA / "GeoLite2-Country-Test.mmdb", db)
    enricher = Enricher(Settings(data_dir=tmp_path, geoip_db=str(db)))
    enricher.salt = ImportSalt(dict(KEYS))
    enricher.geo.check_interval = 0
    first = enriched(enricher, DAY1)
    assert (first.get("country"), first.get("city", "")) == ("GB", "")
    shutil.copy(DATA / "GeoLite2-City-Test.mmdb", tmp_path / "new.mmdb")
    os.replace(tmp_path / "new.mmdb", db)
    second = enriched(enricher, DAY2)
    assert (second["country"], second["city"], second["ip_hash"]) == (
        "GB",
        "London",
        expected_hash("2023-01-02"),
    )
    enricher.close()
