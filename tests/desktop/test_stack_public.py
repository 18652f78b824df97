"""The stack page's public part (app/desktop/site_tools.py) click by click: GeoIP, the sites, "Check installation"
and the proxy recipes against a real `pixel serve` (live_api) and a real page served on 127.0.0.1; the
certificate from real certificates made with `cryptography` (issuer, expiry, last renewal, the 14-day warning;
the clock pinned) and, on the real Docker engine, a stack with a domain whose edge has no certificate yet; the
"Public address…" dialog's DNS check (a table as resolver, never real DNS) that keeps Apply disabled until the
name points at the server."""

from __future__ import annotations

import datetime as dt
import html
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from pixel.app.client import ApiClient
from pixel.app.desktop.stack_page import StackPage
from pixel.app.desktop.workers import Runner
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.public_address import certificate_status
from pixel.app.stack.spec import StackSpec
from tests.desktop.conftest import save_screenshot

DOMAIN = "stats.example.com"
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def certificate(not_before: dt.datetime, days: float, issuer: str = "Let's Encrypt") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer),
            x509.NameAttribute(NameOID.COMMON_NAME, "R11"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def page(qtbot) -> StackPage:  # type: ignore[no-untyped-def]
    p = StackPage(Runner(), poll_ms=3_600_000)
    qtbot.addWidget(p)
    p.resize(1100, 900)
    p.show()
    return p


def test_certificate_issuer_expiry_renewal_and_the_14_day_warning(page: StackPage) -> None:
    panel = page.public
    fresh = certificate(NOW - dt.timedelta(days=10), 90)
    panel.show_certificate(DOMAIN, certificate_status(DOMAIN, [fresh], NOW))
    assert panel.certificate.text() == (
        "Certificate of stats.example.com by Let's Encrypt\n"
        "Expires: 2027-02-21 12:00 UTC (80 days left)\n"
        "Last renewal: 2026-11-23 12:00 UTC"
    )
    assert panel.certificate.styleSheet() == ""
    save_screenshot(page, "stack-public-certificate")
    stale = certificate(NOW - dt.timedelta(days=80), 90)  # not renewed at 30 days left: renewal keeps failing
    panel.show_certificate(DOMAIN, certificate_status(DOMAIN, [stale], NOW))
    assert panel.certificate.text() == (
        "Certificate of stats.example.com by Let's Encrypt\n"
        "Expires: 2026-12-13 12:00 UTC (10 days left)\n"
        "Last renewal: 2026-09-14 12:00 UTC\n"
        "⚠ The certificate of stats.example.com expires on 2026-12-13 12:00 UTC (10 days) and has not been "
        "renewed: check that the name still points at this server and that ports 80 and 443 are open."
    )
    assert "b91c1c" in panel.certificate.styleSheet()
    save_screenshot(page, "stack-public-certificate-warning")
    # exactly 14 days left is not yet a warning; a minute less is
    edge = certificate(NOW - dt.timedelta(days=76), 90)
    assert not certificate_status(DOMAIN, [edge], NOW).warn  # type: ignore[union-attr]
    assert certificate_status(DOMAIN, [edge], NOW + dt.timedelta(minutes=1)).warn  # type: ignore[union-attr]


def test_certificate_read_from_the_engine(qtbot, page: StackPage) -> None:
    client = connect(EngineTarget())
    try:
        spec = StackSpec("pxpub-nothing-here", "test", (), ())
        without = Provisioner(client, spec, settings={})
        page.public.load_certificate(without)
        qtbot.waitUntil(
            lambda: page.public.certificate.text().startswith("No public address"), timeout=30_000
        )
        assert "Real websites are served over HTTPS" in page.public.certificate.text()
        with_domain = Provisioner(client, spec, settings={"PIXEL_DOMAIN": DOMAIN})
        page.public.load_certificate(with_domain)
        qtbot.waitUntil(lambda: page.public.certificate.text().startswith("No certificate"), timeout=30_000)
        assert page.public.certificate.text() == (
            "No certificate for stats.example.com yet: the edge is still asking for one (see its log)."
        )
    finally:
        client.close()


class Table:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def __call__(self, name: str) -> list[str]:
        if name not in self.table:
            raise OSError(name)
        return self.table[name]


def test_public_address_dialog_applies_only_after_the_dns_check(qtbot, page: StackPage) -> None:
    client = connect(EngineTarget())
    try:
        target = EngineTarget("tcp://203.0.113.7:2376")
        page.public.provisioner = Provisioner(client, StackSpec("pxpub-x", "test", (), ()), target=target)
        applied: list[str] = []
        page.public.applied = applied.append
        qtbot.mouseClick(page.public.address, Qt.MouseButton.LeftButton)
        dialog = page.public.dialog
        assert dialog is not None and dialog.isVisible() and not dialog.apply.isEnabled()
        form = dialog.form
        table = Table({})
        form.resolver = table
        form.domain.setText("http://stats.example.com/")
        qtbot.mouseClick(form.check, Qt.MouseButton.LeftButton)
        assert form.result.text() == (
            "'http://stats.example.com/' is a web address, not a domain name.\n"
            "What to do: Leave out http:// or https://. Type only the name, e.g. stats.example.com."
        )
        form.domain.setText(DOMAIN)
        qtbot.mouseClick(form.check, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: form.check.text() == "Check again")
        assert form.result.text().startswith("stats.example.com does not resolve to any address yet.")
        assert not dialog.apply.isEnabled()
        save_screenshot(dialog, "stack-public-address-dialog")
        table.table[DOMAIN] = ["203.0.113.7"]
        qtbot.mouseClick(form.check, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.apply.isEnabled())
        qtbot.mouseClick(dialog.apply, Qt.MouseButton.LeftButton)
        assert applied == [DOMAIN] and not dialog.isVisible()
    finally:
        client.close()


class _Site(BaseHTTPRequestHandler):
    html = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)


