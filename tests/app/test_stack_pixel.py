"""The compact stack end to end with the real Pixel image, built offline on the local engine from the
Debian base that scripts/system.d/20-docker.sh makes (no registry): install, events in, figures out,
idempotent reinstall, backup/restore, and an upgrade to a broken image that is rolled back."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from pixel.app.stack import image as images
from pixel.app.stack.errors import StackError
from pixel.app.stack.manage import open_stack
from pixel.app.stack.provisioner import Credentials, Provisioner
from stack_helpers import unique_project

BASE = "pixel-base/python:bookworm"
TAG = "pixel-analytics:stack-test"
BROKEN = "pixel-analytics:stack-test-broken"


@pytest.fixture(scope="module")
def pixel_image(docker_client, tmp_path_factory) -> str:
    """Build the image from this checkout: wheels downloaded on the host, `--network none` build."""
    ctx = images.make_context(tmp_path_factory.mktemp("ctx"))
    images.build(docker_client, images.ImageSource("build", ctx, base=BASE, network_mode="none"), TAG)
    broken = tmp_path_factory.mktemp("broken")
    # An upgrade that wipes the data (like a botched migration) and never answers its healthcheck.
    (broken / "Dockerfile").write_text(
        f'FROM {TAG}\nENTRYPOINT ["sh", "-c", "rm -rf /data/* && exec sleep 3600", "--"]\n'
    )
    images.build(docker_client, images.ImageSource("build", broken), BROKEN)
    yield TAG
    for tag in (BROKEN, TAG):
        docker_client.images.remove(tag, force=True)


def _open(client, project: str, image: str = TAG) -> Provisioner:
    values = {
        "PIXEL_IMAGE": image,
        "PIXEL_COLLECTOR_BIND": "127.0.0.1",
        "PIXEL_COLLECTOR_PORT": "0",  # the engine picks free ports: other tests and programs run here
        "PIXEL_API_PORT": "0",
        "PIXEL_WORKERS": "1",
    }
    return open_stack(client, project, "compact", values)


def _send(port: int, n: int) -> None:
    now = int(time.time() * 1000)
    batch = [
        {
            "event_id": str(uuid.uuid4()),
            "event_name": "pageview",
            "ts": now,
            "site": "example.com",
            "page": {"url": f"https://example.com/p{i}", "path": f"/p{i}", "title": "t", "referrer": ""},
        }
        for i in range(n)
    ]
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/track",
        data=json.dumps(batch).encode(),
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def _wait_for_count(p: Provisioner, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    count = None
    while time.monotonic() < deadline:
        count = p.status().events_inserted
        if count == expected:
            return count
        time.sleep(0.5)
    raise AssertionError(f"events stored: {count}, expected {expected}")


def _call(port: int, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _stored_pageviews(p: Provisioner, admin: Credentials) -> int:
    """Pageviews of example.com today, through the container's API (published on 127.0.0.1)."""
    port = p.status().containers[0].ports[8082]
    token = _call(port, "POST", "/api/auth/login", {"username": admin.username, "password": admin.password})[
        "access_token"
    ]
    sites = _call(port, "GET", "/api/sites", token=token)["items"]
    site = next((s for s in sites if s["domain"] == "example.com"), None)
    if site is None:
        site = _call(port, "POST", "/api/sites", {"domain": "example.com"}, token=token)
    summary = _call(
        port,
        "GET",
        f"/api/sites/{site['id']}/reports/summary?period=today&compare=false&include_bots=true",
        token=token,
    )
    return int(summary["metrics"]["pageviews"]["value"])


def _api_metrics(p: Provisioner) -> str:
    port = p.status().containers[0].ports[8082]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_compact_end_to_end(docker_client, pixel_image, cleanup, tmp_path: Path):
    project = unique_project("pxe")
    p = _open(docker_client, project)
    cleanup.append(p)
    result = p.install(images.ImageSource("pull"))  # the image is present: nothing is pulled
    assert result.changed == [
        f"network {project}_default",
        f"volume {project}_data",
        f"container {project}-pixel-1",
    ]
    assert result.admin is not None and result.admin.username == "admin" and len(result.admin.password) >= 12
    [pixel] = p.status().containers
    assert (pixel.state, pixel.health, pixel.restarts) == ("running", "healthy", 0)
    assert pixel.image == TAG
    assert p.container("pixel").attrs["Config"]["User"] == "pixel"  # non-root

    _send(pixel.ports[8081], 25)
    assert _wait_for_count(p, 25) == 25
    assert "pixel_shipper_events_inserted_total 25" in _api_metrics(p)  # through the published API port
    assert p.status().backlog_bytes == 0
    admin = result.admin
    assert _stored_pageviews(p, admin) == 25

    # a second install changes nothing, even opened afresh by name (settings read back from labels)
    again = open_stack(docker_client, project)
    assert again.install().changed == []
    assert again.settings["PIXEL_IMAGE"] == TAG

    # backup -> uninstall with data deletion -> install -> restore: same count
    backup = p.backup(tmp_path / "pixel.tar.gz")
    assert p.uninstall(delete_data=True)[-1] == f"volume {project}_data"
    fresh = _open(docker_client, project)
    fresh.install()
    assert _wait_for_count(fresh, 0) == 0
    fresh.restore(backup)
    assert _stored_pageviews(fresh, admin) == 25  # the restored metadata DB still knows the admin

    # upgrade to an image that wipes the data and never gets healthy: rolled back, data intact
    broken = _open(docker_client, project, BROKEN)
    with pytest.raises(StackError) as err:
        fresh.upgrade(
            broken.spec, backup_dir=tmp_path / "backups", health_timeout=15, settings=broken.settings
        )
    assert err.value.code == "upgrade-rolled-back"
    [pixel] = fresh.status().containers
    assert (pixel.state, pixel.health) == ("running", "healthy")
    assert _stored_pageviews(fresh, admin) == 25
    _send(pixel.ports[8081], 5)
    assert _wait_for_count(fresh, 5) == 5  # the counter is per process: 5 since the rollback
    assert _stored_pageviews(fresh, admin) == 30
