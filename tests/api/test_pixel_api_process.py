"""`pixel api` as a real process on a free 127.0.0.1 port: health, first admin via `pixel user add`, a report."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_http


@pytest.mark.timeout(180)
def test_pixel_api_serves_over_http(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PIXEL_DATA_DIR": str(tmp_path),
        "PIXEL_API_PORT": str(port),
        "PIXEL_HOST": "127.0.0.1",
    }
    # no account exists yet: nothing can log in (no default password)
    added = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "root"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    password = re.search(r"password: (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixel.server.cli", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/health", timeout=60, proc=proc)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/health").json() == {"status": "ok", "store": "chdb", "store_ok": True}
            for guess in ("admin", "secret", "password", ""):
                r = client.post("/api/auth/login", json={"username": "admin", "password": guess or "x"})
                assert r.status_code == 401
            token = client.post("/api/auth/login", json={"username": "root", "password": password}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            site = client.post(
                "/api/sites", json={"domain": "a.example", "timezone": "Asia/Tokyo"}, headers=headers
            )
            assert site.status_code == 201
            summary = client.get(f"/api/sites/{site.json()['id']}/reports/summary", headers=headers)
            assert summary.status_code == 200 and summary.json()["metrics"]["visitors"]["value"] == 0
            assert client.get("/api/sites").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
