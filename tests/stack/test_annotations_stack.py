"""Automatic annotations of a Docker stack (app/stack/annotate.py → server/annotations/watch.py) with the real
Pixel image on the local engine: an upgrade through `manage.upgrade_to_image` and a restore of a backup each
leave one annotation on every site's charts, naming the images or the backup, at the moment the tool gave."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import PIXEL_TAG, api_call, compact_test_values, register_site, unique_project

from pixel.app.stack import image as images
from pixel.app.stack.manage import open_stack, upgrade_to_image

V2 = f"{PIXEL_TAG}-annotated"  # the same image under a new name: an upgrade that replaces the container
T_UPGRADE = 1_790_000_000.0  # the moments the tools announce (injected: never the wall clock)
T_RESTORE = 1_790_003_600.0


def _automatic(port: int, token: str, site_id: int) -> list[dict[str, Any]]:
    page = api_call(port, "GET", f"/api/sites/{site_id}/annotations?automatic=true&limit=1000", token=token)
    return [n for n in page["items"] if n["kind"] in ("upgrade", "restore")]


def _wait(port: int, admin: Any, site_id: int, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    notes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            token = api_call(
                port, "POST", "/api/auth/login", {"username": admin.username, "password": admin.password}
            )["access_token"]
            notes = _automatic(port, token, site_id)
        except OSError:
            notes = []
        if len(notes) >= count:
            return notes
        time.sleep(0.5)
    raise AssertionError(f"{len(notes)} stack annotations within {timeout} s, expected {count}: {notes}")


@pytest.mark.timeout(1800)  # the image is built first (minutes on a loaded machine), then two health waits
def test_upgrade_and_restore_are_annotated_once(docker_client, pixel_image, cleanup, tmp_path: Path) -> None:
    project = unique_project("pxn")
    prov = open_stack(docker_client, project, "compact", compact_test_values(pixel_image))
    cleanup.append(prov)
    docker_client.images.get(pixel_image).tag(*V2.rsplit(":", 1))
    try:
        result = prov.install(images.ImageSource("pull"))
        admin = result.admin
        assert admin is not None
        port = prov.status().containers[0].ports[8082]
        site = register_site(port, admin.username, admin.password)

        backup = upgrade_to_image(prov, V2, backup_dir=tmp_path, now=lambda: T_UPGRADE)
        port = prov.status().containers[0].ports[8082]
        [upgrade] = _wait(port, admin, site["id"], 1)
        assert (upgrade["kind"], upgrade["text"], upgrade["starts_at"], upgrade["site_id"]) == (
            "upgrade",
            f"Stack upgraded from {pixel_image} to {V2}",
            T_UPGRADE,
            None,
        )
        assert upgrade["details"] == {"from_image": pixel_image, "to_image": V2, "backup": backup.name}
        inbox = prov.container("pixel").exec_run(["ls", "-A", "/data/state/annotations-inbox"])
        assert (inbox.exit_code, inbox.output) == (0, b"")  # the announcement was taken and removed

        # the backup made before the upgrade is restored: its data did not have the upgrade's annotation yet
        prov.restore(backup, now=lambda: T_RESTORE)
        port = prov.status().containers[0].ports[8082]
        [restore] = _wait(port, admin, site["id"], 1)
        assert (restore["kind"], restore["text"], restore["starts_at"], restore["details"]) == (
            "restore",
            f"Data restored from the backup {backup.name}",
            T_RESTORE,
            {"backup": backup.name},
        )
        time.sleep(3)  # a while longer: nothing is written twice
        assert [n["id"] for n in _wait(port, admin, site["id"], 1)] == [restore["id"]]
    finally:
        prov.uninstall(delete_data=True)  # the tag is removed only once no container uses it
        docker_client.images.remove(V2)
