"""The edge: Caddy in front of the collector, with automatic HTTPS, when the stack has a public domain.

`with_edge(spec)` turns a compact or standard spec into the same stack behind an `edge` service:

- the edge publishes 80 and 443 (`PIXEL_EDGE_BIND`, `PIXEL_HTTP_PORT`, `PIXEL_HTTPS_PORT`), gets and renews the
  certificate of `PIXEL_DOMAIN` by ACME (`PIXEL_ACME_CA`, Let's Encrypt by default; `PIXEL_ACME_EMAIL`),
  redirects HTTP to HTTPS, sends HSTS, and proxies only the tracking routes (`/pixel.js`, `/<PIXEL_SCRIPT_NAME>`,
  `PIXEL_TRACK_PATH`) to the collector, compressed (zstd, gzip), and the shared views of share links (`/share/*`)
  to the API (`routers/share.py`: a link's token is its only credential there); every other path, `/api/`
  included, is a 404 at the edge;
- the collector is no longer published on the host; the API stays on 127.0.0.1 as without an edge;
- the edge reaches the collector's workers on their Unix sockets (`collector-<n>.sock`, one per worker up to
  `PIXEL_WORKERS`, chosen at random per request; server/collector/unix_socket.py) in the `upstream` volume that
  only the collector and the edge mount (`SOCKET_DIR`): no second TCP connection over the stack network. The
  collector believes forwarded addresses on those sockets only (plus, over TCP, the ranges of a CDN in front,
  `PIXEL_EDGE_TRUSTED_PROXIES`), never from anyone else on the stack network; the stack network gets a fixed
  subnet (`PIXEL_SUBNET`); the API
  believes X-Forwarded-For from the edge's own address only (`PIXEL_API_TRUSTED_PROXIES=edge`, resolved by name),
  so its per-client limits count each visitor of `/share/*`, and a client reaching the API any other way
  (its published loopback port arrives from the network's gateway, inside the subnet) cannot choose its address;
- the edge removes every CDN's visitor-location headers (`CDN_GEO_HEADERS`) except from a named CDN's ranges:
  the collector believes them from trusted proxies when `PIXEL_CDN_GEO_HEADERS=1`, and the edge is one;
- the certificates live in the named volume `edge` (Caddy's `/data`);
- Caddy's Go runtime collects garbage less often (`GOGC=800`) under a soft memory limit (`GOMEMLIMIT=160MiB`,
  below the container's 256 MB): proxying is the edge's cost, and Go's frequent garbage collections were part of it;
  it runs on one core at a time by default (`PIXEL_EDGE_GOMAXPROCS=1`: fewer hand-offs between threads, the
  least CPU per request beside the collector's workers on a small server; raise it on a big one, 0: all cores).

The Caddyfile is generated here, holds the spec's `${NAME}` placeholders (so compose and the provisioner fill it
in the same way) and reaches the container in an environment variable that the start command writes to a file:
the same spec runs on the official `caddy` image (pulled where a registry is reachable) and on the image built
from Debian's `caddy` package (`packaging/edge/`, for machines without a registry). Optional global options whose
setting is empty (e-mail, a private CA's root, a CDN's ranges) are dropped by that start command, so an empty
setting never becomes a Caddyfile syntax error.

Caddy (2.5 and later) believes an incoming `X-Forwarded-For` only from `trusted_proxies` and otherwise replaces it
with the connection's address: a visitor cannot choose the address the collector stores.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path

from .spec import API_PORT, COLLECTOR_PORT, HealthCheck, Mount, Port, Service, SpecError, StackSpec, Variable

EDGE_SERVICE = "edge"
EDGE_VOLUME = "edge"
UPSTREAM_VOLUME = "upstream"  # the collector workers' Unix sockets, shared by the collector and the edge only
SOCKET_DIR = (
    "/run/pixel-upstream"  # where both mount it (the pixel image owns the folder: packaging/Dockerfile)
)
UPSTREAMS = "@UPSTREAMS@"  # the Caddyfile's upstreams, written by the start command from PIXEL_WORKERS
OFFICIAL_EDGE_IMAGE = "caddy:2.10.2"  # pinned: an upgrade of the edge is a deliberate spec change
LOCAL_EDGE_IMAGE = "pixel-edge/caddy:bookworm"  # built from packaging/edge/ (Debian's caddy package)
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
DEFAULT_SUBNET = "172.31.240.0/24"
HSTS = "max-age=31536000"
EDGE_MEMORY = "256m"  # the edge container's memory limit
EDGE_GOGC = "800"
EDGE_GOMEMLIMIT = (
    "160MiB"  # Go's soft limit, below EDGE_MEMORY: past it Go collects garbage whatever GOGC says
)
DATA = Path(__file__).resolve().parent / "data"
CDN_FILES = {"cloudflare": DATA / "cloudflare-ips.txt"}
# A CDN's visitor-location headers (the collector's list, server/enrich/geo.py): anyone can send them, so the edge
# removes them from every request except those arriving from a named CDN's ranges.
CDN_GEO_HEADERS = (
    "CF-IPCountry",
    "CF-Region",
    "CF-IPCity",
    "X-Vercel-IP-Country",
    "X-Vercel-IP-Country-Region",
    "X-Vercel-IP-City",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Country-Region-Name",
    "CloudFront-Viewer-City",
)

EDGE_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "PIXEL_DOMAIN", "", "Public name of the collector, e.g. stats.example.com (HTTPS)", required=True
    ),
    Variable("PIXEL_ACME_CA", LETS_ENCRYPT, "ACME directory URL the certificate comes from"),
    Variable("PIXEL_ACME_EMAIL", "", "Contact e-mail given to the ACME CA (expiry notices); may stay empty"),
    Variable(
        "PIXEL_ACME_CA_ROOT", "", "PEM file (inside the edge) of a private ACME CA's root; usually empty"
    ),
    Variable("PIXEL_EDGE_IMAGE", OFFICIAL_EDGE_IMAGE, f"Caddy image; offline: {LOCAL_EDGE_IMAGE}"),
    Variable("PIXEL_EDGE_BIND", "0.0.0.0", "Host address the edge's ports 80 and 443 are published on"),
    Variable("PIXEL_HTTP_PORT", "80", "Host port for HTTP (ACME challenges, redirect to HTTPS)"),
    Variable("PIXEL_HTTPS_PORT", "443", "Host port for HTTPS"),
    Variable("PIXEL_SUBNET", DEFAULT_SUBNET, "Subnet of the stack network (a fixed one)"),
    Variable(
        "PIXEL_EDGE_TRUSTED_PROXIES",
        "",
        "Comma list of a CDN's or proxy's ranges in front of the edge whose X-Forwarded-For is believed",
    ),
    Variable("PIXEL_EDGE_RENEW_INTERVAL", "10m", "How often the edge checks its certificates for renewal"),
    Variable(
        "PIXEL_EDGE_GOMAXPROCS",
        "1",
        "CPU cores Caddy runs on at once; 1 costs the least CPU per request beside the collector on a small "
        "server; raise it (0: all cores) when the edge, not the collector, is busy",
    ),
    Variable(
        "PIXEL_CDN_GEO_HEADERS",
        "0",
        "1: use the country header of the CDN named in PIXEL_EDGE_CDN (the edge removes it from anyone else); "
        "with a CDN named the default is 1, 0 turns it off",
    ),
)


def start_command(config_dir: str = "/config", socket_dir: str = SOCKET_DIR) -> str:
    """The edge's start command (sh -c): the Caddyfile from the environment, optional options with an empty
    setting dropped, the trusted ranges written space-separated, `@UPSTREAMS@` replaced by the collector workers'
    sockets (`unix/<socket_dir>/collector-<n>.sock` for n = 1 … PIXEL_WORKERS), then Caddy in the foreground.

    sh, not bash: the official image is Alpine (busybox), the local one Debian. No `${...}` here: that form is the
    spec's placeholder syntax."""
    path = f"{config_dir}/Caddyfile"
    return (
        f"set -eu; mkdir -p {config_dir}; "
        'ranges=$(printf %s "$PIXEL_EDGE_TRUSTED_PROXIES" | tr , " "); '
        'n="$PIXEL_WORKERS"; [ -n "$n" ] || n=1; ups=; i=1; '
        f'while [ "$i" -le "$n" ]; do ups="$ups unix/{socket_dir}/collector-$i.sock"; i=$((i + 1)); done; '
        "nocdn='s/^//'; [ -n \"$ranges\" ] || nocdn='/# cdn$/d'; "
        'printf "%s\\n" "$PIXEL_EDGE_CADDYFILE" | sed '
        '-e "s|@TRUSTED@|$ranges|" '
        f'-e "s|{UPSTREAMS}|$ups|" '
        "-e '/^[[:space:]]*[a-z_]*[[:space:]]*$/{/[{}]/!d;}' "
        '-e "$nocdn" '
        f"> {path}; "
        f"exec caddy run --config {path} --adapter caddyfile"
    )


