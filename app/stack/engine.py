"""Connecting to a Docker engine: the local one, a remote one over SSH, or over TCP + TLS.

Every failure becomes a `StackError` with a plain-language problem and an action. For SSH the host
key is checked against an app-owned known_hosts file only: an unknown key is refused until the user
has trusted its fingerprint (`fetch_host_key` + `trust_host_key`); nothing is ever added silently.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import docker
import paramiko
import requests
from docker.errors import DockerException
from docker.transport.sshconn import SSHHTTPAdapter
from docker.utils import version_lt

from .errors import StackError

SSH_PORT = 22  # the ssh:// default, left out of known_hosts names
MIN_API = "1.41"  # stats(one_shot=True); Debian bookworm's docker.io 20.10 speaks exactly this


@dataclass(frozen=True)
class EngineTarget:
    """Where the engine is. `url` empty = local (DOCKER_HOST, else the active docker CLI context,
    else the platform's default socket or named pipe)."""

    url: str = ""
    ssh_key: Path | None = None  # private key file for ssh://
    known_hosts: Path | None = None  # app-owned known_hosts for ssh://
    host_key: str = ""  # a trusted known_hosts line for ssh:// (the desktop keeps it in the profile)
    ssh_passphrase: str = field(default="", repr=False)  # of ssh_key, if it has one (from the keyring)
    tls_ca: Path | None = None  # for tcp:// with TLS
    tls_cert: Path | None = None
    tls_key: Path | None = None
    timeout: int = 120  # seconds per API call; builds and loads use streams

    @property
    def kind(self) -> str:
        scheme = urllib.parse.urlparse(self.url).scheme if self.url else ""
        if scheme == "ssh":
            return "ssh"
        if scheme in ("tcp", "https") and self.tls_ca:
            return "tls"
        if scheme in ("tcp", "http"):
            return "tcp"
        return "local"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def describe(self) -> str:
        return self.url or "the local Docker engine"


@dataclass(frozen=True)
class HostKey:
    host: str
    port: int
    key: paramiko.PKey

    @property
    def fingerprint(self) -> str:
        """OpenSSH style: SHA256:<base64 without padding>, as `ssh-keygen -lf` prints it."""
        digest = hashlib.sha256(self.key.asbytes()).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == SSH_PORT else f"[{self.host}]:{self.port}"

    @property
    def known_hosts_line(self) -> str:
        """The key as one known_hosts line ("[host]:port ssh-ed25519 AAAA…"): plain config, not a secret."""
        return f"{self.known_hosts_name} {self.key.get_name()} {self.key.get_base64()}"


def parse_host_key(line: str) -> HostKey:
    """A `HostKey` from a known_hosts line (as `HostKey.known_hosts_line` writes it), or a `StackError`."""
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line.strip())
    except Exception:
        entry, why = None, "the key text is damaged"
    else:
        why = "it is not 'host key-type key'"
    if entry is None or entry.key is None or len(entry.hostnames) != 1:
        raise StackError(
            f"The saved SSH host key {line[:60]!r} cannot be read ({why}).",
            code="bad-host-key",
        )
    name = entry.hostnames[0]
    if name.startswith("["):
        host, _, port = name[1:].partition("]:")
        return HostKey(host, int(port or SSH_PORT), entry.key)
    return HostKey(name, SSH_PORT, entry.key)


def load_trusted_keys(client: paramiko.SSHClient, target: EngineTarget) -> None:
    """Give `client` the keys the user trusted: the app's known_hosts file and the profile's saved key.
    Nothing else (never ~/.ssh/known_hosts): an unknown key is refused, a different one is reported
    as changed (`paramiko.BadHostKeyException`)."""
    if target.known_hosts and target.known_hosts.exists():
        client.load_host_keys(str(target.known_hosts))
    if target.host_key:
        key = parse_host_key(target.host_key)
        client.get_host_keys().add(key.known_hosts_name, key.key.get_name(), key.key)


