"""The HTTPS edge in the spec (app/stack/edge.py): the stack behind Caddy, its generated Caddyfile run through
the real `caddy adapt` (Debian's caddy, scripts/system.d/25-edge.sh), the compose files, trusted ranges."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pixel.app.stack import compose
from pixel.app.stack.edge import (
    DEFAULT_SUBNET,
    LETS_ENCRYPT,
    SOCKET_DIR,
    cdn_date,
    cdn_ranges,
    edge_values,
    start_command,
    with_edge,
)
from pixel.app.stack.spec import SpecError, build_spec, compact, standard
from pixel.server.settings import Settings

CADDY = shutil.which("caddy")
needs_caddy = pytest.mark.skipif(CADDY is None, reason="Debian's caddy (scripts/system.d/25-edge.sh)")
DOMAIN = {"PIXEL_DOMAIN": "stats.example.com"}


def test_compact_behind_the_edge():
    spec = build_spec("compact", edge=True).resolve(DOMAIN)
    assert [s.name for s in spec.start_order()] == ["pixel", "edge"]
    pixel, edge = spec.service("pixel"), spec.service("edge")
    # the collector is no longer published; the API stays on loopback
    assert [(p.container, p.host, p.host_ip) for p in pixel.ports] == [(8082, "8082", "127.0.0.1")]
    # forwarded addresses believed on the workers' Unix sockets only (no range over TCP without a CDN)
    assert pixel.env["PIXEL_TRUSTED_PROXIES"] == ""
    assert pixel.env["PIXEL_UPSTREAM_SOCKET_DIR"] == SOCKET_DIR
    assert spec.subnet == DEFAULT_SUBNET
    assert [(p.container, p.host, p.host_ip) for p in edge.ports] == [
        (80, "80", "0.0.0.0"),
        (443, "443", "0.0.0.0"),
    ]
    assert edge.image == "caddy:2.10.2"
    assert edge.depends_on == ("pixel",)
    # the sockets' volume is mounted by the collector and the edge only
    assert [(m.volume, m.target) for m in edge.mounts] == [("edge", "/data"), ("upstream", SOCKET_DIR)]
    assert [(m.volume, m.target) for m in pixel.mounts] == [("data", "/data"), ("upstream", SOCKET_DIR)]
    assert spec.volumes == ("data", "edge", "upstream")
    assert "reverse_proxy @tracking @UPSTREAMS@ {" in edge.env["PIXEL_EDGE_CADDYFILE"]
    assert edge.env["PIXEL_WORKERS"] == "2"
    assert edge.env["PIXEL_EDGE_CADDYFILE"].count("stats.example.com {") == 1
    assert spec.aliases_of("edge") == ["stats.example.com"]  # the stack's containers reach the edge by name
    assert spec.aliases_of("pixel") == []


def test_standard_behind_the_edge_proxies_to_the_collector():
    spec = build_spec("standard", edge=True).resolve({**DOMAIN, "CLICKHOUSE_PASSWORD": "pw"})
    assert [s.name for s in spec.services] == ["clickhouse", "collector", "shipper", "edge"]
    assert spec.service("collector").ports == ()
    assert [(p.container, p.host_ip) for p in spec.service("shipper").ports] == [(8082, "127.0.0.1")]
    assert "reverse_proxy @tracking @UPSTREAMS@ {" in spec.service("edge").env["PIXEL_EDGE_CADDYFILE"]
    assert spec.service("edge").depends_on == ("collector",)
    users = [s.name for s in spec.services if any(m.volume == "upstream" for m in s.mounts)]
    assert users == ["collector", "edge"]
    assert spec.service("collector").env["PIXEL_UPSTREAM_SOCKET_DIR"] == SOCKET_DIR


def test_without_a_domain_the_stack_is_as_before():
    assert build_spec("compact") == compact()
    assert build_spec("standard") == standard()
    assert compact().subnet == "" and "edge" not in [s.name for s in standard().services]


@pytest.mark.parametrize("value", ["", "   "])
def test_the_edge_needs_a_domain(value):
    with pytest.raises(SpecError, match="PIXEL_DOMAIN must be set"):
        build_spec("compact", edge=True).resolve({"PIXEL_DOMAIN": value})


def test_the_collector_never_trusts_everyone_behind_the_edge():
    spec = build_spec("compact", edge=True).resolve(
        {**DOMAIN, "PIXEL_TRUSTED_PROXIES": "0.0.0.0/0", "PIXEL_SUBNET": "10.77.0.0/24"}
    )
    # the no-edge setting does not leak into the stack behind the edge, nor is the stack's subnet trusted: the
    # edge's forwarded address is believed on the Unix sockets only
    assert spec.service("pixel").env["PIXEL_TRUSTED_PROXIES"] == ""


def test_cloudflare_ranges_shipped_with_their_date():
    ranges = cdn_ranges("cloudflare")
    assert "173.245.48.0/20" in ranges and "2606:4700::/32" in ranges and len(ranges) == 22
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cdn_date("cloudflare"))
    values = edge_values({**DOMAIN, "PIXEL_EDGE_CDN": "cloudflare"})
    assert "PIXEL_EDGE_CDN" not in values
    assert values["PIXEL_EDGE_TRUSTED_PROXIES"] == ",".join(ranges)
    spec = build_spec("compact", edge=True).resolve(values)
    assert spec.service("pixel").env["PIXEL_TRUSTED_PROXIES"] == ",".join(ranges)


@pytest.mark.parametrize(
    "given, message",
    [
        ("0.0.0.0/0", "would trust every address"),
        ("::/0", "would trust every address"),
        ("203.0.113.0/24,cdn.example", "'cdn.example' is not an address"),
        ("203.0.113.0/24|x", "is not an address"),
        ("1.2.3.4 5.6.7.8", "is not an address"),
    ],
)
def test_bad_trusted_ranges_are_refused(given, message):
    with pytest.raises(SpecError, match=message):
        edge_values({**DOMAIN, "PIXEL_EDGE_TRUSTED_PROXIES": given})
    with pytest.raises(SpecError, match="unknown CDN 'akamai'"):
        edge_values({**DOMAIN, "PIXEL_EDGE_CDN": "akamai"})


def test_custom_ranges_are_normalised_and_kept_in_order():
    values = edge_values(
        {**DOMAIN, "PIXEL_EDGE_TRUSTED_PROXIES": " 203.0.113.7/24 , 2001:db8::1/32,203.0.113.0/24"}
    )
    assert values["PIXEL_EDGE_TRUSTED_PROXIES"] == "203.0.113.0/24,2001:db8::/32"


def _adapt(tmp_path: Path, values: dict[str, str], topology: str = "compact") -> tuple[str, dict]:
    """Run the edge's own start command with `caddy run` replaced by `caddy adapt`: the Caddyfile the container
    would load, and Caddy's JSON for it."""
    extra = {"CLICKHOUSE_PASSWORD": "pw"} if topology == "standard" else {}
    spec = build_spec(topology, edge=True).resolve({**DOMAIN, **extra, **values})
    edge = spec.service("edge")
    assert edge.command == ("sh", "-c", start_command())
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "caddy").write_text(f'#!/bin/sh\nexec {CADDY} adapt --config "$3" --adapter caddyfile\n')
    (bindir / "caddy").chmod(0o755)
    env = {**os.environ, **edge.env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    conf = tmp_path / "conf"
    done = subprocess.run(["sh", "-c", start_command(str(conf))], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return (conf / "Caddyfile").read_text(), json.loads(done.stdout)


def _routes(cfg: dict) -> list[dict]:
    [server] = cfg["apps"]["http"]["servers"].values()
    return server["routes"]


@needs_caddy
def test_caddyfile_with_defaults_is_valid_caddy(tmp_path):
    text, cfg = _adapt(tmp_path, {})
    assert (
        "email" not in text and "acme_ca_root" not in text and "@TRUSTED@" not in text and "cdn" not in text
    )
    [server] = cfg["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    assert server["protocols"] == ["h1", "h2"]
    [policy] = cfg["apps"]["tls"]["automation"]["policies"]
    assert policy["subjects"] == ["stats.example.com"]
    assert policy["issuers"] == [{"ca": LETS_ENCRYPT, "module": "acme"}]
    blob = json.dumps(_routes(cfg))
    assert '"Strict-Transport-Security": ["max-age=31536000"]' in blob
    assert '"encodings": {"gzip": {}, "zstd": {}}' in blob
    assert '"uri": "/pixel.js"' in blob  # /pixel.js rewritten to the script name
    assert '"path": ["/pixel.js", "/track"]' in blob
    # one upstream per collector worker (PIXEL_WORKERS, 2 by default), on its Unix socket
    dials = sorted(set(re.findall(r'"dial": "(unix/[^"]+)"', blob)))
    assert dials == [f"unix/{SOCKET_DIR}/collector-1.sock", f"unix/{SOCKET_DIR}/collector-2.sock"]
    assert '"try_duration": 2000000000' in blob
    assert ":8081" not in blob  # the collector is not reached over TCP
    assert '"keep_alive": {"idle_timeout": 3000000000, "max_idle_conns_per_host": 256}' in blob
    assert '"X-Forwarded-For": ["{http.request.remote.host}"]' in blob
    assert '"remote_ip"' not in blob  # nobody's forwarded address is believed at the edge
    assert '"status_code": 404' in blob


@needs_caddy
def test_caddyfile_with_every_setting_is_valid_caddy(tmp_path):
    text, cfg = _adapt(
        tmp_path,
        {
            "PIXEL_ACME_EMAIL": "ops@example.com",
            "PIXEL_ACME_CA": "https://pebble:14000/dir",
            "PIXEL_ACME_CA_ROOT": "/data/root.pem",
            "PIXEL_EDGE_RENEW_INTERVAL": "5s",
            "PIXEL_EDGE_TRUSTED_PROXIES": "203.0.113.0/24,2001:db8::/32",
            "PIXEL_SCRIPT_NAME": "s.js",
            "PIXEL_TRACK_PATH": "/collect",
            "PIXEL_WORKERS": "3",
        },
        "standard",
    )
    [policy] = cfg["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"] == [
        {
            "ca": "https://pebble:14000/dir",
            "email": "ops@example.com",
            "module": "acme",
            "trusted_roots_pem_files": ["/data/root.pem"],
        }
    ]
    assert cfg["apps"]["tls"]["automation"]["renew_interval"] == 5_000_000_000
    blob = json.dumps(_routes(cfg))
    assert '"ranges": ["203.0.113.0/24", "2001:db8::/32"]' in blob
    assert '"X-Forwarded-For": ["{http.request.header.X-Forwarded-For}, {http.request.remote.host}"]' in blob
    assert '"path": ["/s.js", "/collect"]' in blob and '"uri": "/s.js"' in blob
    dials = sorted(set(re.findall(r'"dial": "(unix/[^"]+)"', blob)))
    assert dials == [f"unix/{SOCKET_DIR}/collector-{n}.sock" for n in (1, 2, 3)]


def _compose_interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's own interpolation, for the forms compose.py writes: ${X:-default}, ${X:?msg}, $$."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if values.get(name):
            return values[name]
        assert op == ":-", f"{name} must be set"
        return rest

    return re.sub(r"\$\$|\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}", one, text)


@pytest.mark.parametrize(
    "name, topology",
    [("docker-compose.edge.yml", "compact"), ("docker-compose.standard.edge.yml", "standard")],
)
def test_compose_gives_the_edge_the_same_strings_as_the_provisioner(name, topology):
    values = {**DOMAIN, "CLICKHOUSE_PASSWORD": "pw", "PIXEL_EDGE_TRUSTED_PROXIES": "203.0.113.0/24"}
    data = yaml.safe_load(compose.generated_files()[name])
    spec = build_spec(topology, edge=True).resolve(
        {k: v for k, v in values.items() if topology == "standard" or k != "CLICKHOUSE_PASSWORD"}
    )
    edge = spec.service("edge")
    entry = data["services"]["edge"]
    assert [_compose_interpolate(c, values) for c in entry["command"]] == list(edge.command)
    assert {k: _compose_interpolate(v, values) for k, v in entry["environment"].items()} == edge.env
    assert data["networks"]["default"]["ipam"] == {"config": [{"subnet": "${PIXEL_SUBNET:-172.31.240.0/24}"}]}
    assert entry["networks"] == {"default": {"aliases": ["${PIXEL_DOMAIN:?set PIXEL_DOMAIN in .env}"]}}
    collector = "pixel" if topology == "compact" else "collector"
    assert "ports" not in data["services"][collector] or all(
        ":8081" not in p for p in data["services"][collector]["ports"]
    )
    assert _compose_interpolate(
        data["services"][collector]["environment"]["PIXEL_TRUSTED_PROXIES"], values
    ) == ("203.0.113.0/24")


def test_env_example_lists_the_edge_settings():
    text = compose.generated_files()[".env.example"]
    names = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert len(names) == len(set(names))
    assert {"PIXEL_DOMAIN", "PIXEL_ACME_CA", "PIXEL_ACME_EMAIL", "PIXEL_EDGE_IMAGE", "PIXEL_SUBNET"} <= set(
        names
    )
    assert "# Public name of the collector, e.g. stats.example.com (HTTPS) (required)" in text
    assert f"PIXEL_ACME_CA={LETS_ENCRYPT}" in text.splitlines()


def test_with_edge_needs_a_published_collector():
    spec = build_spec("compact", edge=True)
    with pytest.raises(SpecError, match="no collector published on port 8081"):
        with_edge(spec)


def test_the_edge_strips_every_cdn_geo_header_the_collector_reads_except_from_a_cdn():
    """The edge's list is the collector's (server/enrich/geo.py), and the headers are removed on the route for
    everyone, not on the route for a named CDN's ranges."""
    from pixel.app.stack.edge import CDN_GEO_HEADERS, caddyfile
    from pixel.server.enrich.geo import CDN_GEO_HEADERS as READ

    assert sorted(h.lower() for h in CDN_GEO_HEADERS) == sorted(READ)
    text = caddyfile("pixel:8081")
    everyone = text[text.index("reverse_proxy @tracking") :]
    everyone = everyone[: everyone.index("\n        }\n")]
    cdn = text[text.index("reverse_proxy @cdn") : text.index("reverse_proxy @tracking")]
    for header in CDN_GEO_HEADERS:
        assert f"header_up -{header}\n" in everyone
        assert header not in cdn


@pytest.mark.parametrize(("topology", "api"), [("compact", "pixel"), ("standard", "shipper")])
def test_the_api_believes_forwarded_addresses_from_the_edge_only(topology: str, api: str) -> None:
    """Behind the edge the API trusts X-Forwarded-For from the service named `edge` (resolved by the API), not
    from the stack's subnet, which also holds the network's gateway (the API's published loopback port)."""
    extra = {"CLICKHOUSE_PASSWORD": "pw"} if topology == "standard" else {}
    spec = build_spec(topology, edge=True).resolve({"PIXEL_DOMAIN": "stats.example.com", **extra})
    given = {s.name: s.env.get("PIXEL_API_TRUSTED_PROXIES") for s in spec.services}
    assert {k: v for k, v in given.items() if v is not None} == {api: "edge"}
    plain = build_spec(topology).resolve(extra)
    assert all("PIXEL_API_TRUSTED_PROXIES" not in s.env for s in plain.services)


@pytest.mark.parametrize(("topology", "api"), [("compact", "pixel"), ("standard", "shipper")])
def test_the_api_is_told_its_public_address_for_the_certificate_alert(topology: str, api: str) -> None:
    extra = {"CLICKHOUSE_PASSWORD": "pw"} if topology == "standard" else {}
    spec = build_spec(topology, edge=True).resolve({"PIXEL_DOMAIN": "stats.example.com", **extra})
    given = {s.name: s.env.get("PIXEL_PUBLIC_ADDRESS") for s in spec.services}
    assert {k: v for k, v in given.items() if v is not None} == {api: "stats.example.com"}
    plain = build_spec(topology).resolve(extra)
    assert all("PIXEL_PUBLIC_ADDRESS" not in s.env for s in plain.services)
    assert (
        Settings.from_env({"PIXEL_PUBLIC_ADDRESS": "stats.example.com"}).public_address == "stats.example.com"
    )


@pytest.mark.parametrize(
    ("name", "topology"),
    [("docker-compose.edge.yml", "compact"), ("docker-compose.standard.edge.yml", "standard")],
)
def test_the_edge_runs_go_with_rarer_garbage_collection_bounded_below_its_memory_limit(name, topology):
    """GOGC=800 (Go's default is 100) under GOMEMLIMIT, which stays well below the container's memory limit, so a
    heap let grow by GOGC is collected before the container is killed; the compose files carry the same."""
    extra = {"CLICKHOUSE_PASSWORD": "pw"} if topology == "standard" else {}
    edge = build_spec(topology, edge=True).resolve({**DOMAIN, **extra}).service("edge")
    assert (edge.env["GOGC"], edge.env["GOMEMLIMIT"], edge.mem_limit) == ("800", "160MiB", "256m")
    assert edge.env["GOMAXPROCS"] == "1"  # one core at a time unless PIXEL_EDGE_GOMAXPROCS says otherwise
    soft = int(edge.env["GOMEMLIMIT"].removesuffix("MiB")) * 2**20
    hard = int(edge.mem_limit.removesuffix("m")) * 2**20
    assert soft <= 0.7 * hard
    entry = yaml.safe_load(compose.generated_files()[name])["services"]["edge"]
    assert (entry["environment"]["GOGC"], entry["environment"]["GOMEMLIMIT"]) == ("800", "160MiB")
    assert entry["environment"]["GOMAXPROCS"] == "${PIXEL_EDGE_GOMAXPROCS:-1}"
    assert "PIXEL_EDGE_GOMAXPROCS=1" in compose.generated_files()[".env.example"].splitlines()


@pytest.mark.parametrize(("given", "env"), [("2", "2"), (" 4 ", "4"), ("0", "0"), ("", "")])
def test_the_owner_sets_the_edge_cores(given: str, env: str) -> None:
    values = edge_values({**DOMAIN, "PIXEL_EDGE_GOMAXPROCS": given})
    assert values["PIXEL_EDGE_GOMAXPROCS"] == env
    assert build_spec("compact", edge=True).resolve(values).service("edge").env["GOMAXPROCS"] == env


@pytest.mark.parametrize("given", ["two", "-1", "1.5", "２", "99999"])
def test_a_bad_number_of_edge_cores_is_refused(given: str) -> None:
    with pytest.raises(SpecError, match="PIXEL_EDGE_GOMAXPROCS: .* is not a number of CPU cores"):
        edge_values({**DOMAIN, "PIXEL_EDGE_GOMAXPROCS": given})


@needs_caddy
def test_the_edge_does_not_buffer_request_bodies(tmp_path):
    """Caddy's request buffering mixed up concurrent requests' bodies on a retry (Debian's 2.6.2, measured) and
    the directive differs by version (`buffer_requests` before 2.6.4, `request_buffers` after): the edge relies
    on the collector's sockets never refusing a dial instead (server/processes.py, upstream_listeners). The
    tracking proxy retries dials for 2 s and keeps no passive health state."""
    text, cfg = _adapt(tmp_path, {})
    assert "buffer" not in text
    blob = json.dumps(_routes(cfg))
    assert "buffer" not in blob and "request_buffers" not in blob
    assert '"health_checks"' not in blob and "fail_duration" not in blob
    assert blob.count('"try_duration": 2000000000') == 1  # the tracking proxy (no CDN named: no cdn route)
