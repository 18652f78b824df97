"""The stack's own alert round: judge every site and send each new alert to every enabled channel.

The contract:
- `check_and_send(meta, runner, now)` is what `POST /api/alerts/check` and the store process's `AlertSender`
  run. An alert is sent once per episode: while a site stays in the same alert nothing more is sent; a
  "normal" verdict ends it (`auto_state` key `alert:<site id>`), so the next drop is sent again.
- A channel that fails is recorded (`last_error`) and never stops the others or the round.
- `AlertSender.run(clock)` repeats the round every `interval` seconds in the store process (`pixel serve`,
  `pixel ship`) until `stop()`, only while some channel is enabled; a round that raises is logged and the loop goes on. Time comes from `clock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pixel.server.alerts import channels, config, detect

if TYPE_CHECKING:  # the API's package imports this module's router: no import of it at run time
    from pixel.server.api.meta import MetaDB
    from pixel.server.api.query.runner import QueryRunner

log = logging.getLogger(__name__)
INTERVAL = 900.0  # seconds between two rounds in the store process


def newly_alerting(meta: MetaDB, site_id: int, kind: str, now: float) -> bool:
    """Whether `kind` starts a new alert for the site (and record it); "normal" ends the one in course."""
    key = f"alert:{site_id}"
    with meta.transaction() as conn:
        row = conn.execute("SELECT value FROM auto_state WHERE key = ?", (key,)).fetchone()
        current = row["value"] if row else None
        if kind == "normal":
            conn.execute("DELETE FROM auto_state WHERE key = ?", (key,))
            return False
        if kind not in ("drop", "spike") or current == kind:
            return False
        conn.execute(
            "INSERT INTO auto_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, kind, now),
        )
        return True


def check_and_send(meta: MetaDB, runner: QueryRunner, now: datetime) -> dict[str, Any]:
    """One round: {"verdicts": [...], "deliveries": [{"channel", "site", "ok", "error"}]}."""
    sites = meta.sites()
    verdicts = [detect.check_site(runner, s["domain"], s["timezone"], now) for s in sites]
    deliveries: list[dict[str, Any]] = []
    rows = [r for r in config.rows(meta) if r["enabled"]]
    for site, verdict in zip(sites, verdicts, strict=True):
        if not newly_alerting(meta, int(site["id"]), verdict.kind, now.timestamp()):
            continue
        alert = {**verdict.as_dict(), "subject": f"traffic {verdict.kind} on {verdict.site}"}
        for r in rows:
            result = channels.send(config.channel(r), alert, now.timestamp())
            config.record(meta, r["id"], now.timestamp(), result.error)
            deliveries.append(
                {"channel": r["id"], "site": verdict.site, "ok": result.ok, "error": result.error}
            )
    return {"verdicts": [v.as_dict() for v in verdicts], "deliveries": deliveries}


class AlertSender:
    """The round, repeated in the store process."""

    def __init__(self, meta: MetaDB, runner: QueryRunner, interval: float = INTERVAL) -> None:
        self.meta = meta
        self.runner = runner
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self, clock: Callable[[], float]) -> None:
        while not self.stop_event.is_set():
            try:
                if any(r["enabled"] for r in config.rows(self.meta)):  # nobody to tell: no round
                    check_and_send(self.meta, self.runner, datetime.fromtimestamp(clock(), UTC))
            except Exception:
                log.exception("alert round failed")
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
