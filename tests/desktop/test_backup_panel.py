"""The stack page's scheduled backups, driven click by click on a real Docker engine (the busybox test stack)
with a pinned clock: the plan saved in the profile, the first backup made at once, the last good backup's
date shown, keep-last-N, a failure shown in red with the previous backups kept, a run missed while the app
was closed made once at start, and a restore chosen from the list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from pixel.app.desktop.backup_panel import BackupPanel
from pixel.app.desktop.stack_page import StackPage
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.stack.engine import EngineTarget, connect
from pixel.app.stack.provisioner import Provisioner
from tests.desktop.conftest import save_screenshot
from tests.desktop.test_owner_pages import screenshots
from tests.stack.stack_helpers import busybox_spec, unique_project

T0 = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
WAIT = 120_000


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def stack() -> Iterator[Provisioner]:
    client = connect(EngineTarget())
    p = Provisioner(client, busybox_spec(unique_project("pxbk")))
    p.install()
    try:
        yield p
    finally:
        p.uninstall(delete_data=True)
        client.close()


def write(p: Provisioner, text: str) -> None:
    assert p.container("web").exec_run(["sh", "-c", f"echo {text} > /data/events.txt"]).exit_code == 0


def read(p: Provisioner) -> str:
    return p.container("web").exec_run(["cat", "/data/events.txt"]).output.decode()


def settle(qtbot, panel: BackupPanel) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: panel.running is None, timeout=WAIT)


def rows(panel: BackupPanel) -> list[str]:
    return [panel.list.item(i).text() for i in range(panel.list.count())]


def test_scheduled_backups_on_the_stack_page(qtbot, stack: Provisioner, tmp_path: Path) -> None:
    project = stack.spec.project
    store = ProfileStore()
    store.save(Profile("local", project=project))
    page = StackPage(Runner())
    qtbot.addWidget(page)
    page.resize(1300, 900)
    panel = page.backups
    clock = Clock(T0)
    panel.clock = clock
    panel.set_profile(store, store.get("local"), lambda: stack)  # type: ignore[arg-type]
    assert panel.last.text() == "No schedule: choose a folder and how often."

    folder = tmp_path / "backups"
    write(stack, "day-0")
    panel.ask_folder = lambda: str(folder)
    panel.folder.setText(str(folder))
    panel.every.setCurrentIndex(1)  # Daily
    panel.keep.setValue(2)
    qtbot.mouseClick(panel.save, Qt.MouseButton.LeftButton)
    assert store.get("local").extra == {  # type: ignore[union-attr]
        "backup_folder": str(folder),
        "backup_every": "daily",
        "backup_keep": "2",
    }
    qtbot.waitUntil(lambda: panel.running is not None, timeout=5_000)  # never backed up: at once
    settle(qtbot, panel)
    first = f"{project}-20260301-093000Z.tar.gz"
    assert panel.last.text() == (
        f"Daily into {folder}, keeping the last 2. Last good backup: 2026-03-01 09:30 UTC."
    )
    assert [r.split("  ·  ")[2] for r in rows(panel)] == [first]
    assert panel.check() is None  # not due again the same day
    screenshots(qtbot, page, "stack-backups")

    for day, text in ((1, "day-1"), (2, "day-2")):
        write(stack, text)
        clock.now = T0 + dt.timedelta(days=day)
        assert panel.check() is not None
        settle(qtbot, panel)
    assert [r.split("  ·  ")[2] for r in rows(panel)] == [
        f"{project}-20260303-093000Z.tar.gz",
        f"{project}-20260302-093000Z.tar.gz",
    ]
    assert panel.last.text().endswith("Last good backup: 2026-03-03 09:30 UTC.")

    # A failure (the folder gone, a file in its place): said in red, the backups kept, the date unchanged.
    moved = tmp_path / "moved"
    folder.rename(moved)
    folder.write_text("x")
    clock.now = T0 + dt.timedelta(days=3)
    assert panel.check() is not None
    settle(qtbot, panel)
    assert panel.error.isVisibleTo(panel)
    assert panel.error.text() == (
        f"The backup of 2026-03-04 09:30 UTC failed: the folder {folder} cannot be used: File exists"
    )
    folder.unlink()
    moved.rename(folder)
    panel.show_backups()
    assert panel.last.text().endswith("Last good backup: 2026-03-03 09:30 UTC.")
    assert panel.list.count() == 2
    save_screenshot(page, "stack-backups-failed")

    # Restore the older one from the list (confirmed).
    write(stack, "later")
    asked: list[str] = []
    panel.confirm = lambda text: asked.append(text) or True  # type: ignore[func-returns-value]
    panel.list.setCurrentRow(1)
    qtbot.mouseClick(panel.restore, Qt.MouseButton.LeftButton)
    settle(qtbot, panel)
    assert asked == [
        f"Replace ALL current data with the backup {project}-20260302-093000Z.tar.gz? This cannot be undone."
    ]
    assert read(stack) == "day-1\n"
    assert panel.last.text().endswith(f"Restored {project}-20260302-093000Z.tar.gz.")

    # The app closed for ten days, then opened: one backup at start, not ten.
    again = BackupPanel(Runner())
    qtbot.addWidget(again)
    again.clock = Clock(T0 + dt.timedelta(days=13))
    again.set_profile(store, store.get("local"), lambda: stack)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: again.running is not None, timeout=5_000)
    settle(qtbot, again)
    assert again.check() is None
    assert [r.split("  ·  ")[2] for r in rows(again)] == [
        f"{project}-20260314-093000Z.tar.gz",
        f"{project}-20260303-093000Z.tar.gz",
    ]


def test_a_profile_without_engine_schedules_nothing(qtbot, tmp_path: Path) -> None:
    store = ProfileStore()
    profile = Profile("colleague", engine="none", api_url="http://127.0.0.1:1",
                      extra={"backup_folder": str(tmp_path), "backup_every": "daily", "backup_keep": "3"})  # fmt: skip
    store.save(profile)
    panel = BackupPanel(Runner())
    qtbot.addWidget(panel)
    panel.set_profile(store, profile, None)
    assert panel.scheduler is None and panel.check() is None
    assert panel.last.text() == "No schedule: choose a folder and how often."


def test_the_main_window_runs_the_schedule_at_start(
    qtbot, stack: Provisioner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixel.app.client import ReportCache
    from pixel.app.desktop.window import MainWindow
    from pixel.app.stack import manage

    # The busybox stack has no Pixel topology to be opened by name from its labels (that is covered by the
    # stack tests): the window's own opener gets this provisioner; the backups are real.
    opened: list[str] = []
    monkeypatch.setattr(manage, "open_stack", lambda _client, project, **_kw: opened.append(project) or stack)

    folder = tmp_path / "b"
    store = ProfileStore()
    extra = {"backup_folder": str(folder), "backup_every": "weekly", "backup_keep": "3"}
    store.save(Profile("local", project=stack.spec.project, extra=extra))
    window = MainWindow(store, ReportCache())
    qtbot.addWidget(window)
    panel = window.stack.backups
    assert panel.scheduler is not None and panel.scheduler.plan.every == "weekly"
    qtbot.waitUntil(lambda: panel.running is not None, timeout=5_000)  # no backup yet: made at start
    settle(qtbot, panel)
    assert [b.name.startswith(f"{stack.spec.project}-") for b in panel.scheduler.backups()] == [True], (
        panel.error.text()
    )
    assert panel.last.text().startswith(f"Weekly into {folder}, keeping the last 3. Last good backup: ")
    assert opened == [stack.spec.project]
    window.close()
