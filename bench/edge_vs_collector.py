"""Requests/s through the HTTPS edge (Caddy, TLS keep-alive) against the bare collector and the anchor (nginx +
LuaJIT, plain HTTP), in one run; then the p99 latency at half the edge's saturating rate.

Set-up, all on this machine: a compact stack with a domain (tests/stack/edge_helpers.py: the Pixel image built from
this checkout, the edge from Debian's caddy package, pebble as the ACME CA, all from scripts/system.d/20-docker.sh
and 25-edge.sh), the collector with 2 workers like the anchor's 2 nginx workers; wrk 4.1 runs in a container with
the host's network (image built here from Debian's wrk on the debootstrap base) where the test domain maps to the
edge's address, so TLS has the right name. Rounds alternate anchor, collector, edge:
`wrk -t1 -c64 -d<secs>s --latency -s post.lua URL` (the anchor's own request script). The paced runs add a `delay()`
to the same script so 64 connections together send half the edge's median saturating rate (wrk's latency excludes
that delay).

    .venv/bin/python bench/edge_vs_collector.py [--anchor-dir ../shared/bench/anchor-nginx-lua] [--rounds 3]
        [--seconds 10]

Needs Docker, Debian's nginx, libnginx-mod-http-lua, lua-cjson (the anchor). The goal (issue 14): through the edge
at least 0.6x the bare collector's requests/s, p99 at most 10 ms at half the saturating rate.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "stack"))

from edge_helpers import DOMAIN, start_edge_stack, stop_edge_stack  # noqa: E402
from stack_helpers import PIXEL_BASE, PIXEL_TAG  # noqa: E402

from pixel.app.stack import image as images  # noqa: E402
from pixel.app.stack.engine import EngineTarget, connect  # noqa: E402

WRK_IMAGE = "pixel-bench/wrk:bookworm"
PACED = """dofile("/anchor/post.lua")
local pause = tonumber(os.getenv("PAUSE_MS"))
function delay() return pause end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk_image(client: docker.DockerClient) -> None:
    if images.has_image(client, WRK_IMAGE):
        return
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "--no-install-recommends wrk && rm -rf /var/lib/apt/lists/*\n"
        )
        images.build(client, images.ImageSource("build", Path(ctx), base=PIXEL_BASE), WRK_IMAGE)


def wrk(
    client, anchor_dir: Path, work: Path, edge_ip: str, url: str, seconds: int, pause_ms: float = 0
) -> dict:
    script = "/work/paced.lua" if pause_ms else "/anchor/post.lua"
    out = client.containers.run(
        WRK_IMAGE,
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", "-s", script, url],
        network_mode="host",
        extra_hosts={DOMAIN: edge_ip},
        environment={"PAUSE_MS": f"{pause_ms:.3f}"},
        volumes={
            str(anchor_dir): {"bind": "/anchor", "mode": "ro"},
            str(work): {"bind": "/work", "mode": "ro"},
        },
        remove=True,
    ).decode()
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--anchor-dir", type=Path, default=REPO.parent / "shared" / "bench" / "anchor-nginx-lua"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    anchor_dir = args.anchor_dir.resolve()
    client = connect(EngineTarget())
    ensure_wrk_image(client)
    built = False
    if not images.has_image(client, PIXEL_TAG):
        ctx = images.make_context(Path(tempfile.mkdtemp(prefix="pixel-ctx-")))
        images.build(
            client, images.ImageSource("build", ctx, base=PIXEL_BASE, network_mode="none"), PIXEL_TAG
        )
        built = True
    work = Path(tempfile.mkdtemp(prefix="pixel-edge-bench-"))
    work.chmod(0o755)
    (work / "paced.lua").write_text(PACED)
    (work / "paced.lua").chmod(0o644)
    anchor_port = free_port()
    anchor_pid = int(
        subprocess.run(
            [str(anchor_dir / "run.sh")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PORT": str(anchor_port), "LOG_DIR": str(work / "anchor")},
        ).stdout.strip()
    )
    stack = start_edge_stack(client, work, workers=2, cert_seconds=24 * 3600)
    try:
        stack.wait_certificate()
        edge_ip = stack.edge_address(stack.public.name)
        pixel_ip = stack.edge_address.__self__.prov.container("pixel")  # type: ignore[attr-defined]
        pixel_ip.reload()
        collector_ip = pixel_ip.attrs["NetworkSettings"]["Networks"][stack.prov.spec.network_name][
            "IPAddress"
        ]
        urls = {
            "anchor": f"http://127.0.0.1:{anchor_port}/track",
            "collector": f"http://{collector_ip}:8081/track",
            "edge": f"https://{DOMAIN}:443/track",  # a port number: the base image has no /etc/services
        }
        for url in urls.values():  # warm-up, not counted
            wrk(client, anchor_dir, work, edge_ip, url, 2)
        rows: dict[str, list[dict]] = {name: [] for name in urls}
        for i in range(args.rounds):
            line = []
            for name, url in urls.items():
                r = wrk(client, anchor_dir, work, edge_ip, url, args.seconds)
                rows[name].append(r)
                line.append(f"{name} {r['rps']:.0f} req/s p99 {r['p99_ms']:.2f} ms")
            print(f"round {i + 1}: " + " | ".join(line), flush=True)
        med = {name: statistics.median(r["rps"] for r in rs) for name, rs in rows.items()}
        p99 = {name: statistics.median(r["p99_ms"] for r in rs) for name, rs in rows.items()}
        print(
            f"saturating (median of {args.rounds}): anchor {med['anchor']:.0f}, collector {med['collector']:.0f}, "
            f"edge {med['edge']:.0f} req/s; edge/collector {med['edge'] / med['collector']:.2f}x, "
            f"edge/anchor {med['edge'] / med['anchor']:.2f}x, collector/anchor {med['collector'] / med['anchor']:.2f}x; "
            f"p99 anchor {p99['anchor']:.2f} ms, collector {p99['collector']:.2f} ms, edge {p99['edge']:.2f} ms"
        )
        half = med["edge"] / 2
        pause = 64 * 1000 / half
        for name in ("collector", "edge"):
            r = wrk(client, anchor_dir, work, edge_ip, urls[name], args.seconds, pause)
            print(
                f"at {half:.0f} req/s offered (half the edge's saturating rate): {name} {r['rps']:.0f} req/s, "
                f"p99 {r['p99_ms']:.2f} ms"
            )
            rows[name].append(r)
        bad = sum(r["non2xx"] for rs in rows.values() for r in rs)
        errors = [r["errors"] for rs in rows.values() for r in rs if r["errors"]]
        print(f"non-2xx answers: {bad}; socket errors: {errors or 'none'}")
        return 0 if bad == 0 else 1
    finally:
        stop_edge_stack(stack)
        os.kill(anchor_pid, signal.SIGTERM)
        if built:
            client.images.remove(PIXEL_TAG, force=True)


if __name__ == "__main__":
    sys.exit(main())
