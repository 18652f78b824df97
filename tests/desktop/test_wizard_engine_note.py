"""The wizard's first page says which container engine this computer has (pixel.app.stack.docker_host,
found on a worker), or in plain words what to do when none answers; "This computer" then uses the engine
found. Against this machine's real Docker engine and a DOCKER_HOST where nothing listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore


def shown(qtbot, tmp_path: Path) -> SetupWizard:  # type: ignore[no-untyped-def]
    wizard = SetupWizard(Runner(), ProfileStore(tmp_path / "profiles.json"))
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitUntil(lambda: wizard.where.engine is not None, timeout=15_000)
    return wizard


def test_first_page_names_the_engine_found(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    wizard = shown(qtbot, tmp_path)
    assert wizard.where.engine_note.text() == "Found Docker Engine at unix:///var/run/docker.sock."
    assert wizard.where.engine_note.isVisible()
    assert wizard.target().url == ""  # the platform's default: docker-py finds it
    wizard.where.ssh.setChecked(True)
    assert not wizard.where.engine_note.isVisible()  # about this computer only
    wizard.runner.shutdown(5_000)


def test_first_page_says_what_to_do_when_nothing_answers(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", where)
    wizard = shown(qtbot, tmp_path)
    assert wizard.where.engine is not None and not wizard.where.engine.ok
    assert wizard.where.engine_note.text() == (
        f"Nothing answers at {where}, the engine address set in DOCKER_HOST. Start that engine, or remove "
        "DOCKER_HOST to let Pixel look for Docker by itself, then press Check again."
    )
    assert "color:#b91c1c" in wizard.where.engine_note.styleSheet()
    wizard.runner.shutdown(5_000)
