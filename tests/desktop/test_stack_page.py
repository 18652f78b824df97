"""The stack page over the provisioner on the real Docker engine (a tiny busybox stack): containers,
health and sparklines, confirmed actions with progress, the log viewer with follow and search."""

from __future__ import annotations

import contextlib
import threading
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
    # the poll after the action shows it (no timer tick within the test: poll_ms is an hour)
    qtbot.waitUntil(lambda: page.table.item(0, 1).text() == "running", timeout=30_000)

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


def _opened(qtbot, stack: Provisioner) -> tuple[StackPage, Runner]:
    runner = Runner()
    page = StackPage(runner, poll_ms=3_600_000)
    qtbot.addWidget(page)
    page.open(lambda: stack, "busybox test stack on the local engine")
    qtbot.waitUntil(lambda: page.table.rowCount() == 1 and page.table.item(0, 1) is not None, timeout=30_000)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=60_000)
    return page, runner


def test_a_poll_asked_for_while_one_is_under_way_runs_after_it(
    qtbot, stack: Provisioner, monkeypatch
) -> None:
    """The poll after an action must not be dropped because another poll (the timer's) is still reading: the
    status that one read may be from before the action. Here the first poll reads "running" and is held; the
    stack is stopped and a poll asked for; when the first lands, the second runs and shows "exited"."""
    page, runner = _opened(qtbot, stack)
    assert page.table.item(0, 1).text() == "running"
    gate, reads = threading.Event(), []
    real_status = stack.status

    def held_status():
        status = real_status()
        reads.append(status.containers[0].state)
        gate.wait(30)
        return status

    monkeypatch.setattr(stack, "status", held_status)
    page.poll()
    qtbot.waitUntil(lambda: reads == ["running"], timeout=30_000)
    stack.stop()
    page.poll()  # asked for while the first is held
    page.poll()  # asked for twice: one more poll, not two
    assert reads == ["running"]
    gate.set()
    qtbot.waitUntil(lambda: page.table.item(0, 1).text() == "exited", timeout=30_000)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    assert reads == ["running", "exited"]
    page.stop()
    runner.shutdown()


def test_a_slow_disk_report_does_not_hold_the_status_back(qtbot, stack: Provisioner, monkeypatch) -> None:
    """The engine's disk-usage report can take many seconds on a busy engine: the containers' state shows
    without waiting for it, and the disk figure follows when it comes; no second report while one runs."""
    import pixel.app.desktop.stack_page as stack_page

    page, runner = _opened(qtbot, stack)
    gate, calls = threading.Event(), []
    real_usage = stack_page.volume_usage

    def slow_usage(prov: Provisioner) -> int | None:
        calls.append(prov)
        gate.wait(30)
        return real_usage(prov)

    monkeypatch.setattr(stack_page, "volume_usage", slow_usage)
    page.disk_bytes = None
    page.disk.setText("Disk: —")
    page._disk_at = 0.0  # due again
    stack.stop()
    page.poll()
    qtbot.waitUntil(lambda: page.table.item(0, 1).text() == "exited", timeout=30_000)
    assert page.disk.text() == "Disk: —" and len(calls) == 1
    page._disk_at = 0.0
    page.poll()  # the report is still running: not asked again
    qtbot.waitUntil(lambda: runner.busy == 1, timeout=30_000)
    assert len(calls) == 1
    gate.set()
    qtbot.waitUntil(lambda: page.disk.text() != "Disk: —", timeout=30_000)
    assert page.disk_bytes is not None and page.disk_bytes >= 0
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    page.stop()
    runner.shutdown()


def test_the_next_action_waits_until_the_last_ones_outcome_is_shown(qtbot, stack: Provisioner) -> None:
    """An action is open until the page has shown its outcome, not only until its worker returned (the worker
    returns before the GUI thread runs its callback); a cancelled action whose work completed anyway gets no
    callback, and is over once the runner has dropped it."""
    page, runner = _opened(qtbot, stack)
    page.confirm = lambda action, text: True
    task = page.request("restart")
    assert task is not None and page.acting()
    assert task.finished.wait(120)  # the GUI thread blocked here: the outcome is not shown yet
    assert page.last_action is None and page.acting()
    assert page.request("stop") is None
    qtbot.waitUntil(lambda: page.last_action == ("restart", "done"), timeout=30_000)
    assert not page.acting()

    task = page.request("stop")
    assert task is not None
    assert task.finished.wait(120)
    task.cancel()  # too late to stop the work: the runner drops its outcome
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
    assert not page.acting()
    assert page.last_action == ("restart", "done")
    assert page.request("start") is not None
    qtbot.waitUntil(lambda: page.last_action == ("start", "done"), timeout=60_000)
    qtbot.waitUntil(lambda: runner.busy == 0, timeout=30_000)
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
