"""The "backup failing" alert, judged by the desktop (which schedules the backups; no Qt here).

The contract:
- `judge(scheduler, now, factor)` is "alert" when the last scheduled backup failed (`last_error`), or when
  the last good backup is older than `factor` times the plan's interval (daily: 2 days by default); "ok"
  otherwise, and also with no backup yet and no failure (the scheduler makes one at once).
- The episode is the last good backup's time ("none" before the first): the owner is told once while
  backups keep failing, and again only after a good backup and a new failure.
- Time is given (`now`); nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pixel.app.stack.backup_schedule import BackupScheduler


@dataclass(frozen=True)
class BackupVerdict:
    state: str  # "alert" | "ok"
    episode: str
    message: str

    @property
    def alerting(self) -> bool:
        return self.state == "alert"


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} hours"


def judge(scheduler: BackupScheduler, now: dt.datetime, factor: float = 2.0) -> BackupVerdict:
    last = scheduler.last_good()
    episode = "none" if last is None else f"{last.taken:%Y%m%dT%H%M%SZ}"
    good = (
        "no good backup yet" if last is None else f"the last good one is of {last.taken:%Y-%m-%d %H:%M} UTC"
    )
    if scheduler.last_error:
        return BackupVerdict("alert", episode, f"{scheduler.last_error} ({good}).")
    limit = scheduler.plan.period * factor
    if last is not None and now - last.taken > limit:
        return BackupVerdict(
            "alert",
            episode,
            f"No scheduled backup succeeded for {_age(now - last.taken)} ({scheduler.plan.every} backups; "
            f"{good}): is the app left closed, or the folder {scheduler.plan.folder} unavailable?",
        )
    return BackupVerdict("ok", episode, f"Backups on schedule: {good}.")
