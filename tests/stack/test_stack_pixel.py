"""The compact stack end to end with the real Pixel image, built offline on the local engine from the
Debian base that scripts/system.d/20-docker.sh makes (no registry): install, events in, figures out,
idempotent reinstall, backup/restore, and an upgrade to a broken image that is rolled back."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from stack_helpers import PIXEL_BROKEN as BROKEN
from stack_helpers import PIXEL_TAG as TAG
from stack_helpers import api_call as _call
from stack_helpers import compact_test_values, register_site, unique_project
from stack_helpers import send_pageviews as _send
from stack_helpers import wait_for_count as _wait_for_count

from pixel.app.stack import image as images
from pixel.app.stack.errors import StackError
from pixel.app.stack.manage import open_stack
from pixel.app.stack.provisioner import Credentials, Provisioner


def _open(client, project: str, image: str = TAG) -> Provisioner:
    return open_stack(client, project, "compact", compact_test_values(image))


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


_SEND_UNREGISTERED = (
    "import json, urllib.request as u\n"
    "body = json.dumps([{'event_name': 'pageview', 'site': 'spam.example'}] * 3).encode()\n"
    "u.urlopen(u.Request('http://127.0.0.1:8081/track', data=body), timeout=5)\n"
)


def _wait_for_dropped(p: Provisioner, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    dropped = -1
    while time.monotonic() < deadline:
        for line in _api_metrics(p).splitlines():
            if line.startswith("pixel_shipper_events_dropped_total "):
                dropped = int(float(line.split()[1]))
        if dropped == expected:
            return dropped
        time.sleep(0.3)
    return dropped


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

    register_site(pixel.ports[8082], result.admin.username, result.admin.password)
    _send(pixel.ports[8081], 25)
    assert _wait_for_count(p, 25) == 25
    assert "pixel_shipper_events_inserted_total 25" in _api_metrics(p)  # through the published API port
    assert p.status().backlog_bytes == 0
    admin = result.admin
    assert _stored_pageviews(p, admin) == 25
    # the data volume is the service user's alone: nothing in it is open to group or others
    container = p.container("pixel")
    listing = container.exec_run(
        ["find", "/data", "!", "-type", "l", "(", "-perm", "/077", "-o", "!", "-user", "pixel", ")"]
    ).output
    assert listing.decode() == "" and container.exec_run(["stat", "-c", "%a", "/data"]).output == b"700\n"
    spam = container.exec_run(["python3", "-c", _SEND_UNREGISTERED])
    assert spam.exit_code == 0, spam.output
    assert _wait_for_dropped(p, 3) == 3  # events for a site nobody registered: dropped and counted

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
