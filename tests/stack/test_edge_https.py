"""The HTTPS edge on real parts (needs Docker: scripts/system.d/20-docker.sh and 25-edge.sh): a compact stack
with a domain, Caddy (Debian's package) getting its certificate from pebble (Debian's package) by real HTTP-01
or TLS-ALPN-01 validation through Docker's DNS, renewing a short-lived one, redirecting HTTP, sending HSTS,
serving the tracker compressed, and handing the collector the client's address, not its own."""

from __future__ import annotations

import gzip
import ipaddress
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID
from edge_helpers import (
    DOMAIN,
    EdgeStack,
    chromium_visit,
    start_edge_stack,
    stop_edge_stack,
)
from stack_helpers import PIXEL_TAG, api_call

from pixel.app.stack.public_address import certificate_status, read_edge_certificates

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def edge_stack(docker_client, pixel_image, tmp_path_factory) -> Iterator[EdgeStack]:
    # CDN geo headers honoured from trusted proxies: the edge is one, so only its stripping keeps a client's own
    # CF-IPCountry out (test_forged_cdn_geo_headers_are_not_used)
    stack = start_edge_stack(
        docker_client, tmp_path_factory.mktemp("edge"), extra={"PIXEL_CDN_GEO_HEADERS": "1"}
    )
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
headers = {"Content-Type": "text/plain", "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.10"}
headers.update(json.loads(os.environ.get("EXTRA", "{}")))
req = urllib.request.Request("https://%s/track" % os.environ["DOMAIN"], data=json.dumps(event).encode(),
                             headers=headers)
