"""Helpers shared by the stack tests (a module with its own name: several test folders have a conftest)."""

from __future__ import annotations

import socket
import uuid

import docker
from pixel.app.stack.spec import HealthCheck, Mount, Port, Service, StackSpec

BUSYBOX = "pixel-test/busybox:latest"


def unique_project(prefix: str = "pxt") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def busybox_web(name: str = "web", host_port: str = "0", health: tuple[str, ...] | None = None) -> Service:
    """A tiny HTTP service on /data: writes /data/health (the healthcheck's target) and serves it."""
    return Service(
        name=name,
        image=BUSYBOX,
        command=(
            "sh",
            "-c",
            "echo started; [ -f /data/health ] || echo ok > /data/health; exec httpd -f -p 8081 -h /data",
        ),
        ports=(Port(8081, host_port, "127.0.0.1"),),
        mounts=(Mount("data", "/data"),),
        healthcheck=HealthCheck(
            test=health or ("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/health"),
            interval=0.3,
            timeout=2.0,
            retries=2,
            start_period=0.0,
        ),  # fmt: skip
        mem_limit="64m",
        stop_grace=2.0,
    )


def busybox_spec(project: str, *services: Service) -> StackSpec:
    return StackSpec(project, "test", services or (busybox_web(),), ("data",))


def leftovers(client: docker.DockerClient, project: str) -> list[str]:
    label = {"label": f"io.pixel.stack={project}"}
    return (
        [c.name for c in client.containers.list(all=True, filters=label)]
        + [n.name for n in client.networks.list(filters=label)]
        + [v.name for v in client.volumes.list(filters=label)]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
