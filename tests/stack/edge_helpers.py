"""The HTTPS edge on real parts (needs Docker, like every stack test): a compact stack with a domain, its edge
(Caddy from Debian's package, pixel-edge/caddy:bookworm) getting a certificate from Debian's pebble running as a
container on the stack network (pixel-test/pebble:bookworm; both made by scripts/system.d/25-edge.sh), and a
"public" network on which a client container or the host (Chromium) reaches the edge by its address.

Nothing leaves the machine: the test domain resolves only through Docker's DNS on the project's own networks
(the edge's alias), and the host talks to 127.0.0.1 or to the project's own containers."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import io
import ipaddress
import json
import random
import socket
import ssl
import tarfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Response
from stack_helpers import BUSYBOX, PIXEL_TAG, register_site, unique_project

from pixel.app.stack import image as images
from pixel.app.stack.edge import LOCAL_EDGE_IMAGE
from pixel.app.stack.manage import open_stack
from pixel.app.stack.provisioner import Credentials, Provisioner

DOMAIN = "stats.pixel.test"
PEBBLE_IMAGE = "pixel-test/pebble:bookworm"
CERT_SECONDS = 30  # pebble's certificate lifetime: Caddy renews after two thirds of it


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pebble_tls(
    folder: Path, cert_seconds: int = CERT_SECONDS, http_port: int = 80, tls_port: int = 443
) -> bytes:
    """A CA and pebble's own HTTPS certificate (name `pebble`) in `folder`; returns the CA's PEM, which the edge
    trusts for the ACME directory (PIXEL_ACME_CA_ROOT). Pebble validates HTTP-01 on `http_port` and TLS-ALPN-01
    on `tls_port` of the name's address."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pixel test ACME server CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("pebble")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(_pem(leaf))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    config = {
        "pebble": {
            "listenAddress": "0.0.0.0:14000",
            "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/pebble/cert.pem",
            "privateKey": "/pebble/key.pem",
            "httpPort": http_port,  # real HTTP-01 validation against the edge, as Let's Encrypt does it
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": cert_seconds,
        }
    }
    (folder / "config.json").write_text(json.dumps(config))
    for path in folder.iterdir():
        path.chmod(0o644)
    folder.chmod(0o755)
    return _pem(ca)


def free_subnet(client: docker.DockerClient) -> str:
    """A /24 in 172.31.0.0/16 that no network on the engine uses."""
    used = []
    for net in client.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                used.append(ipaddress.ip_network(cfg["Subnet"]))
    candidates = [ipaddress.ip_network(f"172.31.{n}.0/24") for n in range(100, 240)]
    random.shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free /24 in 172.31.0.0/16")


def put_file(client: docker.DockerClient, volume: str, name: str, data: bytes) -> None:
    """Write `name` into a named volume with a throwaway container (the Docker API's archive upload)."""
    box = client.containers.create(BUSYBOX, ["true"], volumes={volume: {"bind": "/v", "mode": "rw"}})
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        box.put_archive("/v", buf.getvalue())
    finally:
        box.remove(force=True)


