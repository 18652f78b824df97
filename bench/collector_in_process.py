"""CPU per tracking request through the collector's fast path, in process (no sockets, no load generator).

Feeds whole requests to `fastpath.TrackProtocol.data_received` on a uvloop loop, as uvicorn would after a
read: the HTTP parse, `Collector.handle` (JSON check, record, the spool's `write(2)` into a temp folder) and
the answer. The transport is a stub that only counts writes: what is measured is Pixel's and uvicorn's
Python per request, the part a profile of the real server cannot separate from the kernel's socket work.

    .venv/bin/python bench/collector_in_process.py [--requests 100000] [--profile]

Two requests: wrk's from the anchor's post.lua (4 headers) and a browser's sendBeacon (16 headers).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop
from uvicorn.config import Config
from uvicorn.server import ServerState

from pixel.server.collector.app import create_app
from pixel.server.collector.fastpath import TrackProtocol
from pixel.server.settings import Settings

POST_LUA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "anchor-nginx-lua" / "post.lua"
UA = (
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36"
)


def requests(body: bytes) -> dict[str, bytes]:
    wrk = (
        b"POST /track HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Length: %d\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\nUser-Agent: %s\r\n\r\n%s"
    ) % (len(body), UA, body)
    browser = (
        b"POST /track HTTP/1.1\r\nHost: stats.example\r\nConnection: keep-alive\r\nContent-Length: %d\r\n"
        b'sec-ch-ua-platform: "Windows"\r\nUser-Agent: %s\r\nsec-ch-ua: "Chromium";v="131"\r\n'
        b"Content-Type: text/plain;charset=UTF-8\r\nsec-ch-ua-mobile: ?0\r\nAccept: */*\r\n"
        b"Origin: https://shop.example\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n"
        b"Sec-Fetch-Dest: empty\r\nReferer: https://shop.example/\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: de-DE,de;q=0.9,en;q=0.8\r\n\r\n%s"
    ) % (len(body), UA, body)
    return {"wrk (4 headers)": wrk, "browser (16 headers)": browser}


class CountingTransport:
    """Stands in for the socket: the answers are counted, not sent."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8081), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


async def main(n: int, profile: bool) -> None:
    body = POST_LUA.read_text().split("wrk.body = '")[1].rsplit("'", 1)[0].encode()
    app = create_app(
        Settings(data_dir=Path(tempfile.mkdtemp(prefix="pixel-inproc-")), spool_max_bytes=1 << 40)
    )
    app.collector.start()
    config = Config(
        app=app,
        http=TrackProtocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    config.load()
    protocol = TrackProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = CountingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for name, request in requests(body).items():
        for _ in range(1000):  # warm-up
            protocol.data_received(request)
        start, writes = time.process_time(), transport.writes
        for _ in range(n):
            protocol.data_received(request)
        assert transport.writes - writes == n  # every request answered
        print(f"{name}: {(time.process_time() - start) / n * 1e6:.2f} us CPU per request", flush=True)
    if profile:
        import cProfile
        import pstats

        request = requests(body)["browser (16 headers)"]
        with cProfile.Profile() as prof:
            for _ in range(n // 2):
                protocol.data_received(request)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    app.collector.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.profile))
