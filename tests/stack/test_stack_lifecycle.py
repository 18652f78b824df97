"""Provisioner lifecycle on the real local engine with tiny busybox stacks (seconds per test)."""

from __future__ import annotations

import dataclasses
import socket
import urllib.request
from pathlib import Path

import pytest
from stack_helpers import BUSYBOX, busybox_spec, busybox_web, leftovers, unique_project

from pixel.app.stack import image as images
from pixel.app.stack.errors import StackError
from pixel.app.stack.progress import Progress
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import LABEL_CONFIG_HASH, LABEL_PROJECT, LABEL_SPEC_VERSION, replace_image


def _get(port: int, path: str = "/health") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read().decode()


def test_install_is_healthy_labelled_and_idempotent(docker_client, cleanup):
    project = unique_project()
    events: list[Progress] = []
    p = Provisioner(docker_client, busybox_spec(project))
    cleanup.append(p)
    first = p.install(progress=events.append)
    assert first.changed == [
        f"network {project}_default",
        f"volume {project}_data",
        f"container {project}-web-1",
    ]
    assert first.admin is None and "no API service" in first.admin_note
    assert any(e.step == "health" and e.fraction == 1.0 for e in events)
    status = p.status()
    [web] = status.containers
    assert (web.service, web.state, web.health, web.restarts) == ("web", "running", "healthy", 0)
    assert web.memory_limit == 64 * 2**20
    assert _get(web.ports[8081]) == "ok\n"
    container = p.container("web")
    assert container.labels[LABEL_PROJECT] == project
    assert container.labels[LABEL_SPEC_VERSION] == "1"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.attrs["HostConfig"]["Init"] is True

    second = p.install()
    assert second.changed == []
    assert p.container("web").id == container.id

    # a changed spec replaces only the changed container
    changed = Provisioner(
        docker_client, busybox_spec(project, dataclasses.replace(busybox_web(), mem_limit="96m"))
    )
    third = changed.install()
    assert third.changed == [f"container {project}-web-1"]
    assert changed.container("web").labels[LABEL_CONFIG_HASH] != container.labels[LABEL_CONFIG_HASH]


def test_install_failing_midway_leaves_nothing_behind(docker_client, cleanup):
    project = unique_project()
    broken = busybox_web("api", health=("false",))
    spec = busybox_spec(project, busybox_web(), broken)
    p = Provisioner(docker_client, spec, health_timeout=30)
    cleanup.append(p)
    with pytest.raises(StackError) as err:
        p.install()
    assert err.value.code == "service-unhealthy"
    assert "api is running but unhealthy" in err.value.problem
    assert leftovers(docker_client, project) == []


def test_port_in_use_is_refused_before_anything_is_created(docker_client, cleanup):
    project = unique_project()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        p = Provisioner(docker_client, busybox_spec(project, busybox_web(host_port=str(port))))
        cleanup.append(p)
        findings = [f for f in p.check() if f.name == "port"]
        assert [(f.ok, f.code) for f in findings] == [(False, "port-in-use")]
        with pytest.raises(StackError) as err:
            p.install()
    assert err.value.code == "port-in-use"
    assert f"Port {port} (web) is already used" in err.value.problem
    assert "choose another port" in err.value.action
    assert leftovers(docker_client, project) == []


def test_check_reports_engine_memory_and_disk(docker_client):
    p = Provisioner(docker_client, busybox_spec(unique_project()))
    findings = {f.name: f for f in p.check()}
    version = docker_client.version()["Version"]
    assert findings["engine"].ok and f"Docker {version} (API 1.41)" in findings["engine"].message
    assert findings["memory"].ok and "GiB memory" in findings["memory"].message
    assert findings["disk"].ok and "GiB free for Docker" in findings["disk"].message
    assert "port" not in findings  # port "0": the engine picks one, nothing to check


def test_logs_stop_start_restart(docker_client, cleanup):
    project = unique_project()
    p = Provisioner(docker_client, busybox_spec(project))
    cleanup.append(p)
    p.install()
    assert list(p.logs()) == ["started"]
    follow = p.logs("web", tail=10, follow=True)
    assert next(follow) == "started"
    follow.close()
    p.stop(timeout=5)
    assert [c.state for c in p.status().containers] == ["exited"]
    assert p.metrics() == {}
    p.start()
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]
    p.restart()
    assert list(p.logs()) == ["started", "started", "started"]
    with pytest.raises(StackError, match="one service at a time"):
        next(
            Provisioner(docker_client, busybox_spec(project, busybox_web(), busybox_web("b"))).logs(
                follow=True
            )
        )


