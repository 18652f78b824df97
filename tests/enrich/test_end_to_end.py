"""Through a real `pixel serve`: traffic from known client IPs (via a trusted proxy's X-Forwarded-For) is enriched
(geo from the MaxMind test DB, device, source, channel) and no raw IP is left anywhere — not in any column of any
table, not in the spool after shipping, not in the data folder's other files."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

DATA = Path(__file__).parent / "data"
IPS = {
    "81.2.69.142": ("GB", "England", "London"),
    "216.160.83.56": ("US", "Washington", "Milton"),
    "89.160.20.112": ("SE", "Östergötland County", "Linköping"),
    "2001:480::1": ("US", "California", "San Diego"),
}
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


def _event(i: int, ip: str) -> dict:
    return {
        "event_name": "pageview",
        "ts": int(time.time() * 1000),
        "site": "example.com",
        "page": {
            "url": f"https://example.com/p{i}?utm_source=newsletter&utm_medium=email&email=jane%40example.com",
            "path": f"/p{i}",
            "title": "Hello",
            "referrer": "",
        },
        "device": {"screen": "390x844", "lang": "en-GB", "tz": "Europe/London", "dpr": 3},
        "user_id": "jane@example.com",
        "params": {"ip": ip},  # a careless site sends the IP in a custom property too
    }


def test_raw_ip_never_reaches_the_store_or_the_spool(pixel_factory) -> None:
    server = pixel_factory(
        "serve",
        pixel_trusted_proxies="127.0.0.1,::1",
        pixel_geoip_db=str(DATA / "GeoLite2-City-Test.mmdb"),
        pixel_segment_max_age="0.5",
    )
    sent = 0
    for i, ip in enumerate(IPS):
        ua = IPHONE if i % 2 else CHROME
        headers = {
            "X-Forwarded-For": f"{ip}, 127.0.0.1",
            "User-Agent": ua,
            "Accept-Language": "en-GB,en;q=0.9",
        }
        r = httpx.post(f"{server.collector}/track", content=orjson.dumps(_event(i, ip)), headers=headers)
        assert r.status_code == 204
        sent += 1
    # a dead letter (no event_name) from a known IP must not carry it either
    r = httpx.post(
        f"{server.collector}/track",
        json={"page": {"url": "https://example.com/"}},
        headers={"X-Forwarded-For": "81.2.69.142", "User-Agent": CHROME},
    )
    assert r.status_code == 204
    server.wait_shipped(sent + 1)

    spool = server.data_dir / "spool"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(
        p.suffix == ".seg" or p.stat().st_size > 16 for p in spool.iterdir()
    ):
        time.sleep(0.2)

    with server.open_store() as store:
        rows = store.query(
            "SELECT country, region, city, browser, device_type, channel, source, medium, url, "
            "user_id, ip_hash, is_bot, props FROM events FINAL ORDER BY path"
        ).dicts()
        tables = store.query(
            "SELECT database, name FROM system.tables WHERE database NOT IN "
            "('system', 'INFORMATION_SCHEMA', 'information_schema')"
        ).rows
        dumps = {f"{db}.{name}": store.query(f"SELECT * FROM `{db}`.`{name}`").rows for db, name in tables}

    # the enrichment really saw each client's address ...
    assert [(r["country"], r["region"], r["city"]) for r in rows] == list(IPS.values())
    assert [r["browser"] for r in rows] == ["Chrome", "Safari", "Chrome", "Safari"]
    assert [r["device_type"] for r in rows] == ["desktop", "mobile", "desktop", "mobile"]
    assert {(r["channel"], r["source"], r["medium"]) for r in rows} == {("Email", "newsletter", "email")}
    assert all(
        r["url"].endswith("?utm_source=newsletter&utm_medium=email") for r in rows
    )  # e-mail param gone
    assert {r["user_id"] for r in rows} == {""}
    assert {r["is_bot"] for r in rows} == {0}
    assert len({r["ip_hash"] for r in rows}) == 4 and all(len(r["ip_hash"]) == 32 for r in rows)
    # ... yet no column of any table holds any of the addresses
    assert {"default.events", "default.dead_letters"} <= set(dumps) or any(
        k.endswith(".events") for k in dumps
    )
    for table, table_rows in dumps.items():
        text = repr(table_rows)
        for ip in IPS:
            assert ip not in text, f"{ip} found in {table}"
    # nor the spool after shipping, nor any other file outside the store's own column files
    for path in server.data_dir.rglob("*"):
        if path.is_file() and "store" not in path.relative_to(server.data_dir).parts:
            content = path.read_bytes()
            for ip in IPS:
                assert ip.encode() not in content, f"{ip} found in {path}"
