"""Install, start, stop, restart and remove a stack, and create its first admin account.

`install` is idempotent (compose's reconcile idea, without compose's own labels so `docker compose down`
never fights us): every object carries the stack's labels and each container the hash of its service
definition, so what exists and matches the spec is left alone, a changed service gets a new container, and
on failure (or a progress callback that raises, as a cancelled GUI task does) everything the call created
is removed again before the error goes on.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from .. import edge_image, secret_files
from .. import image as images
from ..errors import StackError
from ..progress import Progress, ProgressCallback, ignore
from ..spec import (
    DATA_DIR,
    LABEL_CONFIG_HASH,
    LABEL_SERVICE,
    LABEL_SETTINGS,
    LABEL_STACK,
    Service,
    config_hash,
)
from .checks import Checks
from .core import api_error, container_name, exec_output

RETIRED_SERVICES = ("geoipupdate",)
_NS = 1_000_000_000  # the engine takes healthcheck durations in nanoseconds


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class InstallResult:
    changed: list[str] = field(default_factory=list)  # what this install created or replaced
    admin: Credentials | None = None
    admin_note: str = ""


class Lifecycle(Checks):
    def install(
        self, source: images.ImageSource | None = None, *, progress: ProgressCallback = ignore
    ) -> InstallResult:
        """Idempotent: what exists and matches the spec is left alone. On failure everything this call
        created is removed again, and the error is raised."""
        source = source or images.ImageSource("pull")
        result = InstallResult()
        created: list[tuple[str, str]] = []  # (kind, name) in creation order, for rollback
        delivered: list[str] = []
        try:
            for problem in [f for f in self._check_ports() if not f.ok]:
                raise StackError(problem.message, problem.action, code=problem.code)
            for ref in dict.fromkeys(s.image for s in self.spec.services if s.name != edge_image.SERVICE):
                if images.ensure(self.client, ref, source, progress):
                    result.changed.append(f"image {ref}")
            for svc in self.spec.services:
                if svc.name == edge_image.SERVICE and edge_image.ensure(self.client, svc.image, progress):
                    result.changed.append(f"image {svc.image}")
            fresh_data = self._ensure_network_and_volumes(created, result)
            result.changed.extend(self._retire_legacy())
            order = self.spec.start_order()
            for n, svc in enumerate(order):
                progress(Progress("start", n / len(order), f"starting {svc.name}"))
                container = self._ensure_container(svc, created, result, progress)
                self._deliver_secrets(svc, container, delivered)
                self._start(container)
                self.wait_healthy(svc.name, progress=progress)
            progress(Progress("start", 1.0, "all services healthy"))
            if fresh_data:
                result.admin, result.admin_note = self.create_admin()
        except BaseException as exc:
            self._rollback(created, progress)
            if isinstance(exc, APIError):
                raise api_error(exc, "Installing the stack failed") from None
            raise
        return result

    def _retire_legacy(self) -> list[str]:
        """Remove containers of services earlier versions had and this one has not (MaxMind's updater
        carried the licence key in its environment); their volumes stay."""
        removed = []
        for c in self.containers():
            service = c.labels.get(LABEL_SERVICE, "")
            if service in RETIRED_SERVICES and service not in {s.name for s in self.spec.services}:
                c.remove(force=True)
                removed.append(f"removed container {container_name(c)}")
        return removed

    def _deliver_secrets(self, svc: Service, container: Container, delivered: list[str]) -> None:
        """Write the file secrets into the data volume through the first container mounting it, before it
        starts (again on every install: a changed key replaces the file)."""
        if (
            self.secrets
            and not delivered
            and any(m.target == DATA_DIR and not m.read_only for m in svc.mounts)
        ):
            secret_files.deliver(container, self.secrets)
            delivered.append(svc.name)

    def _ensure_network_and_volumes(self, created: list[tuple[str, str]], result: InstallResult) -> bool:
        labels = self.spec.stack_labels()
        if not self.client.networks.list(names=[self.spec.network_name]):
            # the edge's stack has a fixed subnet: the collector trusts forwarded addresses from it
            ipam = None
            if self.spec.subnet:
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=self.spec.subnet)])
            self.client.networks.create(self.spec.network_name, driver="bridge", labels=labels, ipam=ipam)
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
        self,
        svc: Service,
        created: list[tuple[str, str]],
        result: InstallResult,
        progress: ProgressCallback = ignore,
    ) -> Container:
        existing = self.container(svc.name)
        if existing is not None:
            if existing.labels.get(LABEL_CONFIG_HASH) == config_hash(svc):
                return existing
            progress(Progress("start", None, f"{svc.name} changed: replacing its container"))
            existing.remove(force=True, v=True)  # v: with its anonymous volumes (named ones stay)
        container = self._create(svc)
        created.append(("container", container_name(container)))
        result.changed.append(f"container {container_name(container)}")
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
                self.spec.network_name: self.client.api.create_endpoint_config(
                    aliases=[svc.name, *self.spec.aliases_of(svc.name)]
                )
            },
            restart_policy={"Name": svc.restart},  # type: ignore[arg-type]
            mem_limit=svc.mem_limit,
            init=svc.init,
            stop_signal="SIGTERM",
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
            healthcheck=healthcheck,
            ulimits=[docker.types.Ulimit(name=n, soft=v, hard=v) for n, v in svc.ulimits] or None,
        )

    def _rollback(self, created: list[tuple[str, str]], progress: ProgressCallback) -> None:
        if not created:
            return
        progress(Progress("rollback", None, "install failed: removing what it created"))
        for kind, name in reversed(created):
            with contextlib.suppress(NotFound, APIError):
                if kind == "container":
                    self.client.containers.get(name).remove(force=True, v=True)
                elif kind == "volume":
                    self.client.volumes.get(name).remove(force=True)
                elif kind == "network":
                    self.client.networks.get(name).remove()

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
        out = exec_output(res)
        match = re.search(r"^password: (\S+)$", out, re.MULTILINE)
        if res.exit_code == 0 and match:
            return Credentials(username, match.group(1)), "admin account created"
        if "invalid choice" in out:
            return None, "this image cannot create accounts yet (no `pixel user add`)"
        if res.exit_code == 1 and "exists" in out:
            return None, f"an account {username!r} exists already (reset it with `pixel user reset-password`)"
        raise StackError(f"Creating the admin account failed:\n{out[-1000:]}", code="admin-failed")

    def start(self, *, progress: ProgressCallback = ignore) -> None:
        self._require_installed()
        for svc in self.spec.start_order():
            c = self.container(svc.name)
            if c is not None:
                self._start(c)
                self.wait_healthy(svc.name, progress=progress)

    def stop(self, timeout: int = 20, *, progress: ProgressCallback = ignore) -> None:
        self._require_installed()
        for svc in reversed(self.spec.start_order()):
            c = self.container(svc.name)
            if c is not None:
                progress(Progress("stop", None, f"stopping {svc.name}"))
                c.stop(timeout=timeout)

    def restart(self, *, progress: ProgressCallback = ignore) -> None:
        self.stop(progress=progress)
        self.start(progress=progress)

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
