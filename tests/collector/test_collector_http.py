"""The collector over real HTTP: each bad input gets its status and writes nothing; CORS; the tracker script."""

from __future__ import annotations

import base64
import gzip
import socket
from pathlib import Path

import httpx
import orjson
import pytest

from pixel.server.eventformat import CHECKED


def spool_snapshot(data_dir: Path) -> dict[str, bytes]:
    spool = data_dir / "spool"
    return {p.name: p.read_bytes() for p in sorted(spool.iterdir())} if spool.exists() else {}


@pytest.fixture(scope="module", params=["uvicorn", "uvicorn-asgi", "granian"])
def collector(tmp_path_factory, request):
    """`pixel collect` with each server binding: uvicorn with the tracking route in its protocol (the default),
    uvicorn's stock protocol (every request through the ASGI app) and granian (RSGI)."""
    from tests.conftest import PixelProcess, free_port

    data = tmp_path_factory.mktemp("collector") / "data"
    proc = PixelProcess(
        "collect",
        data,
        free_port(),
        free_port(),
        {"PIXEL_WORKERS": "2", "PIXEL_LOG_LEVEL": "WARNING", "PIXEL_SERVER": request.param},
    ).start()
    request.addfinalizer(proc.stop)
    return proc


EVENT = {"event_name": "pageview", "page": {"url": "https://example.com/"}}
BAD_CASES = [
    ("invalid JSON", "POST", b'{"event_name": "pageview"', {}, 400, "invalid JSON"),
    ("a string", "POST", b'"pageview"', {}, 400, "not an event"),
    ("a number", "POST", b"42", {}, 400, "not an event"),
    ("null", "POST", b"null", {}, 400, "not an event"),
    ("empty array", "POST", b"[]", {}, 400, "no events"),
    ("array of non-objects", "POST", b'[{"event_name":"a"}, 3]', {}, 400, "not an event"),
    ("101 events", "POST", orjson.dumps([EVENT] * 101), {}, 400, "too many events"),
    ("body over 64 KiB", "POST", b'{"x":"' + b"a" * 65_536 + b'"}', {}, 413, "body too large"),
    ("empty body", "POST", b"", {}, 400, "invalid JSON"),
    ("invalid UTF-8", "POST", b'{"event_name":"\xff\xfe"}', {}, 400, "invalid JSON"),
    ("GET without e", "GET", b"", {}, 400, "missing event"),
    ("PUT", "PUT", orjson.dumps(EVENT), {}, 405, "method not allowed"),
    ("DELETE", "DELETE", b"", {}, 405, "method not allowed"),
]


