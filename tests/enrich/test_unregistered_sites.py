"""Events for sites nobody registered through the API are dropped and counted when PIXEL_UNREGISTERED_SITES says
so (`drop`; `auto` on a collector other machines reach): against the API's real metadata DB, a site registered a
moment after its first events keeps its next event at once, and end to end through `pixel serve` into chDB."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pixel.server.api.meta import MetaDB
from pixel.server.enrich import Enricher
from pixel.server.enrich.siterules import drops_unregistered
from pixel.server.settings import Settings, SettingsError
from tests.enrich.test_site_rules import add_site, kept


@pytest.mark.parametrize(
    ("setting", "host", "drops"),
    [
        ("auto", "127.0.0.1", False),
        ("auto", "127.0.0.53", False),
        ("auto", "::1", False),
        ("auto", "[::1]", False),
        ("auto", "localhost", False),
        ("auto", "0.0.0.0", True),
        ("auto", "::", True),
        ("auto", "192.0.2.10", True),
        ("auto", "pixel.example.net", True),
        ("drop", "127.0.0.1", True),
        ("keep", "0.0.0.0", False),
    ],
)
def test_when_unregistered_sites_are_dropped(setting: str, host: str, drops: bool) -> None:
    assert drops_unregistered(setting, host) is drops


def test_the_setting_is_checked() -> None:
    assert Settings.from_env({"PIXEL_UNREGISTERED_SITES": "drop"}).unregistered_sites == "drop"
    assert Settings().unregistered_sites == "auto"
    with pytest.raises(SettingsError, match="PIXEL_UNREGISTERED_SITES must be 'auto', 'drop' or 'keep'"):
        Settings.from_env({"PIXEL_UNREGISTERED_SITES": "yes"})


@pytest.fixture()
def dropping(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, unregistered_sites="drop")
    meta = MetaDB(settings.meta_db_path)
    enricher = Enricher(settings)
    yield enricher, meta
    enricher.close()


def test_unregistered_sites_are_dropped_and_counted_by_reason(dropping, caplog) -> None:
    enricher, meta = dropping
    with caplog.at_level(logging.WARNING, logger="pixel.server.enrich.pipeline"):
        assert kept(enricher, "spam.example") is False
    assert (
        "dropping the events of 'spam.example': not a registered site; no site is registered yet"
        in caplog.text
    )
    add_site(meta, "example.com", excluded_paths=["/admin/*"], honour_dnt=True)
    # registered a moment after its first events: the very next one is kept, no refresh interval waited
    assert kept(enricher, "example.com") is True
    assert kept(enricher, "spam.example") is False
    assert kept(enricher, "other.example") is False
    assert kept(enricher, "example.com", path="/admin/x") is False
    assert kept(enricher, "example.com", dnt=True) is False
    assert dict(enricher.dropped) == {"unregistered site": 3, "excluded path": 1, "dnt": 1}
    assert enricher.drop_samples() == [
        ('{reason="dnt"}', 1),
        ('{reason="excluded_path"}', 1),
        ('{reason="unregistered_site"}', 3),
    ]


def test_a_deleted_site_is_unregistered_again(dropping) -> None:
    enricher, meta = dropping
    site_id = add_site(meta, "example.com")
    assert kept(enricher, "example.com") is True
    meta.delete("sites", site_id)
    enricher.site_rules._checked = float("-inf")  # the periodic re-check, without waiting for it
    assert kept(enricher, "example.com") is False


def test_kept_when_the_setting_keeps_them(tmp_path: Path) -> None:
    enricher = Enricher(Settings(data_dir=tmp_path, unregistered_sites="keep"))
    try:
        assert kept(enricher, "anything.example") is True
        assert dict(enricher.dropped) == {}
    finally:
        enricher.close()


def test_a_failing_enrichment_does_not_store_an_unregistered_site(dropping, monkeypatch) -> None:
    enricher, meta = dropping
    add_site(meta, "example.com")
    assert kept(enricher, "example.com") is True
    monkeypatch.setattr(enricher.site_rules, "registered", lambda site: True)  # the check passes, then ...
    monkeypatch.setattr(enricher.identity, "resolve", lambda *a: 1 / 0)  # ... enrichment fails
    assert kept(enricher, "example.com") is True  # stored with its ip_hash, as before
    assert kept(enricher, "spam.example") is False  # but an unregistered site is not stored on that path
    assert enricher.dropped["unregistered site"] == 1


def test_pixel_serve_drops_unregistered_sites_end_to_end(pixel_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = pixel_factory(
        "serve", data_dir=data, pixel_unregistered_sites="drop", pixel_segment_max_age="0.3"
    )
    subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "admin", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    add_site(MetaDB(data / "state" / "meta.sqlite3"), "example.com")

    def send(site: str, n: int) -> None:
        events = [
            {"event_name": "pageview", "site": site, "page": {"url": f"https://{site}/{i}"}} for i in range(n)
        ]
        assert httpx.post(f"{server.collector}/track", json=events).status_code == 204

    send("example.com", 7)
    send("spam.example", 5)
    send("EXAMPLE.com", 2)  # the same site, as a careless snippet spells it
    seen = server.wait_shipped(14)
    assert seen["pixel_shipper_events_inserted_total"] == 9
    assert seen["pixel_shipper_events_dropped_total"] == 5
    assert seen['pixel_shipper_events_dropped_by_reason_total{reason="unregistered_site"}'] == 5
    with server.open_store() as store:
        assert store.query("SELECT site, count() FROM events GROUP BY site").rows == [["example.com", 9]]
