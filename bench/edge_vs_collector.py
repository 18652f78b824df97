"""Requests/s through the HTTPS edge (Caddy, TLS keep-alive) against the bare collector and the anchor (nginx +
LuaJIT, plain HTTP), in one run; then the p99 latency at half the edge's saturating rate.

Set-up, all on this machine: a compact stack with a domain (tests/stack/edge_helpers.py: the Pixel image built from
this checkout, the edge from Debian's caddy package, pebble as the ACME CA, all from scripts/system.d/20-docker.sh
and 25-edge.sh), the collector with 2 workers like the anchor's 2 nginx workers; wrk 4.1 runs in a container with
the host's network (image built here from Debian's wrk on the debootstrap base) where the test domain maps to the
edge's address, so TLS has the right name. Rounds alternate anchor, collector, edge:
`wrk -t1 -c64 -d<secs>s --latency -s post.lua URL` (the anchor's own request script). The paced runs add a `delay()`
to the same script so 64 connections together send half the edge's median saturating rate (wrk's latency excludes
that delay). The edge reaches the collector's workers on their Unix sockets (app/stack/edge.py); `--variants` also
runs the edge's Caddyfile over TCP on the stack network (as before the sockets) beside it, for the A/B.

    .venv/bin/python bench/edge_vs_collector.py [--anchor-dir ../shared/bench/anchor-nginx-lua] [--rounds 3]
        [--seconds 10]

Needs Docker, Debian's nginx, libnginx-mod-http-lua, lua-cjson (the anchor). The goal (issue 14): through the edge
at least 0.6x the bare collector's requests/s, p99 at most 10 ms at half the saturating rate.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "stack"))
sys.path.insert(0, str(REPO / "bench"))

import pprof_top  # noqa: E402
from edge_helpers import DOMAIN, start_edge_stack, stop_edge_stack  # noqa: E402
from stack_helpers import PIXEL_BASE, PIXEL_TAG  # noqa: E402

from pixel.app.stack import image as images  # noqa: E402
from pixel.app.stack.edge import (  # noqa: E402
    EDGE_GOGC,
    EDGE_GOMEMLIMIT,
    LOCAL_EDGE_IMAGE,
    SOCKET_DIR,
    UPSTREAM_VOLUME,
    caddyfile,
)
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
    """One wrk run; its requests, req/s, p99 and its own CPU per request (`wrk_us`: user + system time of the
    wrk process, the shell's `times` after it ends), the client's share of the machine's budget."""
    script = "/work/paced.lua" if pause_ms else "/anchor/post.lua"
    out = client.containers.run(
        WRK_IMAGE,
        ["sh", "-c", f'wrk -t1 -c64 -d{seconds}s --latency -s {script} "$0" && times', url],
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
    times = re.findall(r"(\d+)m([\d.]+)s", out.strip().splitlines()[-1])  # children's user, system
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": requests,
        "wrk_us": sum(int(m) * 60 + float(s) for m, s in times) * 1e6 / max(requests, 1),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
    }


def cpu_ns(container_id: str) -> int:
    """CPU time a container has used (its cgroup: v1 cpuacct or v2 cpu.stat), in nanoseconds."""
    v1 = Path("/sys/fs/cgroup/cpuacct/docker", container_id, "cpuacct.usage")
    if v1.exists():
        return int(v1.read_text())
    v2 = Path("/sys/fs/cgroup/system.slice", f"docker-{container_id}.scope", "cpu.stat")
    for line in v2.read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) * 1000
    raise RuntimeError(f"no CPU accounting found for container {container_id}")


def settle(container_id: str, idle: float = 0.05, limit: float = 60.0) -> None:
    """Wait until the container uses less than `idle` of a core over a second (at most `limit` seconds): the compact
    container's store process takes the spooled events in after a run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        start = cpu_ns(container_id)
        time.sleep(1.0)
        if cpu_ns(container_id) - start < idle * 1e9:
            return


# System calls counted in the collector's processes with --syscalls (`perf stat` on their tracepoints): the event
# loop's wake-ups (asyncio: epoll_wait, uvloop: epoll_pwait), socket reads and writes, connections taken and
# closed, per request.
SYSCALLS = ("epoll_wait", "epoll_pwait", "read", "recvfrom", "write", "sendto", "writev", "accept4", "close")
COUNT_SYSCALLS = False  # set by --syscalls


def container_pids(container_id: str) -> list[str]:
    """The host PIDs of a container's processes (its cgroup: v1 cpuacct or v2)."""
    for path in (
        Path("/sys/fs/cgroup/cpuacct/docker", container_id, "cgroup.procs"),
        Path("/sys/fs/cgroup/system.slice", f"docker-{container_id}.scope", "cgroup.procs"),
    ):
        if path.exists():
            return path.read_text().split()
    raise RuntimeError(f"no process list found for container {container_id}")


