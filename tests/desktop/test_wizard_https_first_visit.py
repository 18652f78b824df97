"""Issue 14's done-when, on real parts: the wizard (offscreen Qt) driven click by click for a server install
with a domain, ending on a green "first visit" sent by real Chromium from an HTTPS page through the HTTPS edge,
with the visitor's country filled in from a GeoIP database the stack fetched by itself. Also the failing case of
the certificate step: the ACME server cannot connect to the server's ports, said in plain words from the real
edge's log.

The setup (all on this machine, nothing leaves it):
- the "server" is the real Docker engine reached over SSH (a loopback sshd, tests/desktop/test_wizard.py);
- the ACME CA is Debian's pebble in a container on the stack's network, validating for real (HTTP-01 or
  TLS-ALPN-01) against the edge by the test domain, which Docker's DNS resolves to the edge there;
- DB-IP's download URL (PIXEL_GEOIP_DBIP_URL) is a small HTTP server in a container on the stack network
  serving MaxMind's GeoLite2 City test database (tests/enrich/data, machine-recipes §7);
- the visitors' network ("public", a project Docker network) has the subnet 81.2.69.128/27 with the host's side
  at 81.2.69.142, an address the test database places in London: Chromium on the host connects to the edge's
  address on that network, so the address the edge sees, the browser's real one, is 81.2.69.142. Nothing is
  routed out: the addresses are the bridge's own, and the network exists only for the test;
- the wizard's DNS check resolves through a table (as in test_wizard_public_address.py): the name first points
  elsewhere (the wizard names the record to fix), then at the server (127.0.0.1, the SSH URL's host).
"""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from PySide6.QtWidgets import QWizard

from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore
from pixel.app.stack import image as images
from pixel.app.stack.edge import EDGE_VARIABLES, LOCAL_EDGE_IMAGE
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.manage import open_stack
from tests.desktop.conftest import save_screenshot
from tests.desktop.test_wizard import PASSPHRASE, LoopbackSshd, _tear_down, leftovers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stack"))  # tests/stack: the edge helpers
from edge_helpers import (
    DOMAIN,
    PEBBLE_IMAGE,
    _pebble_get,
    chromium_visit,
    free_subnet,
    pebble_tls,
    put_file,
)

