"""The store process's observer of what changes the numbers; it writes the automatic annotations.

Each `check_once(now)` compares what it sees with what it recorded last (`auto_state` in the metadata DB) and
writes one annotation per change, keyed so that a repeated check, a restart or a second observer never writes
it twice:

- `upgrade`: the Pixel release running differs from the one recorded (first start: recorded, no annotation);
- `restore` (and anything else announced): a JSON file in `<state>/annotations-inbox/` written by the tool that
  restored the data (`announce`); it is written as an annotation and removed;
- `geoip`: the GeoIP database's type or build time differs from the one recorded (a first database after none
  is an update too; a database present at the first check is only recorded);
- `tracker`: the ETags of the tracker builds the collector serves differ from the ones recorded;
- `ingestion_gap`: a site whose last stored event is older than `gap_factor` (by default the "ingestion stopped"
  alert rule's `silence_factor`, read at each check: `server/alerts/rules.py`) times its usual interval between
  events (measured over `lookback` seconds, at least `min_events` events) and older than `min_gap` seconds; one
  annotation per gap, keyed by the site and its last event; its end is set when events arrive again;
- `shipper_degraded`: `/health` says degraded; one annotation per episode, its end set when it is ok again.

Stack-wide causes (upgrade, restore, GeoIP, tracker, shipper) have no site: they are shown on every site.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixel.server.alerts.rules import load as load_rules
from pixel.server.annotations.records import add_auto, clear_state, read_state, write_state
from pixel.server.collector.script import DEFAULT_BUILD, EXTENDED_BUILD, etag
from pixel.server.enrich.geo_refresh import database_info
from pixel.server.enrich.geoip_update import destination
from pixel.server.settings import Settings
from pixel.server.store import Store, StoreError
from pixel.tracker import dist_file

if TYPE_CHECKING:  # the API package imports this one (routers/sites.py)
    from pixel.server.api.meta import MetaDB

log = logging.getLogger(__name__)

INBOX = "annotations-inbox"
CHECK_SECONDS = 300.0
INBOX_POLL = 2.0


def release() -> str:
    """The Pixel release this process runs."""
    try:
        return metadata.version("pixel-analytics")
    except metadata.PackageNotFoundError:  # a source tree without install
        return "0.0.0"


def announce(state_dir: Path, kind: str, text: str, at: float, details: dict[str, Any] | None = None) -> Path:
    """Leave an annotation for the store process to write (a restore, done while it was not running): a file
    in the inbox, written whole then renamed into place."""
    inbox = Path(state_dir) / INBOX
    inbox.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    body = json.dumps({"id": name, "kind": kind, "text": text, "at": at, "details": details or {}})
    tmp = inbox / f".{name}.tmp"
    tmp.write_text(body)
    final = inbox / f"{name}.json"
    tmp.replace(final)
    return final


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class AutoAnnotator:
    def __init__(
        self,
        settings: Settings,
        meta: MetaDB,
        store: Store | None = None,
        *,
        status: Callable[[], tuple[str, list[str]]] | None = None,
        running: Callable[[], str] = release,
        trackers: Callable[[], dict[str, str | None]] | None = None,
        gap_factor: float | None = None,
        min_gap: float = 3600.0,
        lookback: float = 7 * 86400.0,
        min_events: int = 20,
        interval: float = CHECK_SECONDS,
    ) -> None:
        self.settings = settings
        self.meta = meta
        self.store = store
        self.status = status
        self.running = running
        self.trackers = trackers or self._served_trackers
        self.gap_factor = gap_factor
        self.min_gap = min_gap
        self.lookback = lookback
        self.min_events = min_events
        self.interval = interval
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._announced: dict[str, int] = {}  # kind -> annotation announced through the inbox in this check

    @staticmethod
    def _served_trackers() -> dict[str, str | None]:
        """{build: its ETag as the collector serves it (without quotes), None when not built}."""
        out: dict[str, str | None] = {}
        for build in (DEFAULT_BUILD, EXTENDED_BUILD):
            try:
                body = dist_file(build).read_bytes()
            except OSError:
                out[build] = None
                continue
            out[build] = etag(body).strip('"')
        return out

    def check_once(self, now: float) -> list[int]:
        """Every observation once at `now` (epoch seconds); the ids of the annotations written."""
        written: list[int] = []
        self._announced = {}
        for step in (self._inbox, self._release, self._geoip, self._tracker, self._gaps, self._shipper):
            try:
                written.extend(step(now))
            except (StoreError, OSError, ValueError) as exc:
                log.warning("automatic annotations: %s failed: %s", step.__name__.strip("_"), exc)
        return written

    def run(self, clock: Callable[[], float]) -> None:
        """A check at once, then every `interval` seconds, or at once after `wake()` or when an announcement
        arrives in the inbox (looked for every `INBOX_POLL` seconds: an upgrade announces itself once the new
        store process runs), until `stop()`."""
        while not self.stop_event.is_set():
            self._wake.clear()
            self.check_once(clock())
            waited = 0.0
            while (
                waited < self.interval and not self._wake.wait(INBOX_POLL) and not self._announced_waiting()
            ):
                waited += INBOX_POLL

    def _announced_waiting(self) -> bool:
        try:
            return any((self.settings.state_dir / INBOX).glob("*.json"))
        except OSError:
            return False

    def wake(self) -> None:
        """Check now (a cause was just seen, such as a GeoIP database installed)."""
        self._wake.set()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    # -- the observations ---------------------------------------------------------------------

    def _changed(self, key: str, value: Any, now: float) -> tuple[bool, Any, float]:
        """(whether `value` differs from the recorded one, which exists; the recorded value; when it was
        recorded). Records `value` when it differs or nothing was recorded."""
        seen = read_state(self.meta, key)
        if seen is not None and seen[0] == value:
            return False, seen[0], seen[1]
        write_state(self.meta, key, value, now)
        if seen is None:
            return False, None, now
        return True, seen[0], seen[1]

    def _release(self, now: float) -> list[int]:
        current = self.running()
        seen = read_state(self.meta, "release")
        if seen is None or seen[0] == current:
            if seen is None:
                write_state(self.meta, "release", current, now)
            return []
        before, since = seen
        announced = self._announced.get("upgrade")
        if announced is not None:  # the tool that upgraded said so already: the releases join its annotation
            self._join_release(announced, before, current, now)
            write_state(self.meta, "release", current, now)
            return []
        made = add_auto(
            self.meta,
            kind="upgrade",
            key=f"upgrade:{before}:{current}:{since!r}",
            text=f"Pixel upgraded from {before} to {current}",
            starts_at=now,
            now=now,
            details={"from": before, "to": current},
        )
        write_state(self.meta, "release", current, now)
        return [made] if made else []

    def _join_release(self, annotation_id: int, before: str, current: str, now: float) -> None:
        with self.meta.transaction() as conn:
            row = conn.execute(
                "SELECT text, details FROM annotations WHERE id = ?", (annotation_id,)
            ).fetchone()
            details = {**json.loads(row["details"] or "{}"), "from": before, "to": current}
            conn.execute(
                "UPDATE annotations SET text = ?, details = ?, updated_at = ? WHERE id = ?",
                (
                    f"{row['text']} (Pixel {before} → {current})",
                    json.dumps(details, sort_keys=True),
                    now,
                    annotation_id,
                ),
            )

    def _inbox(self, now: float) -> list[int]:
        inbox = self.settings.state_dir / INBOX
        if not inbox.is_dir():
            return []
        written = []
        for path in sorted(inbox.glob("*.json")):
            try:
                item = json.loads(path.read_text())
                kind, text, at = str(item["kind"]), str(item["text"])[:2000], float(item["at"])
                details = item.get("details") if isinstance(item.get("details"), dict) else {}
                made = add_auto(
                    self.meta,
                    kind=kind,
                    key=f"inbox:{item['id']}",
                    text=text,
                    starts_at=at,
                    now=now,
                    details=details,
                )
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "automatic annotations: %s is not a usable announcement (%s); removed", path.name, exc
                )
                made = None
            path.unlink(missing_ok=True)
            if made:
                written.append(made)
                self._announced[kind] = made
        return written

    def _geoip(self, now: float) -> list[int]:
        info = database_info(destination(self.settings))
        value = None if info is None else f"{info['database_type']}@{info['build_epoch']}"
        changed, before, _ = self._changed("geoip", value, now)
        if not changed or info is None:
            return []
        built = _iso(info["build_epoch"])
        was = "none before" if before is None else f"was built {_iso(int(str(before).rpartition('@')[2]))}"
        made = add_auto(
            self.meta,
            kind="geoip",
            key=f"geoip:{before}:{value}",
            text=f"GeoIP database updated: {info['database_type']} built {built} ({was})",
            starts_at=now,
            now=now,
            details={"from": before, "to": value, "database_type": info["database_type"]},
        )
        return [made] if made else []

    def _tracker(self, now: float) -> list[int]:
        etags = self.trackers()
        changed, before, since = self._changed("tracker", etags, now)
        if not changed:
            return []
        names = sorted(
            name for name in set(etags) | set(before or {}) if (before or {}).get(name) != etags.get(name)
        )
        made = add_auto(
            self.meta,
            kind="tracker",
            key=f"tracker:{json.dumps(etags, sort_keys=True)}:{since!r}",
            text=f"Tracker build changed: {', '.join(names)}",
            starts_at=now,
            now=now,
            details={"from": before, "to": etags, "builds": names},
        )
        return [made] if made else []

    def _gaps(self, now: float) -> list[int]:
        if self.store is None:
            return []
        written = []
        factor = (
            self.gap_factor if self.gap_factor is not None else load_rules(self.meta).ingestion.silence_factor
        )
        for site in self.meta.sites():
            params = {"site": site["domain"], "since": _ch_time(now - self.lookback), "until": _ch_time(now)}
            row = self.store.query(
                "SELECT count() AS n, toFloat64(min(timestamp)) AS first, toFloat64(max(timestamp)) AS last"
                " FROM events WHERE site = {site:String}"
                " AND timestamp >= {since:DateTime64(3, 'UTC')} AND timestamp <= {until:DateTime64(3, 'UTC')}",
                params,
            ).dicts()[0]
            key = f"gap_open:{site['id']}"
            opened = read_state(self.meta, key)
            count, last = int(row["n"]), float(row["last"] or 0)
            if opened is not None and count and last > opened[0]["last"]:
                self._close(
                    opened[0]["annotation"], self._first_after(site["domain"], opened[0]["last"], now)
                )
                clear_state(self.meta, key)
                opened = None
            if count < self.min_events or opened is not None:
                continue
            usual = (last - float(row["first"])) / (count - 1)
            silent = now - last
            if silent <= max(self.min_gap, factor * usual):
                continue
            made = add_auto(
                self.meta,
                kind="ingestion_gap",
                key=f"gap:{site['id']}:{last!r}",
                text=(
                    f"No events stored for {site['domain']} since {_iso(last)}: {_duration(silent)} without "
                    f"events where one arrives every {_duration(usual)} on average"
                ),
                starts_at=last,
                now=now,
                site_id=site["id"],
                details={"last_event": last, "usual_interval": round(usual, 3), "silent_seconds": silent},
            )
            if made:
                written.append(made)
                write_state(self.meta, key, {"annotation": made, "last": last}, now)
        return written

    def _first_after(self, domain: str, moment: float, now: float) -> float:
        assert self.store is not None
        value = self.store.scalar(
            "SELECT toFloat64(min(timestamp)) FROM events WHERE site = {site:String}"
            " AND timestamp > {moment:DateTime64(3, 'UTC')} AND timestamp <= {until:DateTime64(3, 'UTC')}",
            {"site": domain, "moment": _ch_time(moment), "until": _ch_time(now)},
        )
        return float(value or now)

    def _close(self, annotation_id: int, ends_at: float) -> None:
        with self.meta.transaction() as conn:
            conn.execute(
                "UPDATE annotations SET ends_at = ?, updated_at = ? WHERE id = ? AND ends_at IS NULL",
                (ends_at, ends_at, annotation_id),
            )

    def _shipper(self, now: float) -> list[int]:
        if self.status is None:
            return []
        state, reasons = self.status()
        opened = read_state(self.meta, "shipper_degraded")
        if state != "degraded":
            if opened is not None:
                self._close(opened[0]["annotation"], now)
                clear_state(self.meta, "shipper_degraded")
            return []
        if opened is not None:
            return []
        made = add_auto(
            self.meta,
            kind="shipper_degraded",
            key=f"degraded:{now!r}",
            text="Ingestion degraded: " + "; ".join(reasons),
            starts_at=now,
            now=now,
            details={"reasons": reasons},
        )
        if made:
            write_state(self.meta, "shipper_degraded", {"annotation": made}, now)
        return [made] if made else []


def _ch_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
