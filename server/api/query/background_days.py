"""Days a per-day cache builds in a worker thread instead of on the request (its first long build).

Contract: a cache that mixes in `BackgroundDays` sets `_guard` (a lock never held while a query runs),
`_pending` and `_worker` in its `__init__` (see `init_background`) and has `ensure(scope, days)`, which builds
the days of `days` that have no valid build. `queue_days(scope, days)` adds days to the queue in order (a day
already queued keeps its place) and starts the worker if none runs; the worker (`build_pending`) builds one
day per step until the queue is empty, then ends. A failing build (a closed store, a failing query) drops the
whole queue: a later report queues its days again. `_start` is the one place the thread starts, so tests can
run the worker by hand.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pixel.server.api.query.cache_sql import Days
from pixel.server.api.query.periods import Range, local_midnight

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pixel.server.api.query.scope import Scope

log = logging.getLogger(__name__)


class BackgroundDays:
    """The worker-thread queue of a per-day cache (mixed into `ReportCache` and `EngagementCache`)."""

    worker_name = "day-cache"  # the thread's name, and what the log says failed
    _guard: threading.Lock
    _pending: dict[tuple[str, str, date], Scope]  # days the worker will build, in order
    _worker: threading.Thread | None

    def init_background(self) -> None:
        self._guard = threading.Lock()  # guards the cache's dicts, never held while a query runs
        self._pending = {}
        self._worker = None

    def ensure(self, scope: Scope, days: Days) -> Days:
        raise NotImplementedError

    def queue_days(self, scope: Scope, days: Iterable[date]) -> None:
        with self._guard:
            for d in days:
                self._pending.setdefault((scope.site, scope.range.tz, d), scope)
            if self._worker is None:
                self._worker = threading.Thread(target=self.build_pending, name=self.worker_name, daemon=True)
                self._start(self._worker)

    def _start(self, worker: threading.Thread) -> None:
        worker.start()

    def build_pending(self) -> None:
        """Build the queued days one at a time until none is left (the worker thread's loop)."""
        while True:
            with self._guard:
                if not self._pending:
                    self._worker = None
                    return
                (site, tz, day), scope = next(iter(self._pending.items()))
            zone = ZoneInfo(tz)
            one = Range(
                local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone), tz, "custom"
            )
            try:
                with scope.runner.store.background():  # the owner's reads take their turns first
                    self.ensure(replace(scope, range=one, filters=[]), Days(day, day))
            except Exception as exc:
                log.warning("%s: background build of %s %s failed: %s", self.worker_name, site, day, exc)
                with self._guard:
                    self._pending.clear()
            with self._guard:
                self._pending.pop((site, tz, day), None)
