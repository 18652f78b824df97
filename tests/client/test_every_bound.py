"""`ApiClient.every` against a careless or hostile list: a server (a real HTTP server on 127.0.0.1) that answers
every page full and claims a total it never reaches is read for at most `MAX_PAGES` pages, and a page shorter
than asked for ends the list whatever `total` says."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from pixel.app.client import ApiClient
from pixel.app.client.api import MAX_PAGES


class _Lists(BaseHTTPRequestHandler):
    """/api/endless: every page full, total 10**9. /api/short: a short second page, total 10**9."""

    pages: list[int] = []

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"access_token": "a", "refresh_token": "r"})

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        page, limit = int(query["page"]), int(query["limit"])
        type(self).pages.append(page)
        count = limit if url.path == "/api/endless" or page == 1 else limit - 1
        items = [{"id": (page - 1) * limit + i} for i in range(count)]
        self._answer({"items": items, "total": 10**9, "page": page, "limit": limit})


@pytest.fixture
def lists() -> Iterator[str]:
    _Lists.pages = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_list_that_never_ends_is_read_for_at_most_max_pages(lists: str) -> None:
    with ApiClient(lists, "owner", "pw") as client:
        items = client.every("/api/endless", page_size=2)
    assert _Lists.pages == list(range(1, MAX_PAGES + 1))
    assert [i["id"] for i in items] == list(range(2 * MAX_PAGES))


def test_a_short_page_ends_the_list_whatever_its_total(lists: str) -> None:
    with ApiClient(lists, "owner", "pw") as client:
        items = client.every("/api/short", page_size=5)
    assert _Lists.pages == [1, 2]
    assert [i["id"] for i in items] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
