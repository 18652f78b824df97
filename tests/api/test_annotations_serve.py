"""Automatic annotations written by a real `pixel serve`: a data folder last run by an older release and an
older tracker build, with a restore announced, gets one annotation for each at start, and none again after a
restart; a change of a site's rules through its API is annotated with what changed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from pixel.server.annotations import write_state
from pixel.server.annotations.watch import announce, release
from pixel.server.api.app import open_meta
from pixel.server.settings import Settings
from tests.auth_helpers import admin_token

T_OLD = 1_780_000_000.0  # when the older release recorded what it saw (a fixed moment)


def _automatic(process: Any, token: str, site_id: int) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{process.api}/api/sites/{site_id}/annotations",
        params={"automatic": "true", "limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _wait_for(
    process: Any, token: str, site_id: int, kinds: set[str], timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    notes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        notes = _automatic(process, token, site_id)
        if kinds <= {n["kind"] for n in notes}:
            return notes
        time.sleep(0.3)
    raise AssertionError(f"no {kinds - {n['kind'] for n in notes}} annotation within {timeout} s: {notes}")


def test_serve_annotates_upgrade_tracker_restore_and_rules_once(pixel_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    meta = open_meta(Settings(data_dir=data))
    site_id = meta.insert(
        "sites", {"domain": "shop.example", "name": "Shop", "timezone": "UTC", "created_at": 0.0}
    )
    write_state(meta, "release", "0.0.1", T_OLD)
    write_state(meta, "tracker", {"pixel.js": "0ld", "pixel.ext.js": "0ld"}, T_OLD)
    announce(
        Settings(data_dir=data).state_dir,
        "restore",
        "Restored from pixel-backup.tar.gz",
        T_OLD,
        {"backup": "x"},
    )

    serve = pixel_factory("serve", data_dir=data)
    token = admin_token(serve)
    notes = _wait_for(serve, token, site_id, {"upgrade", "tracker", "restore"})
    by_kind = {n["kind"]: n for n in notes}
    assert by_kind["upgrade"]["text"] == f"Pixel upgraded from 0.0.1 to {release()}"
    assert by_kind["upgrade"]["site_id"] is None
    assert by_kind["restore"]["text"] == "Restored from pixel-backup.tar.gz"
    assert by_kind["restore"]["starts_at"] == T_OLD
    assert by_kind["tracker"]["text"] == "Tracker build changed: pixel.ext.js, pixel.js"
    served = {
        name: httpx.get(f"{serve.collector}/{name}", timeout=10).headers["etag"].strip('"')
        for name in ("pixel.js", "pixel.ext.js")
    }
    assert by_kind["tracker"]["details"]["to"] == served  # what the collector serves
    assert list((Settings(data_dir=data).state_dir / "annotations-inbox").glob("*.json")) == []

    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.patch(
        f"{serve.api}/api/sites/{site_id}",
        json={"honour_gpc": False, "excluded_ips": ["192.0.2.0/24"]},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    rules = [n for n in _automatic(serve, token, site_id) if n["kind"] == "site_rules"]
    assert [(n["text"], n["details"]) for n in rules] == [
        (
            "Site rules changed — Global Privacy Control honoured: True → False; excluded IPs: +192.0.2.0/24",
            {
                "honour_gpc": {"from": True, "to": False},
                "excluded_ips": {"added": ["192.0.2.0/24"], "removed": []},
            },
        )
    ]

    # a restart of the same release and build: nothing is written again
    before = json.dumps(sorted((n["kind"], n["id"]) for n in _automatic(serve, token, site_id)))
    serve.stop()
    again = pixel_factory("serve", data_dir=data, port=serve.port, api_port=serve.api_port)
    token = admin_token(again)
    time.sleep(2)
    after = json.dumps(sorted((n["kind"], n["id"]) for n in _automatic(again, token, site_id)))
    assert after == before
