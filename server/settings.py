"""Settings for every Pixel process, read from `PIXEL_*` environment variables and CLI flags.

One dataclass serves the collector, the shipper, the store and the API so that `pixel serve`,
`pixel collect` and `pixel ship` (in containers) agree on paths and limits. Every field has an
environment variable named `PIXEL_<FIELD>` (upper case); README.md lists them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

from pixel.server.errors import PixelError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("pixel", appauthor=False))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_networks(value: str | tuple[str, ...]) -> tuple[Network, ...]:
    items = _split(value) if isinstance(value, str) else value
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise SettingsError(f"PIXEL_TRUSTED_PROXIES: {exc}") from None


class SettingsError(PixelError, ValueError):
    """A setting has a value Pixel cannot use; the message says which and why."""


# The embedded store's memory budget per statement when none is configured, and the largest one taken (1 TiB:
# more is a typo, and past 2^64 bytes chDB would refuse the setting when the store opens). Here, not in
# store/memory.py (which uses them), because the collector imports this module and must not import the store.
STORE_MEMORY_DEFAULT_MB = 1024
STORE_MEMORY_MAX_MB = 1 << 20


@dataclass(slots=True)
class Settings:
    # Where everything lives: spool/, store/ (chDB), salts, checkpoints, metadata.
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8081  # collector
    api_port: int = 8082  # store process: shipper metrics, health, API
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # collector processes
    # collector HTTP server: uvicorn (with the tracking route answered in its protocol: the least CPU per request
    # measured), uvicorn-asgi (uvicorn's stock protocol, every request through the ASGI app) or granian (RSGI)
    server: str = "uvicorn"

    # Collector
    allowed_origins: tuple[str, ...] = ("*",)
    trusted_proxies: tuple[Network, ...] = ()  # X-Forwarded-For / X-Real-IP honoured only from these
    # The API's own (server/api/client_address.py): addresses, ranges or host names (the stack's `edge`) whose
    # X-Forwarded-For the API believes for its per-client limits; empty: the connection's address, always
    api_trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    max_events_per_request: int = 100
    script_name: str = "pixel.js"  # served at /<script_name>; rename for ad-block resistance
    track_path: str = "/track"
    # seconds an idle keep-alive connection stays open; behind a load balancer, set it above the balancer's own
    # idle timeout (e.g. 60 s for AWS ALB), or the balancer may send a request on a connection being closed
    keep_alive_timeout: float = 5.0
    # What one client may hold (server/collector/limits.py): a request's line and headers, at most this many
    # bytes (over it: 431)
    max_header_bytes: int = 16 * 1024
    # seconds a request may take to arrive whole (line, headers and body) from its first byte, and a new
    # connection to send its first byte (past it: 408 and close)
    request_timeout: float = 10.0
    max_connections: int = 2048  # open connections per collector worker (past it: 503 under uvicorn)
    # A folder in which each uvicorn collector worker also listens on a Unix socket `collector-<n>.sock`
    # (server/collector/unix_socket.py): for a proxy on the same machine (the stack's edge), whose forwarded
    # headers are believed on those sockets only; empty: TCP only
    upstream_socket_dir: str = ""

    # Spool
    spool_max_bytes: int = 1024 * 1024 * 1024  # disk cap: above it the collector answers 503
    segment_max_bytes: int = 16 * 1024 * 1024
    segment_max_age: float = 10.0  # seconds
    fsync_interval: float = 0.1  # seconds; 0 = fsync every request

    # Shipper
    batch_max_rows: int = 50_000
    batch_max_seconds: float = 0.25
    store_retry_seconds: float = 1.0
    max_event_age_days: int = 90  # client timestamps older than this (or in the future) use receive time
    # seconds without the checkpoint advancing, while the spool holds data, before /health says degraded
    shipper_stall_seconds: float = 60.0

    # Store
    store: str = "chdb"  # chdb | clickhouse
    clickhouse_url: str = ""  # http(s)://host:8123 for store=clickhouse
    clickhouse_user: str = "default"
    clickhouse_password: str = ""
    clickhouse_database: str = "pixel"
    retention_days: int = 0  # 0 = keep forever
    # The embedded store's (chDB) working memory per statement in MiB: an aggregation past half of it spills to
    # disk (server/store/memory.py); 0 = chDB's own bound, a share of the machine's RAM
    store_memory_mb: int = STORE_MEMORY_DEFAULT_MB
    site_retention_interval: float = 3600.0  # seconds between deletions of events past a site's own retention

    # Imports through the API (server/importer/jobs.py): the largest file an upload may be, in bytes
    import_max_bytes: int = 20 * 1024**3

    # The stack's public name (host[:port]) when it runs behind the HTTPS edge (the stack spec sets it from
    # PIXEL_DOMAIN): the address whose certificate the certificate alert watches unless its rule names another
    public_address: str = ""

    # Enrichment
    geoip_db: str = ""  # path to a MaxMind-format City database; empty = no geo
    # The store process fetches the database itself (server/enrich/geo_refresh.py): "off", "dbip" (DB-IP City
    # Lite, no account), "maxmind" (GeoLite2, needs PIXEL_MAXMIND_ACCOUNT_ID and a licence key) or "auto"
    # (MaxMind when an account and key are given, else DB-IP); when none is in place, then again when it is due
    geoip_auto_update: str = "off"
    geoip_check_interval: float = 6 * 3600.0  # seconds between two looks at whether a fetch is due
    geoip_dbip_url: str = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"  # {month}: YYYY-MM
    geoip_maxmind_url: str = "https://download.maxmind.com/geoip/databases/{edition}/download?suffix=tar.gz"
    # Honour a CDN's country header (CF-IPCountry) from trusted proxies only; off by default.
    cdn_geo_headers: bool = False
    pii_params: tuple[str, ...] = ()  # query parameters stripped from stored URLs on top of the built-in list
    dnt_sites: tuple[str, ...] = ()  # sites that drop events sent with DNT / Sec-GPC; "*" = every site
    session_timeout: float = 1800.0  # seconds without events that end a server-computed session
    link_window: float = 900.0  # seconds within which one device on two sites of an owner is one visitor
    link_groups: tuple[str, ...] = ()  # one entry per owner: space-separated sites; empty = one owner for all
    # Events for sites not registered through the API: "drop" (counted, never stored), "keep", or "auto": drop
    # when the collector listens on an address other machines reach (not loopback), keep on this machine only
    unregistered_sites: str = "auto"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        if isinstance(self.trusted_proxies, str):
            self.trusted_proxies = parse_networks(self.trusted_proxies)
        if isinstance(self.allowed_origins, str):
            self.allowed_origins = _split(self.allowed_origins)

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def meta_db_path(self) -> Path:
        """The API's metadata database (users, sites and their tracking rules, dashboards)."""
        return self.state_dir / "meta.sqlite3"

    @property
    def checkpoint_path(self) -> Path:
        """The shipper's position in the spool (read by the collector for the backlog figure)."""
        return self.state_dir / "shipper-checkpoint.json"

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, overridden by `PIXEL_*` variables, overridden by non-None keyword arguments."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"PIXEL_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, f.type, raw)
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.store not in ("chdb", "clickhouse"):
            raise SettingsError(f"PIXEL_STORE must be 'chdb' or 'clickhouse', not {self.store!r}")
        if self.store == "clickhouse" and not self.clickhouse_url:
            raise SettingsError(
                "PIXEL_STORE=clickhouse needs PIXEL_CLICKHOUSE_URL (e.g. http://localhost:8123)"
            )
        if not self.track_path.startswith("/"):
            raise SettingsError(f"PIXEL_TRACK_PATH must start with '/': {self.track_path!r}")
        if "/" in self.script_name or not self.script_name:
            raise SettingsError(f"PIXEL_SCRIPT_NAME must be a file name: {self.script_name!r}")
        if self.server not in ("granian", "uvicorn", "uvicorn-asgi"):
            raise SettingsError(
                f"PIXEL_SERVER must be 'uvicorn', 'uvicorn-asgi' or 'granian', not {self.server!r}"
            )
        if self.workers < 1:
            raise SettingsError("PIXEL_WORKERS must be at least 1")
        if not 0 <= self.store_memory_mb <= STORE_MEMORY_MAX_MB:
            raise SettingsError(
                f"PIXEL_STORE_MEMORY_MB must be 0 (chDB's own bound) or a number of MiB up to {STORE_MEMORY_MAX_MB}"
            )
        if self.upstream_socket_dir and self.server == "granian":
            raise SettingsError(
                "PIXEL_UPSTREAM_SOCKET_DIR needs the uvicorn collector (PIXEL_SERVER=uvicorn or uvicorn-asgi); "
                "unset it to run under granian"
            )
        if self.unregistered_sites not in ("auto", "drop", "keep"):
            raise SettingsError(
                f"PIXEL_UNREGISTERED_SITES must be 'auto', 'drop' or 'keep', not {self.unregistered_sites!r}"
            )
        if self.max_header_bytes < 8192:  # granian (hyper) refuses smaller read buffers
            raise SettingsError("PIXEL_MAX_HEADER_BYTES must be at least 8192")
        if not self.request_timeout > 0:
            raise SettingsError("PIXEL_REQUEST_TIMEOUT must be above 0")
        if self.max_connections < 1:
            raise SettingsError("PIXEL_MAX_CONNECTIONS must be at least 1")
        if self.geoip_auto_update not in ("off", "auto", "dbip", "maxmind"):
            raise SettingsError(
                "PIXEL_GEOIP_AUTO_UPDATE must be 'off', 'auto', 'dbip' or 'maxmind', "
                f"not {self.geoip_auto_update!r}"
            )
        if not self.geoip_check_interval > 0:
            raise SettingsError("PIXEL_GEOIP_CHECK_INTERVAL must be above 0")
        for name, url in (
            ("GEOIP_DBIP_URL", self.geoip_dbip_url),
            ("GEOIP_MAXMIND_URL", self.geoip_maxmind_url),
        ):
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"PIXEL_{name} must be an http(s) URL: {url!r}")


def _convert(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if name == "trusted_proxies":
            return parse_networks(raw)
        if kind.startswith("tuple"):
            return _split(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
    except SettingsError:
        raise
    except ValueError:
        raise SettingsError(f"PIXEL_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def to_env(settings: Settings) -> dict[str, str]:
    """The `PIXEL_*` variables that reproduce `settings` in another process (workers, children)."""
    env: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        env[f"PIXEL_{f.name.upper()}"] = str(value)
    return env
