"""The stack's own alert round: judge every site and send each new alert to every enabled channel.

The contract:
- `check_and_send(meta, runner, now)` is what `POST /api/alerts/check` and the store process's `AlertSender`
  run. An alert is sent once per episode: while a site stays in the same alert nothing more is sent; a
  "normal" verdict ends it (`auto_state` key `alert:<site id>`), so the next drop is sent again.
- A channel that fails is recorded (`last_error`) and never stops the others or the round.
- The stack's health (`health`: ingestion stopped, disk filling, certificate near expiry, with the settings of
  `rules`) is judged in the same round when the data folder is given: an alert is sent once per episode
  (`auto_state` key `alert:<kind>:<target>` holds the episode), and when a finding in alert is "ok" again a
  "resolved" message is sent once; an "unknown" finding (could not judge) changes nothing.
- `AlertSender.run(clock)` repeats the round every `interval` seconds in the store process (`pixel serve`,
  `pixel ship`) until `stop()`, only while some channel is enabled; a round that raises is logged and the loop goes on. Time comes from `clock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixel.server.alerts import channels, config, detect, health, rules

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


TITLES = {
    "ingestion_stopped": "ingestion stopped",
    "disk_filling": "disk filling",
    "certificate_expiry": "certificate near expiry",
}


def episode_change(meta: MetaDB, finding: health.Finding, now: float) -> str | None:
    """ "alert" when `finding` starts a new episode, "resolved" when it ends one, None otherwise (recorded)."""
    key = f"alert:{finding.kind}:{finding.target}"
    with meta.transaction() as conn:
        row = conn.execute("SELECT value FROM auto_state WHERE key = ?", (key,)).fetchone()
        current = row["value"] if row else None
        if finding.state == "ok" and current is not None:
            conn.execute("DELETE FROM auto_state WHERE key = ?", (key,))
            return "resolved"
        if finding.state != "alert" or current == finding.episode:
            return None
        conn.execute(
            "INSERT INTO auto_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, finding.episode, now),
        )
        return "alert"


def judge_health(
    meta: MetaDB,
    runner: QueryRunner,
    data_dir: Path,
    now: float,
    *,
    record: bool = True,
    usage: health.Usage = health.statvfs_usage,
    read_certificate: Callable[[str], tuple[datetime, str]] = health.served_certificate,
    public_address: str = "",
) -> list[health.Finding]:
    """Every health finding at `now` with the saved rules (`record`: keep this round's disk sample;
    `public_address`: the certificate's address when the rule names none)."""
    saved = rules.load(meta, public_address)
    return [
        *health.ingestion(meta, runner, saved.ingestion, now),
        *health.disk(meta, data_dir, saved.disk, now, usage, record),
        *health.certificate(saved.certificate, now, read_certificate),
    ]


def health_alert(finding: health.Finding, change: str) -> dict[str, Any]:
    title = TITLES.get(finding.kind, finding.kind)
    if change == "resolved":
        return {
            **finding.as_dict(),
            "resolved": True,
            "subject": f"resolved: {title} ({finding.target})",
            "message": f"Resolved: {title} ({finding.target}). {finding.message}",
        }
    return {**finding.as_dict(), "resolved": False, "subject": f"{title}: {finding.target}"}


def check_and_send(
    meta: MetaDB,
    runner: QueryRunner,
    now: datetime,
    data_dir: Path | None = None,
    findings: list[health.Finding] | None = None,
    public_address: str = "",
) -> dict[str, Any]:
    """One round: {"verdicts": [...], "health": [...], "deliveries": [{"channel", "site"|"target", "ok",
    "error"}]}. The health is judged when `data_dir` is given (or taken as `findings`, judged by the caller)."""
    sites = meta.sites()
    verdicts = [detect.check_site(runner, s["domain"], s["timezone"], now) for s in sites]
    deliveries: list[dict[str, Any]] = []
    rows = [r for r in config.rows(meta) if r["enabled"]]
    at = now.timestamp()

    def deliver(alert: dict[str, Any], about: dict[str, str]) -> None:
        for r in rows:
            result = channels.send(config.channel(r), alert, at)
            config.record(meta, r["id"], at, result.error)
            deliveries.append({"channel": r["id"], **about, "ok": result.ok, "error": result.error})

    for site, verdict in zip(sites, verdicts, strict=True):
        if newly_alerting(meta, int(site["id"]), verdict.kind, at):
            alert = {**verdict.as_dict(), "subject": f"traffic {verdict.kind} on {verdict.site}"}
            deliver(alert, {"site": verdict.site})
    if findings is None:
        findings = (
            []
            if data_dir is None
            else judge_health(meta, runner, data_dir, at, public_address=public_address)
        )
    for finding in findings:
        change = episode_change(meta, finding, at)
        if change is not None:
            deliver(health_alert(finding, change), {"target": finding.target, "kind": finding.kind})
    return {
        "verdicts": [v.as_dict() for v in verdicts],
        "health": [f.as_dict() for f in findings],
        "deliveries": deliveries,
    }


class AlertSender:
    """The round, repeated in the store process."""

    def __init__(
        self,
        meta: MetaDB,
        runner: QueryRunner,
        interval: float = INTERVAL,
        data_dir: Path | None = None,
        public_address: str = "",
    ) -> None:
        self.meta = meta
        self.public_address = public_address  # the certificate's address when the rule names none
        self.runner = runner
        self.data_dir = data_dir  # the health is judged only when given
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self, clock: Callable[[], float]) -> None:
        while not self.stop_event.is_set():
            try:
                if any(r["enabled"] for r in config.rows(self.meta)):  # nobody to tell: no round
                    check_and_send(
                        self.meta,
                        self.runner,
                        datetime.fromtimestamp(clock(), UTC),
                        self.data_dir,
                        public_address=self.public_address,
                    )
            except Exception:
                log.exception("alert round failed")
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
