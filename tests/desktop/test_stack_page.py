"""The stack page over the provisioner on the real Docker engine (a tiny busybox stack): containers,
health and sparklines, confirmed actions with progress, the log viewer with follow and search."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from pixel.app.desktop.stack_page import StackPage, _backup_dir
from pixel.app.desktop.workers import Runner
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.progress import Progress
from pixel.app.stack.provisioner import Provisioner
from pixel.app.stack.spec import HealthCheck, Mount, Port, Service, StackSpec, replace_image
from tests.desktop.test_owner_pages import screenshots

BUSYBOX = "pixel-test/busybox:latest"  # made by scripts/system.d/20-docker.sh


def busybox_stack(project: str) -> StackSpec:
    web = Service(
        name="web",
        image=BUSYBOX,
        command=(
            "sh",
            "-c",
            "echo started web; [ -f /data/health ] || echo ok > /data/health; exec httpd -f -p 8081 -h /data",
        ),
        ports=(Port(8081, "0", "127.0.0.1"),),
        mounts=(Mount("data", "/data"),),
        healthcheck=HealthCheck(
            test=("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/health"),
            interval=0.3,
            timeout=2.0,
            retries=2,
            start_period=0.0,
        ),
        mem_limit="64m",
        stop_grace=2.0,
    )
    return StackSpec(project, "test", (web,), ("data",))


@pytest.fixture
def stack():
    client = connect(EngineTarget())
    prov = Provisioner(client, busybox_stack(f"pxd{uuid.uuid4().hex[:8]}"), health_timeout=60)
    prov.install()
    yield prov
    with contextlib.suppress(Exception):
        prov.uninstall(delete_data=True)
    client.close()


def test_stack_page_status_actions_and_logs(qtbot, stack: Provisioner, tmp_path: Path) -> None:
    runner = Runner()
    page = StackPage(runner, poll_ms=3_600_000)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    asked: list[str] = []
    page.confirm = lambda action, text: asked.append(text) or answer[0]
    page.ask_path = lambda action, save: str(tmp_path / "backup.tar.gz")
    answer = [False]
    page.open(lambda: stack, "busybox test stack on the local engine")
    qtbot.waitUntil(lambda: page.table.rowCount() == 1 and page.table.item(0, 2) is not None, timeout=30_000)
    assert [page.table.item(0, j).text() for j in (0, 1, 2, 3)] == ["web", "running", "healthy", "0"]
    cpu, mem = page.sparks["web"]
    assert len(cpu.values) == 1 and mem.values[0] > 0  # memory in MiB from the engine's stats
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    assert page.disk.text() != "Disk: —"

    # refused confirmation: nothing happens
    assert page.request("stop") is None
    assert asked == ["Stop the Pixel stack? Visits are not recorded while it is stopped."]
    assert stack.container("web").status == "running"

    answer[0] = True
    page.request("stop")
    qtbot.waitUntil(lambda: page.last_action == ("stop", "done"), timeout=60_000)
    qtbot.waitUntil(lambda: page.table.item(0, 1).text() == "exited", timeout=30_000)

    # follow the log, then start: the new "started web" line arrives in the viewer
    page.follow.setChecked(True)
    page.request("start")
    qtbot.waitUntil(lambda: page.last_action == ("start", "done"), timeout=60_000)
    qtbot.waitUntil(lambda: "started web" in page.log.toPlainText(), timeout=30_000)
    page.follow.setChecked(False)
    assert page.table.item(0, 1).text() == "running"

    page.load_logs()
    qtbot.waitUntil(lambda: page.log.toPlainText().count("started web") == 2, timeout=30_000)
    page.search.setText("started")
    assert page.find_next() and page.search_result.text() == "2 matching lines"
    page.search.setText("no such text")
    assert not page.find_next() and page.search_result.text() == "not found"

    page.request("backup")
    qtbot.waitUntil(lambda: page.last_action is not None and page.last_action[0] == "backup", timeout=60_000)
    assert page.last_action == ("backup", str(tmp_path / "backup.tar.gz"))
    assert (tmp_path / "backup.tar.gz").stat().st_size > 0
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    screenshots(qtbot, page, "stack")

    page.delete_data.setChecked(True)
    page.request("uninstall")
    qtbot.waitUntil(
        lambda: page.last_action is not None and page.last_action[0] == "uninstall", timeout=60_000
    )
    project = stack.spec.project
    assert (
        page.last_action[1] == f"container {project}-web-1, network {project}_default, volume {project}_data"
    )
    assert not stack.is_installed()
    page.stop()
    runner.shutdown()


def test_stack_page_upgrade_is_the_shared_upgrade_with_the_tasks_progress(
    qtbot, stack: Provisioner, tmp_path: Path, monkeypatch
) -> None:
    """Upgrade runs `manage.upgrade_to_image` (the CLI's `pixel stack upgrade` runs it too) with the task's
    own progress callback. That function resolves the spec again by topology, which this busybox stack has
    none of: the stand-in here swaps the image in the spec itself, then runs the real upgrade."""
    from pixel.app.stack import manage

    calls: list[tuple[Provisioner, str, Path, object, object]] = []
    labels: list[str] = []

    def upgrade_to_image(prov: Provisioner, image: str, *, backup_dir: Path, values, progress) -> Path:  # type: ignore[no-untyped-def]
        calls.append((prov, image, backup_dir, values, progress))

        def seen(event: Progress) -> None:
            labels.append(event.message)
            progress(event)

        return prov.upgrade(replace_image(prov.spec, BUSYBOX, image), backup_dir=tmp_path, progress=seen)

    monkeypatch.setattr(manage, "upgrade_to_image", upgrade_to_image)
    stack.client.images.get(BUSYBOX).tag("pixel-test/busybox", "v2")
    runner = Runner()
    page = StackPage(runner, poll_ms=3_600_000)
    qtbot.addWidget(page)
    page.confirm = lambda action, text: True
    page.ask_text = lambda title, default: "pixel-test/busybox:v2"
    page.set_provisioner(stack)
    task = page.request("upgrade")
    assert task is not None
    qtbot.waitUntil(lambda: page.last_action is not None, timeout=60_000)
    [backup] = tmp_path.glob(f"{stack.spec.project}-before-upgrade-*.tar.gz")
    assert page.last_action == ("upgrade", str(backup))
    assert calls == [(stack, "pixel-test/busybox:v2", _backup_dir(), {}, task.progress_callback)]
    assert labels[0] == "stopping web" and labels[-1] == "upgrade complete"
    assert page.progress_dialog.labelText() == "upgrade complete"
    assert stack.container("web").attrs["Config"]["Image"] == "pixel-test/busybox:v2"
    assert not hasattr(stack, "progress")
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    page.stop()
    runner.shutdown()
