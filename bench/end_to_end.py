"""End to end, HTTP to ClickHouse rows, on the embedded store: sustained events/s, visibility, memory.

Starts `pixel serve` (2 collector workers + the store process, chDB, enrichment on) in a temp folder and
offers a steady load with wrk: batches of `--batch` realistic events per request (the tracker batches
events fired together), throttled with wrk's `delay()` to about `--rate` events/s for `--seconds`.
Then it waits for the backlog to drain and reports:
- offered and stored events/s (sustained = stored / (time from the first request to the last insert)),
- nothing lost: events accepted by the collector == events inserted, no dead letters,
- visibility: p50/p95 of receive (just before the 204) -> insert acknowledged, from the shipper's histogram,
- the largest backlog seen, and the peak resident memory of all `pixel serve` processes.

    .venv/bin/python bench/end_to_end.py [--rate 20000] [--seconds 30] [--batch 20]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
from procstats import group_processes, machine_busy, rss_bytes

EVENT = {
    "event_name": "pageview",
    "ts": 0,
    "site": "example.com",
    "visitor_id": "v_3k9x2m1q",
    "session_id": "s_8a7b6c5d",
    "user_id": None,
    "page": {
        "url": "https://example.com/blog/how-to-measure?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
        "path": "/blog/how-to-measure",
        "title": "How to measure things",
        "referrer": "https://www.google.com/",
    },
    "device": {
        "screen": "1920x1080",
        "viewport": "1280x720",
        "lang": "en-US",
        "tz": "Europe/Berlin",
        "dpr": 2,
    },
    "params": {"scroll_depth": "75"},
}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url, timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def quantile(m: dict[str, float], q: float) -> float:
    total = m["pixel_shipper_visible_seconds_count"]
    bounds = sorted(
        (float(k.split('le="')[1].rstrip('"}')), v)
        for k, v in m.items()
        if k.startswith("pixel_shipper_visible_seconds_bucket") and "+Inf" not in k
    )
    for bound, cumulative in bounds:
        if cumulative >= q * total:
            return bound
    return float("inf")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=20_000, help="offered events/s")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=20, help="events per request")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pixel-e2e-"))
    port, api_port = free_port(), free_port()
    env = {**os.environ, "PIXEL_WORKERS": "2", "PIXEL_LOG_LEVEL": "WARNING"}
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixel.server.cli",
            "serve",
            "--data-dir",
            str(work / "data"),
            "--port",
            str(port),
            "--api-port",
            str(api_port),
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{api_port}/health"):
            for _ in range(600):
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        body = orjson.dumps([{**EVENT, "ts": int(time.time() * 1000)} for _ in range(args.batch)]).decode()
        per_conn_rps = args.rate / args.batch / args.connections
        script = work / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"\n'
            f'wrk.headers["User-Agent"] = "{UA}"\n'
            'wrk.headers["Accept-Language"] = "en-US,en;q=0.9"\n'
            f"wrk.body = [==[{body}]==]\n"
            f"function delay() return {1000 / per_conn_rps:.3f} end\n"
        )
        samples: list[tuple[float, int, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    m = metrics(f"http://127.0.0.1:{api_port}/metrics")
                    samples.append((time.monotonic(), rss_bytes(serve.pid), m["pixel_spool_backlog_bytes"]))
                except (httpx.HTTPError, KeyError):
                    pass
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        cpu_before, busy_before = group_processes(serve.pid), machine_busy()
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/track",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu_after, busy_after = group_processes(serve.pid), machine_busy()
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        accepted = metrics(f"http://127.0.0.1:{port}/metrics")["pixel_collector_events_total"]
        last_change, inserted = time.monotonic(), -1.0
        while time.monotonic() - started < args.seconds + 300:
            try:
                m = metrics(f"http://127.0.0.1:{api_port}/metrics")
            except httpx.HTTPError:  # a store process busy catching up may answer late: ask again
                continue
            if m["pixel_shipper_events_inserted_total"] != inserted:
                inserted, last_change = m["pixel_shipper_events_inserted_total"], time.monotonic()
            if inserted >= accepted and m["pixel_spool_backlog_bytes"] == 0:
                break
            time.sleep(0.05)
        stop.set()
        sampler.join()
        elapsed = last_change - started
        offered = requests * args.batch / args.seconds
        print(
            f"offered {offered:,.0f} events/s for {args.seconds} s ({requests} requests of {args.batch} events, "
            f"non-2xx {non2xx.group(1) if non2xx else 0})"
        )
        print(
            f"accepted {accepted:,.0f} events, inserted {inserted:,.0f}, dead letters "
            f"{m['pixel_shipper_events_dead_total']:.0f}; sustained {inserted / elapsed:,.0f} events/s "
            f"(all stored {elapsed - args.seconds:.2f} s after the load ended)"
        )
        print(
            f"visible after 204: p50 <= {quantile(m, 0.5)} s, p95 <= {quantile(m, 0.95)} s, "
            f"p99 <= {quantile(m, 0.99)} s (mean {m['pixel_shipper_visible_seconds_sum'] / max(inserted, 1):.3f} s)"
        )
        print(
            f"largest backlog {max(s[2] for s in samples) / 1e6:.1f} MB; peak RSS of pixel serve "
            f"{max(s[1] for s in samples) / 2**20:.0f} MiB (all processes)"
        )
        used = {pid: cpu - cpu_before.get(pid, (0.0, 0))[0] for pid, (cpu, _rss) in cpu_after.items()}
        store_pid = max(
            cpu_after, key=lambda pid: cpu_after[pid][1]
        )  # the store process holds chDB: the largest
        others = sum(v for pid, v in used.items() if pid != store_pid)
        busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
        print(
            f"CPU during the load, in cores: store process {used[store_pid] / args.seconds:.2f}, collector "
            f"workers and supervisor {others / args.seconds:.2f}; the machine was {busy:.0%} busy "
            f"({os.cpu_count()} cores, wrk and any other load included)"
        )
        ok = inserted == accepted and m["pixel_shipper_events_dead_total"] == 0 and not non2xx
        return 0 if ok else 1
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(60)


if __name__ == "__main__":
    sys.exit(main())
