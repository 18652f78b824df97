"""The first-run wizard driven click by click: a compact install on the real Docker engine (the Pixel
image built offline from this checkout, as tests/stack does), the admin password shown once and kept in
a real Secret Service, the snippet, and "first visit" turning green after a real event. Also: cancel
mid-install leaves nothing behind; the same over SSH (a loopback sshd whose docker CLI reaches the real
engine: host key trusted and saved, API through the SSH tunnel, a changed key refused later) and over
TLS (a second dockerd with client certificates: API through the engine)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QWizard

from pixel.app import secret_store
from pixel.app.client import ReportCache
from pixel.app.desktop.window import MainWindow, engine_target
from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore
from pixel.app.stack import image as images
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.manage import open_stack
from pixel.app.stack.tunnel import ExecTunnel, SSHTunnel
from tests.conftest import free_port
from tests.desktop.conftest import save_screenshot, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))  # tests/stack: its TLS dockerd fixture
from stack_helpers import wait_port
from test_stack_remote import tls_dockerd  # noqa: F401 - a second, real dockerd with mutual TLS

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
    return {
        "PIXEL_IMAGE": TAG,
        "PIXEL_COLLECTOR_BIND": "127.0.0.1",
        "PIXEL_COLLECTOR_PORT": "0",
        "PIXEL_API_PORT": "0",
        "PIXEL_WORKERS": "1",
    }


def leftovers(client, project: str) -> list[str]:
    label = {"label": f"io.pixel.stack={project}"}
    # the low-level list (one request): containers.list() inspects each container afterwards, which
    # raises NotFound when one is removed in between (a rollback running at the same time)
    return (
        [c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters=label)]
        + [n.name for n in client.networks.list(filters=label)]
        + [v.name for v in client.volumes.list(filters=label)]
    )


def send_pageview(collector_url: str, domain: str) -> None:
    event = {
        "event_id": uuid.uuid4().hex,
        "event_name": "pageview",
        "ts": int(time.time() * 1000),
        "site": domain,
        "page": {"url": f"https://{domain}/", "path": "/", "title": "Home", "referrer": ""},
    }
    req = urllib.request.Request(
        f"{collector_url}/track",
        data=json.dumps([event]).encode(),
        headers={
            "Content-Type": "text/plain",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def test_the_site_page_takes_only_a_domain_the_api_stores(qtbot) -> None:
    """Next stays disabled for what the API would refuse after the install (onboarding.check_domain)."""
    wizard = SetupWizard(Runner(), ProfileStore())
    qtbot.addWidget(wizard)
    for text, ok in (
        ("example.com", True), (" Shop.Example ", True), ("stats.example.com:8443", True), ("", False),
        ("example", False), ("https://example.com", False), ("example.com/shop", False),
        ("exa mple.com", False), ("shop_1.example", False), ("shop..example", False), ("-a.example", False),
    ):  # fmt: skip
        wizard.site.domain.setText(text)
        assert wizard.site.isComplete() is ok, text


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
        qtbot.waitUntil(
            lambda: wizard.install.result is not None or bool(wizard.install.error), timeout=600_000
        )
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


# ---------------------------------------------------------------------------------------------- over SSH
PASSPHRASE = "ssh-key-pass-4f2c"  # of the client key


class LoopbackSshd:
    """A real OpenSSH server on 127.0.0.1 (scripts/system.d/20-docker.sh installs it) standing in for a
    remote server: its docker CLI (for `docker system dial-stdio`) reaches the real engine. It can be
    restarted with another host key on the same port, as a reinstalled (or impersonated) server would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.port = free_port()
        self.client_key = root / "id_client"
        for name, passphrase in (("host_key", ""), ("other_host_key", ""), ("id_client", PASSPHRASE)):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(root / name)], check=True
            )
        (root / "authorized_keys").write_text((root / "id_client.pub").read_text())
        self.url = f"ssh://{os.environ.get('USER', 'root')}@127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def public_key(self, name: str = "host_key") -> str:
        """The host key's known_hosts line for this server, as `ssh-keyscan` would print it."""
        kind, key = (self.root / f"{name}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}"

    def fingerprint(self, name: str = "host_key") -> str:
        return subprocess.run(
            ["ssh-keygen", "-lf", str(self.root / f"{name}.pub")], capture_output=True, text=True, check=True
        ).stdout.split()[1]

    def start(self, host_key: str = "host_key") -> None:
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.root / host_key}\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUsePAM no\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen(  # its log (-E) is shown when a wait on the window times out
            ["/usr/sbin/sshd", "-D", "-E", str(self.root / "sshd.log"), "-f", str(config)],
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "sshd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def sshd(tmp_path: Path):
    server = LoopbackSshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _window_state(window: MainWindow, sshd: LoopbackSshd | None = None) -> str:
    """What a timed-out wait on a window of a remote stack prints: its banner, connection and tasks, and the
    test sshd's log when it goes over SSH."""
    return (
        f"banner visible={window.keyring_banner.isVisible()} text={window.keyring_banner.text()!r}\n"
        f"retrust visible={window.retrust.isVisible()} tunnel={window._tunnel!r} "
        f"sites={[s.get('domain') for s in window.dashboard.sites]} runner busy={window.runner.busy} "
        f"active threads={window.runner.pool.activeThreadCount()}\n"
        f"stack message={window.stack.message.text()!r}"
        + (f"\nsshd log:\n{sshd.log_tail()}" if sshd is not None else "")
    )


def _tear_down(
    windows: list, wizard: SetupWizard, runner: Runner, client, project: str, profile: str
) -> None:
    """After a remote install test: close the windows and tunnels, uninstall the stack, forget the profile."""
    for window in windows:
        window.close()
    wizard.close_tunnels()
    runner.shutdown()
    with contextlib.suppress(Exception):
        open_stack(client, project).uninstall(delete_data=True)
    with contextlib.suppress(Exception):
        secret_store.delete_profile(profile)


@pytest.mark.timeout(900)
def test_wizard_over_ssh_through_the_tunnel_with_the_saved_host_key(
    qtbot, secret_service, docker_client, pixel_image, sshd, tmp_path
) -> None:
    """Click by click to a server reached by SSH: the host key is refused until trusted, the site is
    created and the first visit seen through an SSH tunnel to the API (the collector, bound to the
    server's loopback here, is reached through another), the trusted key lands in the profile, and the
    main window later reuses it — while a changed key is refused in plain words."""
    project = f"pxs{uuid.uuid4().hex[:8]}"
    store = ProfileStore()
    runner = Runner()
    wizard = SetupWizard(runner, store, project=project, values=values())  # collector on 127.0.0.1 only
    qtbot.addWidget(wizard)
    wizard.show()
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    windows: list[MainWindow] = []
    try:
        # 1. where: a server reached by SSH, with the key the server's authorized_keys has
        wizard.where.ssh.click()
        assert not next_button.isEnabled() and wizard.where.ssh_key.isEnabled()
        assert "SSH tunnel" in wizard.where.how.text()
        qtbot.keyClicks(wizard.where.url, sshd.url)
        qtbot.keyClicks(wizard.where.ssh_key, str(sshd.client_key))
        wizard.where.name.clear()
        qtbot.keyClicks(wizard.where.name, "Remote")
        next_button.click()
        # 2. checks: the unknown host key is shown with its fingerprint, nothing is trusted silently
        checks = wizard.checks
        qtbot.waitUntil(checks.trust.isVisible, timeout=60_000)
        assert not checks.ok and not next_button.isEnabled()
        text = checks.results.text()
        assert f"The SSH host key of 127.0.0.1:{sshd.port} is not trusted yet." in text
        assert f"Host key of 127.0.0.1: <code>{sshd.fingerprint()}</code>" in text
        checks.trust.click()
        # the key has a passphrase: said in plain words; back to type it, then the checks pass
        qtbot.waitUntil(lambda: "passphrase" in checks.results.text(), timeout=60_000)
        assert (
            "The SSH key is protected by a passphrase.<br><i>What to do:</i> Go Back, type the key's "
            "passphrase" in checks.results.text()
        ) and not checks.ok
        wizard.button(QWizard.WizardButton.BackButton).click()
        qtbot.keyClicks(wizard.where.ssh_passphrase, PASSPHRASE)
        next_button.click()
        qtbot.waitUntil(lambda: checks.ok, timeout=60_000)
        assert wizard.trusted is not None and wizard.trusted.known_hosts_line == sshd.public_key()
        assert "✘" not in checks.results.text() and "Docker" in checks.results.text()
        assert f"Trusted host key of 127.0.0.1: <code>{sshd.fingerprint()}</code>" in checks.results.text()
        assert not checks.trust.isVisible()
        next_button.click()
        # 3. the site, 4. install
        qtbot.keyClicks(wizard.site.domain, "remote.example")
        next_button.click()
        assert wizard.currentPage() is wizard.public  # a server install: the public address step
        wizard.public.skip.click()  # skipped: this test's server has no public name
        next_button.click()
        wizard.install.install.click()
        qtbot.waitUntil(
            lambda: wizard.install.result is not None or bool(wizard.install.error), timeout=600_000
        )
        assert wizard.install.error == ""
        result = wizard.install.result
        assert "[tunnel] opening an SSH tunnel to the API (port" in wizard.install.details.toPlainText()
        # the site was created through the tunnel: its local end, not the server's API port
        [tunnel] = wizard.tunnels
        profile = store.get("Remote")
        assert profile is not None
        api_port = int(profile.api_url.rsplit(":", 1)[1])
        assert result.api_base == tunnel.local_url and tunnel.local_port != api_port
        assert tunnel.remote == ("127.0.0.1", api_port) and tunnel.connections >= 1
        at_install = tunnel.connections  # the install's API client is closed by now
        # the profile: the server-side API address, the key file and the trusted host key (not a secret)
        assert profile.engine == sshd.url and profile.project == project and profile.site_id == 1
        assert profile.api_url == f"http://127.0.0.1:{api_port}"
        assert profile.ssh_key == str(sshd.client_key) and profile.host_key == sshd.public_key()
        assert json.loads(store.path.read_text())["profiles"][0]["host_key"] == sshd.public_key()
        assert profile.ssh_key_locked and secret_store.get_secret("Remote", "ssh_passphrase") == PASSPHRASE
        assert PASSPHRASE not in store.path.read_text()
        assert not list(tmp_path.rglob("known_hosts"))  # kept in the profile only, no separate file
        # 5. waiting for the first visit: checked through the tunnel; the visit reaches the collector
        # (published on the server's loopback only) through an SSH tunnel of its own
        next_button.click()
        page = wizard.done_page
        assert secret_store.get_secret("Remote", "admin_password") == page.password.text()
        collector_port = int(profile.collector_url.rsplit(":", 1)[1])
        assert f'src="http://127.0.0.1:{collector_port}/' in page.snippet.toPlainText()
        with SSHTunnel(engine_target(profile), collector_port) as to_collector:
            send_pageview(to_collector.local_url, "remote.example")
            assert to_collector.connections == 1
        qtbot.waitUntil(lambda: page.seen, timeout=90_000)
        assert page.first_visit.text() == "✔ First visit received: Pixel is counting."
        assert tunnel.connections > at_install  # the checks went through the tunnel
        wizard_end = tunnel.local_port
        wizard.button(QWizard.WizardButton.FinishButton).click()
        assert wizard.tunnels == [] and _refused(wizard_end)  # closed with the wizard

        # later: the main window reuses the saved key for the API tunnel and the stack page
        def state() -> str:
            return _window_state(window, sshd)

        window = MainWindow(store, ReportCache(tmp_path / "cache.sqlite"))
        windows.append(window)
        qtbot.addWidget(window)
        window.show()
        wait_until(qtbot, lambda: window._tunnel is not None and bool(window.dashboard.sites), 60_000, state)
        assert window.dashboard.source.client.base_url == window._tunnel.local_url
        assert "sshd log:" in state()  # the diagnostics themselves work
        assert [s["domain"] for s in window.dashboard.sites] == ["remote.example"]
        assert window.keyring_banner.isHidden()
        window.tabs.setCurrentWidget(window.stack)
        wait_until(
            qtbot,
            lambda: window.stack.table.rowCount() == 1 and window.stack.table.item(0, 2) is not None,
            60_000,
            state,
        )
        assert [window.stack.table.item(0, j).text() for j in (0, 1, 2)] == ["pixel", "running", "healthy"]
        local_end = window._tunnel.local_port
        window.close()
        assert _refused(local_end)  # closed on exit

        # the server comes back with another host key: refused, in plain words, nothing re-trusted
        sshd.stop()
        sshd.start("other_host_key")
        window = MainWindow(store, ReportCache(tmp_path / "cache.sqlite"))
        windows.append(window)
        qtbot.addWidget(window)
        window.show()
        wait_until(qtbot, window.keyring_banner.isVisible, 60_000, state)
        changed = (
            f"The SSH host key of 127.0.0.1:{sshd.port} has CHANGED since you trusted it. This can mean "
            "the server was reinstalled, or that someone is intercepting the connection."
        )
        assert window.keyring_banner.text().startswith(changed)
        assert window._tunnel is None
        window.tabs.setCurrentWidget(window.stack)
        wait_until(qtbot, lambda: window.stack.message.text() not in ("", "Connecting…"), 60_000, state)
        assert window.stack.message.text().startswith(
            changed + "\nWhat to do: Ask the server's administrator"
        )
        assert window.stack.provisioner is None
        assert store.get("Remote").host_key == sshd.public_key()  # the trusted key stays as it was

        # the way forward: both fingerprints shown; "no" changes nothing, "yes" trusts the new key
        assert window.retrust.isVisible()
        asked: list[str] = []
        window.confirm_key = lambda text: asked.append(text) or False
        window.retrust.click()
        wait_until(qtbot, lambda: len(asked) == 1, 30_000, state)
        assert (
            f"now presents the host key\n{sshd.fingerprint('other_host_key')}\n\nThe key you trusted was\n"
            f"{sshd.fingerprint()}\n\nAccept the new key only if the server's administrator confirms"
        ) in asked[0]
        assert store.get("Remote").host_key == sshd.public_key() and window.retrust.isVisible()
        window.confirm_key = lambda text: asked.append(text) or True
        window.retrust.click()
        wait_until(
            qtbot, lambda: store.get("Remote").host_key == sshd.public_key("other_host_key"), 30_000, state
        )
        wait_until(qtbot, lambda: window._tunnel is not None and bool(window.dashboard.sites), 60_000, state)
        assert window.keyring_banner.isHidden() and window.retrust.isHidden()
        wait_until(
            qtbot,
            lambda: window.stack.table.rowCount() == 1 and window.stack.table.item(0, 2) is not None,
            60_000,
            state,
        )
        assert window.stack.table.item(0, 1).text() == "running"
        window.close()
    finally:
        _tear_down(windows, wizard, runner, docker_client, project, "Remote")
    assert leftovers(docker_client, project) == []


# ---------------------------------------------------------------------------------------------- over TLS
@pytest.fixture
def tls_engine(tls_dockerd, docker_client, pixel_image, tmp_path):  # noqa: F811
    """A second, real dockerd on 127.0.0.1 with mutual TLS (tests/stack/test_stack_remote.py's fixture),
    holding the Pixel image (no registry: it travels over the TLS API)."""
    good = tls_dockerd["good"]
    target = EngineTarget(
        url=tls_dockerd["url"], tls_ca=good / "ca.pem", tls_cert=good / "cert.pem", tls_key=good / "key.pem"
    )
    saved = tmp_path / "pixel.tar"
    images.save(docker_client, pixel_image, saved)
    client = connect(target)
    images.load(client, saved, pixel_image)
    saved.unlink()
    yield tls_dockerd, client
    client.close()


@pytest.mark.timeout(900)
def test_wizard_over_tls_reaches_the_api_through_the_engine(
    qtbot, secret_service, tls_engine, tmp_path
) -> None:
    """Click by click to a Docker engine over TLS: the API stays on the server's loopback and the app
    reaches it through the engine's own TLS connection (an exec relay), in the wizard and later."""
    engine, tls_client = tls_engine
    project = f"pxt{uuid.uuid4().hex[:8]}"
    store = ProfileStore()
    runner = Runner()
    wizard = SetupWizard(runner, store, project=project, values=values())
    qtbot.addWidget(wizard)
    wizard.show()
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    window = None
    try:
        wizard.where.tls.click()
        assert "through the Docker engine's TLS connection" in wizard.where.how.text()
        assert not wizard.where.ssh_key.isEnabled() and wizard.where.tls_dir.isEnabled()
        qtbot.keyClicks(wizard.where.url, engine["url"])
        qtbot.keyClicks(wizard.where.tls_dir, str(engine["good"]))
        wizard.where.name.clear()
        qtbot.keyClicks(wizard.where.name, "Tls")
        next_button.click()
        qtbot.waitUntil(lambda: wizard.checks.ok or "✘" in wizard.checks.results.text(), timeout=60_000)
        assert wizard.checks.ok, wizard.checks.results.text()
        assert f"at {engine['url']}" in wizard.checks.results.text()
        next_button.click()
        qtbot.keyClicks(wizard.site.domain, "tls.example")
        next_button.click()
        assert wizard.currentPage() is wizard.public  # a server install: the public address step
        wizard.public.skip.click()  # skipped: this test's server has no public name
        next_button.click()
        wizard.install.install.click()
        qtbot.waitUntil(
            lambda: wizard.install.result is not None or bool(wizard.install.error), timeout=600_000
        )
        assert wizard.install.error == ""
        assert (
            "[tunnel] opening a tunnel through the Docker engine to the API (port"
            in wizard.install.details.toPlainText()
        )
        [tunnel] = wizard.tunnels
        profile = store.get("Tls")
        assert (
            profile is not None and profile.engine == engine["url"] and profile.tls_dir == str(engine["good"])
        )
        assert profile.host_key == "" and profile.ssh_key == ""
        api_port = int(profile.api_url.rsplit(":", 1)[1])
        assert profile.api_url == f"http://127.0.0.1:{api_port}"  # on the server; reached through the engine
        assert isinstance(tunnel, ExecTunnel) and tunnel.container == f"{project}-pixel-1"
        assert wizard.install.result.api_base == tunnel.local_url and tunnel.connections >= 1
        at_install = tunnel.connections  # the install's API client is closed by now
        next_button.click()
        page = wizard.done_page
        send_pageview(profile.collector_url, "tls.example")  # visitors reach the collector directly
        qtbot.waitUntil(lambda: page.seen, timeout=90_000)
        assert page.first_visit.text() == "✔ First visit received: Pixel is counting."
        assert tunnel.connections > at_install  # the checks went through the tunnel
        wizard_end = tunnel.local_port
        wizard.button(QWizard.WizardButton.FinishButton).click()
        assert wizard.tunnels == [] and _refused(wizard_end)

        window = MainWindow(store, ReportCache(tmp_path / "cache.sqlite"))
        qtbot.addWidget(window)
        window.show()
        wait_until(
            qtbot,
            lambda: window._tunnel is not None and bool(window.dashboard.sites),
            60_000,
            lambda: _window_state(window),
        )
        assert isinstance(window._tunnel, ExecTunnel)
        assert "runner busy=" in _window_state(window)  # the diagnostics themselves work
        assert window.dashboard.source.client.base_url == window._tunnel.local_url
        assert [s["domain"] for s in window.dashboard.sites] == ["tls.example"]
        window.tabs.setCurrentWidget(window.stack)
        wait_until(
            qtbot,
            lambda: window.stack.table.rowCount() == 1 and window.stack.table.item(0, 2) is not None,
            60_000,
            lambda: _window_state(window),
        )
        assert [window.stack.table.item(0, j).text() for j in (0, 1, 2)] == ["pixel", "running", "healthy"]
        local_end = window._tunnel.local_port
        window.close()
        assert _refused(local_end)
    finally:
        _tear_down([window] if window is not None else [], wizard, runner, tls_client, project, "Tls")
    assert leftovers(tls_client, project) == []