def _ssh_parts(url: str) -> tuple[str, int, str | None]:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "ssh" or not parsed.hostname:
        raise StackError(
            f"{url!r} is not an SSH address", "Write it as ssh://user@host or ssh://user@host:port"
        )
    return parsed.hostname, parsed.port or SSH_PORT, parsed.username


def fetch_host_key(url: str, timeout: float = 10.0) -> HostKey:
    """Ask the SSH server for its host key, without logging in, so the user can compare fingerprints."""
    host, port, _ = _ssh_parts(url)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise StackError(
            f"Cannot reach the SSH server {host} port {port}: {exc.strerror or exc}",
            code="ssh-unreachable",
        ) from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return HostKey(host, port, transport.get_remote_server_key())
    except paramiko.SSHException as exc:
        raise StackError(
            f"{host}:{port} did not answer as an SSH server: {exc}", code="ssh-unreachable"
        ) from None
    finally:
        transport.close()


def trust_host_key(known_hosts: Path, key: HostKey) -> None:
    """Record `key` in the app's known_hosts (the user said yes to its fingerprint)."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    keys.add(key.known_hosts_name, key.key.get_name(), key.key)
    keys.save(str(known_hosts))
    known_hosts.chmod(0o600)


class _AppSSHAdapter(SSHHTTPAdapter):
    """docker-py's paramiko transport, but with our key file and our known_hosts (never the user's
    ~/.ssh, never auto-add)."""

    def __init__(self, target: EngineTarget) -> None:
        self._target = target
        super().__init__(
            target.url, timeout=target.timeout, pool_connections=9, max_pool_size=9, shell_out=False
        )

    def _create_paramiko_client(self, base_url: str) -> None:
        host, port, user = _ssh_parts(base_url)
        self.ssh_client = paramiko.SSHClient()
        self.ssh_params = {
            "hostname": host,
            "port": port,
            "username": user,
            "timeout": 15,
            "banner_timeout": 15,
            "auth_timeout": 15,
        }
        if self._target.ssh_key:
            self.ssh_params.update(
                key_filename=str(self._target.ssh_key), look_for_keys=False, allow_agent=False
            )
        if self._target.ssh_passphrase:
            self.ssh_params["passphrase"] = self._target.ssh_passphrase
        load_trusted_keys(self.ssh_client, self._target)
        self.ssh_client.set_missing_host_key_policy(paramiko.RejectPolicy())


def ssh_failure(exc: BaseException, host: str, port: int) -> StackError:
    """The plain-language error for a failed SSH connection (shared by the engine and the API tunnel)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return StackError(
            f"The SSH host key of {host}:{port} has CHANGED since you trusted it. This can mean the server was "
            "reinstalled, or that someone is intercepting the connection.",
            code="host-key-changed",
        )
    if isinstance(exc, paramiko.PasswordRequiredException):
        return StackError(
            "The SSH key is protected by a passphrase.",
            code="ssh-key-locked",
        )
    if isinstance(exc, paramiko.SSHException) and str(exc) == "Invalid key":
        return StackError(
            "The SSH key could not be opened: the passphrase is wrong, or the file is not a private key.",
            code="ssh-key-unreadable",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return StackError(
            f"The SSH server {host}:{port} refused the key.",
            code="ssh-key-refused",
        )
    if isinstance(exc, paramiko.SSHException):
        if "not found in known_hosts" in str(exc):
            return StackError(
                f"The SSH host key of {host}:{port} is not trusted yet.",
                code="host-key-unknown",
            )
        return StackError(f"SSH connection to {host}:{port} failed: {exc}", code="ssh-failed")
    strerror = exc.strerror if isinstance(exc, OSError) else None
    return StackError(
        f"Cannot reach the SSH server {host} port {port}: {strerror or exc}",
        code="ssh-unreachable",
    )


def _ssh_client(target: EngineTarget) -> docker.DockerClient:
    host, port, _ = _ssh_parts(target.url)
    try:
        adapter = _AppSSHAdapter(target)
    except (paramiko.SSHException, OSError) as exc:
        raise ssh_failure(exc, host, port) from None
    # An APIClient on a placeholder address makes no request when given a version; then the SSH
    # adapter is mounted the same way docker-py mounts its own.
    api = docker.APIClient(base_url="unix:///nonexistent", version=MIN_API, timeout=target.timeout)
    api._custom_adapter = adapter  # type: ignore[attr-defined]  # docker-py private, not in its stub
    api.mount("http+docker://ssh", adapter)
    api.base_url = "http+docker://ssh"
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client


def _tls_client(target: EngineTarget) -> docker.DockerClient:
    missing = [
        p for p in (target.tls_ca, target.tls_cert, target.tls_key) if p is None or not Path(p).is_file()
    ]
    if missing:
        raise StackError(
            "TLS needs three files: the CA certificate, the client certificate and the client key.",
            f"Check these paths: {', '.join(str(p) for p in missing)}",
            code="tls-files",
        )
    tls = docker.tls.TLSConfig(
        client_cert=(str(target.tls_cert), str(target.tls_key)), ca_cert=str(target.tls_ca), verify=True
    )
    url = target.url.replace("tcp://", "https://", 1)
    client = docker.DockerClient(base_url=url, tls=tls, version=MIN_API, timeout=target.timeout)
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would otherwise replace our CA (requests merges the
    # environment over the session's `verify`).
    client.api.trust_env = False
    return client


def _local_client(target: EngineTarget) -> docker.DockerClient:
    if target.url:
        return docker.DockerClient(base_url=target.url, version=MIN_API, timeout=target.timeout)
    return docker.from_env(version=MIN_API, timeout=target.timeout)


def connect(target: EngineTarget) -> docker.DockerClient:
    """A client whose engine answered a ping, with the API version negotiated."""
    try:
        if target.kind == "ssh":
            client = _ssh_client(target)
        elif target.kind == "tls":
            client = _tls_client(target)
        else:
            client = _local_client(target)
        # docker-py's own version query (private, so not in its stub)
        api_version: str = client.api._retrieve_server_version()  # type: ignore[attr-defined]
    except StackError:
        raise
    except Exception as exc:
        raise translate(exc, target) from None
    if version_lt(api_version, MIN_API):
        raise StackError(
            f"The Docker engine at {target.describe()} is too old (API {api_version}, Pixel needs {MIN_API}).",
            code="engine-too-old",
        )
    client.api._version = api_version  # type: ignore[attr-defined]  # docker-py private, not in its stub
    return client


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        if exc is not None and exc.args and isinstance(exc.args[0], BaseException):
            seen.append(exc.args[0])
    return seen


def translate(exc: BaseException, target: EngineTarget) -> StackError:
    """Turn a connection failure into what a non-technical person can act on."""
    where = target.describe()
    text = " ".join(str(e) for e in _chain(exc))
    chain = _chain(exc)
    if (
        any(isinstance(e, ssl.SSLError) for e in chain)
        or isinstance(exc, requests.exceptions.SSLError)
        or ("SSLError" in text or "CERTIFICATE_VERIFY_FAILED" in text)
    ):
        return StackError(
            f"The TLS connection to {where} was rejected: the certificates do not match.",
            code="tls-rejected",
        )
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return StackError(
            f"You have no permission to use {where}.",
            code="engine-permission",
        )
    if target.is_local and (
        any(isinstance(e, FileNotFoundError | ConnectionRefusedError) for e in chain)
        or "No such file" in text
        or "Connection refused" in text
        or "Connection aborted" in text
    ):
        if shutil.which("docker") is None and shutil.which("dockerd") is None:
            return StackError(
                "Docker is not installed on this computer.",
                code="docker-missing",
            )
        return StackError(
            "Docker is installed but not running.",
            code="engine-down",
        )
    if isinstance(exc, DockerException | requests.exceptions.RequestException | OSError):
        return StackError(
            f"Cannot reach the Docker engine at {where}: {exc}",
            code="engine-unreachable",
        )
    return StackError(f"Unexpected error talking to {where}: {exc!r}", code="engine-error")


def local_socket_path() -> str | None:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return None if host else "/var/run/docker.sock"
