"""An import through the API of a real `pixel serve` whose store process is killed (SIGKILL) mid-run: the
supervisor starts it again and the store process resumes the import by itself (nobody asks the imports API)
from its committed batch, ending with every pageview once; undo removes them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from pixel.server.importer import records
from tests.conftest import PixelProcess, free_port
from tests.importer.test_import_accesslog import big_log

SITE = "example.com"


def sql(client: httpx.Client, site_id: int, query: str) -> Any:
    r = client.post("/api/sql", json={"site_id": site_id, "query": query})
    assert r.status_code == 200, r.text
    return r.json()["rows"][0][0]


def until(check: Any, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_killed_store_process_resumes_the_import(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    added = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", "owner"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIXEL_DATA_DIR": str(data)},
        timeout=120,
        check=True,
    )
    password = re.search(r"password: (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    log = tmp_path / "access.log"
    pageviews = big_log(log, 300_000)
    server = PixelProcess(
        "serve", data, free_port(), free_port(), {"PIXEL_WORKERS": "1", "PIXEL_LOG_LEVEL": "WARNING"}
    )
    server.start()
    try:
        with httpx.Client(base_url=server.api, timeout=60) as client:
            token = client.post("/api/auth/login", json={"username": "owner", "password": password})
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            site_id = client.post("/api/sites", json={"domain": SITE, "timezone": "UTC"}).json()["id"]
            up = client.post("/api/imports/files", params={"name": "access.log"}, content=log.read_bytes())
            assert up.status_code == 201 and up.json()["kind"] == "accesslog", up.text
            r = client.post(
                "/api/imports", json={"upload": up.json()["id"], "kind": "accesslog", "site_id": site_id}
            )
            assert r.status_code == 202, r.text
            import_id = r.json()["id"]
            until(lambda: client.get(f"/api/imports/{import_id}").json()["lines"] > 0)
            pid = client.get("/health").json()["pid"]
            os.kill(pid, signal.SIGKILL)
            record = records.load(data / "state", import_id)
            assert (
                record is not None and record.status == "running" and 0 < record.offset < log.stat().st_size
            )

            def restarted() -> bool:
                try:
                    return bool(client.get("/health").json().get("pid", pid) != pid)
                except httpx.HTTPError:
                    return False

            until(restarted)
            # nobody asks the imports API: the new store process goes on by itself
            until(lambda: sql(client, site_id, "SELECT count() FROM events FINAL") == pageviews)
            # the record is marked done after the last batch is committed, so the rows can be seen first
            until(lambda: client.get(f"/api/imports/{import_id}").json()["status"] != "running")
            done = client.get(f"/api/imports/{import_id}").json()
            assert (done["status"], done["rows"], done["percent"]) == ("done", pageviews, 100.0)
            assert sql(client, site_id, "SELECT count() FROM events") == pageviews  # no copies
            r = client.delete(f"/api/imports/{import_id}")
            assert r.json()["rows_deleted"] == pageviews
            assert sql(client, site_id, "SELECT count() FROM events") == 0
    finally:
        server.stop()
