"""Per-site retention: the number of days a site keeps (set through the API) enforced on its stored events.

The events table's TTL (`PIXEL_RETENTION_DAYS`) is one for all sites; a site may ask to keep less. The store
process deletes such a site's older events once an hour, with a lightweight DELETE and only when there is
something to delete (a DELETE is a mutation: not one per scrape or per batch). The reports read those days
as empty (server/api/query/report_cache.py, `ReportCache.expired_before`), so the report cache shows
what the events hold.

The cut-off is computed from this process's clock (`now`, injectable) and passed as a parameter, not the
store's `now64()`: the reports decide which days read as empty from the same clock, so both agree even when
a ClickHouse server's clock differs from Pixel's.

On a cluster (`events` is a Distributed table) a lightweight DELETE must go to the shards' tables with
`ON CLUSTER`, which needs the cluster's name: the job says so once and leaves it to the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pixel.server.enrich.siterules import site_retention_days
from pixel.server.store import Store, StoreError

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0
# The sessions table's rows whose events are all older than the cut-off (a row holds one 15-minute slot;
# `slot` is in its sorting key, so the slots at or after the cut-off are not read).
_SESSIONS_OLDER = "site = {site:String} AND slot < {cutoff:DateTime64(3, 'UTC')} AND last_seen < {cutoff:DateTime64(3, 'UTC')}"


class SiteRetention:
    def __init__(self, store: Store, meta_path: Path, interval: float = INTERVAL_SECONDS) -> None:
        self.store = store
        self.meta_path = meta_path
        self.interval = interval
        self.stop_event = threading.Event()
        self.deleted = 0  # events deleted since start (all sites)
        self._warned_cluster = False

    def run_once(self, now: float | None = None) -> dict[str, int]:
        """Delete every limited site's events older than its retention at `now` (Unix seconds, default
        this process's clock); {site: events deleted}."""
        sites = site_retention_days(self.meta_path)
        if not sites:
            return {}
        engine = self.store.scalar(
            "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
        )
        if engine == "Distributed":
            if not self._warned_cluster:
                log.warning(
                    "site retention: events is a Distributed table; delete old events of %s on the "
                    "shards yourself (DELETE FROM events_local ON CLUSTER ...)",
                    ", ".join(sorted(sites)),
                )
                self._warned_cluster = True
            return {}
        moment = time.time() if now is None else now
        done = {}
        for site, days in sorted(sites.items()):
            cutoff = datetime.fromtimestamp(moment - days * 86400, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            where = "site = {site:String} AND timestamp < {cutoff:DateTime64(3, 'UTC')}"
            params = {"site": site, "cutoff": cutoff}
            older = int(self.store.scalar(f"SELECT count() FROM events WHERE {where}", params) or 0)
            if older:
                self.store.command(f"DELETE FROM events WHERE {where}", params)
                log.info("site retention: deleted %d events of %s older than %d days", older, site, days)
                self.deleted += older
            # Checked on its own, not only after events were deleted: a sessions backfill chunk that read
            # the events before a DELETE and wrote after it puts their rows back (server/store/sessions_backfill.py).
            stale = int(
                self.store.scalar(f"SELECT count() FROM session_rows WHERE {_SESSIONS_OLDER}", params) or 0
            )
            if stale:
                self.store.command(f"DELETE FROM session_rows WHERE {_SESSIONS_OLDER}", params)
            done[site] = older
        return done

    def run(self) -> None:
        """Once at start, then every `interval` seconds until `stop_event` is set."""
        while not self.stop_event.is_set():
            try:
                self.run_once()
            except StoreError as exc:
                log.warning("site retention: %s; trying again in %.0f s", exc, self.interval)
            except Exception:
                log.exception("site retention failed")
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
