"""The STANDARD topology (ClickHouse + collector + shipper/API) end to end on the real Docker engine.

One test body, two ClickHouse images:

- `chfront-standin` runs everywhere, with a TEST-ONLY stand-in, NOT ClickHouse: tests/chfront.py (chDB
  behind the part of ClickHouse's HTTP interface clickhouse-connect uses) in an image built offline
  FROM the Pixel image (tests/stack/chfront_standin/Dockerfile). It is tagged
  `clickhouse/clickhouse-server:chfront-standin` and chosen with the spec's own CLICKHOUSE_VERSION
  setting, so the provisioner runs the spec's ClickHouse service unchanged: its user and password
  from the environment, port 8123 on the stack network, its data volume and its wget healthcheck.
- `real-clickhouse` pulls the pinned official image: it needs a registry, so it runs only where
  PIXEL_TEST_REGISTRY=1 says one is reachable.

The only departure from the spec: ClickHouse's open-files limit (262144) is lowered to this
machine's hard limit when that is lower, since the engine cannot grant more than it has (some CI
containers have 20000); `test_refused_ulimit_is_explained` covers the error a user would get.
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import shutil
from pathlib import Path

import pytest
from stack_helpers import (
    PIXEL_TAG,
    api_call,
    busybox_spec,
    busybox_web,
    leftovers,
    register_site,
    send_pageviews,
    unique_project,
)
from stack_helpers import wait_for_count as _wait_for_count

from pixel.app.stack import image as images
from pixel.app.stack.errors import StackError
from pixel.app.stack.manage import open_stack
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import CLICKHOUSE_IMAGE, CLICKHOUSE_VERSION, StackSpec
from pixel.server.cli import main

HERE = Path(__file__).resolve().parent
STANDIN_VERSION = "chfront-standin"  # the stand-in's tag in the clickhouse/clickhouse-server repository
REGISTRY = os.environ.get("PIXEL_TEST_REGISTRY") == "1"
CH_NOFILE = 262144  # what the spec asks for ClickHouse


@pytest.fixture(scope="module")
def standin_version(docker_client, pixel_image, tmp_path_factory) -> str:
    """Build the TEST-ONLY ClickHouse stand-in on the Pixel image (a few seconds, no network)."""
    ctx = tmp_path_factory.mktemp("chfront-standin")
    for name in ("Dockerfile", "wget"):
        shutil.copy2(HERE / "chfront_standin" / name, ctx / name)
    shutil.copy2(HERE.parent / "chfront.py", ctx / "chfront.py")
    ref = f"{CLICKHOUSE_IMAGE}:{STANDIN_VERSION}"
    images.build(docker_client, images.ImageSource("build", ctx, base=pixel_image, network_mode="none"), ref)
    yield STANDIN_VERSION
    docker_client.images.remove(ref, force=True)


def _nofile_here() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return CH_NOFILE if hard == resource.RLIM_INFINITY else min(CH_NOFILE, hard)


def _fit_ulimits(p: Provisioner) -> Provisioner:
    """Lower the spec's open-files limit to what this machine allows (no change on most hosts)."""
    nofile = _nofile_here()
    services = tuple(
        dataclasses.replace(s, ulimits=tuple((n, min(v, nofile)) for n, v in s.ulimits))
        for s in p.spec.services
    )
    p.spec = dataclasses.replace(p.spec, services=services)
    return p


def _open(client, project: str, clickhouse_version: str | None = None) -> Provisioner:
    values = {
        "PIXEL_IMAGE": PIXEL_TAG,
        "PIXEL_COLLECTOR_BIND": "127.0.0.1",
        "PIXEL_COLLECTOR_PORT": "0",  # the engine picks free ports
        "PIXEL_API_PORT": "0",
        "PIXEL_WORKERS": "1",
    }
    if clickhouse_version:
        values["CLICKHOUSE_VERSION"] = clickhouse_version
    return _fit_ulimits(open_stack(client, project, "standard", values))


def _count_in_clickhouse(p: Provisioner) -> tuple[str, int]:
    """(server display name, events in pixel.events) asked of the ClickHouse service over the stack
    network from the shipper's container, with the shipper's own credentials."""
    code = (
        "import base64, os, urllib.parse as q, urllib.request as u\n"
        "auth = base64.b64encode(('pixel:' + os.environ['PIXEL_CLICKHOUSE_PASSWORD']).encode()).decode()\n"
        "req = u.Request('http://clickhouse:8123/?query=' + q.quote('SELECT count() FROM pixel.events FINAL'),\n"
        "                headers={'Authorization': 'Basic ' + auth})\n"
        "with u.urlopen(req, timeout=10) as r:\n"
        "    print(r.headers['X-ClickHouse-Server-Display-Name'], r.read().decode().strip())\n"
    )
    shipper = p.container("shipper")
    assert shipper is not None
    res = shipper.exec_run(["python3", "-c", code])
    assert res.exit_code == 0, res.output.decode()
    name, count = res.output.decode().split()
    return name, int(count)


def _pageviews_via_api(port: int, username: str, password: str) -> int:
    token = api_call(port, "POST", "/api/auth/login", {"username": username, "password": password})[
        "access_token"
    ]
    site = register_site(port, username, password)
    summary = api_call(
        port,
        "GET",
        f"/api/sites/{site['id']}/reports/summary?period=today&compare=false&include_bots=true",
        token=token,
    )
    return int(summary["metrics"]["pageviews"]["value"])


