"""The first-run wizard driven click by click: a compact install on the real Docker engine (the Pixel
image built offline from this checkout, as tests/app does), the admin password shown once and kept in
a real Secret Service, the snippet, and "first visit" turning green after a real event. Also: cancel
mid-install leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
import uuid

import pytest
from pixel.app import secret_store
from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore
from pixel.app.stack import image as images
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.manage import open_stack
from PySide6.QtWidgets import QApplication, QWizard

from tests.desktop.conftest import save_screenshot

BASE = "pixel-base/python:bookworm"  # made by scripts/system.d/20-docker.sh
TAG = "pixel-analytics:desktop-test"


@pytest.fixture(scope="module")
def docker_client():
    client = connect(EngineTarget())
    yield client
    client.close()


@pytest.fixture(scope="module")
def pixel_image(docker_client, tmp_path_factory) -> str:
    ctx = images.make_context(tmp_path_factory.mktemp("ctx"))
    images.build(docker_client, images.ImageSource("build", ctx, base=BASE, network_mode="none"), TAG)
    yield TAG
    docker_client.images.remove(TAG, force=True)


def values() -> dict[str, str]:
    # the engine picks free ports: other tests and programs run on this machine
    return {"PIXEL_IMAGE": TAG, "PIXEL_COLLECTOR_BIND": "127.0.0.1", "PIXEL_COLLECTOR_PORT": "0",
            "PIXEL_API_PORT": "0", "PIXEL_WORKERS": "1"}


def leftovers(client, project: str) -> list[str]:
    label = {"label": f"io.pixel.stack={project}"}
    return ([c.name for c in client.containers.list(all=True, filters=label)]
            + [n.name for n in client.networks.list(filters=label)]
            + [v.name for v in client.volumes.list(filters=label)])


def send_pageview(collector_url: str, domain: str) -> None:
    event = {"event_id": uuid.uuid4().hex, "event_name": "pageview", "ts": int(time.time() * 1000), "site": domain,
             "page": {"url": f"https://{domain}/", "path": "/", "title": "Home", "referrer": ""}}
    req = urllib.request.Request(f"{collector_url}/track", data=json.dumps([event]).encode(),
                                 headers={"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) "
                                          "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


@pytest.mark.timeout(900)
def test_wizard_click_by_click_to_the_first_visit(qtbot, secret_service, docker_client, pixel_image) -> None:
    project = f"pxw{uuid.uuid4().hex[:8]}"
    store = ProfileStore()
    runner = Runner()
    wizard = SetupWizard(runner, store, project=project, values=values())
    qtbot.addWidget(wizard)
    wizard.show()
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    try:
        # 1. where: this computer (the default)
        assert wizard.where.local.isChecked() and next_button.isEnabled()
        wizard.where.name.clear()
        qtbot.keyClicks(wizard.where.name, "Shop")
        save_screenshot(wizard, "wizard-where")
        next_button.click()
        # 2. checks, in plain words
        qtbot.waitUntil(lambda: wizard.checks.ok, timeout=60_000)
        text = wizard.checks.results.text()
        assert "✔" in text and "✘" not in text and "Docker" in text and "GiB memory" in text
        save_screenshot(wizard, "wizard-checks")
        next_button.click()
        # 3. the site
        assert not next_button.isEnabled()
        qtbot.keyClicks(wizard.site.domain, "example.com")
        assert next_button.isEnabled()
        next_button.click()
        # 4. install, with a progress bar and details
        assert not next_button.isEnabled()
        seen_values: list[int] = []
        wizard.install.bar.valueChanged.connect(seen_values.append)
        wizard.install.install.click()
        qtbot.waitUntil(lambda: wizard.install.result is not None or bool(wizard.install.error), timeout=600_000)
        assert wizard.install.error == ""
        assert wizard.install.bar.value() == 100 and len(set(seen_values)) >= 2
        details = wizard.install.details.toPlainText()
        assert "[start] starting pixel" in details and "[start] all services healthy" in details
        assert f"container {project}-pixel-1" in details
        save_screenshot(wizard, "wizard-install")
        next_button.click()
        # 5. the password once (and in the keyring), the snippet, waiting for the first visit
        page = wizard.done_page
        password = page.password.text()
        assert len(password) >= 12 and secret_store.get_secret("Shop", "admin_password") == password
        profile = store.get("Shop")
        assert profile is not None and profile.project == project and profile.domain == "example.com"
        assert profile.api_url.startswith("http://127.0.0.1:") and profile.site_id == 1
        assert f'src="{profile.collector_url}/' in page.snippet.toPlainText()
        assert 'data-site="example.com"' in page.snippet.toPlainText()
        page.copy_snippet.click()
        assert QApplication.clipboard().text() == page.snippet.toPlainText()
        assert page.first_visit.text() == "⏳ Waiting for your first visit…"
        assert password not in store.path.read_text()
        send_pageview(profile.collector_url, "example.com")
        qtbot.waitUntil(lambda: page.seen, timeout=90_000)
        assert page.first_visit.text() == "✔ First visit received: Pixel is counting."
        save_screenshot(wizard, "wizard-done")
        wizard.button(QWizard.WizardButton.FinishButton).click()
    finally:
        runner.shutdown()
        with contextlib.suppress(Exception):
            open_stack(docker_client, project).uninstall(delete_data=True)
        with contextlib.suppress(Exception):
            secret_store.delete_profile("Shop")
    assert leftovers(docker_client, project) == []


@pytest.mark.timeout(600)
def test_cancel_mid_install_leaves_nothing(qtbot, secret_service, docker_client, pixel_image) -> None:
    project = f"pxc{uuid.uuid4().hex[:8]}"
    runner = Runner()
    wizard = SetupWizard(runner, ProfileStore(), project=project, values=values())
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.site.domain.setText("example.com")
    wizard.install.start()
    try:
        qtbot.waitUntil(lambda: "starting pixel" in wizard.install.step.text(), timeout=120_000)
        assert leftovers(docker_client, project) != []  # network and volume exist by now
        wizard.install.cancel.click()
        qtbot.waitUntil(lambda: bool(wizard.install.error), timeout=300_000)
        assert wizard.install.error == "Cancelled. Nothing was left behind."
        assert wizard.install.install.isEnabled() and wizard.install.result is None
        assert leftovers(docker_client, project) == []
    finally:
        runner.shutdown()
        with contextlib.suppress(Exception):
            open_stack(docker_client, project).uninstall(delete_data=True)
