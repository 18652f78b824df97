"""Each site's tracking rules, set through the API, applied by the shipper (server/enrich/siterules.py).

The rules live in the API's metadata database (real SQLite, written by the API's own MetaDB or over HTTP);
events are enriched by the real Enricher, and end to end through `pixel serve` into chDB.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pixel.server.api.meta import MetaDB
from pixel.server.api.security import hash_password
from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.enrich.siterules import SiteRules
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize

NOW = int(time.time() * 1000)


def add_site(meta: MetaDB, domain: str, **fields: Any) -> int:
    values = {
        "domain": domain,
        "name": domain,
        "timezone": "UTC",
        "allowed_origins": [],
        "honour_dnt": False,
        "honour_gpc": False,
        "excluded_paths": [],
        "excluded_ips": [],
        "retention_days": 0,
        "created_at": time.time(),
        **fields,
    }
    return meta.insert("sites", values)


def kept(
    enricher: Enricher,
    site: str,
    path: str = "/",
    ip: str = "81.2.69.142",
    origin: str = "",
    dnt: bool = False,
    gpc: bool = False,
) -> bool:
    ev = {"event_name": "pageview", "ts": NOW, "site": site, "page": {"url": f"https://{site}{path}"}}
    row = normalize(ev, NOW, min_ms=0, segment="seg", offset=0, index=0)
    return enricher.enrich(row, ev, RequestFacts(NOW, ip, "Mozilla/5.0", "en", origin, dnt=dnt, gpc=gpc))


@pytest.fixture()
def setup(tmp_path: Path):
    settings = Settings(data_dir=tmp_path)
    meta = MetaDB(settings.meta_db_path)
    enricher = Enricher(settings)
    yield meta, enricher
    enricher.close()


@pytest.mark.parametrize(
    ("fields", "case", "expected"),
    [
        ({}, {"dnt": True, "gpc": True}, True),  # a site with no rules keeps everything (tracked cookieless)
        ({"honour_dnt": True}, {"dnt": True}, False),
        ({"honour_dnt": True}, {"gpc": True}, True),
        ({"honour_gpc": True}, {"gpc": True}, False),
        ({"honour_gpc": True}, {"dnt": True}, True),
        ({"excluded_paths": ["/admin/*", "/preview"]}, {"path": "/admin/users/7"}, False),
        ({"excluded_paths": ["/admin/*", "/preview"]}, {"path": "/preview"}, False),
        ({"excluded_paths": ["/admin/*", "/preview"]}, {"path": "/preview/x"}, True),
        ({"excluded_paths": ["/admin/*", "/preview"]}, {"path": "/administrator"}, True),
        ({"excluded_paths": ["/*.php"]}, {"path": "/wp/login.php"}, False),
        ({"excluded_ips": ["203.0.113.0/24", "2001:db8::1"]}, {"ip": "203.0.113.77"}, False),
        ({"excluded_ips": ["203.0.113.0/24", "2001:db8::1"]}, {"ip": "2001:db8::1"}, False),
        ({"excluded_ips": ["203.0.113.0/24", "2001:db8::1"]}, {"ip": "203.0.114.1"}, True),
        (
            {"allowed_origins": ["https://shop.example", "http://localhost:8000"]},
            {"origin": "shop.example"},
            True,
        ),
        (
            {"allowed_origins": ["https://shop.example", "http://localhost:8000"]},
            {"origin": "localhost:8000"},
            True,
        ),
        (
            {"allowed_origins": ["https://shop.example", "http://localhost:8000"]},
            {"origin": "evil.example"},
            False,
        ),
        (
            {"allowed_origins": ["https://shop.example"]},
            {"origin": ""},
            True,
        ),  # no Origin/Referer: server-side sender
        ({"allowed_origins": ["*"]}, {"origin": "evil.example"}, True),
    ],
)
def test_rules_of_the_event_site(setup, fields: dict[str, Any], case: dict[str, Any], expected: bool) -> None:
    meta, enricher = setup
    add_site(meta, "shop.example", **fields)
    add_site(
        meta,
        "other.example",
        honour_dnt=True,
        honour_gpc=True,
        excluded_paths=["/*"],
        excluded_ips=["0.0.0.0/0", "::/0"],
        allowed_origins=["https://nowhere.example"],
    )
    assert kept(enricher, "shop.example", **case) is expected


def test_sites_unknown_to_the_api_keep_everything(setup) -> None:
    meta, enricher = setup
    add_site(meta, "shop.example", honour_dnt=True, excluded_paths=["/*"])
    assert kept(enricher, "elsewhere.example", dnt=True) is True
    assert kept(enricher, "SHOP.example", dnt=True) is False  # domains compare case-insensitively


def test_changed_rules_apply_after_the_refresh_interval(tmp_path: Path) -> None:
    meta = MetaDB(tmp_path / "meta.sqlite3")
    rules = SiteRules(tmp_path / "meta.sqlite3", interval=0.2)
    assert rules.get("shop.example") is None
    site = add_site(meta, "shop.example")
    time.sleep(0.25)
    rule = rules.get("shop.example")
    assert rule is not None and rule.drop_reason("/admin", "198.51.100.1", "", False, False) == ""
    meta.update("sites", site, {"excluded_paths": ["/admin"]})
    assert rules.get("shop.example").drop_reason("/admin", "198.51.100.1", "", False, False) == ""  # not yet
    time.sleep(0.25)
    assert (
        rules.get("shop.example").drop_reason("/admin", "198.51.100.1", "", False, False) == "excluded path"
    )
    meta.delete("sites", site)
    time.sleep(0.25)
    assert rules.get("shop.example") is None


def test_no_metadata_database_means_no_rules_and_none_is_created(tmp_path: Path) -> None:
    rules = SiteRules(tmp_path / "state" / "meta.sqlite3", interval=0)
    assert rules.get("shop.example") is None
    assert not (tmp_path / "state").exists()


def test_site_rules_set_through_the_api_apply_end_to_end(pixel_factory) -> None:
    """`pixel serve`: an admin sets a site's rules over the API; what they exclude is never stored, counted."""
    proc = pixel_factory("serve", pixel_trusted_proxies="127.0.0.1")
    MetaDB(Settings(data_dir=proc.data_dir).meta_db_path).create_user(
        "admin", hash_password("pw-123456789"), "admin"
    )
    token = httpx.post(
        f"{proc.api}/api/auth/login", json={"username": "admin", "password": "pw-123456789"}
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{proc.api}/api/sites", headers=auth, json={"domain": "shop.example"})
    assert r.status_code == 201, r.text
    site_id = r.json()["id"]
    r = httpx.patch(
        f"{proc.api}/api/sites/{site_id}",
        headers=auth,
        json={
            "honour_dnt": True,
            "honour_gpc": False,
            "excluded_paths": ["/admin/*"],
            "excluded_ips": ["203.0.113.0/24"],
            "allowed_origins": ["https://shop.example"],
        },
    )
    assert r.status_code == 200, r.text
    time.sleep(2.5)  # the shipper re-reads the rules at most every 2 s

    def send(
        path: str, *, ip: str = "198.51.100.7", origin: str = "https://shop.example", **headers: str
    ) -> None:
        body = orjson.dumps(
            {"event_name": "pageview", "site": "shop.example", "page": {"url": f"https://shop.example{path}"}}
        )
        r = httpx.post(
            f"{proc.collector}/track",
            content=body,
            headers={"X-Forwarded-For": ip, "Origin": origin, **headers},
        )
        assert r.status_code == 204

    send("/kept-1")
    send("/kept-gpc", **{"Sec-GPC": "1"})  # GPC not honoured by this site
    send("/dnt", DNT="1")
    send("/admin/settings")
    send("/from-office", ip="203.0.113.9")
    send("/copied-snippet", origin="https://evil.example")
    send("/kept-2", origin="")
    seen = proc.wait_shipped(7)
    assert seen["pixel_shipper_events_inserted_total"] == 3
    assert seen["pixel_shipper_events_dropped_total"] == 4
    with proc.open_store() as store:
        paths = sorted(
            r[0] for r in store.query("SELECT path FROM events FINAL WHERE site = 'shop.example'").rows
        )
    assert paths == ["/kept-1", "/kept-2", "/kept-gpc"]
