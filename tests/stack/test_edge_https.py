"""The HTTPS edge on real parts (needs Docker: scripts/system.d/20-docker.sh and 25-edge.sh): a compact stack
with a domain, Caddy (Debian's package) getting its certificate from pebble (Debian's package) by real HTTP-01
or TLS-ALPN-01 validation through Docker's DNS, renewing a short-lived one, redirecting HTTP, sending HSTS,
serving the tracker compressed, and handing the collector the client's address, not its own."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import ipaddress
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from edge_helpers import DOMAIN, EdgeStack, start_edge_stack, stop_edge_stack
from stack_helpers import PIXEL_TAG, api_call

from pixel.app.stack.public_address import certificate_status, read_edge_certificates

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def edge_stack(docker_client, pixel_image, tmp_path_factory) -> Iterator[EdgeStack]:
    stack = start_edge_stack(docker_client, tmp_path_factory.mktemp("edge"))
    try:
        stack.wait_certificate()
        yield stack
    finally:
        stop_edge_stack(stack)


def _issuer(cert) -> str:
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_certificate_from_pebble_verified_for_the_domain(edge_stack):
    cert = edge_stack.served_certificate()  # the handshake verified it against pebble's root for DOMAIN
    assert _issuer(cert).startswith("Pebble Intermediate CA")
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 25 <= lifetime.total_seconds() <= 35  # pebble's short-lived certificate
    pems = read_edge_certificates(edge_stack.prov.container("edge"), DOMAIN)
    assert pems, "the certificate is in the edge volume"
    status = certificate_status(DOMAIN, pems, cert.not_valid_before_utc)
    assert status is not None and status.issuer.startswith("Pebble Intermediate CA")
    assert status.warn  # a 30-second certificate is always within 14 days of its expiry


def test_short_lived_certificate_is_renewed(edge_stack):
    first = edge_stack.served_certificate()
    renewed = edge_stack.wait_certificate(timeout=90, other_than=first.serial_number)
    assert renewed.not_valid_before_utc > first.not_valid_before_utc
    assert _issuer(renewed).startswith("Pebble Intermediate CA")


def test_http_redirects_to_https(edge_stack):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", edge_stack.http_port, timeout=10)
    conn.request("GET", "/pixel.js?v=1", headers={"Host": DOMAIN})
    resp = conn.getresponse()
    assert resp.status == 308
    assert resp.getheader("Location") == f"https://{DOMAIN}/pixel.js?v=1"
    conn.close()


def test_script_served_compressed_with_hsts(edge_stack):
    plain = (REPO / "tracker" / "dist" / "pixel.js").read_bytes()
    status, headers, body = edge_stack.https("GET", "/pixel.js", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    status, headers, body = edge_stack.https("GET", "/pixel.js", {"Accept-Encoding": "zstd"})
    assert status == 200 and headers["content-encoding"] == "zstd" and body[:4] == b"\x28\xb5\x2f\xfd"
    status, headers, body = edge_stack.https("GET", "/pixel.js")
    assert status == 200 and "content-encoding" not in headers and body == plain


@pytest.mark.parametrize("path", ["/metrics", "/health", "/api/sites", "/", "/track/../metrics"])
def test_only_tracking_routes_are_public(edge_stack, path):
    status, headers, body = edge_stack.https("GET", path)
    assert (status, body) == (404, b"not found")
    assert headers["strict-transport-security"] == "max-age=31536000"


_CLIENT = r"""
import json, os, ssl, time, urllib.request
ctx = ssl.create_default_context(cadata=os.environ["ROOT"])
path = os.environ["PAGE"]
event = {"event_id": path, "event_name": "pageview", "ts": int(time.time() * 1000), "site": "pixel.test",
         "page": {"url": "https://pixel.test" + path, "path": path, "title": "t", "referrer": ""}}
req = urllib.request.Request("https://%s/track" % os.environ["DOMAIN"], data=json.dumps(event).encode(),
                             headers={"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.9",
                                      "X-Real-IP": "203.0.113.10"})