print(urllib.request.urlopen(req, context=ctx, timeout=10).status)
"""


def _send_from_client(
    stack: EdgeStack, address: str, page: str, headers: dict[str, str] | None = None
) -> None:
    """One pageview from a container on the public network with the fixed `address`, over HTTPS to the test
    domain (resolved by Docker's DNS to the edge), with forged forwarding headers (and `headers`)."""
    client = stack.client
    env = {
        "ROOT": stack.pebble_root.decode(),
        "DOMAIN": DOMAIN,
        "PAGE": page,
        "EXTRA": json.dumps(headers or {}),
    }
    box = client.containers.create(
        PIXEL_TAG,
        ["python3", "-c", _CLIENT],
        environment=env,
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
        return int(self.sql(query)[0])

    def sql(self, query: str) -> list:
        """The first row of `query`'s answer, as a list."""
        answer = api_call(
            self.port, "POST", "/api/sql", {"site_id": self.site["id"], "query": query}, token=self.token
        )
        row = answer["rows"][0]
        return list(row) if isinstance(row, list) else list(row.values())

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


def test_chromium_pageview_from_an_https_page_through_the_edge(edge_stack, tmp_path):
    """Real Chromium opens https://www.pixel.test/shop (a page on 127.0.0.1) whose snippet loads
    https://stats.pixel.test/pixel.js from the edge (reached at its container address on the public network):
    both certificates trusted for this run only by their keys (pebble's CA chain, the page's own), the
    pageview lands, sent from the browser's address, not the edge's."""
    page_html = (
        "<!doctype html><html><head><meta charset=utf-8><title>Shop</title>"
        f'<script async src="https://{DOMAIN}/pixel.js" data-site="pixel.test"></script>'
        "</head><body>shop</body></html>"
    )
    edge_ip = edge_stack.edge_address(edge_stack.public.name)
    api = _Api(edge_stack)
    stack_net = edge_stack.client.networks.get(edge_stack.prov.spec.network_name)
    api.exclude(
        [stack_net.attrs["IPAM"]["Config"][0]["Subnet"]]
    )  # an event sent as the edge would be dropped
    try:
        assert chromium_visit(page_html, edge_ip, edge_stack.pebble_chain(), tmp_path) == 204
        _wait(lambda: api.pageviews("/shop") == 1)
    finally:
        api.exclude([])


def test_forged_cdn_geo_headers_are_not_used(edge_stack):
    """With CDN geo headers honoured (PIXEL_CDN_GEO_HEADERS=1) but no CDN named, a client's own CF-IPCountry
    (and every other CDN's location header) is removed by the edge: the collector trusts the edge, so whatever
    the edge forwards would be believed. The country stays empty (no GeoIP database in this stack)."""
    public = edge_stack.client.networks.get(edge_stack.public.id)
    subnet = ipaddress.ip_network(public.attrs["IPAM"]["Config"][0]["Subnet"])
    forged = {
        "CF-IPCountry": "KP",
        "CF-Region": "Pyongyang",
        "CF-IPCity": "Pyongyang",
        "X-Vercel-IP-Country": "KP",
        "X-Vercel-IP-City": "Pyongyang",
        "CloudFront-Viewer-Country": "KP",
        "CloudFront-Viewer-City": "Pyongyang",
    }
    api = _Api(edge_stack)
    _send_from_client(edge_stack, str(subnet.network_address + 201), "/edge-geo", forged)
    _wait(lambda: api.pageviews("/edge-geo") == 1)
    assert api.sql("SELECT country, region, city FROM events WHERE path = '/edge-geo'") == ["", "", ""]


_UNLOCK = r"""
import os, ssl, urllib.error, urllib.parse, urllib.request
ctx = ssl.create_default_context(cadata=os.environ["ROOT"])
url = "https://%s/share/%s" % (os.environ["DOMAIN"], os.environ["TOKEN"])
body = urllib.parse.urlencode({"password": "not the password"}).encode()
out = []
for _ in range(int(os.environ["TRIES"])):
    req = urllib.request.Request(url, data=body, headers={"X-Forwarded-For": os.environ["FORGED"]})
    try:
        out.append(urllib.request.urlopen(req, context=ctx, timeout=30).status)
    except urllib.error.HTTPError as exc:
        out.append(exc.code)
print(" ".join(map(str, out)))
"""


def _unlock_from(stack: EdgeStack, address: str, token: str, tries: int, forged: str) -> list[int]:
    """`tries` wrong passwords for share link `token` through the edge, from `address` on the public network
    (each try with the forged X-Forwarded-For `forged`); the statuses answered."""
    client = stack.client
    env = {"ROOT": stack.pebble_root.decode(), "DOMAIN": DOMAIN, "TOKEN": token, "TRIES": str(tries)}
    box = client.containers.create(
        PIXEL_TAG,
        ["python3", "-c", _UNLOCK],
        environment={**env, "FORGED": forged},
        network=stack.public.name,
        networking_config={stack.public.name: client.api.create_endpoint_config(ipv4_address=address)},
    )
    try:
        box.start()
        assert box.wait(timeout=120)["StatusCode"] == 0, box.logs().decode()
        return [int(s) for s in box.logs().decode().split()]
    finally:
        box.remove(force=True)


def _unlock_direct(stack: EdgeStack, token: str, forged: str) -> int:
    """One wrong password for `token` straight to the API's published port (127.0.0.1: the connection arrives
    from the stack network's gateway, inside the stack's subnet), with a forged X-Forwarded-For."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.api_port}/share/{token}",
        data=b"password=not+the+password",
        headers={"X-Forwarded-For": forged, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_share_password_limit_counts_each_client_behind_the_edge_and_ignores_forged_headers(edge_stack):
    """The API believes X-Forwarded-For from the edge only: one visitor locked out after 5 wrong passwords does
    not lock out another visitor behind the same edge, and neither can escape the limit with a forged header;
    nor can a client of the API's own port, whose address is in the stack's (trusted-by-the-collector)
    subnet."""
    api = _Api(edge_stack)
    token = api_call(
        api.port,
        "POST",
        f"/api/sites/{api.site['id']}/shares",
        {"name": "Edge", "password": "correct horse battery"},
        token=api.token,
    )["token"]
    public = edge_stack.client.networks.get(edge_stack.public.id)
    subnet = ipaddress.ip_network(public.attrs["IPAM"]["Config"][0]["Subnet"])
    first, second = str(subnet.network_address + 210), str(subnet.network_address + 211)
    forged = ", ".join(f"198.51.100.{n}" for n in range(1, 4))
    assert _unlock_from(edge_stack, first, token, 6, forged) == [401] * 5 + [429]
    assert _unlock_from(edge_stack, second, token, 1, forged) == [401]  # not locked out by the first visitor
    statuses = [_unlock_direct(edge_stack, token, f"192.0.2.{n}") for n in range(6)]
    assert statuses == [401] * 5 + [429]  # a new forged address on each try changes nothing
