"""The Enricher as the shipper calls it: rows built by the shipper's own `normalize`, enriched column by column."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize
from pixel.server.store.schema import EVENT_COLUMNS

DATA = Path(__file__).parent / "data"
CITY = str(DATA / "GeoLite2-City-Test.mmdb")
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
NOW = int(time.time() * 1000)


def facts(ip: str = "81.2.69.142", ua: str = CHROME, lang: str = "en-GB,en;q=0.9", **kw: Any) -> RequestFacts:
    return RequestFacts(NOW, ip, ua, lang, "example.com", **kw)


def stored(row: dict[str, Any], column: str) -> Any:
    """The value the store keeps for `column`: a row leaves out columns at their type's default
    (server/enrich/columns.py), which ClickHouse then fills in."""
    kind = EVENT_COLUMNS[column]
    default = None if kind.startswith("Nullable") else "" if "String" in kind else {} if "Map" in kind else 0
    return row.get(column, default)


def make_row(event: dict[str, Any]) -> dict[str, Any]:
    return normalize(event, NOW, min_ms=0, segment="seg", offset=0, index=0)


def event(**overrides: Any) -> dict[str, Any]:
    base = {
        "event_name": "pageview",
        "ts": NOW,
        "site": "example.com",
        "visitor_id": "v1",
        "page": {
            "url": "https://example.com/pricing?plan=pro&gclid=abc&token=s3cret",
            "title": "Pricing",
            "referrer": "https://www.google.com/",
        },
        "device": {
            "screen": "1920x1080",
            "lang": "en-GB",
            "tz": "Europe/London",
            "dpr": 1,
            "webdriver": False,
        },
    }
    base.update(overrides)
    return base


@pytest.fixture()
def enricher(tmp_path: Path) -> Enricher:
    e = Enricher(Settings(data_dir=tmp_path, geoip_db=CITY))
    yield e
    e.close()


def test_every_enrichment_column_is_filled(enricher: Enricher) -> None:
    ev = event()
    row = make_row(ev)
    assert enricher.enrich(row, ev, facts()) is True
    expected = {
        "url": "https://example.com/pricing?plan=pro&gclid=abc",
        "query": "plan=pro&gclid=abc",
        "ref_host": "google.com",
        "source": "Google",
        "medium": "cpc",
        "channel": "Paid Search",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
        "click_id": "gclid",
        "country": "GB",
        "region": "England",
        "city": "London",
        "latitude": 51.5,
        "longitude": -0.1,  # rounded to 0.1 degree: never finer than a city
        "browser": "Chrome",
        "browser_version": "131",
        "os": "Windows",
        "os_version": "10",
        "device_type": "desktop",
        "device_brand": "",
        "device_model": "",
        "is_bot": 0,
        "visitor_id": "v1",
    }
    assert {k: stored(row, k) for k in expected} == expected
    assert len(row["ip_hash"]) == 32 and len(row["session_id"]) == 16
    assert "81.2.69.142" not in repr(row)


def test_bots_are_flagged_not_dropped(enricher: Enricher) -> None:
    ev = event(device={"screen": "800x600", "tz": "UTC", "webdriver": True})
    row = make_row(ev)
    assert enricher.enrich(row, ev, facts()) is True
    assert (row["is_bot"], row["device_type"], row["browser"]) == (1, "bot", "Chrome")
    ev = event()
    row = make_row(ev)
    enricher.enrich(
        row, ev, facts(ua="Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
    )
    assert (row["is_bot"], row["device_type"], row["browser"]) == (1, "bot", "bingbot")
    row = make_row(ev)
    enricher.enrich(row, ev, facts(lang=""))
    assert row["is_bot"] == 1


def test_email_user_id_is_refused(enricher: Enricher) -> None:
    ev = event(user_id="jane@example.com")
    row = make_row(ev)
    enricher.enrich(row, ev, facts())
    assert row["user_id"] == ""
    ev = event(user_id="customer-42")
    row = make_row(ev)
    enricher.enrich(row, ev, facts())
    assert row["user_id"] == "customer-42"


def test_extra_pii_params_from_settings(tmp_path: Path) -> None:
    e = Enricher(Settings(data_dir=tmp_path, pii_params=("coupon",)))
    ev = event(page={"url": "https://example.com/?coupon=SAVE&email=a%40b.co&x=1"})
    row = make_row(ev)
    e.enrich(row, ev, facts())
    assert (row["url"], row["query"]) == ("https://example.com/?x=1", "x=1")
    e.close()


def test_referrer_is_cleaned_too(enricher: Enricher) -> None:
    ev = event(
        page={"url": "https://example.com/", "referrer": "https://partner.example/cb?session=abc&page=2"}
    )
    row = make_row(ev)
    enricher.enrich(row, ev, facts())
    assert row["referrer"] == "https://partner.example/cb?page=2"


@pytest.mark.parametrize(
    ("dnt_sites", "dnt", "gpc", "kept"),
    [
        ((), True, True, True),  # the site did not opt in: tracked (cookieless) as usual
        (("example.com",), True, False, False),
        (("example.com",), False, True, False),
        (("example.com",), False, False, True),
        (("other.org",), True, True, True),
        (("*",), False, True, False),
    ],
)
def test_dnt_and_gpc_are_honoured_per_site(
    tmp_path: Path, dnt_sites: tuple[str, ...], dnt: bool, gpc: bool, kept: bool
) -> None:
    e = Enricher(Settings(data_dir=tmp_path, dnt_sites=dnt_sites))
    ev = event()
    rows = e.enrich_batch([make_row(ev)], [ev], [facts(dnt=dnt, gpc=gpc)])
    assert len(rows) == (1 if kept else 0)
    e.close()


def test_missing_geo_database_means_empty_geo_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        e = Enricher(Settings(data_dir=tmp_path))  # nothing at <data>/geoip/city.mmdb
        rows = []
        for _ in range(3):
            ev = event()
            row = make_row(ev)
            e.enrich(row, ev, facts())
            rows.append(row)
    assert {(stored(r, "country"), stored(r, "region"), stored(r, "city")) for r in rows} == {("", "", "")}
    assert len([r for r in caplog.records if "GeoIP" in r.getMessage()]) == 1
    e.close()


def test_cdn_country_only_counts_when_enabled(tmp_path: Path) -> None:
    for enabled, expected in ((False, ("GB", "England", "London")), (True, ("FR", "", ""))):
        e = Enricher(Settings(data_dir=tmp_path, geoip_db=CITY, cdn_geo_headers=enabled))
        ev = event()
        row = make_row(ev)
        e.enrich(row, ev, facts(cdn_country="FR"))
        assert (stored(row, "country"), stored(row, "region"), stored(row, "city")) == expected
        e.close()


def test_cookieless_visitor_and_session_when_the_tracker_sends_none(enricher: Enricher) -> None:
    ev = event(visitor_id=None, page={"url": "https://example.com/a"})
    row1 = make_row(ev)
    enricher.enrich(row1, ev, facts())
    row2 = make_row(ev)
    enricher.enrich(row2, ev, facts())
    assert row1["visitor_id"] == row2["visitor_id"] and len(row1["visitor_id"]) == 32
    assert row1["session_id"] == row2["session_id"]
    row3 = make_row(ev)
    enricher.enrich(row3, ev, facts(ip="216.160.83.56"))
    assert row3["visitor_id"] != row1["visitor_id"]


def test_geo_database_replaced_while_enriching_is_used_for_the_next_events(tmp_path: Path) -> None:
    import os
    import shutil

    db = tmp_path / "geo.mmdb"
    shutil.copy(DATA / "GeoLite2-Country-Test.mmdb", db)
    e = Enricher(Settings(data_dir=tmp_path, geoip_db=str(db)))
    e.geo.check_interval = 0
    ev = event()
    row = make_row(ev)
    e.enrich(row, ev, facts())
    assert (stored(row, "country"), stored(row, "region"), stored(row, "city")) == ("GB", "", "")
    shutil.copy(CITY, tmp_path / "new.mmdb")
    os.replace(tmp_path / "new.mmdb", db)
    row = make_row(ev)
    e.enrich(row, ev, facts())
    assert (stored(row, "country"), stored(row, "region"), stored(row, "city")) == ("GB", "England", "London")
    e.close()


def test_close_saves_identity_state_and_a_new_enricher_continues_the_session(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ev = event(visitor_id=None, page={"url": "https://example.com/a"})
    e = Enricher(settings)
    first = make_row(ev)
    e.enrich(first, ev, facts())
    e.close()
    assert (tmp_path / "state" / "identity.json").exists()
    e2 = Enricher(settings)
    second = make_row(ev)
    e2.enrich(second, ev, facts())
    assert second["session_id"] == first["session_id"]
    e2.close()


ODD_EVENTS = [
    event(device=["not", "an", "object"]),
    event(device={"screen": 1920, "tz": None, "webdriver": "yes", "dpr": "x"}),
    event(page={"url": "https://example.com/" + "a" * 3000 + "?q=" + "%" * 50, "referrer": "http://[::1"}),
    event(page={"url": "not a url at all", "referrer": "javascript:alert(1)", "title": "@" * 100}),
    event(page={"url": "https://example.com/?utm_source=%ZZ&&==&gclid", "referrer": "android-app://"}),
    event(
        page={"url": "https://ex\u00e4mple.com/\u00fcber?x=\u2603", "referrer": "https://xn--exmple-cua.com/"}
    ),
    event(user_id=12345, params={"a": {"nested": True}, "b": [1, 2], "c": None}),
]


@pytest.mark.parametrize("ev", ODD_EVENTS, ids=range(len(ODD_EVENTS)))
@pytest.mark.parametrize("ip", ["81.2.69.142", "2001:480::1", "", "garbage", "::1"])
def test_odd_input_is_enriched_without_errors(enricher: Enricher, ev: dict[str, Any], ip: str) -> None:
    row = make_row(ev)
    assert enricher.enrich(row, ev, facts(ip=ip, ua="\x00\ufffd" if ip == "garbage" else CHROME)) is True
    assert enricher.errors == 0
    assert len(row["ip_hash"]) == 32 and row["channel"] and row["device_type"]
    if len(ip) >= 7:
        assert ip not in repr(row)


def test_an_internal_error_keeps_the_row_with_its_ip_hash(
    enricher: Enricher, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(enricher.identity, "resolve", broken)
    ev = event()
    row = make_row(ev)
    with caplog.at_level(logging.ERROR):
        assert enricher.enrich(row, ev, facts()) is True
    assert len(row["ip_hash"]) == 32 and "81.2.69.142" not in repr(row)
    assert enricher.errors == 1
    assert "enrichment failed" in caplog.text


def test_enrich_batch_matches_enrich_and_restores_the_gc(tmp_path: Path) -> None:
    import gc

    evs = [
        event(page={"url": f"https://example.com/p{i}?utm_source=google&utm_medium=cpc"}) for i in range(50)
    ]
    single = Enricher(Settings(data_dir=tmp_path / "a", geoip_db=CITY, dnt_sites=("example.com",)))
    batch = Enricher(Settings(data_dir=tmp_path / "b", geoip_db=CITY, dnt_sites=("example.com",)))
    all_facts = [facts(dnt=i % 10 == 0) for i in range(50)]
    expected = []
    for ev, f in zip(evs, all_facts, strict=True):
        row = make_row(ev)
        if single.enrich(row, ev, f):
            expected.append(row)
    assert gc.isenabled()
    got = batch.enrich_batch([make_row(ev) for ev in evs], evs, all_facts)
    assert gc.isenabled()
    assert len(got) == 45
    strip = ("ip_hash", "visitor_id", "session_id")  # keyed with each data folder's own salt
    assert [{k: v for k, v in r.items() if k not in strip} for r in got] == [
        {k: v for k, v in r.items() if k not in strip} for r in expected
    ]
    single.close()
    batch.close()
