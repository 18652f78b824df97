"""One description of the Pixel stack, used both to provision it over the Docker API and to write the
compose file for people who install by hand.

A spec holds `${NAME}` placeholders for everything a user may tune (image, ports, passwords, memory).
`compose.py` writes them out as compose interpolations with the defaults below; `StackSpec.resolve()`
fills them in for the provisioner. So the two paths cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pixel.app.errors import AppError

SPEC_VERSION = 1

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_STACK = "io.pixel.stack"
LABEL_SPEC_VERSION = "io.pixel.spec-version"
LABEL_TOPOLOGY = "io.pixel.topology"
LABEL_CONFIG_HASH = "io.pixel.config-hash"
LABEL_SETTINGS = "io.pixel.settings"  # the non-secret settings a container was made with (JSON)

COLLECTOR_PORT = 8081  # inside the container
API_PORT = 8082
DATA_DIR = "/data"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server"
CLICKHOUSE_VERSION = "25.8"  # LTS line; pinned so an upgrade is always a deliberate spec change
# the MaxMind licence key: a file the provisioner writes into the data volume (secret_files.py), never a setting
MAXMIND_LICENSE_KEY_FILE = f"{DATA_DIR}/secrets/maxmind-license-key"

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def pixel_version() -> str:
    try:
        return metadata.version("pixel-analytics")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0"


class SpecError(AppError, ValueError):
    """The stack description cannot be used as given; the message says what to change."""


@dataclass(frozen=True)
class Variable:
    """A value the user may set: an entry of compose/.env.example and a provisioner option."""

    name: str
    default: str
    help: str
    secret: bool = (
        False  # no usable default: compose refuses to start without it, the provisioner generates one
    )
    required: bool = False  # no default and not generated: the user must give it (e.g. the public domain)


@dataclass(frozen=True)
class Port:
    container: int
    host: str  # host port or placeholder; "0" lets the engine choose
    host_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class Mount:
    volume: str  # short name; the engine volume is `<project>_<volume>`
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]  # exec form, without the leading "CMD"
    interval: float = 5.0  # seconds
    timeout: float = 3.0
    retries: int = 5
    start_period: float = 10.0


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    command: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    healthcheck: HealthCheck | None = None
    restart: str = "unless-stopped"
    mem_limit: str = "512m"
    depends_on: tuple[str, ...] = ()  # started after these are healthy
    profiles: tuple[str, ...] = ()  # compose profiles: optional services
    ulimits: tuple[tuple[str, int], ...] = ()
    stop_grace: float = 10.0
    init: bool = True  # tini as PID 1: signals reach the process, stop() does not wait out its timeout

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)


@dataclass(frozen=True)
class StackSpec:
    project: str
    topology: str  # compact | standard | a test's own name
    services: tuple[Service, ...]
    volumes: tuple[str, ...]
    variables: tuple[Variable, ...] = ()
    spec_version: int = SPEC_VERSION
    subnet: str = ""  # the stack network's IPv4 subnet; empty: the engine picks one
    aliases: tuple[tuple[str, str], ...] = ()  # (service, name): more names of a service on the stack network

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.project):
            raise SpecError(
                f"stack name {self.project!r}: use lower-case letters, digits, '-' and '_' (e.g. 'pixel')"
            )
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise SpecError(f"duplicate service names in {names}")
        for svc in self.services:
            for m in svc.mounts:
                if m.volume not in self.volumes:
                    raise SpecError(f"service {svc.name} mounts undeclared volume {m.volume!r}")
            for dep in svc.depends_on:
                if dep not in names:
                    raise SpecError(f"service {svc.name} depends on unknown service {dep!r}")

    # names of engine objects, the same as `docker compose -p <project>` gives them
    @property
    def network_name(self) -> str:
        return f"{self.project}_default"

    def volume_name(self, volume: str) -> str:
        return f"{self.project}_{volume}"

    def container_name(self, service: str) -> str:
        return f"{self.project}-{service}-1"

    def aliases_of(self, service: str) -> list[str]:
        return [alias for name, alias in self.aliases if name == service]

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise SpecError(f"no service {name!r} in the {self.topology} stack")

    def stack_labels(self) -> dict[str, str]:
        return {
            LABEL_PROJECT: self.project,
            LABEL_STACK: self.project,
            LABEL_SPEC_VERSION: str(self.spec_version),
            LABEL_TOPOLOGY: self.topology,
        }

    def service_labels(self, service: Service) -> dict[str, str]:
        labels = self.stack_labels()
        labels[LABEL_SERVICE] = service.name
        labels[LABEL_CONFIG_HASH] = config_hash(service)
        return labels

    def start_order(self) -> list[Service]:
        """Services ordered so each comes after the ones it depends on."""
        done: list[Service] = []
        pending = list(self.services)
        while pending:
            ready = [s for s in pending if all(d in {x.name for x in done} for d in s.depends_on)]
            if not ready:
                raise SpecError(f"dependency cycle among {[s.name for s in pending]}")
            done.extend(ready)
            pending = [s for s in pending if s not in ready]
        return done

    def defaults(self) -> dict[str, str]:
        return {v.name: v.default for v in self.variables}

    def resolve(self, values: Mapping[str, str] | None = None) -> StackSpec:
        """The spec with every `${NAME}` replaced: `values`, else the variable's default.

        A secret variable without a value is an error: the caller (the provisioner) generates one.
        """
        known = {v.name: v for v in self.variables}
        given = dict(values or {})
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise SpecError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        table: dict[str, str] = {}
        for name, var in known.items():
            value = given.get(name, "" if var.secret else var.default)
            if var.secret and not value:
                raise SpecError(f"{name} must be set (it is a password and has no default)")
            if var.required and not value.strip():
                raise SpecError(f"{name} must be set: {var.help}")
            table[name] = value

        def sub(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                if match.group(1) not in table:
                    raise SpecError(f"placeholder ${{{match.group(1)}}} has no variable in the spec")
                return table[match.group(1)]

            return _PLACEHOLDER.sub(one, text)

        return _map_strings(self, sub)


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(_map_strings(x, fn) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _map_strings(getattr(obj, f.name), fn) for f in dataclasses.fields(obj)}
        if isinstance(obj, StackSpec):
            changes.pop("variables")  # keep help texts and defaults untouched
        return dataclasses.replace(obj, **changes)
    return obj


def config_hash(service: Service) -> str:
    """Stable hash of everything that defines a service's container; stored in a label so a second
    install can tell an unchanged container (leave it) from a changed one (recreate it)."""
    blob = json.dumps(dataclasses.asdict(service), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _health(*urls: str) -> HealthCheck:
    code = "; ".join(["import urllib.request as u"] + [f"u.urlopen('{url}', timeout=2)" for url in urls])
    return HealthCheck(test=("python3", "-c", code), interval=5.0, timeout=4.0, retries=5, start_period=20.0)


COMMON_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "PIXEL_IMAGE", f"pixel-analytics:{pixel_version()}", "Pixel image (built from packaging/Dockerfile)"
    ),
    Variable(
        "PIXEL_COLLECTOR_BIND", "0.0.0.0", "Host address the collector is published on (the public side)"
    ),
    Variable("PIXEL_COLLECTOR_PORT", str(COLLECTOR_PORT), "Host port of the collector: /track and pixel.js"),
    Variable("PIXEL_API_PORT", str(API_PORT), "Host port of the API and /metrics, bound to 127.0.0.1 only"),
    Variable("PIXEL_ALLOWED_ORIGINS", "*", "Comma list of sites allowed to send events (CORS)"),
    Variable("PIXEL_TRUSTED_PROXIES", "", "Comma list of proxy networks whose X-Forwarded-For is believed"),
    Variable("PIXEL_SCRIPT_NAME", "pixel.js", "File name the tracker script is served at (/pixel.js)"),
    Variable("PIXEL_TRACK_PATH", "/track", "Path events are sent to"),
    Variable("PIXEL_RETENTION_DAYS", "0", "Delete events older than this many days (0 = keep)"),
    Variable(
        "PIXEL_GEOIP_AUTO_UPDATE",
        "auto",
        "GeoIP database fetched and refreshed by Pixel: auto (DB-IP City Lite, or MaxMind with an account), "
        "dbip, maxmind or off",
    ),
    Variable(
        "PIXEL_GEOIP_DBIP_URL",
        "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz",
        "Where the DB-IP database is fetched from ({month}: YYYY-MM); a mirror's address, or the default",
    ),
    Variable(
        "PIXEL_MAXMIND_ACCOUNT_ID",
        "",
        "MaxMind account id for GeoLite2 instead of DB-IP; the licence key is not a setting: the desktop "
        "keeps it in the keyring and writes it to "
        + MAXMIND_LICENSE_KEY_FILE
        + " (hand installs: put it there, "
        "mode 0400, owner 10001)",
    ),
    Variable(
        "PIXEL_GEOIP_MAXMIND_URL",
        "https://download.maxmind.com/geoip/databases/{edition}/download?suffix=tar.gz",
        "Where GeoLite2 is fetched from ({edition}: GeoLite2-City); a mirror's address, or the default",
    ),
    Variable(
        "PIXEL_UNREGISTERED_SITES",
        "drop",
        "Events for sites not registered through the API: drop (counted, not stored) or keep",
    ),
    Variable("PIXEL_WORKERS", "2", "Collector worker processes"),
    Variable("PIXEL_MEMORY", "1g", "Memory limit of each Pixel container"),
)

STANDARD_VARIABLES: tuple[Variable, ...] = (
    Variable("CLICKHOUSE_VERSION", CLICKHOUSE_VERSION, "Tag of the clickhouse/clickhouse-server image"),
    Variable("CLICKHOUSE_PASSWORD", "", "Password of the 'pixel' ClickHouse user", secret=True),
    Variable("CLICKHOUSE_MEMORY", "2g", "Memory limit of the ClickHouse container"),
)


def _pixel_env(extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    return (
        ("PIXEL_DATA_DIR", DATA_DIR),
        ("PIXEL_HOST", "0.0.0.0"),
        ("PIXEL_PORT", str(COLLECTOR_PORT)),
        ("PIXEL_API_PORT", str(API_PORT)),
        ("PIXEL_ALLOWED_ORIGINS", "${PIXEL_ALLOWED_ORIGINS}"),
        ("PIXEL_TRUSTED_PROXIES", "${PIXEL_TRUSTED_PROXIES}"),
        ("PIXEL_SCRIPT_NAME", "${PIXEL_SCRIPT_NAME}"),
        ("PIXEL_TRACK_PATH", "${PIXEL_TRACK_PATH}"),
        ("PIXEL_RETENTION_DAYS", "${PIXEL_RETENTION_DAYS}"),
        ("PIXEL_UNREGISTERED_SITES", "${PIXEL_UNREGISTERED_SITES}"),
        ("PIXEL_GEOIP_DBIP_URL", "${PIXEL_GEOIP_DBIP_URL}"),
        ("PIXEL_GEOIP_MAXMIND_URL", "${PIXEL_GEOIP_MAXMIND_URL}"),
        ("PIXEL_MAXMIND_ACCOUNT_ID", "${PIXEL_MAXMIND_ACCOUNT_ID}"),
        ("PIXEL_MAXMIND_LICENSE_KEY_FILE", MAXMIND_LICENSE_KEY_FILE),
        ("PIXEL_WORKERS", "${PIXEL_WORKERS}"),
        *extra,
    )


COLLECTOR_PUBLISHED = Port(COLLECTOR_PORT, "${PIXEL_COLLECTOR_PORT}", "${PIXEL_COLLECTOR_BIND}")
API_PUBLISHED = Port(API_PORT, "${PIXEL_API_PORT}", "127.0.0.1")
COLLECTOR_HEALTH_URL = f"http://127.0.0.1:{COLLECTOR_PORT}/health"
API_HEALTH_URL = f"http://127.0.0.1:{API_PORT}/health"


def compact(project: str = "pixel") -> StackSpec:
    """One container running `pixel serve` (collector + shipper + embedded chDB store + API)."""
    pixel = Service(
        name="pixel",
        image="${PIXEL_IMAGE}",
        command=(
            "pixel",
            "serve",
            "--data-dir",
            DATA_DIR,
            "--host",
            "0.0.0.0",
            "--port",
            str(COLLECTOR_PORT),
            "--api-port",
            str(API_PORT),
        ),  # fmt: skip
        environment=_pixel_env(
            (("PIXEL_STORE", "chdb"), ("PIXEL_GEOIP_AUTO_UPDATE", "${PIXEL_GEOIP_AUTO_UPDATE}"))
        ),
        ports=(COLLECTOR_PUBLISHED, API_PUBLISHED),
        mounts=(Mount("data", DATA_DIR),),
        healthcheck=_health(COLLECTOR_HEALTH_URL, API_HEALTH_URL),
        mem_limit="${PIXEL_MEMORY}",
    )
    return StackSpec(project, "compact", (pixel,), ("data",), COMMON_VARIABLES)


def standard(project: str = "pixel", geoip: bool = True) -> StackSpec:
    """Collector, shipper + API, and ClickHouse. Collector and shipper share the `data` volume: the spool is
    their hand-over. The shipper fetches the GeoIP database itself (DB-IP, or MaxMind with an account and
    the key file). `geoip`: the `geoip` volume that MaxMind's own updater container filled in earlier
    versions stays declared and mounted, so a stack installed then can be upgraded (its volumes unchanged)."""
    clickhouse = Service(
        name="clickhouse",
        image=f"{CLICKHOUSE_IMAGE}:${{CLICKHOUSE_VERSION}}",
        environment=(
            ("CLICKHOUSE_DB", "pixel"),
            ("CLICKHOUSE_USER", "pixel"),
            ("CLICKHOUSE_PASSWORD", "${CLICKHOUSE_PASSWORD}"),
            ("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1"),
        ),
        mounts=(Mount("clickhouse", "/var/lib/clickhouse"),),
        healthcheck=HealthCheck(
            test=("wget", "--no-verbose", "--tries=1", "--spider", "http://127.0.0.1:8123/ping"),
            interval=5.0,
            timeout=3.0,
            retries=10,
            start_period=30.0,
        ),  # fmt: skip
        mem_limit="${CLICKHOUSE_MEMORY}",
        ulimits=(("nofile", 262144),),
        stop_grace=30.0,
    )
    geo_env: tuple[tuple[str, str], ...] = (("PIXEL_GEOIP_DB", "/geoip/GeoLite2-City.mmdb"),) if geoip else ()
    geo_mount = (Mount("geoip", "/geoip", read_only=True),) if geoip else ()
    collector = Service(
        name="collector",
        image="${PIXEL_IMAGE}",
        command=("pixel", "collect"),
        environment=_pixel_env(geo_env),
        ports=(COLLECTOR_PUBLISHED,),
        mounts=(Mount("data", DATA_DIR), *geo_mount),
        healthcheck=_health(COLLECTOR_HEALTH_URL),
        mem_limit="${PIXEL_MEMORY}",
    )
    shipper = Service(
        name="shipper",
        image="${PIXEL_IMAGE}",
        command=("pixel", "ship"),
        environment=_pixel_env(
            (
                ("PIXEL_STORE", "clickhouse"),
                ("PIXEL_CLICKHOUSE_URL", "http://clickhouse:8123"),
                ("PIXEL_CLICKHOUSE_USER", "pixel"),
                ("PIXEL_CLICKHOUSE_PASSWORD", "${CLICKHOUSE_PASSWORD}"),
                ("PIXEL_CLICKHOUSE_DATABASE", "pixel"),
                ("PIXEL_GEOIP_AUTO_UPDATE", "${PIXEL_GEOIP_AUTO_UPDATE}"),
            )
        ),
        ports=(API_PUBLISHED,),
        mounts=(Mount("data", DATA_DIR),),
        healthcheck=_health(API_HEALTH_URL),
        depends_on=("clickhouse",),
        mem_limit="${PIXEL_MEMORY}",
    )
    services: list[Service] = [clickhouse, collector, shipper]
    volumes = ["clickhouse", "data"]
    if geoip:
        volumes.append("geoip")
    return StackSpec(
        project, "standard", tuple(services), tuple(volumes), COMMON_VARIABLES + STANDARD_VARIABLES
    )


TOPOLOGIES = {"compact": compact, "standard": standard}


def build_spec(topology: str, project: str = "pixel", *, edge: bool = False, **kwargs: object) -> StackSpec:
    """The topology's spec; `edge`: behind Caddy with automatic HTTPS for a public domain (edge.py)."""
    try:
        factory = TOPOLOGIES[topology]
    except KeyError:
        raise SpecError(f"unknown topology {topology!r}; choose one of {sorted(TOPOLOGIES)}") from None
    spec = factory(project, **kwargs)
    if edge:
        from .edge import with_edge  # edge.py builds on this module's types

        spec = with_edge(spec)
    return spec


def without_profiles(spec: StackSpec, enabled: tuple[str, ...] = ()) -> StackSpec:
    """The services the provisioner starts: those without a profile, plus enabled profiles."""
    keep = tuple(s for s in spec.services if not s.profiles or set(s.profiles) & set(enabled))
    return dataclasses.replace(spec, services=keep)


def replace_image(spec: StackSpec, old: str, new: str) -> StackSpec:
    """The spec with every service running image `old` switched to `new` (an upgrade)."""
    services = tuple(dataclasses.replace(s, image=new) if s.image == old else s for s in spec.services)
    return dataclasses.replace(spec, services=services)
