"""Install, watch, upgrade, back up and remove a Pixel stack on a Docker engine, from a resolved spec.

The engine is the only state: every object carries the stack's labels, and each container the hash of
its service definition, so a second `install` sees what exists and changes nothing (compose's
reconcile idea, without compose's own labels so `docker compose down` never fights us).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container, ExecResult

from . import image as images
from .engine import EngineTarget
from .errors import StackError
from .progress import Progress, ProgressCallback, ignore
from .spec import API_PORT, LABEL_CONFIG_HASH, LABEL_SETTINGS, LABEL_STACK, Service, StackSpec, config_hash

BACKUP_FORMAT = 1
_NS = 1_000_000_000


@dataclass(frozen=True)
class Finding:
    name: str  # engine | disk | memory | port
    ok: bool
    message: str
    action: str = ""
    code: str = ""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class InstallResult:
    changed: list[str] = field(default_factory=list)  # what this install created or replaced
    admin: Credentials | None = None
    admin_note: str = ""


@dataclass(frozen=True)
class ContainerStatus:
    service: str
    name: str
    image: str
    state: str  # created | running | exited | ...
    health: str  # healthy | unhealthy | starting | none
    restarts: int
    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit: int | None
    ports: dict[int, int]  # container port -> host port


@dataclass(frozen=True)
class StackStatus:
    installed: bool
    containers: list[ContainerStatus]
    metrics: dict[str, float]  # from the API's /metrics, summed over labels

    @property
    def events_inserted(self) -> int | None:
        value = self.metrics.get("pixel_shipper_events_inserted_total")
        return None if value is None else int(value)

    @property
    def backlog_bytes(self) -> int | None:
        value = self.metrics.get("pixel_spool_backlog_bytes")
        return None if value is None else int(value)

    @property
    def events_today(self) -> int | None:
        value = self.metrics.get("pixel_events_today")
        return None if value is None or value < 0 else int(value)

    @property
    def ingest_rate(self) -> float | None:
        """Events inserted per second over the last minute, as the store process measures it."""
        return self.metrics.get("pixel_shipper_ingest_rate")


def parse_prometheus(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def api_error(exc: APIError, doing: str) -> StackError:
    """Engine errors a person can act on."""
    text = str(exc.explanation or exc)
    if "port is already allocated" in text or "address already in use" in text:
        return StackError(
            f"{doing}: a port Pixel needs is already used by another program ({text}).",
            "Stop that program, or choose another port (PIXEL_COLLECTOR_PORT / PIXEL_API_PORT).",
            code="port-in-use",
        )
    if "no space left on device" in text:
        return StackError(
            f"{doing}: the Docker host's disk is full.",
            "Free disk space (e.g. `docker system prune`) and try again.",
            code="disk-full",
        )
    if "error setting rlimit" in text:  # e.g. ClickHouse's nofile=262144 above dockerd's own hard limit
        return StackError(
            f"{doing}: Docker may not give the container the limits the stack asks for, such as "
            f"ClickHouse's open-files limit ({text}).",
            "Raise Docker's own open-files limit (for systemd: LimitNOFILE=1048576 in docker.service) "
            "and restart Docker.",
            code="ulimit-refused",
        )
    return StackError(f"{doing}: {text}", code="engine-error")


class Provisioner:
    def __init__(
        self,
        client: docker.DockerClient,
        spec: StackSpec,
        *,
        target: EngineTarget | None = None,
        progress: ProgressCallback = ignore,
        health_timeout: float = 180.0,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.settings = dict(settings or {})  # non-secret values the spec was resolved with, kept in a label
        self.spec = spec
        self.target = target or EngineTarget()
        self.progress = progress
        self.health_timeout = health_timeout

    # ------------------------------------------------------------------ engine objects
    def containers(self) -> list[Container]:
        return self.client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={self.spec.project}"})

    def container(self, service: str) -> Container | None:
        try:
            return self.client.containers.get(self.spec.container_name(service))
        except NotFound:
            return None

    def _api_service(self) -> Service | None:
        for svc in self.spec.services:
            if any(p.container == API_PORT for p in svc.ports):
                return svc
        return None

    def is_installed(self) -> bool:
        return bool(self.containers())

    # ------------------------------------------------------------------ check
    def check(self, *, include_ports: bool = True) -> list[Finding]:
        findings: list[Finding] = []
        info = self.client.info()
        version = self.client.version()
        findings.append(
            Finding(
                "engine",
                True,
                f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {self.target.describe()}, "
                f"{info.get('NCPU')} CPUs, {info.get('OperatingSystem')}",
            )
        )
        need_mem = sum(_bytes(s.mem_limit) for s in self.spec.services)
        total = int(info.get("MemTotal") or 0)
        findings.append(
            Finding(
                "memory",
                total >= need_mem,
                f"{total / 2**30:.1f} GiB memory, the stack may use up to {need_mem / 2**30:.1f} GiB",
                "" if total >= need_mem else "Use a host with more memory or lower PIXEL_MEMORY.",
                "" if total >= need_mem else "low-memory",
            )
        )
        root = info.get("DockerRootDir", "/var/lib/docker")
        if self.target.is_local and os.path.isdir(root):
            free = shutil.disk_usage(root).free
            ok = free >= 2 * 2**30
            findings.append(
                Finding(
                    "disk",
                    ok,
                    f"{free / 2**30:.1f} GiB free for Docker ({root})",
                    "" if ok else "Free at least 2 GiB on the disk that holds Docker's data.",
                    "" if ok else "disk-full",
                )
            )
        else:
            findings.append(
                Finding("disk", True, "free disk of a remote host is checked when the stack starts")
            )
        if include_ports:
            findings.extend(self._check_ports())
        return findings

    def _check_ports(self) -> list[Finding]:
        ours = {c.name for c in self.containers()}
        taken: dict[int, str] = {}
        for c in self.client.containers.list():
            if c.name in ours:
                continue
            for bindings in (c.attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
                for b in bindings or []:
                    if b.get("HostPort"):
                        taken[int(b["HostPort"])] = _name(c)
        findings = []
        for svc in self.spec.services:
            for port in svc.ports:
                host_port = int(port.host or 0)
                if not host_port:
                    continue
                holder = taken.get(host_port)
                if (
                    holder is None
                    and self.target.is_local
                    and not any(c.name in ours for c in self.client.containers.list())
                ):
                    holder = _local_port_holder(port.host_ip, host_port)
                if holder:
                    findings.append(
                        Finding(
                            "port",
                            False,
                            f"Port {host_port} ({svc.name}) is already used by {holder}.",
                            "Stop that program or choose another port (PIXEL_COLLECTOR_PORT / PIXEL_API_PORT).",
                            "port-in-use",
                        )
                    )
                else:
                    findings.append(Finding("port", True, f"Port {host_port} ({svc.name}) is free"))
        return findings

    # ------------------------------------------------------------------ install
    def install(self, source: images.ImageSource | None = None) -> InstallResult:
        """Idempotent: what exists and matches the spec is left alone. On failure everything this call
        created is removed again, and the error is raised."""
        source = source or images.ImageSource("pull")
        result = InstallResult()
        created: list[tuple[str, str]] = []  # (kind, name) in creation order, for rollback
        try:
            for problem in [f for f in self._check_ports() if not f.ok]:
                raise StackError(problem.message, problem.action, code=problem.code)
            for ref in dict.fromkeys(s.image for s in self.spec.services):
                if images.ensure(self.client, ref, source, self.progress):
                    result.changed.append(f"image {ref}")
            fresh_data = self._ensure_network_and_volumes(created, result)
            order = self.spec.start_order()
            for n, svc in enumerate(order):
                self.progress(Progress("start", n / len(order), f"starting {svc.name}"))
                container = self._ensure_container(svc, created, result)
                self._start(container)
                self.wait_healthy(svc.name)
            self.progress(Progress("start", 1.0, "all services healthy"))
            if fresh_data:
                result.admin, result.admin_note = self.create_admin()
        except BaseException as exc:
            self._rollback(created)
            if isinstance(exc, APIError):
                raise api_error(exc, "Installing the stack failed") from None
            raise
        return result

    def _ensure_network_and_volumes(self, created: list[tuple[str, str]], result: InstallResult) -> bool:
        labels = self.spec.stack_labels()
        if not self.client.networks.list(names=[self.spec.network_name]):
            self.client.networks.create(self.spec.network_name, driver="bridge", labels=labels)
            created.append(("network", self.spec.network_name))
            result.changed.append(f"network {self.spec.network_name}")
        fresh = False
        for vol in self.spec.volumes:
            name = self.spec.volume_name(vol)
            try:
                self.client.volumes.get(name)
            except NotFound:
                self.client.volumes.create(name, labels=labels)
                created.append(("volume", name))
                result.changed.append(f"volume {name}")
                fresh = True
        return fresh

    def _ensure_container(
        self, svc: Service, created: list[tuple[str, str]], result: InstallResult
    ) -> Container:
        existing = self.container(svc.name)
        if existing is not None:
            if existing.labels.get(LABEL_CONFIG_HASH) == config_hash(svc):
                return existing
            self.progress(Progress("start", None, f"{svc.name} changed: replacing its container"))
            existing.remove(force=True, v=True)  # v: with its anonymous volumes (named ones stay)
        container = self._create(svc)
        created.append(("container", _name(container)))
        result.changed.append(f"container {_name(container)}")
        return container

    def _create(self, svc: Service) -> Container:
        healthcheck = None
        if svc.healthcheck:
            hc = svc.healthcheck
            healthcheck = {
                "test": ["CMD", *hc.test],
                "interval": int(hc.interval * _NS),
                "timeout": int(hc.timeout * _NS),
                "retries": hc.retries,
                "start_period": int(hc.start_period * _NS),
            }
        # A host port of 0: the engine picks one on that address. docker-py takes (address, None) for
        # that, and any restart policy the engine knows; its stub allows (address, port) and two policies.
        ports: dict[str, tuple[str, int | None]] = {
            f"{p.container}/tcp": (p.host_ip, int(p.host) or None) for p in svc.ports
        }
        return self.client.containers.create(
            svc.image,
            command=list(svc.command) or None,
            name=self.spec.container_name(svc.name),
            hostname=svc.name,
            labels={
                **self.spec.service_labels(svc),
                LABEL_SETTINGS: json.dumps(self.settings, sort_keys=True),
            },
            environment=svc.env,
            ports=ports,  # type: ignore[arg-type]
            volumes={
                self.spec.volume_name(m.volume): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                for m in svc.mounts
            },
            network=self.spec.network_name,
            networking_config={
                self.spec.network_name: self.client.api.create_endpoint_config(aliases=[svc.name])
            },
            restart_policy={"Name": svc.restart},  # type: ignore[arg-type]
            mem_limit=svc.mem_limit,
            init=svc.init,
            stop_signal="SIGTERM",
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
            healthcheck=healthcheck,
            ulimits=[docker.types.Ulimit(name=n, soft=v, hard=v) for n, v in svc.ulimits] or None,
        )

    def _start(self, container: Container) -> None:
        container.reload()
        if container.status != "running":
            try:
                container.start()
            except APIError as exc:
                raise api_error(exc, f"Starting {container.name} failed") from None

    def _rollback(self, created: list[tuple[str, str]]) -> None:
        if not created:
            return
        self.progress(Progress("rollback", None, "install failed: removing what it created"))
        for kind, name in reversed(created):
            with contextlib.suppress(NotFound, APIError):
                if kind == "container":
                    self.client.containers.get(name).remove(force=True, v=True)
                elif kind == "volume":
                    self.client.volumes.get(name).remove(force=True)
                elif kind == "network":
                    self.client.networks.get(name).remove()

    def wait_healthy(self, service: str, timeout: float | None = None) -> None:
        container = self.container(service)
        if container is None:
            raise StackError(f"{service} has no container", code="not-installed")
        deadline = time.monotonic() + (timeout or self.health_timeout)
        has_check = self.spec.service(service).healthcheck is not None
        while True:
            container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status", "none")
            if state["Status"] in ("exited", "dead") or (state.get("Restarting") and state["ExitCode"]):
                raise StackError(
                    f"{service} stopped (exit code {state['ExitCode']}). Last log lines:\n{self._tail(container)}",
                    "Read the log lines above; `pixel stack logs` shows more.",
                    code="service-failed",
                )
            if health == "healthy" or (not has_check and state["Status"] == "running"):
                self.progress(Progress("health", 1.0, f"{service} is healthy"))
                return
            if health == "unhealthy":
                raise StackError(
                    f"{service} is running but unhealthy. Last log lines:\n{self._tail(container)}",
                    "Read the log lines above; `pixel stack logs` shows more.",
                    code="service-unhealthy",
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{service} did not become healthy in {timeout or self.health_timeout:.0f} s.\n"
                    f"{self._tail(container)}",
                    "The host may be slow or short of memory; look at `pixel stack logs`.",
                    code="health-timeout",
                )
            self.progress(Progress("health", None, f"waiting for {service} ({health})"))
            time.sleep(0.5)

    @staticmethod
    def _tail(container: Container, lines: int = 15) -> str:
        try:
            return container.logs(tail=lines).decode("utf-8", "replace").rstrip()
        except APIError:
            return "(no logs)"

    # ------------------------------------------------------------------ admin account
    def create_admin(self, username: str = "admin") -> tuple[Credentials | None, str]:
        """Create the first admin account inside the API container with `pixel user add`, which
        prints a generated password once; it is handed back to the caller (CLI or GUI) to show once.

        Returns (credentials, note). An image whose `pixel` has no `user` command gives (None, note)."""
        svc = self._api_service()
        container = self.container(svc.name) if svc else None
        if container is None:
            return None, "this stack has no API service: no admin account"
        try:
            res = container.exec_run(["pixel", "user", "add", username, "--role", "admin"])
        except APIError as exc:
            return None, f"admin account not created: {exc.explanation or exc}"
        out = _output(res)
        match = re.search(r"^password: (\S+)$", out, re.MULTILINE)
        if res.exit_code == 0 and match:
            return Credentials(username, match.group(1)), "admin account created"
        if "invalid choice" in out:
            return None, "this image cannot create accounts yet (no `pixel user add`)"
        if res.exit_code == 1 and "exists" in out:
            return None, f"an account {username!r} exists already (reset it with `pixel user reset-password`)"
        raise StackError(f"Creating the admin account failed:\n{out[-1000:]}", code="admin-failed")

    # ------------------------------------------------------------------ status, logs, lifecycle
    def status(self) -> StackStatus:
        rows = []
        for svc in self.spec.services:
            c = self.container(svc.name)
            if c is None:
                continue
            c.reload()
            state = c.attrs["State"]
            cpu = mem = limit = None
            if state["Status"] == "running":
                stats = c.stats(stream=False, one_shot=True)
                assert isinstance(stats, dict)  # stream=False: one answer (the stub does not narrow it)
                mem = (stats.get("memory_stats") or {}).get("usage")
                limit = (stats.get("memory_stats") or {}).get("limit")
                cpu = _cpu_percent(stats)
            ports = {}
            for key, bindings in (c.attrs["NetworkSettings"].get("Ports") or {}).items():
                if bindings:
                    ports[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
            rows.append(
                ContainerStatus(
                    svc.name,
                    _name(c),
                    c.attrs["Config"]["Image"],
                    state["Status"],
                    (state.get("Health") or {}).get("Status", "none"),
                    int(c.attrs.get("RestartCount", 0)),
                    cpu,
                    mem,
                    limit,
                    ports,
                )
            )
        return StackStatus(bool(rows), rows, self.metrics())

    def metrics(self) -> dict[str, float]:
        """The API's /metrics, read from inside its container: works the same on a remote engine,
        where the API port is bound to the remote host's loopback."""
        svc = self._api_service()
        c = self.container(svc.name) if svc else None
        if c is None:
            return {}
        c.reload()
        if c.status != "running":
            return {}
        code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{API_PORT}/metrics', timeout=3).read().decode())"
        res = c.exec_run(["python3", "-c", code])
        if res.exit_code != 0:
            return {}
        return parse_prometheus(_output(res))

    def logs(self, service: str | None = None, tail: int = 100, follow: bool = False) -> Iterator[str]:
        names = [service] if service else [s.name for s in self.spec.services]
        if follow and len(names) != 1:
            raise StackError("Following logs works for one service at a time", "Add --service NAME.")
        for name in names:
            self.spec.service(name)
            c = self.container(name)
            if c is None:
                continue
            if follow:
                buf = ""
                for chunk in c.logs(stream=True, follow=True, tail=tail):
                    buf += chunk.decode("utf-8", "replace")
                    while "\n" in buf:
                        line, buf = buf.split("\n", 1)
                        yield line
                return
            for line in c.logs(tail=tail).decode("utf-8", "replace").splitlines():
                yield f"{name} | {line}" if len(names) > 1 else line

    def _require_installed(self) -> None:
        if not self.is_installed():
            raise StackError(
                f"No Pixel stack named {self.spec.project!r} here.", "Install it first.", code="not-installed"
            )

    def start(self) -> None:
        self._require_installed()
        for svc in self.spec.start_order():
            c = self.container(svc.name)
            if c is not None:
                self._start(c)
                self.wait_healthy(svc.name)

    def stop(self, timeout: int = 20) -> None:
        self._require_installed()
        for svc in reversed(self.spec.start_order()):
            c = self.container(svc.name)
            if c is not None:
                self.progress(Progress("stop", None, f"stopping {svc.name}"))
                c.stop(timeout=timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def uninstall(self, delete_data: bool = False) -> list[str]:
        removed = []
        for c in self.containers():
            c.remove(
                force=True, v=True
            )  # an image's VOLUME not mounted by the spec leaves no anonymous volume
            removed.append(f"container {c.name}")
        for net in self.client.networks.list(filters={"label": f"{LABEL_STACK}={self.spec.project}"}):
            net.remove()
            removed.append(f"network {net.name}")
        if delete_data:
            for vol in self.client.volumes.list(filters={"label": f"{LABEL_STACK}={self.spec.project}"}):
                vol.remove(force=True)
                removed.append(f"volume {vol.name}")
        return removed

    # ------------------------------------------------------------------ backup / restore
    def _volume_holders(self) -> dict[str, tuple[Service, str]]:
        """volume -> (a service mounting it read-write, mount point)."""
        holders: dict[str, tuple[Service, str]] = {}
        for svc in self.spec.services:
            for m in svc.mounts:
                if not m.read_only and m.volume not in holders:
                    holders[m.volume] = (svc, m.target)
        return holders

    def backup(self, path: Path) -> Path:
        """Every data volume (ClickHouse data, Pixel's spool, store and metadata) into one .tar.gz on
        this machine. The stack is stopped meanwhile so the copy is consistent, then started again."""
        self._require_installed()
        path = Path(path)
        running = [
            s.name for s in self.spec.services if (c := self.container(s.name)) and c.status == "running"
        ]
        manifest = {
            "format": BACKUP_FORMAT,
            "project": self.spec.project,
            "topology": self.spec.topology,
            "spec_version": self.spec.spec_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "images": {s.name: s.image for s in self.spec.services},
            "volumes": {},
        }
        tmp = path.with_name(path.name + ".partial")
        self.stop()
        try:
            with tarfile.open(tmp, "w:gz") as out, tempfile.TemporaryDirectory() as work:
                holders = self._volume_holders()
                for n, (vol, (svc, target)) in enumerate(holders.items()):
                    self.progress(Progress("backup", n / len(holders), f"copying volume {vol}"))
                    container = self.container(svc.name)
                    assert container is not None
                    part = Path(work) / f"{vol}.tar"
                    stream, _ = container.get_archive(target)
                    with open(part, "wb") as fh:
                        for chunk in stream:
                            fh.write(chunk)
                    out.add(part, arcname=f"volumes/{vol}.tar")
                    manifest["volumes"][vol] = target  # type: ignore[index]
                blob = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(blob)
                out.addfile(info, io.BytesIO(blob))
            os.replace(tmp, path)
        except APIError as exc:
            tmp.unlink(missing_ok=True)
            raise api_error(exc, "Backup failed") from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StackError(
                f"Backup failed: cannot write {path}: {exc.strerror or exc}", code="backup-failed"
            ) from None
        finally:
            for name in running:
                c = self.container(name)
                if c is not None:
                    self._start(c)
            for name in running:
                self.wait_healthy(name)
        self.progress(Progress("backup", 1.0, f"backup written to {path}"))
        return path

    def restore(self, path: Path) -> None:
        """Replace the stack's data with a backup: containers and volumes are recreated, the volumes
        filled from the file, then the stack is started."""
        path = Path(path)
        try:
            with tarfile.open(path, "r:gz") as archive:
                manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
                if manifest.get("format") != BACKUP_FORMAT:
                    raise StackError(f"{path} is not a Pixel backup this version can read", code="bad-backup")
                holders = self._volume_holders()
                if set(manifest["volumes"]) != set(holders):
                    raise StackError(
                        f"{path} was made from a {manifest['topology']} stack with volumes "
                        f"{sorted(manifest['volumes'])}; this stack has {sorted(holders)}.",
                        "Restore it into a stack of the same topology.",
                        code="bad-backup",
                    )
                self.progress(Progress("restore", 0.0, "removing the current containers and data"))
                self.uninstall(delete_data=True)
                created: list[tuple[str, str]] = []
                result = InstallResult()
                self._ensure_network_and_volumes(created, result)
                for svc in self.spec.services:
                    self._create(svc)
                for n, (vol, (svc, target)) in enumerate(holders.items()):
                    self.progress(Progress("restore", n / len(holders), f"restoring volume {vol}"))
                    member = archive.extractfile(f"volumes/{vol}.tar")
                    assert member is not None
                    container = self.container(svc.name)
                    assert container is not None
                    parent = str(PurePosixPath(target).parent)
                    if not container.put_archive(parent, member.read()):
                        raise StackError(f"Restoring volume {vol} failed", code="restore-failed")
        except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
            raise StackError(f"{path} is not a readable Pixel backup: {exc}", code="bad-backup") from None
        except APIError as exc:
            raise api_error(exc, "Restore failed") from None
        for svc in self.spec.start_order():
            c = self.container(svc.name)
            assert c is not None
            self._start(c)
            self.wait_healthy(svc.name)
        self.progress(Progress("restore", 1.0, "restored"))

    # ------------------------------------------------------------------ upgrade
    def upgrade(
        self,
        new_spec: StackSpec,
        *,
        backup_dir: Path,
        source: images.ImageSource | None = None,
        health_timeout: float | None = None,
        settings: dict[str, str] | None = None,
    ) -> Path:
        """Back up, then replace the containers with those of `new_spec` (usually a new image).

        If the backup fails nothing is changed. If the new version is not healthy in time, the
        previous images and the backed-up data are put back, and the error is raised."""
        self._require_installed()
        if new_spec.project != self.spec.project or set(new_spec.volumes) != set(self.spec.volumes):
            raise StackError("An upgrade cannot change the stack's name or its volumes", code="bad-upgrade")
        # Pin the images in use now by ID, so a tag moved by the upgrade cannot change the rollback.
        pinned = []
        for svc in self.spec.services:
            c = self.container(svc.name)
            pinned.append(replace(svc, image=c.attrs["Image"]) if c is not None else svc)
        old_spec = replace(self.spec, services=tuple(pinned))
        backup_dir = Path(backup_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            try:
                backup_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StackError(f"cannot create {backup_dir}: {exc.strerror or exc}") from None
            backup = self.backup(backup_dir / f"{self.spec.project}-before-upgrade-{stamp}.tar.gz")
        except StackError as exc:
            raise StackError(
                f"The upgrade was not started because the backup failed: {exc.problem}",
                exc.action or "Fix the backup problem first; the running stack was not changed.",
                code="backup-failed",
            ) from None
        for ref in dict.fromkeys(s.image for s in new_spec.services):
            images.ensure(self.client, ref, source or images.ImageSource("pull"), self.progress)
        self.stop()
        new = Provisioner(
            self.client, new_spec, target=self.target, progress=self.progress,
            health_timeout=health_timeout or self.health_timeout, settings=settings or self.settings,
        )  # fmt: skip
        try:
            for svc in new_spec.start_order():
                self.progress(Progress("upgrade", None, f"starting new {svc.name}"))
                new._ensure_container(svc, [], InstallResult())
                new._start(new.container(svc.name))  # type: ignore[arg-type]
                new.wait_healthy(svc.name)
        except (StackError, APIError) as exc:
            problem = exc.problem if isinstance(exc, StackError) else str(exc)
            self.progress(Progress("rollback", None, "new version unhealthy: restoring the previous one"))
            old = Provisioner(self.client, old_spec, target=self.target, progress=self.progress,
                              health_timeout=self.health_timeout, settings=self.settings)  # fmt: skip
            old.restore(backup)
            raise StackError(
                f"The new version did not start properly, so the previous version and its data were put "
                f"back.\n{problem}",
                "Nothing was lost. Report the log lines above to Pixel's maintainers.",
                code="upgrade-rolled-back",
            ) from None
        self.spec = new_spec
        self.settings = new.settings
        self.progress(Progress("upgrade", 1.0, "upgrade complete"))
        return backup


def _bytes(limit: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    limit = limit.strip().lower()
    if limit and limit[-1] in units:
        return int(float(limit[:-1]) * units[limit[-1]])
    return int(limit or 0)


def _name(container: Container) -> str:
    """docker-py's `name` is None only for a container known by its id alone; the engine's list, get
    and create answers carry the name. The short id names the container as well."""
    return container.name or container.short_id


def _output(res: ExecResult) -> str:
    """The text of an `exec_run` without stream or socket: its output is bytes then."""
    assert isinstance(res.output, bytes)
    return res.output.decode("utf-8", "replace")


def _cpu_percent(stats: dict) -> float | None:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    try:
        delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except (KeyError, TypeError):
        return None  # one_shot gives no previous sample on some engines
    online = cpu.get("online_cpus") or 1
    return round(delta / system * online * 100, 1) if system > 0 else 0.0


def _local_port_holder(host_ip: str, port: int) -> str | None:
    ip = "" if host_ip in ("0.0.0.0", "") else host_ip
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return "another program on this computer"
    return None
