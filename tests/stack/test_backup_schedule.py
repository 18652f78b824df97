"""Backups on a schedule (`pixel.app.stack.backup_schedule`) with an injected clock: due / not due, a
missed run made once, keep-last-N pruning exact, a failed backup keeps the previous ones and says why,
restore from the list only; then the same through a real Docker engine (the busybox test stack)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import busybox_spec, unique_project

from pixel.app.stack.backup_schedule import (
    BackupFile,
    BackupPlan,
    BackupPlanError,
    BackupScheduler,
    file_name,
    list_backups,
    plan_from_extra,
    plan_to_extra,
)
from pixel.app.stack.errors import StackError
from pixel.app.stack.provisioner import Provisioner

T0 = dt.datetime(2026, 3, 1, 9, 30, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def write_backup(path: Path) -> Path:
    """What `Backups.backup` leaves on success: one complete file at `path`."""
    path.write_bytes(b"backup of " + path.name.encode())
    return path


def names(folder: Path, project: str = "pixel") -> list[str]:
    return [b.name for b in list_backups(folder, project)]


def test_due_and_not_due_daily_and_weekly(tmp_path: Path) -> None:
    clock = Clock(T0)
    daily = BackupScheduler(BackupPlan(tmp_path / "d", "daily", 3), "pixel", write_backup, clock)
    assert daily.due()  # never backed up
    assert daily.run_if_due() == BackupFile(
        tmp_path / "d" / "pixel-20260301-093000Z.tar.gz", T0, len(b"backup of pixel-20260301-093000Z.tar.gz")
    )
    clock.now = T0 + dt.timedelta(hours=23, minutes=59, seconds=59)
    assert not daily.due() and daily.run_if_due() is None
    clock.now = T0 + dt.timedelta(days=1)
    assert daily.due()
    weekly = BackupScheduler(BackupPlan(tmp_path / "d", "weekly", 3), "pixel", write_backup, clock)
    clock.now = T0 + dt.timedelta(days=6, hours=23)
    assert daily.due() and not weekly.due()
    clock.now = T0 + dt.timedelta(days=7)
    assert weekly.due()


def test_a_missed_run_is_caught_up_once(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    clock = Clock(T0)
    BackupScheduler(BackupPlan(folder, "daily", 5), "pixel", write_backup, clock).run()
    # The app was closed for 10 days: at its next start one backup is made, not ten.
    clock.now = T0 + dt.timedelta(days=10, minutes=3)
    restarted = BackupScheduler(BackupPlan(folder, "daily", 5), "pixel", write_backup, clock)
    assert restarted.run_if_due() is not None
    assert restarted.run_if_due() is None
    clock.now += dt.timedelta(hours=1)
    assert restarted.run_if_due() is None
    assert names(folder) == ["pixel-20260311-093300Z.tar.gz", "pixel-20260301-093000Z.tar.gz"]
    assert restarted.last_good().taken == T0 + dt.timedelta(days=10, minutes=3)  # type: ignore[union-attr]


def test_keep_last_n_deletes_exactly_the_oldest_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    others = ["notes.txt", "pixel-before-upgrade-20260101-000000.tar.gz", "other-20260101-000000Z.tar.gz",
              "pixel-20260101-000000Z.tar.gz.partial", "pixel-2026010-000000Z.tar.gz"]  # fmt: skip
    for name in others:
        (folder / name).write_text("keep me")
    clock = Clock(T0)
    scheduler = BackupScheduler(BackupPlan(folder, "daily", 3), "pixel", write_backup, clock)
    for day in range(5):
        clock.now = T0 + dt.timedelta(days=day)
        assert scheduler.run_if_due() is not None
    assert names(folder) == [
        "pixel-20260305-093000Z.tar.gz",
        "pixel-20260304-093000Z.tar.gz",
        "pixel-20260303-093000Z.tar.gz",
    ]
    assert sorted(p.name for p in folder.iterdir()) == sorted(others + names(folder))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(keep=st.integers(1, 6), runs=st.integers(1, 10))
def test_keep_property(tmp_path_factory: pytest.TempPathFactory, keep: int, runs: int) -> None:
    folder = tmp_path_factory.mktemp("p")
    clock = Clock(T0)
    scheduler = BackupScheduler(BackupPlan(folder, "weekly", keep), "pixel", write_backup, clock)
    for week in range(runs):
        clock.now = T0 + dt.timedelta(weeks=week, seconds=week)
        scheduler.run_if_due()
    expected = [file_name("pixel", T0 + dt.timedelta(weeks=w, seconds=w)) for w in range(runs)][::-1][:keep]
    assert names(folder) == expected


def test_a_failed_backup_keeps_the_previous_ones_and_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    clock = Clock(T0)
    fail = {"on": False}

    def backup(path: Path) -> Path:
        if fail["on"]:
            raise StackError(
                f"Backup failed: cannot write {path}: No space left on device", code="backup-failed"
            )
        return write_backup(path)

    scheduler = BackupScheduler(BackupPlan(folder, "daily", 1), "pixel", backup, clock)
    scheduler.run()
    fail["on"] = True
    clock.now = T0 + dt.timedelta(days=1)
    assert scheduler.run_if_due() is None
    assert names(folder) == ["pixel-20260301-093000Z.tar.gz"]  # keep=1, yet the good one stays
    assert scheduler.last_error == (
        "The backup of 2026-03-02 09:30 UTC failed: Backup failed: cannot write "
        f"{folder / 'pixel-20260302-093000Z.tar.gz'}: No space left on device"
    )
    clock.now += dt.timedelta(minutes=59)
    assert not scheduler.due()  # not retried at every check
    clock.now += dt.timedelta(minutes=1)
    assert scheduler.due()
    fail["on"] = False
    assert scheduler.run_if_due() is not None
    assert scheduler.last_error == ""
    assert names(folder) == ["pixel-20260302-103000Z.tar.gz"]


def test_a_folder_that_cannot_be_made_is_an_error_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    scheduler = BackupScheduler(BackupPlan(blocker / "sub", "daily", 2), "pixel", write_backup, Clock(T0))
    assert scheduler.run() is None
    assert scheduler.last_error == (
        f"The backup of 2026-03-01 09:30 UTC failed: the folder {blocker / 'sub'} cannot be used: Not a directory"
    )
    assert blocker.read_text() == "x"


def test_restore_only_from_the_list(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    scheduler = BackupScheduler(BackupPlan(folder, "daily", 3), "pixel", write_backup, Clock(T0))
    scheduler.run()
    (tmp_path / "evil.tar.gz").write_text("x")
    restored: list[Path] = []
    scheduler.restore("pixel-20260301-093000Z.tar.gz", restored.append)
    assert restored == [folder / "pixel-20260301-093000Z.tar.gz"]
    for name in ("../evil.tar.gz", str(tmp_path / "evil.tar.gz"), "pixel-20260302-093000Z.tar.gz", ""):
        with pytest.raises(BackupPlanError):
            scheduler.restore(name, restored.append)
    assert len(restored) == 1


def test_plan_validation_and_profile_extra() -> None:
    plan = BackupPlan(Path("/backups/pixel"), "weekly", 4)
    extra = plan_to_extra(plan, {"known_hosts": "/k"})
    assert extra == {
        "known_hosts": "/k",
        "backup_folder": "/backups/pixel",
        "backup_every": "weekly",
        "backup_keep": "4",
    }
    assert plan_from_extra(extra) == plan
    assert plan_to_extra(None, extra) == {"known_hosts": "/k"}
    assert plan_from_extra({}) is None
    for bad, message in (
        (lambda: BackupPlan(Path("/b"), "hourly", 3), "backups every 'hourly': choose daily or weekly"),
        (lambda: BackupPlan(Path("/b"), "daily", 0), "keep 0 backups: choose 1 to 365"),
        (lambda: BackupPlan(Path("/b"), "daily", 366), "keep 366 backups: choose 1 to 365"),
        (lambda: BackupPlan(Path("rel"), "daily", 3), "backup folder 'rel': choose a full path"),
        (
            lambda: plan_from_extra({"backup_folder": "/b", "backup_keep": "x"}),
            "keep 'x' backups: not a number",
        ),
    ):
        with pytest.raises(BackupPlanError) as caught:
            bad()
        assert str(caught.value) == message


def _write(p: Provisioner, text: str) -> None:
    assert p.container("web").exec_run(["sh", "-c", f"echo {text} > /data/events.txt"]).exit_code == 0


def _read(p: Provisioner) -> str:
    return p.container("web").exec_run(["cat", "/data/events.txt"]).output.decode()


def test_scheduled_backups_of_a_real_stack_and_restore_from_the_list(docker_client, cleanup, tmp_path: Path):
    project = unique_project()
    p = Provisioner(docker_client, busybox_spec(project))
    cleanup.append(p)
    p.install()
    folder = tmp_path / "backups"
    clock = Clock(T0)
    scheduler = BackupScheduler(BackupPlan(folder, "daily", 2), project, lambda path: p.backup(path), clock)
    for day, text in enumerate(("day-0", "day-1", "day-2")):
        _write(p, text)
        clock.now = T0 + dt.timedelta(days=day)
        assert scheduler.run_if_due() is not None, scheduler.last_error
    assert names(folder, project) == [
        f"{project}-20260303-093000Z.tar.gz",
        f"{project}-20260302-093000Z.tar.gz",
    ]
    # A failing backup (the folder replaced by a file) keeps both and says why; the stack runs on.
    moved = tmp_path / "moved"
    folder.rename(moved)
    folder.write_text("not a folder")
    clock.now = T0 + dt.timedelta(days=3)
    assert scheduler.run_if_due() is None
    assert scheduler.last_error.startswith("The backup of 2026-03-04 09:30 UTC failed: ")
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]
    folder.unlink()
    moved.rename(folder)
    assert names(folder, project) == [
        f"{project}-20260303-093000Z.tar.gz",
        f"{project}-20260302-093000Z.tar.gz",
    ]
    _write(p, "later")
    scheduler.restore(f"{project}-20260302-093000Z.tar.gz", p.restore)
    assert _read(p) == "day-1\n"
    assert [(c.state, c.health) for c in p.status().containers] == [("running", "healthy")]