@pytest.fixture
def site_page() -> Iterator[tuple[str, type[_Site]]]:
    handler = type("Site", (_Site,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_geoip_check_installation_and_recipes(qtbot, page: StackPage, live_api, site_page) -> None:
    panel = page.public
    panel.set_api(lambda: ApiClient(live_api.url, live_api.username, live_api.password))
    qtbot.waitUntil(lambda: panel.site.count() == 3, timeout=30_000)
    with closing(live_api.http()) as ref:
        info = ref.get("/api/geoip").json()
    assert panel.geoip.text().splitlines()[0] == (
        f"GeoIP database: {info['database_type']}, dated {info['build_date']}"
        + (f", from {info['source']}" if info["source"] else "")
        if info["available"]
        else "No GeoIP database yet: countries and cities stay empty until one is in place."
    )
    assert [panel.site.itemText(i) for i in range(3)] == ["shop.example", "blog.example", "docs.example"]

    # the recipes: one at a time, Copy puts exactly it on the clipboard
    qtbot.waitUntil(lambda: panel.recipe.count() == 7, timeout=30_000)
    with closing(live_api.http()) as ref:
        want = ref.get(f"/api/sites/{live_api.sites['shop.example']}/proxy-recipes").json()
    assert [panel.recipe.itemData(i) for i in range(7)] == [r["id"] for r in want["recipes"]]
    panel.recipe.setCurrentIndex(1)
    assert panel.config.toPlainText() == want["recipes"][1]["config"]
    assert panel.recipe_where.text() == f"Where: {want['recipes'][1]['where']}"
    qtbot.mouseClick(panel.copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == want["recipes"][1]["config"]

    # check installation: a page without the snippet
    url, handler = site_page
    handler.html = b"<!doctype html><html><head><title>Shop</title></head><body>Hi</body></html>"
    qtbot.mouseClick(panel.check, Qt.MouseButton.LeftButton)
    assert panel.result.text() == "Type the address of a page of the site first."
    panel.page_url.setText(url)
    qtbot.mouseClick(panel.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.check.isEnabled() and panel.findings != [], timeout=30_000)
    with closing(live_api.http()) as ref:
        own = ref.post(
            f"/api/sites/{live_api.sites['shop.example']}/check-installation", json={"page_url": url}
        ).json()
    assert panel.findings == own["findings"]
    assert [f["code"] for f in panel.findings] == ["snippet_missing"]
    assert "Something needs your attention:" in panel.result.text()
    message = own["findings"][0]["message"]
    assert "<" in message  # it names the <script> tag: shown as text, not taken for markup
    assert panel.result.text() == (
        "<p><b>Something needs your attention:</b></p><p style='margin:2px'><b style='color:#b91c1c'>✘</b> "
        + html.escape(message)
        + "</p>"
    )
    save_screenshot(page, "stack-public-check-installation")

    # the snippet straight to the collector: found, script loads
    collector = live_api.server.collector
    handler.html = (
        f'<!doctype html><html><head><script defer src="{collector}/pixel.js" data-site="shop.example">'
        "</script></head><body>Hi</body></html>"
    ).encode()
    panel.findings = []
    qtbot.mouseClick(panel.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.check.isEnabled() and panel.findings != [], timeout=30_000)
    codes = [f["code"] for f in panel.findings]
    assert "snippet_found" in codes and "script_ok" in codes, panel.findings
