"""Backups of a stack on a schedule (no Qt; the desktop app calls it while it is open).

Contract:
- A `BackupPlan` is a folder the owner picked, daily or weekly, and how many backups to keep (1-365). It is
  plain settings (no secret), kept in the profile's `extra` (`plan_to_extra` / `plan_from_extra`).
- Scheduled backups are the files `<project>-YYYYMMDD-HHMMSSZ.tar.gz` in that folder (UTC, from the
  injected clock); nothing else there is listed, pruned or restored. A backup is written through the
  provisioner (`Backups.backup`: a `.partial` file renamed when complete, removed on failure), so every
  listed file is a complete backup: the newest one is the last good backup.
- `BackupScheduler.due()`: a plan exists and the last good backup is older than the period (or there is
  none); after a failed attempt the next one waits `RETRY` (a broken folder is not hammered). A run missed
  while the app was closed is made once at the next check, however many periods were missed.
- A successful backup deletes the oldest scheduled backups beyond `keep`; a failed one deletes nothing and
  its message is kept in `last_error` (cleared by the next success).
- `restore(name)` restores only a file of the list, by its bare name (no path from outside the folder).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pixel.app.errors import AppError

PERIODS = {"daily": dt.timedelta(days=1), "weekly": dt.timedelta(days=7)}
RETRY = dt.timedelta(hours=1)
KEEP_MAX = 365
_EXTRA = ("backup_folder", "backup_every", "backup_keep")


class BackupPlanError(AppError, ValueError):
    """A plan that cannot be used; the message names the field."""


@dataclass(frozen=True)
class BackupPlan:
    folder: Path
    every: str = "daily"
    keep: int = 7

    def __post_init__(self) -> None:
        if self.every not in PERIODS:
            raise BackupPlanError(f"backups every {self.every!r}: choose daily or weekly")
        if not 1 <= self.keep <= KEEP_MAX:
            raise BackupPlanError(f"keep {self.keep} backups: choose 1 to {KEEP_MAX}")
        if not Path(self.folder).is_absolute():
            raise BackupPlanError(f"backup folder {str(self.folder)!r}: choose a full path")

    @property
    def period(self) -> dt.timedelta:
        return PERIODS[self.every]


def plan_to_extra(plan: BackupPlan | None, extra: dict[str, str]) -> dict[str, str]:
    """`extra` with the plan's keys set (or removed for None)."""
    out = {k: v for k, v in extra.items() if k not in _EXTRA}
    if plan is not None:
        out.update(backup_folder=str(plan.folder), backup_every=plan.every, backup_keep=str(plan.keep))
    return out


def plan_from_extra(extra: dict[str, str]) -> BackupPlan | None:
    if not extra.get("backup_folder"):
        return None
    try:
        keep = int(extra.get("backup_keep", "7"))
    except ValueError:
        raise BackupPlanError(f"keep {extra.get('backup_keep')!r} backups: not a number") from None
    return BackupPlan(Path(extra["backup_folder"]), extra.get("backup_every", "daily"), keep)


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken: dt.datetime  # UTC, from the name
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def file_name(project: str, when: dt.datetime) -> str:
    return f"{project}-{when.astimezone(dt.UTC):%Y%m%d-%H%M%S}Z.tar.gz"


def list_backups(folder: Path, project: str) -> list[BackupFile]:
    """The scheduled backups of `project` in `folder`, newest first (none when the folder is missing)."""
    pattern = re.compile(rf"^{re.escape(project)}-(\d{{8}}-\d{{6}})Z\.tar\.gz$")
    found = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or not entry.is_file() or entry.is_symlink():
            continue
        try:
            taken = dt.datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        found.append(BackupFile(entry, taken, entry.stat().st_size))
    return sorted(found, key=lambda b: b.taken, reverse=True)


class BackupScheduler:
    """Runs `backup(path) -> path` (blocking: from a worker) when due, prunes, keeps the last error."""

    def __init__(
        self,
        plan: BackupPlan,
        project: str,
        backup: Callable[[Path], Path],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.plan, self.project, self._backup, self.clock = plan, project, backup, clock
        self.last_error = ""
        self.last_attempt: dt.datetime | None = None

    def backups(self) -> list[BackupFile]:
        return list_backups(self.plan.folder, self.project)

    def last_good(self) -> BackupFile | None:
        listed = self.backups()
        return listed[0] if listed else None

    def due(self) -> bool:
        now = self.clock()
        if self.last_attempt is not None and self.last_error and now - self.last_attempt < RETRY:
            return False
        last = self.last_good()
        return last is None or now - last.taken >= self.plan.period

    def run_if_due(self) -> BackupFile | None:
        return self.run() if self.due() else None

    def run(self) -> BackupFile | None:
        """One backup now, then the oldest beyond `keep` deleted; None (and `last_error`) on failure."""
        now = self.clock()
        self.last_attempt = now
        try:
            try:
                self.plan.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise AppError(
                    f"the folder {self.plan.folder} cannot be used: {exc.strerror or exc}"
                ) from None
            path = Path(self._backup(self.plan.folder / file_name(self.project, now)))
        except (AppError, OSError) as exc:
            why = getattr(exc, "problem", None) or getattr(exc, "strerror", None) or str(exc)
            self.last_error = f"The backup of {now:%Y-%m-%d %H:%M} UTC failed: {why}"
            return None
        self.last_error = ""
        self.prune()
        return BackupFile(path, now.replace(microsecond=0), path.stat().st_size)

    def prune(self) -> list[Path]:
        """Delete the scheduled backups beyond the newest `keep`; the deleted paths."""
        old = [b.path for b in self.backups()[self.plan.keep :]]
        for path in old:
            path.unlink(missing_ok=True)
        return old

    def restore(self, name: str, restore: Callable[[Path], None]) -> None:
        """Restore the listed backup `name` (its bare file name) with `restore(path)` (blocking)."""
        chosen = next((b for b in self.backups() if b.name == name), None)
        if chosen is None:
            raise BackupPlanError(f"{name!r} is not one of the scheduled backups in {self.plan.folder}")
        restore(chosen.path)