@dataclass
class EdgeStack:
    client: docker.DockerClient
    prov: Provisioner
    admin: Credentials
    pebble: docker.models.containers.Container
    public: docker.models.networks.Network  # where clients reach the edge (not the stack's trusted subnet)
    pebble_root: bytes  # the root pebble signs certificates with
    http_port: int
    https_port: int
    api_port: int

    def edge_address(self, network: str) -> str:
        edge = self.prov.container("edge")
        assert edge is not None
        edge.reload()
        return str(edge.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])

    def pebble_chain(self) -> list[bytes]:
        """Pebble's root and intermediate (PEM), from its management API."""
        port = int(self.pebble.attrs["NetworkSettings"]["Ports"]["15000/tcp"][0]["HostPort"])
        return [_pebble_get(port, "/roots/0"), _pebble_get(port, "/intermediates/0")]

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.pebble_root.decode())
        return ctx

    def https(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
        """One HTTPS request to the edge's published port on 127.0.0.1, for the test domain (SNI and Host),
        verified against pebble's root. Returns (status, headers, body)."""
        conn = _SniConnection(self.https_port, self.context())
        try:
            conn.request(method, path, body=body, headers={"Host": DOMAIN, **(headers or {})})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def served_certificate(self) -> x509.Certificate:
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=5) as raw:
            with self.context().wrap_socket(raw, server_hostname=DOMAIN) as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def wait_certificate(self, timeout: float = 120, other_than: int | None = None) -> x509.Certificate:
        """The certificate the edge serves once it is pebble's (and not serial `other_than`)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                cert = self.served_certificate()
                if other_than is None or cert.serial_number != other_than:
                    return cert
            except (OSError, ssl.SSLError) as exc:  # no certificate yet: Caddy's handshake fails
                last = exc
            time.sleep(0.5)
        edge = self.prov.container("edge")
        logs = edge.logs(tail=30).decode(errors="replace") if edge else ""
        raise AssertionError(f"no certificate from pebble in {timeout} s ({last}); edge log:\n{logs}")


class _SniConnection(http.client.HTTPSConnection):
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, context=context, timeout=10)
        self._ctx = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=DOMAIN)


def start_edge_stack(
    client: docker.DockerClient,
    tmp: Path,
    *,
    workers: int = 1,
    cert_seconds: int = CERT_SECONDS,
    extra: dict[str, str] | None = None,
) -> EdgeStack:
    project = unique_project("pxh")
    subnet = free_subnet(client)
    values = {
        "PIXEL_IMAGE": PIXEL_TAG,
        "PIXEL_API_PORT": "0",
        "PIXEL_WORKERS": str(workers),
        "PIXEL_DOMAIN": DOMAIN,
        "PIXEL_ACME_CA": "https://pebble:14000/dir",
        "PIXEL_ACME_CA_ROOT": "/data/acme-server-ca.pem",
        "PIXEL_ACME_EMAIL": "owner@pixel.test",
        "PIXEL_EDGE_IMAGE": LOCAL_EDGE_IMAGE,
        "PIXEL_EDGE_BIND": "127.0.0.1",
        "PIXEL_HTTP_PORT": "0",
        "PIXEL_HTTPS_PORT": "0",
        "PIXEL_SUBNET": subnet,
        "PIXEL_EDGE_RENEW_INTERVAL": "2s",
        "PIXEL_GEOIP_AUTO_UPDATE": "off",  # no download from the internet: geo columns stay empty here
        **(extra or {}),
    }
    prov = open_stack(client, project, "compact", values)
    spec = prov.spec
    labels = spec.stack_labels()
    created: list = []
    try:
        # The stack network and the edge volume exist before the install (which keeps them): pebble must be
        # up on that network when Caddy starts, and the edge must trust pebble's HTTPS certificate.
        net = client.networks.create(
            spec.network_name,
            driver="bridge",
            labels=labels,
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]),
        )
        created.append(net)
        vol = client.volumes.create(spec.volume_name("edge"), labels=labels)
        created.append(vol)
        conf = tmp / "pebble"
        conf.mkdir()
        put_file(client, vol.name, "acme-server-ca.pem", pebble_tls(conf, cert_seconds))
        pebble = client.containers.create(
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
        created.append(pebble)
        pebble.start()
        public = client.networks.create(
            f"{project}_public",
            driver="bridge",
            labels=labels,
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=free_subnet(client))]),
        )
        created.append(public)
        result = prov.install(images.ImageSource("pull"))
        assert result.admin is not None
        edge = prov.container("edge")
        assert edge is not None
        public.connect(edge, aliases=[DOMAIN])
        pebble.reload()
        mgmt = int(pebble.attrs["NetworkSettings"]["Ports"]["15000/tcp"][0]["HostPort"])
        root = _pebble_root(mgmt)
        ports = {c.service: c.ports for c in prov.status().containers}
        stack = EdgeStack(
            client,
            prov,
            result.admin,
            pebble,
            public,
            root,
            ports["edge"][80],
            ports["edge"][443],
            ports["pixel"][8082],
        )
        register_site(stack.api_port, result.admin.username, result.admin.password, "pixel.test")
        return stack
    except BaseException:
        with contextlib.suppress(Exception):
            prov.uninstall(delete_data=True)
        for obj in reversed(created):
            with contextlib.suppress(Exception):
                if isinstance(obj, docker.models.networks.Network):
                    obj.remove()
                else:
                    obj.remove(force=True)
        raise


def _pebble_root(port: int) -> bytes:
    return _pebble_get(port, "/roots/0")


def _pebble_get(port: int, path: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # pebble's management API on loopback, with the test's own certificate
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=3) as resp:
                return resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def stop_edge_stack(stack: EdgeStack) -> None:
    client = stack.client
    with contextlib.suppress(Exception):
        stack.pebble.remove(force=True)
    for c in client.containers.list(all=True, filters={"network": stack.public.name}):
        with contextlib.suppress(Exception):
            stack.public.disconnect(c, force=True)
    with contextlib.suppress(Exception):
        stack.prov.uninstall(delete_data=True)
    with contextlib.suppress(Exception):
        stack.public.remove()


def self_signed(name: str, folder: Path) -> tuple[Path, Path, bytes]:
    """A certificate for `name` (the test site's HTTPS page server): cert path, key path, DER of its public key."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "site.pem", folder / "site.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, spki(cert)


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_hash(der: bytes) -> str:
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def chromium_flags(domain: str, edge_ip: str, pins: list[bytes]) -> list[str]:
    """Headless Chromium for a visit through the edge: `domain` resolves to the edge's address on the visitors'
    network, www.pixel.test to the site page on 127.0.0.1, and the certificates whose keys are `pins` (DER
    SubjectPublicKeyInfo) are trusted for this browser only; no QUIC, no background traffic."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--host-resolver-rules=MAP {domain} {edge_ip}, MAP www.pixel.test 127.0.0.1, EXCLUDE localhost",
        f"--ignore-certificate-errors-spki-list={','.join(spki_hash(d) for d in pins)}",
    ]


NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
# What Chromium gave a connection it was setting up to the edge right after the edge joined the visitors'
# network (a CI run): the same change of the machine's interfaces, another code.
SOCKET_NOT_CONNECTED = "net::ERR_SOCKET_NOT_CONNECTED"
INTERFACE_CHANGES = (NETWORK_CHANGED, SOCKET_NOT_CONNECTED)


def interface_change(failure: str) -> str | None:
    """The interface-change code in a Chromium failure text, or None for any other failure."""
    return next((code for code in INTERFACE_CHANGES if code in failure), None)


def tracking_answer(
    page: Page, page_url: str, track_url: str, *, seconds: float = 120, opens: int = 3
) -> int:
    """Opens `page_url` in Playwright's `page` and returns the status of the first answer to `track_url`.

    Chromium fails a request whose connection it is still setting up (TCP, TLS) with ERR_NETWORK_CHANGED (once
    in a CI run, ERR_SOCKET_NOT_CONNECTED) when an address appears on one of the machine's interfaces: a
    container joining a network (its veth's address comes a moment later), another test's network, as a laptop's
    browser does on a Wi-Fi change; a request
    already sent is not failed (tests/stack/test_tracking_answer.py). The tracker resends a failed event from
    its outbox, so the wait goes on; a page or a script failed so never runs, and a person would reload: the
    page is opened again, `opens` times in all. Any other failure, or no answer within `seconds` of an
    opening, fails with everything the page saw."""
    seen: list[str] = []
    answers: list[int] = []
    aborted: list[str] = []

    def failed(request: Request) -> None:
        seen.append(f"failed {request.url}: {request.failure}")
        if request.url != track_url and interface_change(request.failure or ""):
            aborted.append(request.url)

    def answered(response: Response) -> None:
        seen.append(f"{response.status} {response.url}")
        if response.url == track_url:
            answers.append(response.status)

    page.on("requestfailed", failed)
    page.on("response", answered)
    page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
    for _ in range(opens):
        aborted.clear()
        try:
            page.goto(page_url, timeout=seconds * 1000)
        except PlaywrightError as exc:
            code = interface_change(str(exc))
            if code is None:
                raise
            seen.append(f"opening {page_url}: {code}")
            continue
        deadline = time.monotonic() + seconds
        while not answers and not aborted and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        if answers:
            return answers[0]
        if not aborted:
            break
    raise AssertionError(f"no answer to the tracking request; the page saw: {seen}")


def chromium_visit(html: str, edge_ip: str, chain: list[bytes], folder: Path, seconds: float = 120) -> int:
    """Real Chromium opens https://www.pixel.test/shop, a page on 127.0.0.1 carrying `html` (whose snippet loads
    the tracker from DOMAIN); DOMAIN resolves to `edge_ip`, the edge's address on the visitors' network. Both
    certificates are trusted for this run only, by their keys (the page's own, the CA `chain`'s PEMs). Returns
    the status of the first tracking request (`tracking_answer`), after checking the page was HTTPS."""
    from playwright.sync_api import sync_playwright

    _reachable(edge_ip, 443, seconds)
    cert, key, site_spki = self_signed("www.pixel.test", folder)
    site = SitePage(html, cert, key)
    pins = [site_spki, *(spki(x509.load_pem_x509_certificate(p)) for p in chain)]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=chromium_flags(DOMAIN, edge_ip, pins)
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(seconds * 1000)
                page_url = f"https://www.pixel.test:{site.server_address[1]}/shop"
                status = tracking_answer(page, page_url, f"https://{DOMAIN}/track", seconds=seconds)
                assert page.evaluate("location.protocol") == "https:"
                return status
            finally:
                browser.close()
    finally:
        site.shutdown()
        site.server_close()


def _reachable(host: str, port: int, seconds: float) -> None:
    """Waits until `host`:`port` accepts a TCP connection (an edge just connected to a network gets its address
    a moment later), so the browser's first connection is not the one that finds out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{host}:{port} does not accept connections: {exc}") from exc
            time.sleep(0.2)


class SitePage(ThreadingHTTPServer):
    """The owner's website: one HTTPS page on 127.0.0.1 carrying the snippet that loads the tracker from the
    edge."""

    def __init__(self, html: str, cert: Path, key: Path) -> None:
        page = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        super().__init__(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()
