"""The stack page's MaxMind buttons (#14): "MaxMind key…" keeps the key in the keyring under the profile before the
stack is contacted, "Forget MaxMind key" removes it; an engine that cannot be reached is said in one plain line.
A docker-py client pointed at a refusing port (no Docker engine is used) and a real Secret Service. The module
carries the docker marker only because it builds a Docker client (tests/conftest.py's rule)."""

from __future__ import annotations

from pathlib import Path

import docker

from pixel.app import secret_store
from pixel.app.desktop.site_tools import PublicPanel
from pixel.app.desktop.workers import Runner
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import build_spec
from tests.desktop.test_maxmind_key import BASE, KEY


def test_stack_page_sets_and_forgets_the_key_through_the_keyring(qtbot, secret_service: Path) -> None:  # type: ignore[no-untyped-def]
    """The stack page's MaxMind buttons against an engine that refuses at once (port 1: no Docker used): the
    keyring is written before the stack is contacted, the engine's refusal is shown, "forget" clears it."""
    runner = Runner()
    panel = PublicPanel(runner)
    qtbot.addWidget(panel)
    client = docker.DockerClient(base_url="tcp://127.0.0.1:1", version="1.41", timeout=5)
    try:
        answers: list[tuple[str, str] | None] = [None, ("12x", KEY), ("4242", KEY)]
        panel.ask_maxmind = lambda: answers.pop(0)
        assert panel.set_maxmind() is None  # no stack open yet: nothing asked
        panel.provisioner = Provisioner(client, build_spec("compact").resolve(BASE))
        panel.profile_name = "desk"
        assert panel.set_maxmind() is None and panel.maxmind_note.text() == ""  # cancelled
        assert panel.set_maxmind() is None  # a bad account id: said, nothing kept
        assert "account ID" in panel.maxmind_note.text()
        assert secret_store.get_secret("desk", "maxmind_license_key") is None
        task = panel.set_maxmind()
        assert task is not None
        qtbot.waitUntil(lambda: task.finished.is_set() and runner.busy == 0, timeout=30_000)
        assert secret_store.get_secret("desk", "maxmind_license_key") == KEY
        assert panel.maxmind_note.text() == (  # the engine refused: said, not a success
            "The Docker engine could not be reached (ConnectionError). The key is kept in your keyring: "
            "the next install or upgrade from this app gives it to the stack."
        )
        panel.confirm = lambda _text: False
        assert panel.forget_maxmind() is None  # not confirmed: kept
        assert secret_store.get_secret("desk", "maxmind_license_key") == KEY
        panel.confirm = lambda _text: True
        task = panel.forget_maxmind()
        assert task is not None
        qtbot.waitUntil(lambda: task.finished.is_set() and runner.busy == 0, timeout=30_000)
        assert secret_store.get_secret("desk", "maxmind_license_key") is None
        assert panel.maxmind_note.text() == (  # the file could not be removed: said
            "The Docker engine could not be reached (ConnectionError). "
            "Start the stack, then press Forget again to remove its key file."
        )
    finally:
        runner.shutdown(5_000)
        client.close()
        secret_store.delete_profile("desk")