def caddyfile(upstream: str = UPSTREAMS, api: str = "") -> str:
    """The edge's Caddyfile, with the spec's placeholders; `upstream` is the collector's upstreams (the default:
    the workers' Unix sockets, filled in by the start command; or a `host:port`), `api` the API's (which then
    gets `/share/*`, and nothing else; empty: no shared views through the edge). With several upstreams a dial
    that fails (the whole collector restarting) is tried on another for up to 2 s; that works for the script
    (GET) only: Caddy 2.6 to 2.10 closes a request's body with the failed dial, and the retry of a tracking POST
    fails (502 "invalid Read on closed Body"). So a worker down must never refuse a dial: the collector's
    supervising process holds each worker's socket (server/processes.py, upstream_listeners) and the requests
    wait for the worker that replaces it. No request buffering (`buffer_requests`, `request_buffers`): with
    Debian's Caddy 2.6.2 it still answered about half of the retried POSTs 502 and sent some retries with another
    request's body (its buffer went back to Caddy's pool with the failed dial). No `fail_duration`: Caddy keeps
    one health state for all Unix-socket upstreams, so one failed dial would mark every worker down (a real Caddy
    answered 503 "no upstreams available" with one of two workers alive). `lb_policy first` (all requests to one
    worker) costs less CPU per request but fails every request while that worker is down (bench/README.md).

    Connections to the collector are kept for 3 s (below the collector's own keep-alive timeout, so Caddy never
    sends on a connection the collector is closing) and up to 256 idle ones are kept: with a `keepalive` given and
    no idle limit, Go's default of 2 applies and every other request under load opens a new connection.

    X-Forwarded-For is set explicitly (the same on every Caddy version): the connection's address, or, from a
    trusted CDN's range (`@TRUSTED@`, lines marked `# cdn` are dropped without one), the CDN's header with the
    CDN's address appended. The collector walks it from the right past the ranges it trusts."""
    share = (
        f"reverse_proxy /share/* {api} {{\n            header_up X-Forwarded-For {{remote_host}}\n        }}\n        "
        if api
        else ""
    )
    strip = "\n".join(f"            header_up -{name}" for name in CDN_GEO_HEADERS)
    return f"""{{
    admin localhost:2019
    email ${{PIXEL_ACME_EMAIL}}
    acme_ca ${{PIXEL_ACME_CA}}
    acme_ca_root ${{PIXEL_ACME_CA_ROOT}}
    renew_interval ${{PIXEL_EDGE_RENEW_INTERVAL}}
    servers {{
        protocols h1 h2
    }}
}}

${{PIXEL_DOMAIN}} {{
    header Strict-Transport-Security "{HSTS}"
    encode zstd gzip
    rewrite /pixel.js /${{PIXEL_SCRIPT_NAME}}
    @cdn {{ # cdn
        path /${{PIXEL_SCRIPT_NAME}} ${{PIXEL_TRACK_PATH}} # cdn
        remote_ip @TRUSTED@ # cdn
    }} # cdn
    @tracking path /${{PIXEL_SCRIPT_NAME}} ${{PIXEL_TRACK_PATH}}
    route {{
        reverse_proxy @cdn {upstream} {{ # cdn
            header_up X-Forwarded-For "{{http.request.header.X-Forwarded-For}}, {{remote_host}}" # cdn
            transport http {{ # cdn
                keepalive 3s # cdn
                keepalive_idle_conns_per_host 256 # cdn
            }} # cdn
            lb_try_duration 2s # cdn
        }} # cdn
        reverse_proxy @tracking {upstream} {{
            header_up X-Forwarded-For {{remote_host}}
{strip}
            transport http {{
                keepalive 3s
                keepalive_idle_conns_per_host 256
            }}
            lb_try_duration 2s
        }}
        {share}respond "not found" 404
    }}
}}
"""