BASE = "pixel-base/python:bookworm"  # made by scripts/system.d/20-docker.sh
TAG = "pixel-analytics:https-wizard-test"
CITY = Path(__file__).resolve().parents[1] / "enrich" / "data" / "GeoLite2-City-Test.mmdb"
PUBLIC_SUBNET = "81.2.69.128/27"
VISITOR = "81.2.69.142"  # the host's side of the public network: GB / London in the test database
SITE = "pixel.test"
EDGE_NAMES = {v.name for v in EDGE_VARIABLES}
MIRROR = r"""
import http.server
data = open("/srv/city.mmdb.gz", "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.startswith("/free/dbip-city-lite-") and self.path.endswith(".mmdb.gz")
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(data) if ok else 0))
        self.end_headers()
        if ok:
            self.wfile.write(data)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = connect(EngineTarget())
    yield client
    client.close()


@pytest.fixture(scope="module")
def pixel_image(docker_client, tmp_path_factory) -> Iterator[str]:
    ctx = images.make_context(tmp_path_factory.mktemp("ctx"))
    images.build(docker_client, images.ImageSource("build", ctx, base=BASE, network_mode="none"), TAG)
    yield TAG
    docker_client.images.remove(TAG, force=True)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LoopbackSshd]:
    server = LoopbackSshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


class Table:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def __call__(self, name: str) -> list[str]:
        if name not in self.table:
            raise OSError(f"{name}: no such name")
        return self.table[name]


class Around:
    """What the test puts around the stack before the wizard installs it: the stack network (fixed subnet),
    the edge volume holding pebble's CA, pebble, the GeoIP mirror and the visitors' network."""

    def __init__(self, client: docker.DockerClient, project: str, tmp: Path, **pebble_ports: int) -> None:
        self.client = client
        self.created: list = []
        spec = open_stack(client, project, "compact", {"PIXEL_DOMAIN": DOMAIN}).spec
        labels = spec.stack_labels()
        self.subnet = free_subnet(client)
        try:
            net = client.networks.create(
                spec.network_name,
                driver="bridge",
                labels=labels,
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=self.subnet)]),
            )
            self.created.append(net)
            volume = client.volumes.create(spec.volume_name("edge"), labels=labels)
            self.created.append(volume)
            conf = tmp / "pebble"
            conf.mkdir()
            put_file(client, volume.name, "acme-server-ca.pem", pebble_tls(conf, 3600, **pebble_ports))
            self.pebble = client.containers.create(
                PEBBLE_IMAGE,
                ["-config", "/pebble/config.json"],
                name=f"{project}-pebble",
                labels=labels,
                environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
                volumes={str(conf): {"bind": "/pebble", "mode": "ro"}},
                network=spec.network_name,
                networking_config={spec.network_name: client.api.create_endpoint_config(aliases=["pebble"])},
                ports={"15000/tcp": ("127.0.0.1", None)},
            )
            self.created.append(self.pebble)
            self.pebble.start()
            srv = tmp / "mirror"
            srv.mkdir()
            (srv / "city.mmdb.gz").write_bytes(gzip.compress(CITY.read_bytes()))
            srv.chmod(0o755)
            mirror = client.containers.create(
                TAG,
                ["python3", "-c", MIRROR],
                name=f"{project}-geoip-mirror",
                labels=labels,
                volumes={str(srv): {"bind": "/srv", "mode": "ro"}},
                network=spec.network_name,
                networking_config={
                    spec.network_name: client.api.create_endpoint_config(aliases=["geoip-mirror"])
                },
            )
            self.created.append(mirror)
            mirror.start()
            public = ipaddress.ip_network(PUBLIC_SUBNET)
            for other in client.networks.list():
                for cfg in (other.attrs.get("IPAM") or {}).get("Config") or []:
                    with contextlib.suppress(KeyError, ValueError):
                        assert not public.overlaps(ipaddress.ip_network(cfg["Subnet"])), other.name
            self.public = client.networks.create(
                f"{project}_public",
                driver="bridge",
                labels=labels,
                ipam=docker.types.IPAMConfig(
                    pool_configs=[docker.types.IPAMPool(subnet=PUBLIC_SUBNET, gateway=VISITOR)]
                ),
            )
            self.created.append(self.public)
        except BaseException:
            self.remove()
            raise

    def values(self) -> dict[str, str]:
        """The stack's settings as the wizard is given them (PIXEL_DOMAIN comes from its public-address step)."""
        return {
            "PIXEL_IMAGE": TAG,
            "PIXEL_API_PORT": "0",
            "PIXEL_WORKERS": "1",
            "PIXEL_ACME_CA": "https://pebble:14000/dir",
            "PIXEL_ACME_CA_ROOT": "/data/acme-server-ca.pem",
            "PIXEL_ACME_EMAIL": "owner@pixel.test",
            "PIXEL_EDGE_IMAGE": LOCAL_EDGE_IMAGE,
            # the edge's own ports 80 and 443, published on the host's side of the visitors' network only
            "PIXEL_EDGE_BIND": VISITOR,
            "PIXEL_SUBNET": self.subnet,
            "PIXEL_GEOIP_DBIP_URL": "http://geoip-mirror:8000/free/dbip-city-lite-{month}.mmdb.gz",
        }

    def pebble_chain(self) -> list[bytes]:
        self.pebble.reload()
        port = int(self.pebble.attrs["NetworkSettings"]["Ports"]["15000/tcp"][0]["HostPort"])
        return [_pebble_get(port, "/roots/0"), _pebble_get(port, "/intermediates/0")]

    def remove(self) -> None:
        for obj in reversed(self.created):
            with contextlib.suppress(Exception):
                if isinstance(obj, docker.models.networks.Network):
                    obj.reload()
                    for container in obj.containers:
                        obj.disconnect(container, force=True)
                    obj.remove()
                else:
                    obj.remove(force=True)


