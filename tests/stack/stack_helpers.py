"""Helpers shared by the stack tests (a module with its own name: several test folders have a conftest)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid

import docker

from pixel.app.stack.spec import HealthCheck, Mount, Port, Service, StackSpec
from tests.ports import free_port  # noqa: F401 - re-exported for the stack tests

BUSYBOX = "pixel-test/busybox:latest"
PIXEL_BASE = "pixel-base/python:bookworm"  # Debian minbase + python3, also from 20-docker.sh
PIXEL_TAG = "pixel-analytics:stack-test"  # built once per test session (conftest.pixel_image)
PIXEL_BROKEN = "pixel-analytics:stack-test-broken"


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


def compact_test_values(image: str) -> dict[str, str]:
    """Settings of a compact test stack with the Pixel image `image`: on loopback, on ports the engine picks
    (other tests and programs run here), one collector worker."""
    return {
        "PIXEL_IMAGE": image,
        "PIXEL_COLLECTOR_BIND": "127.0.0.1",
        "PIXEL_COLLECTOR_PORT": "0",
        "PIXEL_API_PORT": "0",
        "PIXEL_WORKERS": "1",
    }


def leftovers(client: docker.DockerClient, project: str) -> list[str]:
    label = {"label": f"io.pixel.stack={project}"}
    return (
        [c.name for c in client.containers.list(all=True, filters=label)]
        + [n.name for n in client.networks.list(filters=label)]
        + [v.name for v in client.volumes.list(filters=label)]
    )


def wait_port(port: int, timeout: float = 20) -> None:
    """Wait until something listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def send_pageviews(port: int, n: int) -> None:
    """POST n pageviews of example.com, now, to a collector published on 127.0.0.1:port."""
    now = int(time.time() * 1000)
    batch = [
        {
            "event_id": str(uuid.uuid4()),
            "event_name": "pageview",
            "ts": now,
            "site": "example.com",
            "page": {"url": f"https://example.com/p{i}", "path": f"/p{i}", "title": "t", "referrer": ""},
        }
        for i in range(n)
    ]
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/track",
        data=json.dumps(batch).encode(),
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def api_call(port: int, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def register_site(port: int, username: str, password: str, domain: str = "example.com") -> dict:
    """The site `domain` through the API on 127.0.0.1:port (created unless it exists): the stack drops the
    events of unregistered sites (PIXEL_UNREGISTERED_SITES=drop)."""
    token = api_call(port, "POST", "/api/auth/login", {"username": username, "password": password})[
        "access_token"
    ]
    sites = api_call(port, "GET", "/api/sites", token=token)["items"]
    site = next((s for s in sites if s["domain"] == domain), None)
    return site or api_call(port, "POST", "/api/sites", {"domain": domain}, token=token)


def wait_for_count(provisioner, expected: int, timeout: float = 60) -> int:
    """Poll `status()` until the stack's shipper has stored `expected` events."""
    deadline = time.monotonic() + timeout
    count = None
    while time.monotonic() < deadline:
        count = provisioner.status().events_inserted
        if count == expected:
            return count
        time.sleep(0.5)
    raise AssertionError(f"events stored: {count}, expected {expected}")
