"""The store process: the one process that owns the store (chDB admits one per data folder).

It runs the shipper in a thread and serves, on the API port, `/health`, `/metrics` (the shipper's
figures) and, when the analytics API is installed, everything under `/api/`.

`/health` always answers 200 (load balancers and container health checks read its body):
`{"status": "ok" | "degraded", "reasons": [...], "store": engine, "store_reachable": bool}` to anyone.
It is `degraded` when the store cannot be reached, or when the shipper has not advanced its checkpoint for
`PIXEL_SHIPPER_STALL_SECONDS` while the spool holds unshipped data (a batch it cannot get past, a dead
thread): each reason is one plain sentence without error text. The details — pid, the last error's text,
backlog, counts, the age of the oldest unshipped record, uptime — are added only for a caller with an
admin's bearer token of the analytics API (the API's own check, `pixel.server.api.deps`); without the API
installed, nobody gets them.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from pixel.server import homepage, metrics
from pixel.server.enrich.geo_refresh import GeoipRefresher
from pixel.server.retention import SiteRetention
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.shipper.shipper import VISIBLE_BUCKETS
from pixel.server.store import Store, StoreError, open_store
from pixel.server.store.sessions_backfill import SessionsBackfill

log = logging.getLogger(__name__)


def _alert_sender(api: Any) -> Any:
    from pixel.server.alerts.sender import AlertSender

    settings = api.state.pixel.settings
    return AlertSender(
        api.state.pixel.meta,
        api.state.pixel.runner,
        data_dir=settings.data_dir,
        public_address=settings.public_address,
    )


class StoreService:
    def __init__(
        self, settings: Settings, store: Store | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.clock = clock
        self.shipper = Shipper(settings, self.store, clock=clock)
        self.retention = SiteRetention(self.store, settings.meta_db_path, settings.site_retention_interval)
        self.geoip = GeoipRefresher(
            settings
        )  # fetches the GeoIP database when PIXEL_GEOIP_AUTO_UPDATE says so
        self.started = clock()
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._today: tuple[tuple[int, int], int] | None = None
        # the threads start() runs: stop() joins every one before it closes the store under them
        self._threads: list[threading.Thread] = []
        # copies the events stored before the sessions table existed into it (after an upgrade)
        self.sessions_backfill = SessionsBackfill(self.store)
        self.api = self._load_api()
        self.annotator = self._load_annotator()
        self.alerts = None if self.api is None else _alert_sender(self.api)  # server/alerts/sender.py
        if self.annotator is not None:
            self.geoip.on_installed = self.annotator.wake

    def _load_api(self) -> Any:
        try:
            from pixel.server.api import create_app
        except ImportError:
            return None
        return create_app(self.settings, self.store)

    def _load_annotator(self) -> Any:
        """The writer of automatic annotations (server/annotations/watch.py), with the API's metadata DB."""
        if self.api is None:
            return None
        from pixel.server.annotations.watch import AutoAnnotator

        return AutoAnnotator(
            self.settings, self.api.state.pixel.meta, self.store, status=lambda: self.status()[:2]
        )

    def start(self) -> None:
        # Everything loaded so far (the API, the enrichment data, chDB's bindings) lives as long as the process:
        # move it out of the cyclic GC's generations, so the collections that batches of fresh row dicts
        # trigger do not rescan it each time (it lowers the shipper's parse + enrich CPU: bench/README.md).
        gc.collect()
        gc.freeze()
        self._spawn("shipper", self.shipper.run)
        self._spawn("site-retention", self.retention.run)
        self._spawn("sessions-backfill", self.sessions_backfill.run)
        if self.geoip.enabled:
            self._spawn("geoip-refresh", self.geoip.run)
        if self.annotator is not None:
            self._spawn("auto-annotations", self.annotator.run, self.clock)
        if self.alerts is not None:
            self._spawn("alerts", self.alerts.run, self.clock)
        if self.api is not None:  # imports through the API that a crash cut go on (server/importer/jobs.py)
            from pixel.server.api.routers.imports import resume_at_start

            resume_at_start(self.api.state.pixel)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        if self.alerts is not None:
            self.alerts.stop()
        self.shipper.stop()
        self.retention.stop()
        self.sessions_backfill.stop()
        self.geoip.stop()
        if self.annotator is not None:
            self.annotator.stop()
        # a batch, chunk or round in course ends before the store closes under it
        for thread in self._threads:
            thread.join(timeout=30)
        self.shipper.enricher.close()
        self.store.close()

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/health":
            body = orjson.dumps(self.health(details=self._is_admin(scope)))
            await self._send(send, 200, body, b"application/json")
        elif scope["type"] == "http" and path == "/metrics":
            await self._send(send, 200, self.render_metrics(), b"text/plain; version=0.0.4")
        elif homepage.is_home(scope):
            await homepage.send_home(scope, send)
        elif self.api is not None:
            await self.api(scope, receive, send)
        elif scope["type"] == "http":
            await self._send(
                send, 404, b'{"error":"not found","detail":"%s"}' % path.encode(), b"application/json"
            )

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, content_type: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _is_admin(self, scope: dict[str, Any]) -> bool:
        """True when the request carries a bearer token of an admin of every site (the API's own check)."""
        if self.api is None:
            return False
        auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            from fastapi.security import HTTPAuthorizationCredentials
            from starlette.requests import Request

            from pixel.server.api.deps import current_principal

            principal = current_principal(
                Request(scope),
                self.api.state.pixel,
                HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip()),
            )
        except Exception:  # an invalid token (ApiError), or anything the check raises: no details
            return False
        return bool(principal.is_admin and principal.sites is None)

    def status(self) -> tuple[str, list[str], dict[str, Any]]:
        """("ok" | "degraded", the reasons, the figures behind them)."""
        stats = self.shipper.stats
        backlog = self.shipper.backlog_bytes()
        stalled = self.shipper.stalled_for(backlog)
        oldest = self.shipper.oldest_unshipped_ms() if backlog > 0 else 0
        reasons = []
        if not stats.store_up:
            reasons.append("the store cannot be reached; the spool keeps the events")
        if stalled > self.settings.shipper_stall_seconds:
            reasons.append(
                f"the shipper has not advanced for {stalled:.0f} s while the spool holds unshipped events"
            )
        figures = {
            "backlog_bytes": backlog,
            "stalled_seconds": round(stalled, 1),
            "oldest_unshipped_seconds": round(max(0.0, self.clock() - oldest / 1000), 1) if oldest else 0.0,
        }
        return ("degraded" if reasons else "ok"), reasons, figures

    def health(self, details: bool = False) -> dict[str, Any]:
        stats = self.shipper.stats
        status, reasons, figures = self.status()
        answer: dict[str, Any] = {
            "status": status,
            "reasons": reasons,
            "store": self.store.engine,
            "store_reachable": stats.store_up,
        }
        if details:
            answer.update(
                {
                    "pid": os.getpid(),
                    "last_error": stats.last_error,
                    "events_inserted": stats.inserted,
                    "events_dead": stats.dead,
                    "refused_batches": stats.refused_batches,
                    **figures,
                    "uptime_seconds": round(self.clock() - self.started, 1),
                    # {"state": "backfilling", "percent", "days_left"} after an upgrade, else None
                    "sessions_table": self.sessions_backfill.progress(),
                }
            )
        return answer

    def _visible_samples(self) -> list[tuple[str, float]]:
        stats = self.shipper.stats
        samples: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(VISIBLE_BUCKETS, stats.visible_buckets, strict=True):
            running += count
            samples.append((f'_bucket{{le="{bound}"}}', running))
        samples.append(('_bucket{le="+Inf"}', stats.inserted))
        samples.append(("_sum", round(stats.visible_sum, 3)))
        samples.append(("_count", stats.inserted))
        return samples

    def _ingest_rate(self) -> float:
        """Events inserted per second over the last minute (from samples taken at each scrape)."""
        now = time.monotonic()
        samples = self._rate_samples
        samples.append((now, self.shipper.stats.inserted))
        while len(samples) > 2 and now - samples[0][0] > 60:  # keep the samples of the last minute
            samples.popleft()
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def _events_today(self) -> int:
        """Events stored with today's (UTC) timestamps, from the hourly insert counts (bots and not yet merged
        retries included): a monitoring figure, cheap at any size; -1 when the store cannot say. Asked again
        only when the shipper inserted something or the day changed: a scrape must not take the store's lock
        (which the shipper's inserts wait for) when nothing can have changed."""
        key = (self.shipper.stats.inserted, int(time.time() // 86400))
        if self._today is not None and self._today[0] == key:
            return self._today[1]
        try:
            value = int(
                self.store.scalar("SELECT sum(rows) FROM event_counts WHERE hour >= toStartOfDay(now())") or 0
            )
        except StoreError:
            return -1
        self._today = (key, value)
        return value

    def render_metrics(self) -> bytes:
        stats = self.shipper.stats
        status, _reasons, figures = self.status()
        return metrics.prometheus(
            [
                (
                    "pixel_shipper_events_inserted_total",
                    "counter",
                    "Events inserted into the store.",
                    [("", stats.inserted)],
                ),
                (
                    "pixel_shipper_events_dead_total",
                    "counter",
                    "Records and events sent to the dead letters.",
                    [("", stats.dead)],
                ),
                (
                    "pixel_shipper_events_dropped_total",
                    "counter",
                    "Events not stored by the site's choice: Do-Not-Track / Global Privacy Control honoured, "
                    "an excluded path or IP range, an origin not allowed, a site not registered.",
                    [("", stats.dropped)],
                ),
                (
                    "pixel_shipper_events_dropped_by_reason_total",
                    "counter",
                    "Events not stored, by reason (dnt, gpc, excluded_path, excluded_ip, origin_not_allowed, "
                    "unregistered_site).",
                    self.shipper.enricher.drop_samples(),
                ),
                ("pixel_shipper_batches_total", "counter", "Batches inserted.", [("", stats.batches)]),
                (
                    "pixel_shipper_lag_seconds",
                    "gauge",
                    "Age of the oldest event of the last batch when it was inserted (0 when idle).",
                    [("", round(stats.lag_seconds, 3))],
                ),
                (
                    "pixel_shipper_visible_seconds",
                    "histogram",
                    "Seconds from an event's receipt (just before its 204) to its insert being acknowledged.",
                    self._visible_samples(),
                ),
                (
                    "pixel_spool_backlog_bytes",
                    "gauge",
                    "Spool bytes not yet shipped.",
                    [("", figures["backlog_bytes"])],
                ),
                (
                    "pixel_spool_oldest_unshipped_seconds",
                    "gauge",
                    "Age of the oldest record in the spool not shipped yet (0 when everything is shipped).",
                    [("", figures["oldest_unshipped_seconds"])],
                ),
                (
                    "pixel_shipper_stalled_seconds",
                    "gauge",
                    "Seconds since the shipper's checkpoint last advanced while the spool holds unshipped "
                    "records (0 when it holds none).",
                    [("", figures["stalled_seconds"])],
                ),
                (
                    "pixel_shipper_refused_batches_total",
                    "counter",
                    "Batches the store refused for their content, split to dead-letter the refused rows.",
                    [("", stats.refused_batches)],
                ),
                (
                    "pixel_healthy",
                    "gauge",
                    "1 when /health says ok, 0 when degraded (store unreachable, or the shipper stalled).",
                    [("", int(status == "ok"))],
                ),
                (
                    "pixel_store_up",
                    "gauge",
                    "1 when the last store call succeeded.",
                    [("", int(stats.store_up))],
                ),
                (
                    "pixel_shipper_ingest_rate",
                    "gauge",
                    "Events inserted per second over the last minute.",
                    [("", round(self._ingest_rate(), 1))],
                ),
                (
                    "pixel_events_today",
                    "gauge",
                    "Events stored today (UTC), from the hourly insert counts.",
                    [("", self._events_today())],
                ),
            ]
        )
