"""The stack page's MaxMind key on a real engine (#14): "MaxMind key…" on an installed compact Pixel stack keeps the
key in the keyring (a real Secret Service) and installs the stack again with it, so the key file appears in the
stack's data volume (`/data/secrets/maxmind-license-key`, read back from the running container and, separately,
from the volume by a throwaway container); a second key replaces it; "Forget MaxMind key" removes the keyring
entry and the file, and a later re-install from the app (which takes the key from the keyring) brings none back.
The key is never in a container's configuration nor in the settings kept with the stack."""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pixel.app import secret_store
from pixel.app.desktop.site_tools import PublicPanel
from pixel.app.desktop.workers import Runner
from pixel.app.stack import image as images
from pixel.app.stack import maxmind_key
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.manage import open_stack
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import DATA_DIR, MAXMIND_LICENSE_KEY_FILE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))  # tests/stack: its stack helpers
from stack_helpers import BUSYBOX, compact_test_values, unique_project

BASE = "pixel-base/python:bookworm"  # made by scripts/system.d/20-docker.sh
TAG = f"pixel-analytics:maxmind-page-{uuid.uuid4().hex[:8]}"
ACCOUNT = "4242"
FIRST = "mmPage-K3y_first-0123"
SECOND = "mmPage-K3y_second-4567"
SET_OK = "MaxMind key kept in your keyring and given to the stack (GeoLite2 from the next refresh)."
FORGET_OK = "MaxMind key removed from your keyring and from the stack."


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = connect(EngineTarget())
    yield client
    client.close()


@pytest.fixture(scope="module")
def pixel_image(docker_client, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    ctx = images.make_context(tmp_path_factory.mktemp("ctx"))
    images.build(docker_client, images.ImageSource("build", ctx, base=BASE, network_mode="none"), TAG)
    yield TAG
    docker_client.images.remove(TAG, force=True)


def _in_container(prov: Provisioner) -> str | None:
    """The key file as the stack's own container reads it (its image's user), or None when it does not exist."""
    pixel = prov.container("pixel")
    assert pixel is not None and pixel.status == "running"
    res = pixel.exec_run(["cat", MAXMIND_LICENSE_KEY_FILE])
    return res.output.decode() if res.exit_code == 0 else None


def _in_volume(client: docker.DockerClient, prov: Provisioner) -> str | None:
    """The key file read straight from the data volume by a throwaway container (not through the stack)."""
    pixel = prov.container("pixel")
    assert pixel is not None
    volume = next(m["Name"] for m in pixel.attrs["Mounts"] if m["Destination"] == DATA_DIR)
    relative = MAXMIND_LICENSE_KEY_FILE.removeprefix(DATA_DIR + "/")
    script = f"if [ -e /v/{relative} ]; then cat /v/{relative}; else echo ABSENT; fi"
    out = client.containers.run(
        BUSYBOX, ["sh", "-c", script], volumes={volume: {"bind": "/v", "mode": "ro"}}, remove=True
    ).decode()
    return None if out == "ABSENT\n" else out


def _nowhere_else(client: docker.DockerClient, prov: Provisioner, key: str) -> None:
    for c in prov.containers():
        c.reload()
        assert key not in json.dumps(c.attrs), c.name
    assert key not in json.dumps(open_stack(client, prov.spec.project).settings)


def _wait(qtbot, runner: Runner, task) -> None:  # type: ignore[no-untyped-def]
    assert task is not None
    qtbot.waitUntil(lambda: task.finished.is_set() and runner.busy == 0, timeout=240_000)


def test_stack_page_sets_replaces_and_forgets_the_key_file_of_a_real_stack(  # type: ignore[no-untyped-def]
    qtbot, secret_service: Path, docker_client, pixel_image
) -> None:
    project = unique_project("pxmmk")
    profile = f"page-{project}"
    runner = Runner()
    panel = PublicPanel(runner)
    qtbot.addWidget(panel)
    prov = open_stack(
        docker_client,
        project,
        "compact",
        {**compact_test_values(pixel_image), "PIXEL_GEOIP_AUTO_UPDATE": "off"},
    )
    try:
        prov.install()
        assert _in_container(prov) is None and _in_volume(docker_client, prov) is None  # no key yet
        panel.provisioner, panel.profile_name = prov, profile
        answers = [(ACCOUNT, f" {FIRST}\n"), (ACCOUNT, SECOND)]
        panel.ask_maxmind = lambda: answers.pop(0)

        # "MaxMind key…": keyring first, then the stack installed again with the key file
        _wait(qtbot, runner, panel.set_maxmind())
        assert panel.maxmind_note.text() == SET_OK
        assert secret_store.get_secret(profile, maxmind_key.KIND) == FIRST
        assert _in_container(prov) == FIRST + "\n"
        assert _in_volume(docker_client, prov) == FIRST + "\n"
        assert open_stack(docker_client, project).settings["PIXEL_MAXMIND_ACCOUNT_ID"] == ACCOUNT
        _nowhere_else(docker_client, prov, FIRST)

        # a second key replaces the file and the keyring entry (same account id: the same container)
        pixel_id = prov.container("pixel").id  # type: ignore[union-attr]
        _wait(qtbot, runner, panel.set_maxmind())
        assert panel.maxmind_note.text() == SET_OK
        assert secret_store.get_secret(profile, maxmind_key.KIND) == SECOND
        assert _in_container(prov) == SECOND + "\n"
        assert _in_volume(docker_client, prov) == SECOND + "\n"
        assert prov.container("pixel").id == pixel_id  # type: ignore[union-attr]
        _nowhere_else(docker_client, prov, SECOND)

        # "Forget MaxMind key", not confirmed: both stay
        panel.confirm = lambda _text: False
        assert panel.forget_maxmind() is None
        assert secret_store.get_secret(profile, maxmind_key.KIND) == SECOND
        assert _in_volume(docker_client, prov) == SECOND + "\n"

        # confirmed: the keyring entry and the file are gone, the stack still runs
        panel.confirm = lambda _text: True
        _wait(qtbot, runner, panel.forget_maxmind())
        assert panel.maxmind_note.text() == FORGET_OK
        assert secret_store.get_secret(profile, maxmind_key.KIND) is None
        assert _in_container(prov) is None
        assert _in_volume(docker_client, prov) is None

        # the app's next re-install takes the key from the keyring: none now, and no file comes back
        again = open_stack(docker_client, project, values=maxmind_key.with_stored_key(profile))
        assert again.secrets == {}
        again.install()
        assert _in_volume(docker_client, again) is None
    finally:
        runner.shutdown(5_000)
        with contextlib.suppress(Exception):
            open_stack(docker_client, project).uninstall(delete_data=True)
        secret_store.delete_profile(profile)