def _collector(spec: StackSpec) -> Service:
    for svc in spec.services:
        if any(p.container == COLLECTOR_PORT for p in svc.ports):
            return svc
    raise SpecError(f"the {spec.topology} stack has no collector published on port {COLLECTOR_PORT}")


def edge_service(upstream: str, depends_on: str, api: str = "") -> Service:
    return Service(
        name=EDGE_SERVICE,
        image="${PIXEL_EDGE_IMAGE}",
        command=("sh", "-c", start_command()),
        environment=(
            ("PIXEL_EDGE_CADDYFILE", caddyfile(upstream, api)),
            ("PIXEL_EDGE_TRUSTED_PROXIES", "${PIXEL_EDGE_TRUSTED_PROXIES}"),
            ("XDG_DATA_HOME", "/data"),  # as in the official image: certificates under /data/caddy
            ("XDG_CONFIG_HOME", "/config"),
            # Go's garbage collector less often (GOGC), bounded below the memory limit (GOMEMLIMIT): the proxy's
            # CPU per request drops (bench/README.md, "HTTPS edge") and the heap stays under EDGE_MEMORY
            ("GOGC", EDGE_GOGC),
            ("GOMEMLIMIT", EDGE_GOMEMLIMIT),
            ("GOMAXPROCS", "${PIXEL_EDGE_GOMAXPROCS}"),  # 0 (or empty): Go's default, every core
            ("PIXEL_WORKERS", "${PIXEL_WORKERS}"),  # how many collector sockets the start command lists
        ),
        ports=(
            Port(80, "${PIXEL_HTTP_PORT}", "${PIXEL_EDGE_BIND}"),
            Port(443, "${PIXEL_HTTPS_PORT}", "${PIXEL_EDGE_BIND}"),
        ),
        mounts=(Mount(EDGE_VOLUME, "/data"), Mount(UPSTREAM_VOLUME, SOCKET_DIR)),
        healthcheck=HealthCheck(
            test=("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2019/config/"),
            interval=5.0,
            timeout=3.0,
            retries=5,
            start_period=10.0,
        ),  # fmt: skip
        depends_on=(depends_on,),
        mem_limit=EDGE_MEMORY,
    )