@pytest.mark.parametrize(
    "clickhouse",
    [
        pytest.param("standin", id="chfront-standin"),
        pytest.param(
            "real",
            id="real-clickhouse",
            marks=pytest.mark.skipif(not REGISTRY, reason="needs a registry (PIXEL_TEST_REGISTRY=1)"),
        ),
    ],
)
def test_standard_end_to_end(request, clickhouse, docker_client, pixel_image, cleanup, capsys):
    version = request.getfixturevalue("standin_version") if clickhouse == "standin" else CLICKHOUSE_VERSION
    ch_image = f"{CLICKHOUSE_IMAGE}:{version}"
    project = unique_project("pxs")
    p = _open(docker_client, project, version if clickhouse == "standin" else None)
    cleanup.append(p)
    assert [(s.name, s.image) for s in p.spec.services] == [
        ("clickhouse", ch_image),
        ("collector", pixel_image),
        ("shipper", pixel_image),
    ]  # no MaxMind licence key: the optional GeoIP updater is left out
    pulled = [] if images.has_image(docker_client, ch_image) else [f"image {ch_image}"]
    volumes_before = {v.name for v in docker_client.volumes.list()}

    result = p.install(images.ImageSource("pull"))  # every image is present, or pulled (real-clickhouse)
    assert result.changed == pulled + [
        f"network {project}_default",
        f"volume {project}_clickhouse",
        f"volume {project}_data",
        f"volume {project}_geoip",
        f"container {project}-clickhouse-1",
        f"container {project}-collector-1",
        f"container {project}-shipper-1",
    ]
    assert result.admin is not None and result.admin.username == "admin" and len(result.admin.password) >= 12
    ch = p.container("clickhouse")
    assert ch is not None
    assert ch.attrs["HostConfig"]["Ulimits"] == [
        {"Name": "nofile", "Soft": _nofile_here(), "Hard": _nofile_here()}
    ]

    status = p.status()
    rows = {c.service: c for c in status.containers}
    assert [(c.service, c.image, c.state, c.health, c.restarts) for c in status.containers] == [
        ("clickhouse", ch_image, "running", "healthy", 0),
        ("collector", pixel_image, "running", "healthy", 0),
        ("shipper", pixel_image, "running", "healthy", 0),
    ]
    assert rows["clickhouse"].ports == {}  # ClickHouse is reached on the stack network only
    assert set(rows["collector"].ports) == {8081} and set(rows["shipper"].ports) == {8082}
    assert (rows["clickhouse"].memory_limit, rows["collector"].memory_limit) == (2 * 2**30, 2**30)

    # events: host -> collector container -> spool volume -> shipper container -> ClickHouse container
    register_site(rows["shipper"].ports[8082], result.admin.username, result.admin.password)
    send_pageviews(rows["collector"].ports[8081], 25)
    assert _wait_for_count(p, 25) == 25
    display_name, stored = _count_in_clickhouse(p)
    assert stored == 25
    assert (display_name == "chfront") == (clickhouse == "standin")  # the stand-in answered, or not
    api_port = rows["shipper"].ports[8082]
    health = api_call(api_port, "GET", "/health")
    assert (health["store"], health["store_reachable"], "events_inserted" in health) == (
        "clickhouse",
        True,
        False,
    )
    token = api_call(
        api_port,
        "POST",
        "/api/auth/login",
        {"username": result.admin.username, "password": result.admin.password},
    )["access_token"]
    assert api_call(api_port, "GET", "/health", token=token)["events_inserted"] == 25  # details: an admin's
    assert _pageviews_via_api(api_port, result.admin.username, result.admin.password) == 25

    # `pixel stack status`: every container healthy, and the figures
    assert main(["stack", "status", "--name", project]) == 0
    out = capsys.readouterr().out.splitlines()
    for line, service in zip(out, ("clickhouse", "collector", "shipper"), strict=False):
        assert re.fullmatch(
            rf"{service} +running +healthy +restarts=0 cpu=\S+ mem=\d+ MiB ports=\{{.*\}}", line
        )
    assert out[3:5] == ["events stored since the container started: 25", "events today (UTC): 25"]
    assert re.fullmatch(r"ingest rate: \d+\.\d events/s \(last minute\)", out[5])
    assert out[6:] == ["spool backlog: 0 bytes"]

    # a second install, opened afresh by name, changes nothing
    assert _fit_ulimits(open_stack(docker_client, project)).install().changed == []

    removed = p.uninstall(delete_data=True)
    assert sorted(removed) == sorted(
        [f"container {project}-{s}-1" for s in ("clickhouse", "collector", "shipper")]
        + [f"network {project}_default"]
        + [f"volume {project}_{v}" for v in ("clickhouse", "data", "geoip")]
    )
    assert leftovers(docker_client, project) == []
    # the stand-in is built on the Pixel image, whose VOLUME /data it does not mount: no anonymous volume stays
    assert {v.name for v in docker_client.volumes.list()} <= volumes_before


def test_refused_ulimit_is_explained(docker_client, cleanup):
    """A limit the engine cannot grant (above the kernel's nr_open here; ClickHouse's 262144 where
    dockerd's own limit is lower) fails the install with a plain message, and leaves nothing behind."""
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    project = unique_project()
    spec: StackSpec = busybox_spec(
        project, dataclasses.replace(busybox_web(), ulimits=(("nofile", nr_open + 1),))
    )
    p = Provisioner(docker_client, spec)
    cleanup.append(p)
    with pytest.raises(StackError) as err:
        p.install()
    assert err.value.code == "ulimit-refused"
    assert err.value.problem.startswith(f"Starting {project}-web-1 failed: Docker may not give the container")
    assert "LimitNOFILE" in err.value.action
    assert leftovers(docker_client, project) == []
