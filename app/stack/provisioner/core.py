"""The engine objects of one stack, which every concern of the provisioner (checks, status, lifecycle,
backup) works on: its containers found by label and name, starting one, waiting for one to be healthy, and
the engine errors a person can act on.

No state besides the engine: the object holds the connection, the resolved spec, where the engine is and
the non-secret settings (and the file secrets install and upgrade write, never kept anywhere else); what a call reports while it runs goes to the `progress` callback given to that
call, never to the object (two calls on one provisioner, on two threads, report to their own callbacks).
"""

from __future__ import annotations

import time

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container, ExecResult

from ..engine import EngineTarget
from ..errors import StackError
from ..progress import Progress, ProgressCallback, ignore
from ..spec import API_PORT, LABEL_STACK, Service, StackSpec


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


def container_name(container: Container) -> str:
    """docker-py's `name` is None only for a container known by its id alone; the engine's list, get
    and create answers carry the name. The short id names the container as well."""
    return container.name or container.short_id


def exec_output(res: ExecResult) -> str:
    """The text of an `exec_run` without stream or socket: its output is bytes then."""
    assert isinstance(res.output, bytes)
    return res.output.decode("utf-8", "replace")


class StackObjects:
    """One stack's containers on one engine, and the waits every operation shares."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: StackSpec,
        *,
        target: EngineTarget | None = None,
        health_timeout: float = 180.0,
        settings: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.settings = dict(settings or {})  # non-secret values the spec was resolved with, kept in a label
        self.secrets = dict(secrets or {})  # file secrets written into the data volume (secret_files.py)
        self.spec = spec
        self.target = target or EngineTarget()
        self.health_timeout = health_timeout

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

    def _require_installed(self) -> None:
        if not self.is_installed():
            raise StackError(
                f"No Pixel stack named {self.spec.project!r} here.", "Install it first.", code="not-installed"
            )

    def _start(self, container: Container) -> None:
        container.reload()
        if container.status != "running":
            try:
                container.start()
            except APIError as exc:
                raise api_error(exc, f"Starting {container.name} failed") from None

    def wait_healthy(
        self, service: str, timeout: float | None = None, *, progress: ProgressCallback = ignore
    ) -> None:
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
                progress(Progress("health", 1.0, f"{service} is healthy"))
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
            progress(Progress("health", None, f"waiting for {service} ({health})"))
            time.sleep(0.5)

    @staticmethod
    def _tail(container: Container, lines: int = 15) -> str:
        try:
            return container.logs(tail=lines).decode("utf-8", "replace").rstrip()
        except APIError:
            return "(no logs)"