@pytest.mark.parametrize(
    ("case", "method", "body", "headers", "status", "error"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_is_refused_and_writes_nothing(
    collector, case, method, body, headers, status, error
) -> None:
    before = spool_snapshot(collector.data_dir)
    r = httpx.request(
        method,
        f"{collector.collector}/track",
        content=body or None,
        headers={"Content-Type": "text/plain", **headers},
    )
    assert r.status_code == status
    doc = r.json()
    assert doc["error"] == error
    assert isinstance(doc["detail"], str) and doc["detail"]
    assert spool_snapshot(collector.data_dir) == before


def test_bad_base64_pixel_and_unknown_path(collector) -> None:
    before = spool_snapshot(collector.data_dir)
    r = httpx.get(f"{collector.collector}/track", params={"e": "%%%not-base64"})
    assert (r.status_code, r.json()["error"]) == (400, "bad encoding")
    not_json = base64.urlsafe_b64encode(b"hello").decode()
    r = httpx.get(f"{collector.collector}/track", params={"e": not_json})
    assert (r.status_code, r.json()["error"]) == (400, "invalid JSON")
    r = httpx.post(f"{collector.collector}/collect", json=EVENT)
    assert (r.status_code, r.json()["error"]) == (404, "not found")
    assert spool_snapshot(collector.data_dir) == before


def test_chunked_body_over_limit_is_413(collector) -> None:
    before = spool_snapshot(collector.data_dir)

    def chunks():
        for _ in range(20):
            yield b" " * 4096  # 80 KiB of whitespace, no Content-Length

    r = httpx.post(f"{collector.collector}/track", content=chunks())
    assert r.status_code == 413
    assert spool_snapshot(collector.data_dir) == before


def test_garbage_request_does_not_take_a_worker_down(collector) -> None:
    pids = {httpx.get(f"{collector.collector}/health").json()["pid"] for _ in range(20)}
    with socket.create_connection(("127.0.0.1", collector.port)) as sock:
        sock.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: nonsense\r\n\r\n{}")
        sock.recv(1024)
    with socket.create_connection(("127.0.0.1", collector.port)) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        sock.recv(1024)
    r = httpx.post(f"{collector.collector}/track", json=EVENT)
    assert r.status_code == 204
    after = {httpx.get(f"{collector.collector}/health").json()["pid"] for _ in range(20)}
    assert after <= pids  # no worker was replaced: the ones that answered before still answer


def test_good_request_appends_one_record(collector) -> None:
    before = spool_snapshot(collector.data_dir)
    r = httpx.post(
        f"{collector.collector}/track",
        content=b'[\n {"event_name": "a"},\r\n {"event_name": "b"}\n]',
        headers={
            "User-Agent": "UA\twith tab",
            "Accept-Language": "de-DE",
            "Origin": "https://shop.example",
            "DNT": "1",
            "Sec-GPC": "1",
        },
    )
    assert r.status_code == 204
    after = spool_snapshot(collector.data_dir)
    added = (
        b"".join(after.values()).replace(b"".join(before.values()), b"")
        if before
        else b"".join(after.values())
    )
    line = added.strip().splitlines()[-1]
    fields = line.split(b"\t")
    assert fields[1:7] == [
        b"127.0.0.1",
        b"UA with tab",
        b"de-DE",
        b"shop.example",
        b"",
        b"dg" + CHECKED.encode(),
    ]
    assert fields[7] == b'[  {"event_name": "a"},   {"event_name": "b"} ]'


def test_cors_preflight_and_single_allow_origin_header(collector) -> None:
    r = httpx.options(
        f"{collector.collector}/track",
        headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    assert r.headers.get_list("access-control-allow-origin") == ["*"]
    assert r.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert r.headers["access-control-allow-headers"] == "Content-Type"
    r = httpx.post(f"{collector.collector}/track", json=EVENT, headers={"Origin": "https://a.example"})
    assert r.status_code == 204
    assert r.headers.get_list("access-control-allow-origin") == ["*"]


def test_allowed_origins_are_echoed_only_when_listed(pixel_factory) -> None:
    proc = pixel_factory("collect", pixel_allowed_origins="https://a.example,https://b.example")
    r = httpx.post(f"{proc.collector}/track", json=EVENT, headers={"Origin": "https://b.example"})
    assert r.status_code == 204
    assert r.headers.get_list("access-control-allow-origin") == ["https://b.example"]
    assert r.headers["vary"] == "Origin"
    r = httpx.post(f"{proc.collector}/track", json=EVENT, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_forwarded_for_is_honoured_only_from_trusted_proxies(pixel_factory, tmp_path) -> None:
    trusting = pixel_factory("collect", data_dir=tmp_path / "t", pixel_trusted_proxies="127.0.0.1")
    plain = pixel_factory("collect", data_dir=tmp_path / "p")
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "CF-IPCountry": "DE"}
    for proc in (trusting, plain):
        assert httpx.post(f"{proc.collector}/track", json=EVENT, headers=headers).status_code == 204
    t = b"".join(spool_snapshot(tmp_path / "t").values()).splitlines()[-1].split(b"\t")
    p = b"".join(spool_snapshot(tmp_path / "p").values()).splitlines()[-1].split(b"\t")
    assert t[1] == b"198.51.100.7"  # the rightmost address that is not a trusted proxy
    assert p[1] == b"127.0.0.1"  # spoofable header from an untrusted peer: ignored
    assert t[5] == p[5] == b""  # CDN geo headers are off unless the operator enables them


def test_tracker_script_is_served_with_etag_and_gzip(collector) -> None:
    from pixel.tracker import dist_file

    source = dist_file("pixel.js").read_bytes()
    r = httpx.get(f"{collector.collector}/pixel.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/javascript; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == source  # httpx decompressed it
    etag = r.headers["etag"]
    r2 = httpx.get(f"{collector.collector}/pixel.js", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    r3 = httpx.get(f"{collector.collector}/pixel.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in r3.headers and r3.content == source


def test_both_tracker_builds_are_served_with_their_own_etag(collector) -> None:
    from pixel.tracker import dist_file

    tags = set()
    for name in ("pixel.js", "pixel.ext.js"):
        source = dist_file(name).read_bytes()
        r = httpx.get(f"{collector.collector}/{name}", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.content == source and r.headers["vary"] == "Accept-Encoding"
        tags.add(r.headers["etag"])
        r2 = httpx.get(f"{collector.collector}/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert r2.status_code == 304
    assert len(tags) == 2
    assert httpx.get(f"{collector.collector}/pixel.debug.js").status_code == 404
    assert httpx.post(f"{collector.collector}/pixel.ext.js").status_code == 405


def test_the_script_is_served_precompressed_as_the_client_prefers(collector) -> None:
    import brotli

    from pixel.tracker import dist_file

    source = dist_file("pixel.js").read_bytes()
    url = f"{collector.collector}/pixel.js"
    with httpx.Client(headers={"Accept-Encoding": "br, gzip"}) as client:
        r = client.get(url)
        assert r.headers["content-encoding"] == "br" and r.content == source
    # the raw bytes on the wire are brotli's at its best quality (precompressed once per worker)
    with httpx.stream("GET", url, headers={"Accept-Encoding": "br"}) as raw:
        wire = b"".join(raw.iter_raw())
    assert wire == brotli.compress(source, mode=brotli.MODE_TEXT, quality=11)
    assert len(wire) < len(gzip.compress(source, 9))
    refused = httpx.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.content == source


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (b"", None),
        (b"identity", None),
        (b"gzip", "gzip"),
        (b"br", "br"),
        (b"gzip, deflate, br, zstd", "br"),
        (b"GZIP", "gzip"),
        (b"br;q=0, gzip;q=0.5", "gzip"),
        (b"br;q=0,gzip;q=0", None),
        (b"gzip;q=0", None),
        (b"*", "br"),
        (b"*;q=0, gzip", "gzip"),
        (b"*, br;q=0", "gzip"),
        (b"br;q=abc", None),
        (b"deflate", None),
        (b" , ,gzip ; q=1 ", "gzip"),
    ],
)
def test_preferred_encoding(accept: bytes, expected: str | None) -> None:
    from pixel.server.collector.script import preferred_encoding

    assert preferred_encoding(accept) == expected
