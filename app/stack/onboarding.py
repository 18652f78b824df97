"""Onboarding without Qt: install a stack and create its first site, as the setup wizard and
`pixel stack install --site` both do (the way dangerzone's core serves its CLI and its GUI).

Contract of `install_site(target, project, domain, ...) -> InstallOutcome`:
- The domain and the time zone are checked before the engine is contacted: a bad one is a `StackError`
  ("bad-domain", "bad-timezone") and nothing is installed.
- The stack is installed (idempotent, rolled back on failure: `Provisioner.install`). Its admin account
  is made on a fresh install; on a stack installed before, pass the account it has as `admin`.
- With `keyring=True` the admin password (and an SSH key's passphrase) go to the system keyring right
  after the install, before anything else can fail; a keyring that cannot take them is reported in
  `InstallOutcome.keyring_problem`, never a reason to stop.
- The first site is created through the stack's API (on a remote engine through a tunnel: the API listens
  on the server's 127.0.0.1 only); a site that exists already is reused, so a second run changes nothing.
  A failure from here on is a `SiteNotCreated` carrying the admin account, so it is not lost.
- Ports are the spec's (`API_PORT`, `COLLECTOR_PORT`) as the engine published them. The tunnel is closed
  before returning unless `keep_tunnel` (the wizard keeps it for its first-visit check; the caller then
  stops `InstallOutcome.tunnel`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import available_timezones

from pixel.app.client.api import ApiClient, ApiRequestError, Unreachable
from pixel.app.client.connect import ApiConnection, connect_api
from pixel.app.profiles import Profile

from .errors import StackError
from .progress import Progress, ProgressCallback, ignore
from .spec import API_PORT, COLLECTOR_PORT

if TYPE_CHECKING:  # docker-py is imported where used (the CLI's --help, the app's cold start)
    from .engine import EngineTarget
    from .image import ImageSource
    from .provisioner import Credentials
    from .tunnel import PortForward

HTTPS_PORT = "443"  # the https scheme's own: left out of the collector's URL
# The API's own rule for a site's domain (server/api/models.py), plus a dot: a host name of letters,
# digits and dashes, lower case, at most 253 characters, an optional port.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+(?::\d{{1,5}})?$")


def check_domain(text: str) -> str:
    """The site's domain as the API stores it (trimmed, lower case), or a `StackError` ("bad-domain")."""
    domain = text.strip().lower()
    if not _DOMAIN.fullmatch(domain):
        raise StackError(f"{text.strip()!r} is not a website's domain.", code="bad-domain")
    return domain


def domain_ok(text: str) -> bool:
    try:
        check_domain(text)
    except StackError:
        return False
    return True


def check_timezone(name: str) -> str:
    if name not in available_timezones():
        raise StackError(f"{name!r} is not a time zone.", code="bad-timezone")
    return name


def public_host(engine_url: str) -> str:
    """The host name visitors' browsers (and, for TLS engines, this app) use to reach the stack's host."""
    host = urllib.parse.urlparse(engine_url).hostname if engine_url else None
    host = host or "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class InstallOutcome:
    """What the wizard shows at the end and the CLI prints: the profile to save (no secret in it), the
    admin password (shown once), the first site and its snippet."""

    profile: Profile  # api_url: the API as the stack's host sees it; collector_url: as visitors reach it
    password: str
    site_id: int
    snippet: str  # the <script> tag for the site's pages
    api_base: str  # where this computer reached the API (the profile's api_url, or the tunnel's end)
    changed: tuple[str, ...]  # what the install created or replaced
    keyring_problem: str = ""  # why the password is not in the keyring (keyring=True only)
    tunnel: PortForward | None = field(default=None, compare=False, repr=False)  # keep_tunnel only

    @property
    def api_url(self) -> str:
        return self.profile.api_url

    @property
    def collector_url(self) -> str:
        return self.profile.collector_url


class SiteNotCreated(StackError):
    """The stack is installed and `admin` is its account, but the first site could not be created: show
    the account (it is not shown again) and pass it as `install_site(admin=...)` to try again."""

    def __init__(self, cause: StackError, admin: Credentials) -> None:
        super().__init__(cause.problem, cause.action, code=cause.code)
        self.admin = admin


def endpoints(target: EngineTarget, ports: Mapping[int, int], settings: Mapping[str, str]) -> tuple[str, str]:
    """(API address as the stack's host sees it, collector address as visitors' browsers reach it): the
    ports the engine published for the spec's `API_PORT` and `COLLECTOR_PORT`; behind the HTTPS edge (the
    stack has a `PIXEL_DOMAIN`, the collector is not published) the collector is that domain."""
    api = f"http://127.0.0.1:{ports[API_PORT]}"
    domain = settings.get("PIXEL_DOMAIN", "").strip()
    if COLLECTOR_PORT not in ports and domain:
        port = settings.get("PIXEL_HTTPS_PORT", "").strip() or HTTPS_PORT
        return api, f"https://{domain}" + ("" if port == HTTPS_PORT else f":{port}")
    host = "127.0.0.1" if target.is_local else public_host(target.url)
    return api, f"http://{host}:{ports[COLLECTOR_PORT]}"


