"""What reaching a remote stack's API through a tunnel costs per request (issue 7): the same HTTP
server, in a container on the local engine, reached (a) directly at its published port, (b) through
`SSHTunnel` via an OpenSSH server on 127.0.0.1 (as for an ssh:// profile), (c) through `ExecTunnel`
via the engine's API (as for a Docker engine over TLS; here over the local socket, so without TLS).

    nice -n -10 .venv/bin/python bench/bench_tunnel.py [--requests 200] [--fresh 30]

"keep-alive": one httpx.Client, sequential GETs (the desktop's API client keeps its connection);
"fresh": a new connection per GET (each costs an SSH channel, or an exec plus a python3 start in the
container). Needs the Docker engine and pixel-base/python:bookworm (scripts/system.d/20-docker.sh) and
/usr/sbin/sshd. Everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from pixel.app.stack.engine import EngineTarget, connect, fetch_host_key
from pixel.app.stack.tunnel import ExecTunnel, SSHTunnel

IMAGE = "pixel-base/python:bookworm"
SERVER = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms delayed-ACK stall\n"
    "    def do_GET(self):\n"
    '        body = b\'{"status": "ok"}\'\n'
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "h.ThreadingHTTPServer(('0.0.0.0', 8082), H).serve_forever()\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(url: str, n: int, fresh: bool) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        client.get(url).raise_for_status()  # warm up (first login / exec)
        for _ in range(n):
            start = time.perf_counter()
            if fresh:
                httpx.get(url, timeout=30).raise_for_status()
            else:
                client.get(url).raise_for_status()
            out.append((time.perf_counter() - start) * 1000)
    return out


def sshd(root: Path) -> tuple[subprocess.Popen, EngineTarget]:
    for name in ("host_key", "id_client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "id_client.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\nPidFile {root}/sshd.pid\n"
        f"AuthorizedKeysFile {root}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")], stderr=subprocess.DEVNULL
    )
    url = f"ssh://{os.environ.get('USER', 'root')}@127.0.0.1:{port}"
    for _ in range(100):
        try:
            key = fetch_host_key(url)
            break
        except Exception:
            time.sleep(0.1)
    return proc, EngineTarget(url, ssh_key=root / "id_client", host_key=key.known_hosts_line)


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--requests", type=int, default=200)
    args.add_argument("--fresh", type=int, default=30)
    opts = args.parse_args()
    client = connect(EngineTarget())
    container = client.containers.run(
        IMAGE,
        ["python3", "-c", SERVER],
        detach=True,
        init=True,
        name=f"pxbench-tunnel-{os.getpid()}",
        ports={"8082/tcp": ("127.0.0.1", None)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        proc, target = sshd(Path(tmp))
        try:
            container.reload()
            port = int(container.ports["8082/tcp"][0]["HostPort"])
            direct = f"http://127.0.0.1:{port}/health"
            for _ in range(100):
                try:
                    httpx.get(direct, timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with SSHTunnel(target, port) as ssh, ExecTunnel(client, container.name, 8082) as exe:
                print(f"{'path':<22}{'mode':<12}{'median ms':>10}{'p90 ms':>9}")
                for name, url in (
                    ("direct", direct),
                    ("SSH tunnel", f"{ssh.local_url}/health"),
                    ("exec tunnel (engine)", f"{exe.local_url}/health"),
                ):
                    for mode, n in (("keep-alive", opts.requests), ("fresh", opts.fresh)):
                        ms = sorted(timed(url, n, mode == "fresh"))
                        print(
                            f"{name:<22}{mode:<12}{statistics.median(ms):>10.2f}{ms[int(len(ms) * 0.9)]:>9.2f}"
                        )
        finally:
            proc.terminate()
            proc.wait(10)
            container.remove(force=True)
            client.close()


if __name__ == "__main__":
    main()
