"""Collector requests/s against the anchor (nginx + LuaJIT doing the original edge work), same run.

Protocol (shared/bench/anchor-nginx-lua/README.md): both on 127.0.0.1 with 2 worker processes,
alternating wrk runs A B A B (`wrk -t1 -c64 -d<secs>s -s post.lua`), at least 3 pairs; every
response must be 2xx and the events in Pixel's spool must equal the requests wrk reports. The figure
is the ratio of the medians (Pixel / anchor), with both p99 latencies.

    .venv/bin/python bench/collector_vs_anchor.py --anchor-dir ../shared/bench/anchor-nginx-lua \
        [--server uvicorn|uvicorn-asgi|granian|granian-asgi] [--pairs 3] [--seconds 10]

Needs Debian's nginx, libnginx-mod-http-lua, lua-cjson and wrk.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from procstats import cpu_seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def measured(url: str, script: Path, seconds: int, pgid: int) -> dict[str, float]:
    """One wrk run, plus the server's CPU time per request: a figure the machine's other load barely moves."""
    before = cpu_seconds(pgid)
    result = wrk(url, script, seconds)
    result["cpu_us"] = (cpu_seconds(pgid) - before) / max(result["requests"], 1) * 1e6
    return result


def spooled_records(spool: Path) -> int:
    return sum(
        sum(1 for line in p.read_bytes().splitlines() if line and not line.startswith(b"#"))
        for p in spool.glob("*.*")
    )


def start_pixel(server: str, data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PIXEL_DATA_DIR": str(data),
        "PIXEL_PORT": str(port),
        "PIXEL_WORKERS": "2",
        "PIXEL_LOG_LEVEL": "WARNING",
        "PIXEL_SPOOL_MAX_BYTES": str(64 * 1024**3),
    }
    if server in ("granian", "uvicorn", "uvicorn-asgi"):  # what `pixel collect` runs with PIXEL_SERVER=server
        env["PIXEL_SERVER"] = server
        cmd = [sys.executable, "-m", "pixel.server.cli", "collect", "--host", "127.0.0.1"]
    else:  # granian-asgi: the ASGI binding under granian, for comparison
        cmd = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ws",
            "--log-level",
            "warning",
            "pixel.server.collector.app:create_app",
        ]
    return subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--anchor-dir",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "bench" / "anchor-nginx-lua",
    )
    parser.add_argument(
        "--server", choices=["uvicorn", "uvicorn-asgi", "granian", "granian-asgi"], default="uvicorn"
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    script = args.anchor_dir / "post.lua"
    work = Path(tempfile.mkdtemp(prefix="pixel-bench-"))
    anchor_port, pixel_port = free_port(), free_port()
    anchor_pid = int(
        subprocess.run(
            [str(args.anchor_dir / "run.sh")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PORT": str(anchor_port), "LOG_DIR": str(work / "anchor")},
        ).stdout.strip()
    )
    pixel = start_pixel(args.server, work / "pixel", pixel_port)
    try:
        wait(f"http://127.0.0.1:{pixel_port}/health")
        anchor_url, pixel_url = (
            f"http://127.0.0.1:{anchor_port}/track",
            f"http://127.0.0.1:{pixel_port}/track",
        )
        wrk(anchor_url, script, 2)  # warm-up, not counted
        wrk(pixel_url, script, 2)
        before = spooled_records(work / "pixel" / "spool")
        rows = []
        for i in range(args.pairs):
            a = measured(anchor_url, script, args.seconds, anchor_pid)
            p = measured(pixel_url, script, args.seconds, pixel.pid)
            rows.append((a, p))
            print(
                f"pair {i + 1}: anchor {a['rps']:.0f} req/s p99 {a['p99_ms']:.2f} ms {a['cpu_us']:.1f} us CPU/req | "
                f"pixel[{args.server}] {p['rps']:.0f} req/s p99 {p['p99_ms']:.2f} ms {p['cpu_us']:.1f} us CPU/req | "
                f"ratio {p['rps'] / a['rps']:.2f}",
                flush=True,
            )
        time.sleep(0.5)
        spooled = spooled_records(work / "pixel" / "spool") - before
        sent = sum(p["requests"] for _, p in rows)
        bad = sum(p["non2xx"] for _, p in rows) + sum(a["non2xx"] for a, _ in rows)
        a_med = statistics.median(a["rps"] for a, _ in rows)
        p_med = statistics.median(p["rps"] for _, p in rows)
        print(
            f"median anchor {a_med:.0f} req/s, pixel[{args.server}] {p_med:.0f} req/s, ratio {p_med / a_med:.2f}x; "
            f"p99 anchor {statistics.median(a['p99_ms'] for a, _ in rows):.2f} ms, "
            f"pixel {statistics.median(p['p99_ms'] for _, p in rows):.2f} ms"
        )
        # wrk stops counting at its deadline with up to 64 requests in flight (one per connection) that the
        # server still answers and spools: the spool may hold up to 64 more per run, never fewer.
        in_flight = spooled - sent
        a_cpu = statistics.median(a["cpu_us"] for a, _ in rows)
        p_cpu = statistics.median(p["cpu_us"] for _, p in rows)
        print(
            f"server CPU per request (median): anchor {a_cpu:.1f} us, pixel {p_cpu:.1f} us "
            f"(pixel needs {p_cpu / a_cpu:.2f}x the anchor's CPU per request)"
        )
        print(
            f"requests wrk reported for pixel: {sent}; records in the spool: {spooled} "
            f"({in_flight} in flight at wrk's deadlines, at most {64 * len(rows)}); non-2xx: {bad}"
        )
        return 0 if 0 <= in_flight <= 64 * len(rows) and bad == 0 else 1
    finally:
        os.killpg(pixel.pid, signal.SIGTERM)
        pixel.wait(30)
        os.kill(anchor_pid, signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
