"""`edge_helpers.tracking_answer`, the browser visit of the HTTPS edge tests, on real Chromium and a real
network change: a Docker network created while the page's script is connecting makes Chromium abort that
connection with ERR_NETWORK_CHANGED (as a container joining the edge's network did in a CI run; another run
saw ERR_SOCKET_NOT_CONNECTED there, treated alike). The visit opens the page again for those failures only, and
says what the page saw for any other.

Everything is on 127.0.0.1 (two HTTPS servers, names mapped by Chromium's resolver rules); the network is the
test's own and is removed."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
from edge_helpers import (
    NETWORK_CHANGED,
    SOCKET_NOT_CONNECTED,
    chromium_flags,
    interface_change,
    self_signed,
    tracking_answer,
)
from playwright.sync_api import Page, sync_playwright
from stack_helpers import unique_project

from tests.ports import free_port

SCRIPT_HOST = "script.pixel.test"


class Served(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 counting what it served: the page (/shop), the script (/pixel.js, which posts
    to /track) and /track (204). With `hold_first`, the first connection is accepted and then left without a TLS
    handshake (a connection Chromium is still setting up when the network changes); `held` is set then."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path, page: str = "", hold_first: bool = False) -> None:
        self.counts: dict[str, int] = {}
        self.held = threading.Event()
        self.hold_first = hold_first
        self.kept: list[socket.socket] = []
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        served = self
        body = {
            "/shop": (b"text/html", page.encode()),
            "/pixel.js": (
                b"text/javascript",
                f"fetch('https://{SCRIPT_HOST}:{{port}}/track', {{method: 'POST', mode: 'no-cors', body: 'x'}})".encode(),
            ),
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _count(self) -> None:
                served.counts[self.path] = served.counts.get(self.path, 0) + 1

            def do_GET(self) -> None:
                if self.path not in body:  # the browser's own /favicon.ico
                    self.send_error(404)
                    return
                self._count()
                kind, content = body[self.path]
                content = content.replace(b"{port}", str(served.server_address[1]).encode())
                self.send_response(200)
                self.send_header("Content-Type", kind.decode())
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_POST(self) -> None:
                self._count()
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(204)
                self.end_headers()

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        conn, address = self.socket.accept()
        if self.hold_first and not self.held.is_set():
            self.kept.append(conn)
            self.held.set()
            raise OSError("held")  # serve_forever goes back to its loop (and can stop) instead of serving it
        return self.tls.wrap_socket(conn, server_side=True), address

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        for conn in self.kept:
            conn.close()


@contextlib.contextmanager
def visit(tmp_path: Path, hold_first: bool) -> Iterator[tuple[Page, Served, Served]]:
    """A page at https://www.pixel.test:PORT/shop whose script comes from SCRIPT_HOST's server, in Chromium
    trusting both certificates by their keys."""
    page_cert, page_key, page_pin = self_signed("www.pixel.test", tmp_path)
    script_folder = tmp_path / "script"
    script_folder.mkdir()
    script_cert, script_key, script_pin = self_signed(SCRIPT_HOST, script_folder)
    script = Served(script_cert, script_key, hold_first=hold_first)
    html = f'<!doctype html><script src="https://{SCRIPT_HOST}:{script.server_address[1]}/pixel.js"></script>'
    site = Served(page_cert, page_key, page=html)
    try:
        with sync_playwright() as p:
            flags = chromium_flags(SCRIPT_HOST, "127.0.0.1", [page_pin, script_pin])
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
            try:
                yield browser.new_page(), site, script
            finally:
                browser.close()
    finally:
        site.stop()
        script.stop()


def _urls(site: Served, script: Served) -> tuple[str, str]:
    return (
        f"https://www.pixel.test:{site.server_address[1]}/shop",
        f"https://{SCRIPT_HOST}:{script.server_address[1]}/track",
    )


@contextlib.contextmanager
def network_change_when_held(client: docker.DockerClient, script: Served) -> Iterator[None]:
    """Creates a Docker network (a bridge with its address appears on the machine) once the script's first
    connection is held, and removes it at the end."""
    made: list[object] = []

    def change() -> None:
        if script.held.wait(60):
            made.append(client.networks.create(unique_project("pxnc"), driver="bridge"))

    thread = threading.Thread(target=change, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(60)
        for network in made:
            network.remove()  # type: ignore[attr-defined]


def test_a_visit_answered_at_once_opens_the_page_once(tmp_path: Path) -> None:
    with visit(tmp_path, hold_first=False) as (page, site, script):
        page_url, track_url = _urls(site, script)
        assert tracking_answer(page, page_url, track_url, seconds=30) == 204
    assert site.counts == {"/shop": 1}
    assert script.counts == {"/pixel.js": 1, "/track": 1}


def _with_a_network_change(
    client: docker.DockerClient, tmp_path: Path, opens: int
) -> tuple[int | AssertionError, Served, Served]:
    """A visit whose script's first connection is held while a Docker network is created: what
    `tracking_answer` returned or raised, and the two servers (their counts)."""
    with visit(tmp_path, hold_first=True) as (page, site, script):
        with network_change_when_held(client, script):
            try:
                outcome: int | AssertionError = tracking_answer(
                    page, *_urls(site, script), seconds=60, opens=opens
                )
            except AssertionError as failed:
                outcome = failed
    assert script.held.is_set()
    return outcome, site, script


def test_a_script_aborted_by_a_network_change_is_loaded_again_with_the_page(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    outcome, site, script = _with_a_network_change(docker_client, tmp_path, opens=3)
    assert outcome == 204
    assert site.counts == {"/shop": 2}
    assert script.counts == {"/pixel.js": 1, "/track": 1}


def test_without_another_opening_the_network_change_is_said(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    outcome, site, script = _with_a_network_change(docker_client, tmp_path, opens=1)
    assert isinstance(outcome, AssertionError)
    assert f"/pixel.js: {NETWORK_CHANGED}" in str(outcome)
    assert site.counts == {"/shop": 1}
    assert "/track" not in script.counts


def test_another_failure_is_said_without_opening_the_page_again(tmp_path: Path) -> None:
    """The script's server refuses connections: no reopening (only a network change is a person's reload), the
    failure is in the message after `seconds`."""
    with visit(tmp_path, hold_first=False) as (page, site, script):
        page_url, track_url = _urls(site, script)
        script.stop()
        with pytest.raises(AssertionError) as failed:
            tracking_answer(page, page_url, track_url, seconds=3)
    message = str(failed.value)
    assert message.startswith("no answer to the tracking request; the page saw: ")
    assert "/pixel.js: net::ERR_CONNECTION_REFUSED" in message
    assert site.counts == {"/shop": 1}


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (NETWORK_CHANGED, NETWORK_CHANGED),
        (f"page.goto: {SOCKET_NOT_CONNECTED} at https://stats.pixel.test/", SOCKET_NOT_CONNECTED),
        ("net::ERR_CONNECTION_REFUSED", None),
        ("net::ERR_CERT_AUTHORITY_INVALID", None),
        ("", None),
    ],
)
def test_only_an_interface_change_opens_the_page_again(failure: str, code: str | None) -> None:
    assert interface_change(failure) == code
