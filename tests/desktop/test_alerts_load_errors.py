"""The Alerts tab's load against a real `pixel serve`: a viewer (403 on channels and rules) is told plainly that
health, rules and channels are for admins, with no Retry; a stack that does not answer, and a refused sign-in,
each get their own plain message and a Retry button; Retry once the stack answers (a real TCP relay started
on the address that did not answer) loads the admin's rules and hides the message."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from typing import Any

from pixel.app.client.api import ApiClient
from pixel.app.desktop.alerts_page import NOT_ADMIN, AlertsPage
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import LiveApi, save_screenshot
from tests.ports import free_port

WAIT = 60_000


def _page(qtbot: Any) -> AlertsPage:
    page = AlertsPage(Runner(), notify=lambda t, m: None, clock=lambda: datetime(2026, 3, 2, 12, tzinfo=UTC))
    qtbot.addWidget(page)
    return page


@contextmanager
def relay(port: int, target: tuple[str, int]) -> Iterator[None]:
    """A plain TCP relay on 127.0.0.1:`port` to `target` (the stack "coming back" at the address)."""

    class Pipe(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(target) as upstream:

                def pump(a: socket.socket, b: socket.socket) -> None:
                    try:
                        while data := a.recv(65536):
                            b.sendall(data)
                    except OSError:
                        pass
                    finally:
                        try:
                            b.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass

                back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                back.start()
                pump(self.request, upstream)
                back.join(timeout=30)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", port), Pipe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_viewer_is_told_plainly_without_retry(qtbot: Any, live_api: LiveApi) -> None:
    with closing(live_api.http()) as api:
        made = api.post(
            "/api/users",
            json={"username": "alva", "role": "viewer", "sites": list(live_api.sites.values())},
        ).json()
    try:
        page = _page(qtbot)
        page.set_client(ApiClient(live_api.url, "alva", made["password"]))
        qtbot.waitUntil(lambda: page.message.text() == NOT_ADMIN, timeout=WAIT)
        qtbot.waitUntil(lambda: page.traffic_table.rowCount() == len(live_api.sites), timeout=WAIT)
        assert page.retry_button.isHidden()
        assert not page.save_rules_button.isEnabled() and not page.add_button.isEnabled()
    finally:
        with closing(live_api.http()) as api:
            api.delete(f"/api/users/{made['id']}")


def test_a_refused_sign_in_says_so_with_retry(qtbot: Any, live_api: LiveApi) -> None:
    page = _page(qtbot)
    page.set_client(ApiClient(live_api.url, live_api.username, "not-the-password"))
    qtbot.waitUntil(lambda: page.message.text().startswith("The stack refused the sign-in"), timeout=WAIT)
    assert "Sign in again, then press Retry." in page.message.text()
    assert not page.retry_button.isHidden()
    assert not page.save_rules_button.isEnabled()


def test_an_unreachable_stack_then_retry(qtbot: Any, live_api: LiveApi) -> None:
    port = free_port()
    page = _page(qtbot)
    page.resize(900, 1000)
    page.set_client(ApiClient(f"http://127.0.0.1:{port}", live_api.username, live_api.password, timeout=5))
    qtbot.waitUntil(lambda: page.message.text().startswith("The stack could not be reached"), timeout=WAIT)
    assert "then press Retry" in page.message.text()
    assert "admin" not in page.message.text()  # not mistaken for a missing right
    assert not page.retry_button.isHidden() and not page.save_rules_button.isEnabled()
    save_screenshot(page, "alerts-page-unreachable")

    host, _, api_port = live_api.url.removeprefix("http://").rstrip("/").rpartition(":")
    with relay(port, (host, int(api_port))):
        page.retry_button.click()
        qtbot.waitUntil(lambda: page.save_rules_button.isEnabled(), timeout=WAIT)
        assert page.message.text() == "" and page.retry_button.isHidden()
        qtbot.waitUntil(lambda: page.traffic_table.rowCount() == len(live_api.sites), timeout=WAIT)
        # the rules shown are the stack's, the silence factor among them
        with closing(live_api.http()) as api:
            rules = api.get("/api/alerts/rules").json()
        assert page.silence_factor.value() == rules["ingestion"]["silence_factor"]
        page.close()
