"""GeoIP from the first minute: the store process fetches the City database itself and keeps it fresh.

With `PIXEL_GEOIP_AUTO_UPDATE` set (the Docker stacks set `auto`), a thread of the store process (`pixel serve`,
`pixel ship`) runs `GeoipRefresher`:

- no database in place: it fetches one at once (DB-IP City Lite without an account; MaxMind GeoLite2 with
  `PIXEL_MAXMIND_ACCOUNT_ID` and a licence key, `geoip_update.credentials`; in `auto` a key file that is
  named but does not exist means no key: the stacks always name `PIXEL_MAXMIND_LICENSE_KEY_FILE`, and the
  provisioner writes the file only when the owner gave a key), and tries again every
  `MISSING_RETRY_SECONDS` while that fails;
- a database in place: it fetches again when it is due — DB-IP's built in an earlier month than today (DB-IP
  publishes monthly), MaxMind's older than `MAXMIND_MAX_AGE_DAYS` — at most once per `geoip_check_interval`.
  A download not built after the database in place leaves that one in place.

The download goes through `geoip_update.fetch`: written beside the destination, checked to be a City/Country
MaxMind-format database, moved into place with one rename; the enrichment (`geo.GeoLocator`) reopens a replaced
file within seconds, without a restart. Anything that goes wrong (no network, an HTTP error, a truncated or
foreign file, a full disk) is one plain log line and the status's `last_error`; the database in place, if any,
stays; geo columns stay empty while there is none; nothing else is affected.

What happened is kept in `<state>/geoip-status.json` (written atomically) and `geoip_status()` gives the API
the database's type, build date, source and attribution with the last check, success and error. The time is
the injected `clock` (epoch seconds), so tests pin it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import maxminddb
import orjson

from pixel.server.enrich.geoip_update import GeoipUpdateError, credentials, destination, fetch
from pixel.server.settings import Settings

log = logging.getLogger(__name__)

STATUS_FILE = "geoip-status.json"
MISSING_RETRY_SECONDS = 3600.0  # while no database is in place, a failed fetch is tried again after this
MAXMIND_MAX_AGE_DAYS = 7  # GeoLite2 is rebuilt twice a week
POLL_SECONDS = 60.0  # how often the thread looks at the clock (the checks themselves are rarer)

ATTRIBUTION = {
    "dbip": "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0",
    "maxmind": "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com",
}


def source_of(database_type: str) -> str:
    """ "dbip", "maxmind" or "other", from a database's type (DB-IP's read "DBIP-City-Lite" and the like)."""
    kind = database_type.lower()
    if kind.startswith("dbip"):
        return "dbip"
    if kind.startswith(("geolite2", "geoip2")):
        return "maxmind"
    return "other"


def database_info(path: Path) -> dict[str, Any] | None:
    """Type and build time of the database at `path`; None when there is none or it is unreadable."""
    try:
        with maxminddb.open_database(str(path)) as reader:
            meta = reader.metadata()
            return {"database_type": meta.database_type, "build_epoch": int(meta.build_epoch)}
    except Exception:
        return None


def _iso(epoch: float | None) -> str | None:
    return None if not epoch else dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def _month(epoch: float) -> tuple[int, int]:
    day = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return day.year, day.month


class GeoipRefresher:
    def __init__(
        self, settings: Settings, clock: Callable[[], float] = time.time, timeout: float = 60.0
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.timeout = timeout
        self.dest = destination(settings)
        self.status_path = settings.state_dir / STATUS_FILE
        self._stop = threading.Event()
        self.state: dict[str, Any] = self._load()
        self.on_installed: Callable[[], None] | None = None  # called after a fetch installed a database

    @property
    def enabled(self) -> bool:
        return self.settings.geoip_auto_update != "off"

    def _load(self) -> dict[str, Any]:
        try:
            state = orjson.loads(self.status_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return state if isinstance(state, dict) else {}

    def _save(self) -> None:
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.status_path.parent, prefix=".geoip-status-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.status_path)
        except OSError as exc:
            log.warning("GeoIP: cannot write %s: %s", self.status_path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def source(self) -> str:
        """The source a fetch uses now: the setting, with `auto` resolved by the credentials present."""
        mode = self.settings.geoip_auto_update
        if mode != "auto":
            return mode
        key_file = os.environ.get("PIXEL_MAXMIND_LICENSE_KEY_FILE", "")
        if key_file and not os.environ.get("PIXEL_MAXMIND_LICENSE_KEY") and not os.path.lexists(key_file):
            return "dbip"  # the stacks name the file always; it exists only when the owner gave a key
        try:
            account_id, key = credentials()
        except GeoipUpdateError:
            return "maxmind"  # a key file is named but unreadable: the fetch says so
        return "maxmind" if account_id and key else "dbip"

    def due(self, now: float) -> bool:
        """Whether a fetch should run at `now` (epoch seconds)."""
        last = float(self.state.get("last_check") or 0)
        info = database_info(self.dest)
        if info is None:
            return not last or now - last >= min(MISSING_RETRY_SECONDS, self.settings.geoip_check_interval)
        if last and now - last < self.settings.geoip_check_interval:
            return False
        built = info["build_epoch"]
        if self.source() == "maxmind":
            return now - built >= MAXMIND_MAX_AGE_DAYS * 86400
        return _month(built) < _month(now)

    def check_once(self, now: float | None = None) -> dict[str, Any]:
        """Fetch now (whether due or not); returns the new status. Never raises for a failed fetch."""
        now = self.clock() if now is None else now
        source = self.source()
        self.state["last_check"] = now
        try:
            done = fetch(
                self.settings,
                source=source,
                timeout=self.timeout,
                today=dt.datetime.fromtimestamp(now, dt.UTC).date(),
                only_if_newer=True,
            )
        except GeoipUpdateError as exc:
            self.state["last_error"] = str(exc)
            log.warning("GeoIP: could not fetch the %s database: %s", source, exc)
        except Exception as exc:  # e.g. a full disk while unpacking: reported the same way, never raised
            self.state["last_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("GeoIP: could not fetch the %s database: %s", source, self.state["last_error"])
        else:
            self.state.update(last_error="", last_success=now)
            if done.replaced:
                self.state.update(source=done.source, build_epoch=done.build_epoch, installed_at=now)
                log.info(
                    "GeoIP: installed %s (%s, built %s) at %s",
                    done.database_type,
                    done.source,
                    _iso(done.build_epoch),
                    done.path,
                )
                if self.on_installed is not None:
                    self.on_installed()  # the store process annotates the charts (server/annotations/)
            else:
                log.info("GeoIP: the %s database in place is current", done.source)
        self._save()
        return geoip_status(self.settings, self.state)

    def run(self) -> None:
        """The thread's loop: a fetch whenever one is due, until `stop()`."""
        if not self.enabled:
            return
        while not self._stop.is_set():
            try:
                if self.due(self.clock()):
                    self.check_once()
            except Exception:  # the loop must outlive any surprise
                log.exception("GeoIP: refresh check failed")
            self._stop.wait(min(POLL_SECONDS, self.settings.geoip_check_interval))

    def stop(self) -> None:
        self._stop.set()


def geoip_status(settings: Settings, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the stack page shows: the database in place (type, build date, source, attribution) and the
    refresher's last check, last success and last error (None when none)."""
    if state is None:
        try:
            state = orjson.loads((settings.state_dir / STATUS_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            state = {}
        if not isinstance(state, dict):
            state = {}
    info = database_info(destination(settings))
    source = None
    if info is not None:
        source = source_of(info["database_type"])
        if state.get("build_epoch") == info["build_epoch"] and state.get("source") in ATTRIBUTION:
            source = state["source"]  # fetched by the refresher: it knows where from
    return {
        "available": info is not None,
        "auto_update": settings.geoip_auto_update,
        "database_type": info["database_type"] if info else None,
        "build_date": (_iso(info["build_epoch"]) or "")[:10] or None if info else None,
        "source": source,
        "attribution": ATTRIBUTION.get(source or ""),
        "last_check": _iso(state.get("last_check")),
        "last_success": _iso(state.get("last_success")),
        "last_error": state.get("last_error") or None,
    }
