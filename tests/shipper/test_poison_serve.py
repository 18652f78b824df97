"""The poison pill end to end through `pixel serve` (real collector workers, store process, chDB): refused by
the collector on both routes; written by an older collector into the spool, it is dead-lettered and every
other site's events are stored; /health and /metrics tell the truth, with details only for an admin."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import orjson

from pixel.server.spool import SpoolWriter, encode_record
from tests.auth_helpers import admin_token, health

POISON_BODY = b'{"n":"purchase","h":"poison.example","p":{"u":"https://poison.example/"},"a":{"k":' + (
    b"[" * 300 + b"1" + b"]" * 300 + b"}}"
)
DETAIL = "parameter k must be a string, number, boolean or null, not an array"


def event(site: str, i: int) -> dict:
    return {"n": "pageview", "i": f"{site}-{i}", "h": site, "p": {"u": f"https://{site}/p{i}"}, "a": {}}


def old_spool(data_dir: Path) -> None:
    """What a collector before the shared check wrote: the poison among ordinary events of two sites."""
    writer = SpoolWriter(data_dir / "spool", fsync_interval=0)
    ms = int(time.time() * 1000)
    for body in (
        orjson.dumps([event("before.example", 1)]),
        b"[" + orjson.dumps(event("before.example", 2)) + b"," + POISON_BODY + b"]",
        orjson.dumps(event("other.example", 3)),
    ):
        writer.append(encode_record(ms, b"198.51.100.23", b"Mozilla/5.0", b"en", b"", b"", b"", body))
    writer.rotate()
    writer.close()


def test_the_poison_pill_never_stops_ingestion(pixel_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    old_spool(data)
    server = pixel_factory("serve", data_dir=data, pixel_shipper_stall_seconds="2")
    # refused by today's collector, on both routes, with the reason
    r = httpx.post(f"{server.collector}/track", content=POISON_BODY)
    assert (r.status_code, r.json()) == (400, {"error": "invalid event", "detail": DETAIL})
    e = base64.urlsafe_b64encode(POISON_BODY).rstrip(b"=").decode()
    r = httpx.get(f"{server.collector}/track?e={e}")
    assert (r.status_code, r.json()["detail"]) == (400, DETAIL)
    # ordinary events from another site after it
    for i in range(10, 15):
        r = httpx.post(f"{server.collector}/track", content=orjson.dumps(event("after.example", i)))
        assert r.status_code == 204
    metrics = server.wait_shipped(4 + 5)
    assert (metrics["pixel_shipper_events_inserted_total"], metrics["pixel_shipper_events_dead_total"]) == (
        8,
        1,
    )
    assert (metrics["pixel_healthy"], metrics["pixel_spool_oldest_unshipped_seconds"]) == (1, 0)
    public = health(server)
    assert public == {"status": "ok", "reasons": [], "store": "chdb", "store_reachable": True}
    token = admin_token(server)
    details = health(server, token)
    assert details["status"] == "ok" and details["events_dead"] == 1 and details["events_inserted"] == 8
    assert isinstance(details["pid"], int) and details["last_error"] == ""
    viewer = health(server, admin_token(server, role="viewer"))
    assert "pid" not in viewer and "last_error" not in viewer
    assert "pid" not in health(server, "not-a-token")
    with server.open_store() as store:
        stored = store.query("SELECT site, count() FROM events FINAL GROUP BY site ORDER BY site").rows
        dead = store.query("SELECT reason, position(payload, '198.51.100.23') FROM dead_letters").rows
    assert stored == [["after.example", 5], ["before.example", 2], ["other.example", 1]]
    assert dead == [[DETAIL, 0]]


def test_health_says_degraded_while_the_shipper_cannot_advance(pixel_factory, tmp_path: Path) -> None:
    """A shipper that cannot save its checkpoint (its temp file's path is taken by a folder: a broken disk
    state) ships nothing: /health turns degraded with the reason after PIXEL_SHIPPER_STALL_SECONDS, and
    the age of the oldest unshipped record grows; once the fault is gone it ships and says ok again."""
    server = pixel_factory("serve", pixel_shipper_stall_seconds="1.5", pixel_store_retry_seconds="0.2")
    blocker = server.data_dir / "state" / "shipper-checkpoint.tmp"
    blocker.mkdir(parents=True)
    r = httpx.post(f"{server.collector}/track", content=orjson.dumps(event("stuck.example", 1)))
    assert r.status_code == 204
    deadline = time.monotonic() + 30
    public = health(server)
    while public["status"] == "ok" and time.monotonic() < deadline:
        time.sleep(0.2)
        public = health(server)
    assert public["status"] == "degraded" and public["store_reachable"] is True
    assert len(public["reasons"]) == 1
    assert public["reasons"][0].startswith("the shipper has not advanced for ")
    assert public["reasons"][0].endswith(" s while the spool holds unshipped events")
    assert "pid" not in public and "last_error" not in public
    details = health(server, admin_token(server))
    assert "shipper-checkpoint.tmp" in details["last_error"] and details["oldest_unshipped_seconds"] >= 1.5
    metrics = server.metrics()
    assert metrics["pixel_healthy"] == 0 and metrics["pixel_spool_oldest_unshipped_seconds"] >= 1.5
    assert metrics["pixel_shipper_stalled_seconds"] >= 1.5 and metrics["pixel_store_up"] == 1
    blocker.rmdir()
    server.wait_shipped(1, timeout=60)
    assert health(server)["status"] == "ok"