def start_syscall_count(container_id: str) -> subprocess.Popen:
    events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
    pids = ",".join(container_pids(container_id))
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", events, "-p", pids], stderr=subprocess.PIPE, text=True
    )


def stop_syscall_count(proc: subprocess.Popen) -> dict[str, int]:
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    counts = {}
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_") and fields[0].isdigit():
            counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
    return counts


def measured(containers: dict[str, str], run) -> dict:
    """`run()`'s wrk result plus the CPU microseconds per request each container (role -> id) spent from its start
    until the collector's container is idle again; with --syscalls also the collector's system calls per request
    during the run (`sys_<name>`)."""
    before = {role: cpu_ns(cid) for role, cid in containers.items()}
    perf = (
        start_syscall_count(containers["collector"]) if COUNT_SYSCALLS and "collector" in containers else None
    )
    result = run()
    if perf is not None:
        for name, count in stop_syscall_count(perf).items():
            result[f"sys_{name}"] = count / max(result["requests"], 1)
    if "collector" in containers:
        settle(containers["collector"])  # the store's work on these events (same container) counted here too
    for role, cid in containers.items():
        result[f"{role}_us"] = (cpu_ns(cid) - before[role]) / 1000 / max(result["requests"], 1)
    return result


def syscall_text(result: dict) -> str:
    """`; collector syscalls/req: epoll_wait 0.31, …` for the counts that occurred, or empty."""
    parts = [f"{k[4:]} {v:.2f}" for k, v in result.items() if k.startswith("sys_") and v]
    return f"; collector syscalls/req: {', '.join(parts)}" if parts else ""


def local_caddyfile(text: str) -> str:
    """The edge's Caddyfile as the stack gives it (`caddyfile()`), with the bench's settings filled in and a local
    certificate (`tls internal`) instead of ACME, so a variant of it runs beside the real edge in the same run."""
    subs = {
        "${PIXEL_DOMAIN}": DOMAIN,
        "${PIXEL_SCRIPT_NAME}": "pixel.js",
        "${PIXEL_TRACK_PATH}": "/track",
    }
    out = []
    for line in text.splitlines():
        if line.rstrip().endswith("# cdn") or re.match(
            r"\s*(email|acme_ca|acme_ca_root|renew_interval)\b", line
        ):
            continue
        for key, value in subs.items():
            line = line.replace(key, value)
        out.append(line)
    site = f"\n{DOMAIN} {{\n"
    return (
        "\n".join(out)
        .replace("{\n", "{\n    skip_install_trust\n", 1)
        .replace(site, site + "    tls internal\n", 1)
    )


# Caddy in the collector container's network namespace (compose's `network_mode: service:pixel`): the upstream is
# 127.0.0.1, not the bridge (veth, bridge, netfilter) between two containers.
SHARED_NS = "edge config over TCP, collector over loopback (shared network namespace)"
SOCKETS = " ".join(f"unix/{SOCKET_DIR}/collector-{n}.sock" for n in (1, 2))  # the edge's upstreams, 2 workers
OVER_TCP = "edge config, collector over TCP on the stack network (before the Unix sockets)"
PACED_COLLECTOR = "bare collector paced at the edge's rate"