def test_uninstall_keeps_or_deletes_data(docker_client, cleanup):
    project = unique_project()
    p = Provisioner(docker_client, busybox_spec(project))
    cleanup.append(p)
    p.install()
    assert p.uninstall(delete_data=False) == [f"container {project}-web-1", f"network {project}_default"]
    assert leftovers(docker_client, project) == [f"{project}_data"]
    p.install()
    assert p.uninstall(delete_data=True)[-1] == f"volume {project}_data"
    assert leftovers(docker_client, project) == []
    with pytest.raises(StackError) as err:
        p.stop()
    assert err.value.code == "not-installed"


def _write(p: Provisioner, text: str) -> None:
    assert p.container("web").exec_run(["sh", "-c", f"echo {text} > /data/events.txt"]).exit_code == 0


def _read(p: Provisioner) -> str:
    return p.container("web").exec_run(["cat", "/data/events.txt"]).output.decode()


def test_backup_uninstall_install_restore(docker_client, cleanup, tmp_path: Path):
    project = unique_project()
    p = Provisioner(docker_client, busybox_spec(project))
    cleanup.append(p)
    p.install()
    _write(p, "42-events")
    backup = p.backup(tmp_path / "stack.tar.gz")
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]  # started again
    p.uninstall(delete_data=True)
    p.install()
    assert "No such file" in _read(p)
    p.restore(backup)
    assert _read(p) == "42-events\n"
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]

    other = Provisioner(docker_client, busybox_spec(unique_project(), busybox_web()))
    bad = tmp_path / "not-a-backup.tar.gz"
    bad.write_bytes(b"hello")
    with pytest.raises(StackError) as err:
        other.restore(bad)
    assert err.value.code == "bad-backup"
    with pytest.raises(StackError) as err:
        p.backup(tmp_path / "missing-dir" / "x.tar.gz")
    assert err.value.code == "backup-failed"
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]


@pytest.fixture(scope="module")
def wrecking_image(docker_client, tmp_path_factory) -> str:
    """An 'upgrade' that deletes the data and never becomes healthy."""
    ctx = tmp_path_factory.mktemp("wreck")
    (ctx / "Dockerfile").write_text(
        f'FROM {BUSYBOX}\nENTRYPOINT ["sh", "-c", "rm -rf /data/*; exec sleep 3600", "--"]\n'
    )
    tag = "pixel-test/wrecking:latest"
    images.build(docker_client, images.ImageSource("build", ctx), tag)
    return tag


def test_upgrade_to_unhealthy_image_rolls_back_with_data(docker_client, cleanup, tmp_path, wrecking_image):
    project = unique_project()
    spec = busybox_spec(project)
    p = Provisioner(docker_client, spec)
    cleanup.append(p)
    p.install()
    _write(p, "before-upgrade")
    with pytest.raises(StackError) as err:
        p.upgrade(replace_image(spec, BUSYBOX, wrecking_image), backup_dir=tmp_path, health_timeout=8)
    assert err.value.code == "upgrade-rolled-back"
    assert _read(p) == "before-upgrade\n"
    [web] = p.status().containers
    assert (web.state, web.health) == ("running", "healthy")
    assert docker_client.images.get(BUSYBOX).id == p.container("web").image.id
    assert len(list(tmp_path.glob(f"{project}-before-upgrade-*.tar.gz"))) == 1


def test_upgrade_does_not_start_when_backup_fails(docker_client, cleanup, tmp_path, wrecking_image):
    project = unique_project()
    spec = busybox_spec(project)
    p = Provisioner(docker_client, spec)
    cleanup.append(p)
    p.install()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StackError) as err:
        p.upgrade(replace_image(spec, BUSYBOX, wrecking_image), backup_dir=blocker / "sub")
    assert err.value.code == "backup-failed"
    assert "upgrade was not started" in err.value.problem
    assert p.container("web").image.id == docker_client.images.get(BUSYBOX).id


def test_successful_upgrade_switches_image(docker_client, cleanup, tmp_path):
    project = unique_project()
    spec = busybox_spec(project)
    p = Provisioner(docker_client, spec)
    cleanup.append(p)
    p.install()
    _write(p, "kept")
    docker_client.images.get(BUSYBOX).tag("pixel-test/busybox", "v2")
    p.upgrade(replace_image(spec, BUSYBOX, "pixel-test/busybox:v2"), backup_dir=tmp_path)
    assert p.container("web").attrs["Config"]["Image"] == "pixel-test/busybox:v2"
    assert _read(p) == "kept\n"
