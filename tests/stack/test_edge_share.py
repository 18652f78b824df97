"""The edge proxies the shared views of share links (`/share/*`) to the API and nothing else of it: checked on
Caddy's own JSON for the generated Caddyfile (`caddy adapt`, Debian's caddy), for both topologies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pixel.app.stack.edge import SOCKET_DIR, caddyfile, start_command
from pixel.app.stack.spec import build_spec

CADDY = shutil.which("caddy")
needs_caddy = pytest.mark.skipif(CADDY is None, reason="Debian's caddy (scripts/system.d/25-edge.sh)")
DOMAIN = {"PIXEL_DOMAIN": "stats.example.com"}


def _routes(tmp_path: Path, topology: str) -> list[dict]:
    extra = {"CLICKHOUSE_PASSWORD": "pw"} if topology == "standard" else {}
    edge = build_spec(topology, edge=True).resolve({**DOMAIN, **extra}).service("edge")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "caddy").write_text(f'#!/bin/sh\nexec {CADDY} adapt --config "$3" --adapter caddyfile\n')
    (bindir / "caddy").chmod(0o755)
    env = {**os.environ, **edge.env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", "-c", start_command(str(tmp_path / "conf"))], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    [server] = json.loads(done.stdout)["apps"]["http"]["servers"].values()
    return server["routes"]


def _proxies(node: object, matched: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every reverse_proxy handler in Caddy's JSON with the paths its enclosing routes match on."""
    out: list[tuple[tuple[str, ...], str]] = []
    if isinstance(node, dict):
        paths = tuple(p for m in node.get("match", []) for p in m.get("path", []))
        here = matched + paths
        if node.get("handler") == "reverse_proxy":
            out.extend((here, u["dial"]) for u in node["upstreams"])
        for value in node.values():
            out.extend(_proxies(value, here))
    elif isinstance(node, list):
        for item in node:
            out.extend(_proxies(item, matched))
    return out


@needs_caddy
@pytest.mark.parametrize(
    ("topology", "api", "collector"), [("compact", "pixel", "pixel"), ("standard", "shipper", "collector")]
)
def test_share_is_proxied_to_the_api_and_nothing_else_of_it(
    tmp_path: Path, topology: str, api: str, collector: str
) -> None:
    proxies = _proxies(_routes(tmp_path, topology))
    to_api = [paths for paths, dial in proxies if dial == f"{api}:8082"]
    assert to_api == [("/share/*",)]
    sockets = [f"unix/{SOCKET_DIR}/collector-{n}.sock" for n in (1, 2)]  # the collector's workers
    assert sorted({dial for _, dial in proxies}) == sorted({f"{api}:8082", *sockets})
    assert not any(p.startswith("/api") for paths, _ in proxies for p in paths)


def test_without_an_api_there_is_no_share_route() -> None:
    assert "/share/" not in caddyfile("pixel:8081")
    assert "reverse_proxy /share/* pixel:8082 {" in caddyfile("pixel:8081", "pixel:8082")