def variants(upstream: str) -> dict[str, tuple[str, dict[str, str], str]]:
    """Caddy set-ups measured beside the real edge: name -> (Caddyfile, environment, URL scheme). `upstream`: the
    collector's `host:port` for the set-ups over TCP; the edge's own reaches the workers' Unix sockets."""
    edge = local_caddyfile(caddyfile(SOCKETS))
    flush = edge.replace(
        "header_up X-Forwarded-For {remote_host}\n",
        "header_up X-Forwarded-For {remote_host}\n            flush_interval -1\n",
        1,
    )
    script_only = edge.replace(
        "    encode zstd gzip\n", "    @script path /pixel.js\n    encode @script zstd gzip\n"
    )
    bare = "{{\n    skip_install_trust\n}}\n\n{site} {{\n    {tls}{body}\n}}\n"
    https, http = f"https://{DOMAIN}", "http://:80"
    go = {"GOGC": EDGE_GOGC, "GOMEMLIMIT": EDGE_GOMEMLIMIT}  # as the edge service runs Caddy

    def transport(extra: str) -> str:
        return edge.replace(
            "                keepalive_idle_conns_per_host 256\n",
            "                keepalive_idle_conns_per_host 256\n" + extra,
            1,
        )

    no_proto = edge.replace(
        "header_up X-Forwarded-For {remote_host}\n",
        "header_up X-Forwarded-For {remote_host}\n"
        "            header_up -X-Forwarded-Proto\n            header_up -X-Forwarded-Host\n",
        1,
    )
    return {
        "edge config (tls internal)": (edge, go, "https"),
        "edge config, GOMAXPROCS=2": (edge, {**go, "GOMAXPROCS": "2"}, "https"),
        # every request to the first worker while its dial works: one event loop takes all of Caddy's requests,
        # more of them per wake-up than two half-idle loops (not shipped: while the first worker is down every
        # request waits out lb_try_duration and fails, and Caddy's fail_duration, which would move on, marks
        # every Unix-socket upstream down at once)
        "edge config, lb_policy first": (
            edge.replace(
                "            lb_try_duration 2s\n",
                "            lb_policy first\n            lb_try_duration 2s\n",
            ),
            go,
            "https",
        ),
        "edge config, max_conns_per_host 8": (
            transport("                max_conns_per_host 8\n"),
            go,
            "https",
        ),
        "edge config, read/write_buffer 16KiB": (
            transport("                read_buffer 16KiB\n                write_buffer 16KiB\n"),
            go,
            "https",
        ),
        "edge config, compression off": (transport("                compression off\n"), go, "https"),
        "edge config, no X-Forwarded-Proto/Host upstream": (no_proto, go, "https"),
        OVER_TCP: (local_caddyfile(caddyfile(upstream)), go, "https"),
        "edge config, Go's defaults (GOGC=100, no GOMEMLIMIT)": (edge, {}, "https"),
        "edge config, GOMAXPROCS=1": (edge, {**go, "GOMAXPROCS": "1"}, "https"),
        "edge config, GOMAXPROCS=0 (every core)": (edge, {**go, "GOMAXPROCS": "0"}, "https"),
        "edge config, flush_interval -1": (flush, go, "https"),
        "edge config, encode for the script only": (script_only, go, "https"),
        "bare reverse_proxy, TLS": (
            bare.format(site=https, tls="tls internal\n    ", body=f"reverse_proxy {upstream}"),
            go,
            "https",
        ),
        "bare reverse_proxy, plain HTTP": (
            bare.format(site=http, tls="", body=f"reverse_proxy {upstream}"),
            go,
            "http",
        ),
        SHARED_NS: (local_caddyfile(caddyfile("127.0.0.1:8081")), go, "https"),
        "bare reverse_proxy to the Unix sockets, TLS": (
            bare.format(site=https, tls="tls internal\n    ", body=f"reverse_proxy {SOCKETS}"),
            go,
            "https",
        ),
        "static 204, TLS (ceiling)": (
            bare.format(site=https, tls="tls internal\n    ", body="respond 204"),
            go,
            "https",
        ),
    }


def start_variant(
    client, network: str, name: str, text: str, env: dict[str, str], sockets: str, namespace: str = ""
):
    """A Caddy container (the edge's image and memory limit) on the stack network running `text` (or in the network
    namespace of container `namespace`), with the collector's sockets volume (`sockets`) mounted as in the edge."""
    return client.containers.run(
        LOCAL_EDGE_IMAGE,
        [
            "sh",
            "-c",
            'mkdir -p /config && printf "%s\\n" "$CADDYFILE" > /config/Caddyfile && '
            "exec caddy run --config /config/Caddyfile --adapter caddyfile",
        ],
        environment={"CADDYFILE": text, "XDG_DATA_HOME": "/data", "XDG_CONFIG_HOME": "/config", **env},
        **({"network_mode": f"container:{namespace}"} if namespace else {"network": network}),
        mem_limit="256m",
        volumes={sockets: {"bind": SOCKET_DIR, "mode": "rw"}},
        labels={"io.pixel.bench": name},
        detach=True,
    )


def address(container, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])