def with_edge(spec: StackSpec) -> StackSpec:
    """The stack behind the edge: the collector unpublished, reached on its workers' Unix sockets, believing
    forwarded addresses there and from a CDN's ranges in front only."""
    collector = _collector(spec)
    trusted = "${PIXEL_EDGE_TRUSTED_PROXIES}"
    env = tuple((k, trusted if k == "PIXEL_TRUSTED_PROXIES" else v) for k, v in collector.environment)
    env += (
        ("PIXEL_CDN_GEO_HEADERS", "${PIXEL_CDN_GEO_HEADERS}"),
        ("PIXEL_UPSTREAM_SOCKET_DIR", SOCKET_DIR),
    )
    hidden = dataclasses.replace(
        collector,
        ports=tuple(p for p in collector.ports if p.container != COLLECTOR_PORT),
        environment=env,
        mounts=(*collector.mounts, Mount(UPSTREAM_VOLUME, SOCKET_DIR)),
    )
    services = tuple(hidden if s.name == collector.name else s for s in spec.services)
    api = next((s.name for s in spec.services if any(p.container == API_PORT for p in s.ports)), "")
    # the API believes X-Forwarded-For from the edge only (by its name: its address changes with a restart)
    services = tuple(
        dataclasses.replace(
            s,
            environment=(
                *s.environment,
                ("PIXEL_API_TRUSTED_PROXIES", EDGE_SERVICE),
                ("PIXEL_PUBLIC_ADDRESS", "${PIXEL_DOMAIN}"),  # the certificate alert's address
            ),
        )
        if s.name == api
        else s
        for s in services
    )
    edge = edge_service(UPSTREAMS, collector.name, f"{api}:{API_PORT}" if api else "")
    known = {v.name for v in spec.variables}
    return dataclasses.replace(
        spec,
        services=(*services, edge),
        volumes=(*spec.volumes, EDGE_VOLUME, UPSTREAM_VOLUME),
        variables=spec.variables + tuple(v for v in EDGE_VARIABLES if v.name not in known),
        subnet="${PIXEL_SUBNET}",
        aliases=(*spec.aliases, (EDGE_SERVICE, "${PIXEL_DOMAIN}")),  # the stack's containers reach it by name
    )


