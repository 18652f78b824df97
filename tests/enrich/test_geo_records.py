"""GeoLocator reads the maxminddb records itself (issue 16: geoip2's model objects cost several times the lookup):
its results must be what the geoip2 package's City/Country models give, for every network of the MaxMind test
databases (first, last and a middle address of each, IPv4 and IPv6) and for addresses not in them."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb
import pytest

from pixel.server.enrich.geo import NO_GEO, GeoLocator, GeoResult

DATA = Path(__file__).parent / "data"


def reference(reader: geoip2.database.Reader, city: bool, ip: str) -> GeoResult:
    """The lookup as it was written on geoip2's models (before issue 16)."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    try:
        if city:
            rec = reader.city(ip)
            sub = rec.subdivisions.most_specific
            return GeoResult(
                rec.country.iso_code or "",
                sub.name or "",
                rec.city.name or "",
                r(rec.location.latitude),
                r(rec.location.longitude),
            )
        crec = reader.country(ip)
        return GeoResult(crec.country.iso_code or "", "", "")
    except (geoip2.errors.AddressNotFoundError, ValueError):
        return NO_GEO


def addresses(path: Path) -> list[str]:
    out = ["", "not an ip", "10.0.0.1", "127.0.0.1", "::1", "1.1.1.1", "2001:db8::1"]
    with maxminddb.open_database(str(path)) as db:
        for network, _record in db:
            net = ipaddress.ip_network(network)
            out += [str(net[0]), str(net[-1]), str(net[net.num_addresses // 2])]
    return out


@pytest.mark.parametrize(
    ("name", "city"),
    [
        ("GeoLite2-City-Test.mmdb", True),
        ("GeoIP2-City-Test.mmdb", True),
        ("GeoLite2-Country-Test.mmdb", False),
    ],
)
def test_records_read_as_geoip2_models_read_them(name: str, city: bool) -> None:
    path = DATA / name
    locator = GeoLocator(path)
    ref = geoip2.database.Reader(str(path))
    try:
        ips = addresses(path)
        assert len(ips) > 100
        found = 0
        for ip in ips:
            got = locator._lookup(ip)
            assert got == reference(ref, city, ip), ip
            found += got.country != ""
        assert found > 50  # the comparison covered real records, not only misses
    finally:
        ref.close()
        locator.close()