def wait_ready(ip: str, scheme: str, timeout: float = 60) -> None:
    """Until the variant answers: a TLS handshake for the test domain (any certificate), or a TCP connect."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # Caddy's own local CA: only readiness here
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, 443 if scheme == "https" else 80), timeout=2) as raw:
                if scheme == "https":
                    ctx.wrap_socket(raw, server_hostname=DOMAIN).close()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def profile_edge(edge, work: Path, seconds: int, load) -> str:
    """Caddy's CPU profile (its admin API's pprof, inside the edge container) while `load(seconds + 2)` runs wrk
    against it; the report of bench/pprof_top.py, with the edge's requests/s of that run."""
    url = f"http://127.0.0.1:2019/debug/pprof/profile?seconds={seconds}"
    fetched: list = []
    thread = threading.Thread(
        target=lambda: fetched.append(edge.exec_run(["wget", "-q", "-O", "/tmp/cpu.pb.gz", url]))
    )
    thread.start()
    result = load(seconds + 2)
    thread.join()
    assert fetched and fetched[0].exit_code == 0, fetched
    stream, _stat = edge.get_archive("/tmp/cpu.pb.gz")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("cpu.pb.gz")
        assert member is not None
        data = member.read()
    (work / "edge-cpu.pb.gz").write_bytes(data)
    return f"edge under profile: {result['rps']:.0f} req/s\n" + pprof_top.report(pprof_top.parse(data))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--anchor-dir", type=Path, default=REPO.parent / "shared" / "bench" / "anchor-nginx-lua"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--variants",
        action="store_true",
        help="then Caddy set-ups beside the edge, the same run (variants())",
    )
    parser.add_argument(
        "--variants-only", action="store_true", help="skip the anchor rounds and the paced runs"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        help="seconds of Caddy's CPU profile (admin pprof) during an edge run",
    )
    parser.add_argument(
        "--only",
        default="",
        help="with --variants: only the variants whose name has this text (several: a|b)",
    )
    parser.add_argument(
        "--keep-image", action="store_true", help="leave the Pixel image built here for next time"
    )
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="count the collector's system calls per request (perf stat; needs perf and root)",
    )
    args = parser.parse_args()
    global COUNT_SYSCALLS
    COUNT_SYSCALLS = args.syscalls
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
        rows: dict[str, list[dict]] = {name: [] for name in urls}
        settle(pixel_ip.id)
        idle_start = cpu_ns(pixel_ip.id)
        time.sleep(10)
        idle_ms = (cpu_ns(pixel_ip.id) - idle_start) / 1e6 / 10
        print(
            f"collector's container idle (no requests, 10 s): {idle_ms:.1f} ms of CPU per second; at R req/s that "
            f"adds {idle_ms * 1000:.0f}/R us to its CPU per request",
            flush=True,
        )
        if not args.variants_only:
            for url in urls.values():  # warm-up, not counted
                wrk(client, anchor_dir, work, edge_ip, url, 2)
            for i in range(args.rounds):
                line = []
                for name, url in urls.items():
                    watch = {} if name == "anchor" else {"collector": pixel_ip.id}
                    if name == "edge":
                        watch["proxy"] = stack.prov.container("edge").id
                    r = measured(
                        watch, lambda url=url: wrk(client, anchor_dir, work, edge_ip, url, args.seconds)
                    )
                    rows[name].append(r)
                    cpu = "".join(f", {k[:-3]} {v:.0f} us/req" for k, v in r.items() if k.endswith("_us"))
                    line.append(f"{name} {r['rps']:.0f} req/s p99 {r['p99_ms']:.2f} ms{cpu}{syscall_text(r)}")
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
            paced = [
                ("collector", half, "half"),
                ("edge", half, "half"),
                ("collector", med["edge"], "all of"),
            ]
            for name, rate, part in paced:
                watch = {"collector": pixel_ip.id}
                if name == "edge":
                    watch["proxy"] = stack.prov.container("edge").id
                r = measured(
                    watch,
                    lambda name=name, rate=rate: wrk(
                        client, anchor_dir, work, edge_ip, urls[name], args.seconds, 64 * 1000 / rate
                    ),
                )
                cpu = "".join(f", {k[:-3]} {v:.0f} us/req" for k, v in r.items() if k.endswith("_us"))
                print(
                    f"at {rate:.0f} req/s offered ({part} the edge's saturating rate): {name} {r['rps']:.0f} "
                    f"req/s, p99 {r['p99_ms']:.2f} ms{cpu}{syscall_text(r)}"
                )
                rows[name].append(r)
        if args.profile:
            print(
                profile_edge(
                    stack.prov.container("edge"),
                    work,
                    args.profile,
                    lambda s: wrk(client, anchor_dir, work, edge_ip, urls["edge"], s),
                ),
                flush=True,
            )
        if args.variants:
            network = stack.prov.spec.network_name
            edge_id = stack.prov.container("edge").id
            started = {}
            try:
                chosen = {
                    k: v
                    for k, v in variants("pixel:8081").items()
                    if not args.only or any(part in k for part in args.only.split("|"))
                }
                sockets = stack.prov.spec.volume_name(UPSTREAM_VOLUME)
                for name, (text, env, scheme) in chosen.items():
                    if name == SHARED_NS:
                        c = start_variant(client, network, name, text, env, sockets, namespace=pixel_ip.id)
                        started[name] = (c, collector_ip, scheme)
                    else:
                        c = start_variant(client, network, name, text, env, sockets)
                        started[name] = (c, address(c, network), scheme)
                for c, ip, scheme in started.values():
                    try:
                        wait_ready(ip, scheme)
                    except OSError:
                        print(c.logs(tail=20).decode(errors="replace"), flush=True)
                        raise
                vrows: dict[str, list[dict]] = {
                    name: [] for name in ("collector", "edge", PACED_COLLECTOR, *started)
                }
                for i in range(args.rounds):
                    for name in vrows:
                        pause = 0.0
                        if name == PACED_COLLECTOR:  # the collector alone at the rate the edge just reached
                            ip, url = edge_ip, urls["collector"]
                            pause = 64 * 1000 / max(vrows["edge"][-1]["rps"], 1)
                        elif name in started:
                            _c, ip, scheme = started[name]
                            url = (
                                f"https://{DOMAIN}:443/track"
                                if scheme == "https"
                                else f"http://{ip}:80/track"
                            )
                        else:
                            ip, url = edge_ip, urls[name]
                        watch = {"collector": pixel_ip.id}
                        if name not in ("collector", PACED_COLLECTOR):
                            watch["proxy"] = started[name][0].id if name in started else edge_id
                        r = measured(
                            watch,
                            lambda ip=ip, url=url, pause=pause: wrk(
                                client, anchor_dir, work, ip, url, args.seconds, pause
                            ),
                        )
                        vrows[name].append(r)
                        print(
                            f"variants round {i + 1}: {name} {r['rps']:.0f} req/s p99 {r['p99_ms']:.2f} ms, "
                            f"CPU per request: collector {r['collector_us']:.0f} us, "
                            f"proxy {r.get('proxy_us', 0):.0f} us, wrk {r['wrk_us']:.0f} us{syscall_text(r)}",
                            flush=True,
                        )
                base = statistics.median(r["rps"] for r in vrows["collector"])
                base_cpu = statistics.median(r["collector_us"] for r in vrows["collector"])
                for name, rs in vrows.items():
                    rps = statistics.median(r["rps"] for r in rs)
                    col = statistics.median(r["collector_us"] for r in rs)
                    proxy = statistics.median(r.get("proxy_us", 0) for r in rs)
                    client_us = statistics.median(r["wrk_us"] for r in rs)
                    print(
                        f"variant {name}: {rps:.0f} req/s ({rps / base:.2f}x the collector), "
                        f"p99 {statistics.median(r['p99_ms'] for r in rs):.2f} ms; CPU per request "
                        f"collector {col:.0f} us + proxy {proxy:.0f} us + wrk {client_us:.0f} us "
                        f"(CPU-bound estimate: {base_cpu / (col + proxy):.2f}x the collector)"
                    )
                rows.update({f"variant {k}": v for k, v in vrows.items()})
            finally:
                for c, _ip, _scheme in started.values():
                    c.remove(force=True)
        bad = sum(r["non2xx"] for rs in rows.values() for r in rs)
        errors = [r["errors"] for rs in rows.values() for r in rs if r["errors"]]
        print(f"non-2xx answers: {bad}; socket errors: {errors or 'none'}")
        return 0 if bad == 0 else 1
    finally:
        stop_edge_stack(stack)
        os.kill(anchor_pid, signal.SIGTERM)
        if built and not args.keep_image:
            client.images.remove(PIXEL_TAG, force=True)


if __name__ == "__main__":
    sys.exit(main())