def _api(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/auth/login", json={"username": username, "password": password}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


def _wait(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


@pytest.mark.timeout(1500)
def test_server_install_with_a_domain_to_a_first_https_visit_with_its_country(
    qtbot, secret_service, docker_client, pixel_image, sshd, tmp_path
) -> None:
    project = f"pxw{uuid.uuid4().hex[:8]}"
    around = Around(docker_client, project, tmp_path)
    store = ProfileStore()
    runner = Runner()
    settings = around.values()
    edge_only = {k: settings.pop(k) for k in list(settings) if k in EDGE_NAMES}
    wizard = SetupWizard(runner, store, project=project, values=settings)
    table = Table({DOMAIN: ["198.51.100.9"]})  # an old record pointing elsewhere
    wizard.resolver = table
    qtbot.addWidget(wizard)
    wizard.show()
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    try:
        # 1. where: a server reached by SSH; 2. checks (its host key trusted, the key's passphrase typed)
        wizard.where.ssh.click()
        qtbot.keyClicks(wizard.where.url, sshd.url)
        qtbot.keyClicks(wizard.where.ssh_key, str(sshd.client_key))
        qtbot.keyClicks(wizard.where.ssh_passphrase, PASSPHRASE)
        wizard.where.name.clear()
        qtbot.keyClicks(wizard.where.name, "Https")
        next_button.click()
        checks = wizard.checks
        qtbot.waitUntil(
            lambda: checks.trust.isVisible() or checks.ok or "✘" in checks.results.text(), timeout=240_000
        )
        assert checks.trust.isVisible(), checks.results.text()  # nothing trusted silently
        checks.trust.click()
        qtbot.waitUntil(lambda: checks.ok or "✘" in checks.results.text(), timeout=240_000)
        assert checks.ok, checks.results.text()
        next_button.click()
        # 3. the site
        qtbot.keyClicks(wizard.site.domain, SITE)
        next_button.click()
        # 4. the public address: the DNS check fails first (the record points elsewhere), in plain words
        assert wizard.currentPage() is wizard.public
        form = wizard.public.form
        qtbot.keyClicks(form.domain, DOMAIN)
        form.check.click()
        qtbot.waitUntil(lambda: form.check.isEnabled() and form.last is not None, timeout=30_000)
        assert form.result.text() == (
            "stats.pixel.test points at 198.51.100.9, not at this server (127.0.0.1).\n"
            "What to do: Change the DNS record of stats.pixel.test to 127.0.0.1 (A). Changes can take a while "
            "to spread; then check again."
        )
        assert not next_button.isEnabled() and wizard.install.task is None
        save_screenshot(wizard, "wizard-https-dns-elsewhere")
        table.table[DOMAIN] = ["127.0.0.1"]  # the record fixed: "Check again"
        assert form.check.text() == "Check again"
        form.check.click()
        qtbot.waitUntil(lambda: form.ok, timeout=30_000)
        assert form.result.text() == "stats.pixel.test points at this server (127.0.0.1)."
        save_screenshot(wizard, "wizard-https-dns-ok")
        # the edge's settings that have no field in the wizard (Let's Encrypt and the edge's published ports
        # by default): this test's ACME CA, its root, and where the edge publishes. Given here, not at the
        # start, because the checks page resolves the stack without the edge (the domain is not known yet)
        wizard.values.update(edge_only)
        next_button.click()
        # 5. install, with the edge (the domain from the step above)
        wizard.install.install.click()
        qtbot.waitUntil(
            lambda: wizard.install.result is not None or bool(wizard.install.error), timeout=900_000
        )
        assert wizard.install.error == ""
        result = wizard.install.result
        # 6. the certificate, followed in the real edge's log (read through the engine over SSH)
        next_button.click()
        page = wizard.certificate
        assert wizard.currentPage() is page
        qtbot.waitUntil(
            lambda: page.progress is not None and page.progress.state in ("obtained", "failed"),
            timeout=240_000,
        )
        assert page.state.text() == "The certificate of stats.pixel.test was issued: HTTPS works."
        assert page.action.text() == "" and not page.timer.isActive()
        save_screenshot(wizard, "wizard-https-certificate-obtained")
        # 7. done: the snippet loads the tracker from https://DOMAIN; waiting for the first visit
        next_button.click()
        done = wizard.done_page
        assert wizard.currentPage() is done
        snippet = done.snippet.toPlainText()
        assert f'src="https://{DOMAIN}/pixel.js"' in snippet and f'data-site="{SITE}"' in snippet
        assert done.first_visit.text() == "⏳ Waiting for your first visit…"
        save_screenshot(wizard, "wizard-https-waiting")
        api = _api(result.api_base, result.profile.username, result.password)
        with contextlib.closing(api):
            # the stack fetched its GeoIP database from the (stand-in) DB-IP address at its first start
            _wait(lambda: api.get("/api/geoip").json()["available"], 120)
            geoip = api.get("/api/geoip").json()
            assert geoip["source"] == "dbip" and geoip["database_type"] == "GeoLite2-City"
            assert geoip["last_error"] is None
            edge = open_stack(docker_client, project).container("edge")
            assert edge is not None
            around.public.connect(edge, aliases=[DOMAIN])
            edge.reload()
            edge_ip = edge.attrs["NetworkSettings"]["Networks"][around.public.name]["IPAddress"]
            html = f"<!doctype html><html><head><title>Shop</title>{snippet}</head><body>shop</body></html>"
            assert chromium_visit(html, edge_ip, around.pebble_chain(), tmp_path) == 204
            qtbot.waitUntil(lambda: done.seen, timeout=120_000)
            assert done.first_visit.text() == "✔ First visit received: Pixel is counting."
            save_screenshot(wizard, "wizard-https-first-visit")
            # the visit's country and city, from the browser's own address and the fetched database
            answer = api.post(
                "/api/sql",
                json={
                    "site_id": result.profile.site_id,
                    "query": "SELECT path, country, city FROM events WHERE event_name = 'pageview'",
                },
            ).json()
            rows = [list(r.values()) if isinstance(r, dict) else r for r in answer["rows"]]
            assert rows == [["/shop", "GB", "London"]]
    finally:
        _tear_down([], wizard, runner, docker_client, project, "Https")
        around.remove()
    assert leftovers(docker_client, project) == []


CLOSED = (
    "The certificate authority could not connect to this server on port {port}: the port is closed or blocked "
    "by a firewall."
)


@pytest.mark.timeout(900)
def test_certificate_step_says_in_plain_words_that_the_ports_are_closed(
    qtbot, docker_client, pixel_image, tmp_path
) -> None:
    """The ACME server finds the domain pointing at the edge but cannot connect to it (pebble validates on
    ports the edge does not listen on, as a firewall closing 80 and 443 would look from outside): the wizard's
    certificate step, reading the real edge's log through the engine, says so and what to do, with the CA's
    own words beside it."""
    project = f"pxp{uuid.uuid4().hex[:8]}"
    around = Around(docker_client, project, tmp_path, http_port=81, tls_port=444)
    values = {
        **around.values(),
        "PIXEL_DOMAIN": DOMAIN,
        "PIXEL_EDGE_BIND": "127.0.0.1",
        "PIXEL_HTTP_PORT": "0",
        "PIXEL_HTTPS_PORT": "0",
    }
    runner = Runner()
    try:
        open_stack(docker_client, project, "compact", values).install(images.ImageSource("pull"))
        wizard = SetupWizard(runner, ProfileStore(), project=project)
        qtbot.addWidget(wizard)
        wizard.resolver = Table({DOMAIN: ["127.0.0.1"]})
        wizard.where.tls.setChecked(True)  # a server install's public-address step, checked as in the wizard
        wizard.where.url.setText("tcp://127.0.0.1:2376")
        wizard.public.form.domain.setText(DOMAIN)
        wizard.public.form.run_check()
        qtbot.waitUntil(lambda: wizard.public.form.ok, timeout=30_000)
        wizard.where.local.setChecked(
            True
        )  # the stack is on this machine's engine: its edge's log from there
        page = wizard.certificate
        wizard.setStartId(wizard.ids["certificate"])
        wizard.restart()
        wizard.show()
        qtbot.waitUntil(
            lambda: page.progress is not None and page.progress.state == "failed", timeout=300_000
        )
        closed = (
            "What to do: Open ports 80 and 443 (TCP) to the internet in the server's firewall and in your "
            "hosting provider's panel; the edge tries again on its own."
        )
        # What the CA meets on those ports depends on the machine: nothing (closed), or, on a busy CI machine,
        # some other program listening there (another web server answered). Either is said in plain words.
        other = (
            f"What to do: Make {DOMAIN} point at this server only (no old record left, no proxy or CDN in front "
            "while the certificate is requested), and stop any other web server on ports 80 and 443."
        )
        wrong = f"The certificate authority reached {DOMAIN}, but another web server answered instead of Pixel's edge."
        said = (page.state.text(), page.action.text())
        assert said in (
            (CLOSED.format(port="443"), closed),
            (CLOSED.format(port="80"), closed),
            (wrong, other),
        ), said
        assert page.details.toPlainText().strip()
        save_screenshot(wizard, "wizard-https-certificate-ports-closed")
    finally:
        runner.shutdown()
        with contextlib.suppress(Exception):
            open_stack(docker_client, project).uninstall(delete_data=True)
        around.remove()
    assert leftovers(docker_client, project) == []
