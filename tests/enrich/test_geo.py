"""GeoIP against MaxMind's own test databases (tests/enrich/data, MIT/Apache): lookups, no database, a database
replaced on disk, a broken replacement, and CDN headers that count only when the operator trusts them."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from pixel.server.enrich.geo import NO_GEO, GeoLocator, GeoResult, cdn_geo, from_cdn_headers

DATA = Path(__file__).parent / "data"
CITY = DATA / "GeoLite2-City-Test.mmdb"
CITY2 = DATA / "GeoIP2-City-Test.mmdb"
COUNTRY = DATA / "GeoLite2-Country-Test.mmdb"


@pytest.fixture()
def city() -> GeoLocator:
    loc = GeoLocator(CITY)
    yield loc
    loc.close()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", GeoResult("GB", "England", "London", 51.5, -0.1)),
        ("216.160.83.56", GeoResult("US", "Washington", "Milton", 47.3, -122.3)),
        ("2001:480::1", GeoResult("US", "California", "San Diego", 32.7, -117.2)),
        ("89.160.20.112", GeoResult("SE", "Östergötland County", "Linköping", 58.4, 15.6)),
        ("2.125.160.216", GeoResult("GB", "West Berkshire", "Boxford", 51.8, -1.2)),
        ("67.43.156.1", GeoResult("BT", "", "", 27.5, 90.5)),
    ],
)
def test_city_lookups(city: GeoLocator, ip: str, expected: GeoResult) -> None:
    assert city.lookup(ip) == expected


@pytest.mark.parametrize("ip", ["10.0.0.1", "127.0.0.1", "8.8.8.8", "::1", "not-an-ip", ""])
def test_unknown_private_or_invalid_addresses_give_empty_geo(city: GeoLocator, ip: str) -> None:
    assert city.lookup(ip) == NO_GEO
    assert tuple(city.lookup(ip))[:3] == ("", "", "")


def test_coordinates_are_never_finer_than_a_tenth_of_a_degree(city: GeoLocator) -> None:
    geo = city.lookup("81.2.69.142")  # the database says 51.5142, -0.0931
    assert (geo.latitude, geo.longitude) == (51.5, -0.1)


def test_country_database_gives_country_only() -> None:
    loc = GeoLocator(COUNTRY)
    try:
        assert loc.database_type == "GeoLite2-Country"
        assert loc.lookup("81.2.69.142") == GeoResult("GB", "", "")
    finally:
        loc.close()


def test_no_database_configured_means_empty_geo_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pixel.server.enrich.geo"):
        loc = GeoLocator(None)
        assert loc.lookup("81.2.69.142") == NO_GEO
        loc.maybe_reload()
    assert not loc.available
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_missing_file_warns_once_then_is_picked_up_when_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "geo" / "city.mmdb"
    with caplog.at_level(logging.WARNING, logger="pixel.server.enrich.geo"):
        loc = GeoLocator(path, check_interval=0)
        for _ in range(3):
            loc.maybe_reload()
            assert loc.lookup("81.2.69.142") == NO_GEO
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not found" in warnings[0].getMessage()
    path.parent.mkdir()
    shutil.copy(CITY, path)
    loc.maybe_reload()
    try:
        assert loc.lookup("81.2.69.142").city == "London"
    finally:
        loc.close()


def test_database_replaced_on_disk_is_reloaded_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "city.mmdb"
    shutil.copy(COUNTRY, path)
    loc = GeoLocator(path, check_interval=0)
    try:
        assert loc.lookup("81.2.69.142") == GeoResult("GB", "", "")  # cached now
        tmp = tmp_path / "new.mmdb"
        shutil.copy(CITY, tmp)
        os.replace(tmp, path)  # how `pixel geoip update` installs a new file
        loc.maybe_reload()
        assert loc.database_type == "GeoLite2-City"
        assert loc.lookup("81.2.69.142").city == "London"  # the cache was cleared
    finally:
        loc.close()


def test_reload_waits_for_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "city.mmdb"
    shutil.copy(COUNTRY, path)
    loc = GeoLocator(path, check_interval=3600)
    try:
        shutil.copy(CITY2, tmp_path / "x.mmdb")
        os.replace(tmp_path / "x.mmdb", path)
        loc.maybe_reload()  # within the interval: no stat, no reload
        assert loc.database_type == "GeoLite2-Country"
    finally:
        loc.close()


def test_broken_replacement_keeps_the_previous_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "city.mmdb"
    shutil.copy(CITY, path)
    loc = GeoLocator(path, check_interval=0)
    try:
        (tmp_path / "bad").write_bytes(b"this is not a MaxMind database" * 10)
        os.replace(tmp_path / "bad", path)
        with caplog.at_level(logging.ERROR, logger="pixel.server.enrich.geo"):
            loc.maybe_reload()
        assert loc.lookup("216.160.83.56").city == "Milton"
        assert any("keeping the previous database" in r.getMessage() for r in caplog.records)
    finally:
        loc.close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cf-ipcountry": "de"}, GeoResult("DE", "", "")),
        (
            {"cf-ipcountry": "DE", "cf-region": "Bavaria", "cf-ipcity": "Munich"},
            GeoResult("DE", "Bavaria", "Munich"),
        ),
        (
            {
                "x-vercel-ip-country": "US",
                "x-vercel-ip-country-region": "CA",
                "x-vercel-ip-city": "San%20Francisco",
            },
            GeoResult("US", "CA", "San Francisco"),
        ),
        (
            {"cloudfront-viewer-country": "FR", "cloudfront-viewer-city": "Paris"},
            GeoResult("FR", "", "Paris"),
        ),
        ({"cf-ipcountry": "XX"}, NO_GEO),  # unknown
        ({"cf-ipcountry": "T1"}, NO_GEO),  # Tor
        ({"cf-ipcountry": "12"}, NO_GEO),
        ({}, NO_GEO),
    ],
)
def test_cdn_headers(headers: dict[str, str], expected: GeoResult) -> None:
    assert from_cdn_headers(headers) == expected


def test_cdn_country_wins_and_keeps_database_detail_only_when_they_agree() -> None:
    london = GeoResult("GB", "England", "London", 51.5, -0.1)
    assert cdn_geo("GB", None, london) == london
    assert cdn_geo("FR", None, london) == GeoResult("FR", "", "")
    assert cdn_geo("XX", None, london) == london
    assert cdn_geo("", {"cf-ipcountry": "DE", "cf-ipcity": "Berlin"}, london) == GeoResult("DE", "", "Berlin")