print(urllib.request.urlopen(req, context=ctx, timeout=10).status)
"""


def _send_from_client(stack: EdgeStack, address: str, page: str) -> None:
    """One pageview from a container on the public network with the fixed `address`, over HTTPS to the test
    domain (resolved by Docker's DNS to the edge), with forged forwarding headers."""
    client = stack.client
    box = client.containers.create(
        PIXEL_TAG,
        ["python3", "-c", _CLIENT],
        environment={"ROOT": stack.pebble_root.decode(), "DOMAIN": DOMAIN, "PAGE": page},
        network=stack.public.name,
        networking_config={stack.public.name: client.api.create_endpoint_config(ipv4_address=address)},
    )
    try:
        box.start()
        assert box.wait(timeout=60)["StatusCode"] == 0, box.logs().decode()
        assert box.logs().decode().strip() == "204"
    finally:
        box.remove(force=True)


class _Api:
    def __init__(self, stack: EdgeStack) -> None:
        self.port = stack.api_port
        self.token = api_call(
            self.port,
            "POST",
            "/api/auth/login",
            {"username": stack.admin.username, "password": stack.admin.password},
        )["access_token"]
        sites = api_call(self.port, "GET", "/api/sites", token=self.token)["items"]
        [self.site] = [s for s in sites if s["domain"] == "pixel.test"]

    def exclude(self, ranges: list[str]) -> None:
        api_call(
            self.port, "PATCH", f"/api/sites/{self.site['id']}", {"excluded_ips": ranges}, token=self.token
        )
        time.sleep(2.5)  # the shipper re-reads a site's rules within 2 s

    def pageviews(self, path: str) -> int:
        query = f"SELECT count() AS n FROM events WHERE path = '{path}' AND event_name = 'pageview'"
        answer = api_call(
            self.port, "POST", "/api/sql", {"site_id": self.site["id"], "query": query}, token=self.token
        )
        row = answer["rows"][0]
        return int(row[0] if isinstance(row, list) else row["n"])

    def dropped_excluded_ip(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if (
                    line.startswith("pixel_shipper_events_dropped_by_reason_total")
                    and 'reason="excluded_ip"' in line
                ):
                    return int(float(line.split()[-1]))
        return 0


def _wait(check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_tracking_through_the_edge_stores_the_clients_address(edge_stack):
    """The address the shipper sees (site rules match it before it is hashed) is the client container's: not the
    edge's, not a gateway's, not the forged X-Forwarded-For / X-Real-IP."""
    public = edge_stack.client.networks.get(edge_stack.public.id)
    subnet = ipaddress.ip_network(public.attrs["IPAM"]["Config"][0]["Subnet"])
    client_ip = str(subnet.network_address + 200)
    stack_net = edge_stack.client.networks.get(edge_stack.prov.spec.network_name)
    everything_else = [
        stack_net.attrs["IPAM"]["Config"][0]["Subnet"],  # the edge's side, the stack's gateway
        str(subnet.network_address + 1),  # the public network's gateway
        edge_stack.edge_address(edge_stack.public.name),
        "203.0.113.0/24",  # the forged headers
    ]
    api = _Api(edge_stack)
    before = api.dropped_excluded_ip()
    api.exclude(everything_else)
    _send_from_client(edge_stack, client_ip, "/edge-kept")
    _wait(lambda: api.pageviews("/edge-kept") == 1)
    api.exclude([f"{client_ip}/32"])
    _send_from_client(edge_stack, client_ip, "/edge-dropped")
    _wait(lambda: api.dropped_excluded_ip() == before + 1)
    assert api.pageviews("/edge-dropped") == 0
    api.exclude([])


def _self_signed(name: str, folder: Path) -> tuple[Path, Path, bytes]:
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
    return cert_path, key_path, _spki(cert)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spki_hash(der: bytes) -> str:
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class _SitePage(ThreadingHTTPServer):
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


def test_chromium_pageview_from_an_https_page_through_the_edge(edge_stack, tmp_path):
    """Real Chromium opens https://www.pixel.test/shop (a page on 127.0.0.1) whose snippet loads
    https://stats.pixel.test/pixel.js from the edge (reached at its container address on the public network):
    both certificates trusted for this run only by their keys (pebble's CA chain, the page's own), the
    pageview lands, sent from the browser's address, not the edge's."""
    from playwright.sync_api import sync_playwright

    cert, key, site_spki = _self_signed("www.pixel.test", tmp_path)
    page_html = (
        "<!doctype html><html><head><meta charset=utf-8><title>Shop</title>"
        f'<script async src="https://{DOMAIN}/pixel.js" data-site="pixel.test"></script>'
        "</head><body>shop</body></html>"
    )
    site = _SitePage(page_html, cert, key)
    edge_ip = edge_stack.edge_address(edge_stack.public.name)
    chain = [x509.load_pem_x509_certificate(p) for p in edge_stack.pebble_chain()]
    spki = ",".join(_spki_hash(d) for d in [site_spki, *(_spki(c) for c in chain)])
    api = _Api(edge_stack)
    stack_net = edge_stack.client.networks.get(edge_stack.prov.spec.network_name)
    api.exclude(
        [stack_net.attrs["IPAM"]["Config"][0]["Subnet"]]
    )  # an event sent as the edge would be dropped
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--host-resolver-rules=MAP {DOMAIN} {edge_ip}, MAP www.pixel.test 127.0.0.1, EXCLUDE localhost",
        f"--ignore-certificate-errors-spki-list={spki}",
    ]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
            try:
                page = browser.new_page()
                with page.expect_response(lambda r: r.url == f"https://{DOMAIN}/track") as answer:
                    page.goto(f"https://www.pixel.test:{site.server_address[1]}/shop")
                assert answer.value.status == 204
                assert page.evaluate("location.protocol") == "https:"
                page.goto("about:blank")
            finally:
                browser.close()
        _wait(lambda: api.pageviews("/shop") == 1)
    finally:
        site.shutdown()
        site.server_close()
        api.exclude([])