def create_first_site(client: ApiClient, domain: str, timezone: str, collector_url: str) -> tuple[int, str]:
    """(site id, snippet HTML) of `domain`, created unless it exists; a refusal or a silent API is a
    `StackError` ("site-refused", "api-unreachable")."""
    try:
        try:
            site = client.create_site(domain, timezone)
        except ApiRequestError as exc:
            if exc.code != "site_exists":
                raise
            found = next((s for s in client.sites() if s["domain"] == domain), None)
            if found is None:  # beyond the first page of sites
                raise
            site = found
        snippet = client.get(f"/api/sites/{site['id']}/snippet", {"collector_url": collector_url})
    except Unreachable as exc:
        raise StackError(f"Pixel's API at {client.base_url} did not answer.", code="api-unreachable") from exc
    except ApiRequestError as exc:
        raise StackError(
            f"Pixel's API refused to create the site {domain}: {exc.detail or exc.code}.", code="site-refused"
        ) from exc
    return int(site["id"]), str(snippet["html"])


def store_secrets(name: str, password: str, ssh_passphrase: str = "") -> str:
    """Keep the admin password (and the SSH key's passphrase) in the keyring of profile `name`; returns
    why that was impossible, or ""."""
    from pixel.app import secret_store

    try:
        secret_store.set_secret(name, "admin_password", password)
        if ssh_passphrase:
            secret_store.set_secret(name, "ssh_passphrase", ssh_passphrase)
    except secret_store.KeyringUnavailable as exc:
        return str(exc)
    return ""


def _install_stack(
    target: EngineTarget,
    project: str,
    topology: str | None,
    values: Mapping[str, str],
    source: ImageSource | None,
    progress: ProgressCallback,
) -> tuple[list[str], Credentials | None, str, tuple[str, str]]:
    """Install; (changed, the admin account made, the note about it, the API's and collector's addresses)."""
    from .engine import connect
    from .manage import open_stack

    progress(Progress("connect", None, f"connecting to {target.describe()}"))
    client = connect(target)
    try:
        prov = open_stack(client, project, topology, dict(values), target=target)
        result = prov.install(source, progress=progress)
        progress(Progress("site", None, "creating the site"))
        # container port -> host port over every service (standard: the collector is a service of its own)
        ports = {port: host for c in prov.status().containers for port, host in c.ports.items()}
    finally:
        client.close()  # over SSH: the connection (and the server's dial-stdio) ends here
    return result.changed, result.admin, result.admin_note, endpoints(target, ports, prov.settings)


def _open_site_api(
    target: EngineTarget, project: str, api_url: str, admin: Credentials, progress: ProgressCallback
) -> ApiConnection:
    if not target.is_local:
        how = "an SSH tunnel" if target.kind == "ssh" else "a tunnel through the Docker engine"
        port = urllib.parse.urlparse(api_url).port
        progress(
            Progress("tunnel", None, f"opening {how} to the API (port {port} on the server's 127.0.0.1)")
        )
    return connect_api(target, project, api_url, admin.username, admin.password)


def install_site(
    target: EngineTarget,
    project: str,
    domain: str,
    *,
    name: str = "",
    timezone: str = "UTC",
    values: Mapping[str, str] | None = None,
    topology: str | None = "compact",
    source: ImageSource | None = None,
    admin: Credentials | None = None,
    keyring: bool = False,
    keep_tunnel: bool = False,
    progress: ProgressCallback = ignore,
) -> InstallOutcome:
    """Install stack `project` on `target` and create its first site `domain` (see the module's
    contract). `name`: the profile's name (default: the project's)."""
    domain, timezone = check_domain(domain), check_timezone(timezone)
    name = name or project
    profile_check = Profile(name)  # a bad profile name fails here, before anything is installed
    changed, made, note, (api_url, collector_url) = _install_stack(
        target, project, topology, values or {}, source, progress
    )
    admin = made or admin
    if admin is None and note:
        raise StackError(note, code="admin-failed")
    if admin is None:
        raise StackError(
            f"The stack {project!r} was installed before: no new admin account was made, so the site "
            "cannot be created with one.",
            code="admin-exists",
        )
    problem = store_secrets(name, admin.password, target.ssh_passphrase) if keyring else ""
    connection: ApiConnection | None = None
    try:
        connection = _open_site_api(target, project, api_url, admin, progress)
        site_id, snippet = create_first_site(connection.client, domain, timezone, collector_url)
    except BaseException as exc:
        if connection is not None:
            connection.close()
        if isinstance(exc, StackError):
            raise SiteNotCreated(exc, admin) from exc
        raise
    connection.client.close()  # the tunnel (kept or not) serves new clients
    if not keep_tunnel and connection.tunnel is not None:
        connection.tunnel.stop()
    profile = Profile(
        profile_check.name,
        engine=target.url or "local",
        project=project,
        api_url=api_url,
        collector_url=collector_url,
        username=admin.username,
        domain=domain,
        site_id=site_id,
        tls_dir=str(target.tls_ca.parent) if target.kind == "tls" and target.tls_ca else "",
        ssh_key=str(target.ssh_key or ""),
        ssh_key_locked=bool(target.ssh_passphrase),
        host_key=target.host_key if target.kind == "ssh" else "",
    )
    progress(Progress("done", 1.0, "Pixel is installed"))
    return InstallOutcome(
        profile,
        admin.password,
        site_id,
        snippet,
        connection.base_url,
        tuple(changed),
        problem,
        connection.tunnel if keep_tunnel else None,
    )