def has_domain(values: Mapping[str, str]) -> bool:
    return bool(values.get("PIXEL_DOMAIN", "").strip())


def cdn_ranges(name: str) -> tuple[str, ...]:
    """The published address ranges of a CDN (`cloudflare`), from the data file shipped with Pixel."""
    try:
        path = CDN_FILES[name]
    except KeyError:
        raise SpecError(f"unknown CDN {name!r}; known: {sorted(CDN_FILES)}") from None
    ranges = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ranges.append(str(ipaddress.ip_network(line)))
    return tuple(ranges)


def cdn_date(name: str) -> str:
    """The date the shipped ranges of `name` were taken from the CDN's published list (`# as of: DATE`)."""
    for line in CDN_FILES[name].read_text(encoding="utf-8").splitlines():
        if line.startswith("# as of:"):
            return line.split(":", 1)[1].strip()
    return ""


def edge_values(values: Mapping[str, str]) -> dict[str, str]:
    """Settings with `PIXEL_EDGE_CDN` expanded into the CDN's ranges (added to `PIXEL_EDGE_TRUSTED_PROXIES`),
    each range checked: the collector and Caddy must read the same list, and it ends up in the Caddyfile."""
    out = {k: v for k, v in values.items() if k != "PIXEL_EDGE_CDN"}
    cdn = values.get("PIXEL_EDGE_CDN", "").strip().lower()
    given = [r.strip() for r in out.get("PIXEL_EDGE_TRUSTED_PROXIES", "").split(",") if r.strip()]
    ranges = list(cdn_ranges(cdn)) if cdn else []
    for item in given:
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SpecError(
                f"PIXEL_EDGE_TRUSTED_PROXIES: {item!r} is not an address or range (e.g. 203.0.113.0/24)"
            ) from None
        if net.prefixlen == 0:
            raise SpecError(
                f"PIXEL_EDGE_TRUSTED_PROXIES: {item!r} would trust every address; name your proxy's ranges"
            )
        ranges.append(str(net))
    procs = out.get("PIXEL_EDGE_GOMAXPROCS", "").strip()
    if "PIXEL_EDGE_GOMAXPROCS" in out:
        out["PIXEL_EDGE_GOMAXPROCS"] = procs
    if procs and not (procs.isascii() and procs.isdigit() and len(procs) <= 4):
        raise SpecError(
            f"PIXEL_EDGE_GOMAXPROCS: {procs!r} is not a number of CPU cores (e.g. 1 or 2; 0: all cores)"
        )
    if ranges or "PIXEL_EDGE_TRUSTED_PROXIES" in out:
        out["PIXEL_EDGE_TRUSTED_PROXIES"] = ",".join(dict.fromkeys(ranges))
    if cdn and not out.get("PIXEL_CDN_GEO_HEADERS", "").strip():
        out["PIXEL_CDN_GEO_HEADERS"] = (
            "1"  # a named CDN's country header by default; the owner's 0 turns it off
        )
    return out
