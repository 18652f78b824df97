"""`GET /` on the store process (a real `pixel ship`): a small page saying what runs there and how to open
the desktop app, instead of a 404 JSON; self-contained, nothing of the request echoed, a strict CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PixelProcess, free_port

CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PixelProcess]:
    data: Path = tmp_path_factory.mktemp("homepage") / "data"
    data.mkdir()
    proc = PixelProcess("ship", data, free_port(), free_port(), {"PIXEL_LOG_LEVEL": "WARNING"}).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_home_page_says_what_runs_here_and_how_to_open_the_app(store: PixelProcess) -> None:
    r = httpx.get(f"{store.api}/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert int(r.headers["content-length"]) == len(r.content)
    text = r.text
    assert "<title>Pixel store and API</title>" in text
    assert "<h1>Pixel is running here</h1>" in text
    assert "This is Pixel's store process" in text
    assert "Pixel has no web interface. To read the charts, open the desktop app:" in text
    assert "<code>pixel-desktop --demo</code>" in text
    assert '"Connect to an existing Pixel"' in text
    assert "<code>pixel user add NAME</code>" in text


def test_home_page_loads_nothing_and_reflects_nothing(store: PixelProcess) -> None:
    r = httpx.get(
        f"{store.api}/?q=<script>alert(1)</script>",
        headers={"Host": "evil.example", "Referer": "https://evil.example/x"},
    )
    assert r.status_code == 200
    text = r.text.lower()
    for bad in ("<script", "<link", "<img", "<style", "style=", "src=", "href=", "http:", "https:", "//"):
        assert bad not in text, bad
    assert "evil" not in text and "alert" not in text
    assert re.fullmatch(r"[\x09\x0a\x20-\x7e]*", r.text), "plain ASCII"
    assert httpx.get(f"{store.api}/").content == r.content  # the same bytes whatever the request


def test_head_and_other_paths_and_methods(store: PixelProcess) -> None:
    head = httpx.head(f"{store.api}/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-security-policy"] == CSP
    assert int(head.headers["content-length"]) == len(httpx.get(f"{store.api}/").content)
    # Only the root is the page: other paths and methods go on to the API as before.
    for method, path in (("POST", "/"), ("GET", "/index.html"), ("GET", "//")):
        r = httpx.request(method, f"{store.api}{path}")
        assert r.status_code in (404, 405), (method, path, r.status_code)
        assert r.headers["content-type"].startswith("application/json")
    assert httpx.get(f"{store.api}/health").json()["status"] in ("ok", "degraded")
