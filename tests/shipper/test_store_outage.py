"""The ClickHouse server is down for a while: the collector keeps answering 204, the spool keeps
everything, and the backlog drains completely when the server is back (through the real
clickhouse-connect client, against the test-only front on chDB or PIXEL_TEST_CLICKHOUSE_URL's server)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import orjson

from pixel.server.settings import Settings
from pixel.server.store.clickhouse_engine import ClickHouseStore
from tests.auth_helpers import admin_token
from tests.chfront import ChFront
from tests.conftest import free_port


def _send(url: str, n: int, tag: str) -> int:
    ok = 0
    with httpx.Client(timeout=10) as client:
        for i in range(0, n, 10):
            batch = [
                {
                    "event_name": "pageview",
                    "event_id": f"{tag}-{i + j}",
                    "site": "outage.example",
                    "page": {"url": "https://outage.example/"},
                }
                for j in range(10)
            ]
            ok += 10 * (client.post(f"{url}/track", content=orjson.dumps(batch)).status_code == 204)
    return ok


def _backlog(proc) -> float:
    return proc.metrics("collector")["pixel_spool_backlog_bytes"]


def test_collector_keeps_accepting_while_clickhouse_is_down_and_the_backlog_drains(
    pixel_factory, tmp_path
) -> None:
    ch_port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{ch_port}"
    server = pixel_factory(
        "serve",
        wait=False,
        pixel_store="clickhouse",
        pixel_clickhouse_url=url,
        pixel_clickhouse_database="outage",
        pixel_batch_max_seconds="0.05",
    )
    server._wait(f"{server.collector}/health")
    assert _send(server.collector, 1000, "a") == 1000  # the store process cannot even start
    time.sleep(0.3)
    first_backlog = _backlog(server)
    assert first_backlog > 0
    assert _send(server.collector, 1000, "b") == 1000
    time.sleep(0.3)
    assert _backlog(server) > first_backlog  # it grows while the server is away

    front = ChFront.start(tmp_path / "ch", port=ch_port)
    try:
        server._wait(f"{server.api}/health")  # the supervisor restarted the store process
        server.wait_shipped(2000, timeout=90)
        token = admin_token(server)
        front.stop()  # down again, mid-run this time
        assert _send(server.collector, 1000, "c") == 1000
        time.sleep(1.5)
        health = httpx.get(f"{server.api}/health").json()
        assert health["store_reachable"] is False
        assert health["status"] == "degraded"
        assert "last_error" not in health  # the error's text only for an admin
        details = httpx.get(f"{server.api}/health", headers={"Authorization": f"Bearer {token}"}).json()
        assert url in details["last_error"]
        assert _backlog(server) > 0
        front = ChFront.start(tmp_path / "ch", port=ch_port)
        deadline = time.monotonic() + 90
        while _backlog(server) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _backlog(server) == 0
        server.stop()
        store = ClickHouseStore.from_settings(
            Settings(store="clickhouse", clickhouse_url=url, clickhouse_database="outage")
        )
        try:
            assert store.scalar("SELECT count() FROM events FINAL") == 3000
            assert store.scalar("SELECT uniqExact(event_id) FROM events") == 3000
        finally:
            store.close()
    finally:
        front.stop()


def test_ship_with_unreachable_clickhouse_says_so_in_one_line(tmp_path) -> None:
    port = free_port()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixel.server.cli",
            "ship",
            "--data-dir",
            str(tmp_path),
            "--api-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "PIXEL_STORE": "clickhouse",
            "PIXEL_CLICKHOUSE_URL": f"http://127.0.0.1:{port}",
        },
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pixel: ") and f"http://127.0.0.1:{port}" in lines[0]
