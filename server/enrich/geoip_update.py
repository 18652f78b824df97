"""`pixel geoip update`: download a City database and install it where the enrichment reads it.

Sources:
- MaxMind GeoLite2 (`--source maxmind`, the default when an account id and licence key are given — as flags or
  as PIXEL_MAXMIND_ACCOUNT_ID / PIXEL_MAXMIND_LICENSE_KEY, which is how the desktop app passes what it keeps in
  the keyring): a tar.gz from MaxMind's download service with HTTP basic auth.
- DB-IP City Lite (`--source dbip`, the default without credentials, no account needed, CC BY 4.0: credit
  DB-IP.com where the data is shown): a monthly .mmdb.gz; if this month's is not out yet, last month's.

The file is downloaded next to its destination, checked to be a readable MaxMind-format City/Country database,
then moved into place with one atomic rename, so a running shipper reloads it (geo.py watches the file) and never
sees a half-written one. Offline, or with bad credentials, the command says so plainly and changes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import maxminddb

from pixel.server import datadir
from pixel.server.enrich.geo import default_db_path
from pixel.server.errors import PixelError
from pixel.server.settings import Settings

MAXMIND_BASE = "https://download.maxmind.com"
DBIP_BASE = "https://download.db-ip.com"
# Download URLs: `{month}` is YYYY-MM (DB-IP publishes one file a month), `{edition}` a MaxMind edition id.
DBIP_URL = DBIP_BASE + "/free/dbip-city-lite-{month}.mmdb.gz"
MAXMIND_URL = MAXMIND_BASE + "/geoip/databases/{edition}/download?suffix=tar.gz"
USER_AGENT = "pixel-geoip-update"
# A download larger than this is refused (a City database is well under it): a wrong URL cannot fill the disk.
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024


class GeoipUpdateError(PixelError, RuntimeError):
    """Why the update failed, in words for the operator."""


def destination(settings: Settings) -> Path:
    return Path(settings.geoip_db) if settings.geoip_db else default_db_path(settings.data_dir)


def _download(client: httpx.Client, url: str, target: Path, auth: tuple[str, str] | None) -> int:
    """Stream `url` into `target`; returns the HTTP status (200 = written)."""
    try:
        with client.stream("GET", url, auth=auth, follow_redirects=True) as response:
            if response.status_code != 200:
                return response.status_code
            written = 0
            with open(target, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    written += len(chunk)
                    if written > MAX_DOWNLOAD_BYTES:
                        raise GeoipUpdateError(
                            f"the download from {httpx.URL(url).host} is larger than "
                            f"{MAX_DOWNLOAD_BYTES >> 20} MiB; nothing was changed"
                        )
                    out.write(chunk)
            return 200
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        host = httpx.URL(url).host
        raise GeoipUpdateError(
            f"cannot reach {host} ({exc}); this machine looks offline or a firewall blocks it. "
            f"Nothing was changed; the current database (if any) stays in use."
        ) from None
    except httpx.TimeoutException:
        raise GeoipUpdateError(f"{httpx.URL(url).host} did not answer in time; nothing was changed") from None
    except httpx.HTTPError as exc:
        raise GeoipUpdateError(
            f"download from {httpx.URL(url).host} failed: {exc}; nothing was changed"
        ) from None


def _extract_maxmind(archive: Path, edition: str, out: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.isfile() and m.name.endswith(f"{edition}.mmdb")), None
            )
            if member is None:
                raise GeoipUpdateError(f"the MaxMind archive has no {edition}.mmdb")
            src = tar.extractfile(member)
            assert src is not None
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GeoipUpdateError(f"the MaxMind download is not a valid tar.gz archive ({exc})") from None


def _gunzip(archive: Path, out: Path) -> None:
    try:
        with gzip.open(archive, "rb") as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                if dst.tell() + len(chunk) > 4 * MAX_DOWNLOAD_BYTES:
                    raise GeoipUpdateError(
                        "the DB-IP download unpacks to an implausible size; nothing was changed"
                    )
                dst.write(chunk)
    except (OSError, EOFError) as exc:
        raise GeoipUpdateError(f"the DB-IP download is not a valid .gz file ({exc})") from None


def _check(path: Path) -> tuple[str, int]:
    """(database type, build time in epoch seconds) of a readable City/Country database; else the error."""
    try:
        with maxminddb.open_database(str(path)) as reader:
            meta = reader.metadata()
            kind, built = meta.database_type, int(meta.build_epoch)
    except Exception as exc:
        raise GeoipUpdateError(f"the downloaded file is not a MaxMind-format database ({exc})") from None
    if "city" not in kind.lower() and "country" not in kind.lower():
        raise GeoipUpdateError(f"the downloaded database is a {kind!r}, not a City or Country database")
    return kind, built


class Installed(NamedTuple):
    path: Path
    database_type: str
    build_epoch: int
    source: str  # "dbip" | "maxmind"
    replaced: bool  # False: the download was not newer than the database in place, which was kept


def credentials(account_id: str | None = None, license_key: str | None = None) -> tuple[str, str]:
    """MaxMind's account id and licence key: the arguments, else PIXEL_MAXMIND_ACCOUNT_ID and
    PIXEL_MAXMIND_LICENSE_KEY, else the key read from the file PIXEL_MAXMIND_LICENSE_KEY_FILE (a secret mounted
    into a container, so the key is in no environment listing or compose file)."""
    account_id = account_id or os.environ.get("PIXEL_MAXMIND_ACCOUNT_ID", "")
    license_key = license_key or os.environ.get("PIXEL_MAXMIND_LICENSE_KEY", "")
    key_file = os.environ.get("PIXEL_MAXMIND_LICENSE_KEY_FILE", "")
    if not license_key and key_file:
        try:
            license_key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GeoipUpdateError(
                f"cannot read the MaxMind licence key file {key_file}: {exc.strerror or exc}"
            ) from None
    return account_id, license_key


def run(settings: Settings, **options: Any) -> tuple[Path, str]:
    """Download and install the database; returns (path, database type). `options` are `fetch`'s keywords.
    Raises GeoipUpdateError."""
    done = fetch(settings, **options)
    return done.path, done.database_type


def fetch(
    settings: Settings,
    *,
    source: str = "auto",
    account_id: str | None = None,
    license_key: str | None = None,
    edition: str = "GeoLite2-City",
    base_url: str | None = None,
    timeout: float = 60.0,
    today: dt.date | None = None,
    only_if_newer: bool = False,
) -> Installed:
    """Download, check and install the database (see the module docstring). `base_url` replaces the scheme and
    host of the default URLs (tests, mirrors); else `settings.geoip_dbip_url` / `settings.geoip_maxmind_url`.
    With `only_if_newer`, a download not built after the database in place leaves that one in place."""
    # DB-IP needs no account: a key file named but absent is no error then
    if source == "dbip":
        account_id, license_key = account_id or "", license_key or ""
    else:
        account_id, license_key = credentials(account_id, license_key)
    if source == "auto":
        source = "maxmind" if account_id and license_key else "dbip"
    if source == "maxmind" and not (account_id and license_key):
        raise GeoipUpdateError(
            "MaxMind needs an account id and a licence key (--account-id/--license-key or "
            "PIXEL_MAXMIND_ACCOUNT_ID/PIXEL_MAXMIND_LICENSE_KEY); or use --source dbip"
        )
    if source not in ("maxmind", "dbip"):
        raise GeoipUpdateError(f"unknown source {source!r}: use maxmind or dbip")
    dest = destination(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    today = today or dt.datetime.now(dt.UTC).date()
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".geoip-") as tmp_dir:
        tmp = Path(tmp_dir)
        download = tmp / "download"
        mmdb = tmp / "new.mmdb"
        timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        with httpx.Client(timeout=timeouts, headers={"User-Agent": USER_AGENT}) as client:
            if source == "maxmind":
                template = settings.geoip_maxmind_url
                if base_url:
                    template = base_url.rstrip("/") + "/geoip/databases/{edition}/download?suffix=tar.gz"
                url = template.replace("{edition}", edition)
                status = _download(client, url, download, (account_id, license_key))
                if status in (401, 403):
                    raise GeoipUpdateError(f"MaxMind refused the account id / licence key (HTTP {status})")
                if status != 200:
                    raise GeoipUpdateError(f"MaxMind answered HTTP {status} for {edition}")
                _extract_maxmind(download, edition, mmdb)
            else:
                template = settings.geoip_dbip_url
                if base_url:
                    template = base_url.rstrip("/") + "/free/dbip-city-lite-{month}.mmdb.gz"
                last_month = today.replace(day=1) - dt.timedelta(days=1)
                status = 0
                for month in (
                    today,
                    last_month,
                ):  # this month's file appears on the 1st, sometimes a bit later
                    url = template.replace("{month}", f"{month:%Y-%m}")
                    status = _download(client, url, download, None)
                    if status == 200:
                        break
                if status != 200:
                    raise GeoipUpdateError(f"DB-IP answered HTTP {status} for the City Lite database")
                _gunzip(download, mmdb)
        kind, built = _check(mmdb)
        if only_if_newer and built <= _build_epoch(dest):
            return Installed(dest, kind, built, source, False)
        os.chmod(mmdb, 0o644)
        os.replace(mmdb, dest)
    return Installed(dest, kind, built, source, True)


def _build_epoch(path: Path) -> int:
    """The build time of the database at `path`; 0 when there is none (or it is unreadable)."""
    try:
        with maxminddb.open_database(str(path)) as reader:
            return int(reader.metadata().build_epoch)
    except Exception:
        return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    geoip = subparsers.add_parser("geoip", help="GeoIP database management")
    geoip_sub = geoip.add_subparsers(dest="geoip_command", required=True)
    update = geoip_sub.add_parser(
        "update", help="download GeoLite2-City (MaxMind account) or DB-IP City Lite (no account)"
    )
    update.add_argument("--data-dir", type=Path, help="data folder (env PIXEL_DATA_DIR)")
    update.add_argument(
        "--source",
        choices=("auto", "maxmind", "dbip"),
        default="auto",
        help="auto = MaxMind when credentials are given, else DB-IP (default)",
    )
    update.add_argument("--account-id", help="MaxMind account id (env PIXEL_MAXMIND_ACCOUNT_ID)")
    update.add_argument("--license-key", help="MaxMind licence key (env PIXEL_MAXMIND_LICENSE_KEY)")
    update.add_argument("--edition", default="GeoLite2-City", help="MaxMind edition (default GeoLite2-City)")
    update.add_argument("--base-url", help=argparse.SUPPRESS)  # tests and mirrors
    update.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    update.set_defaults(func=cmd_update)


def cmd_update(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir)
    datadir.secure(settings.data_dir)
    try:
        path, kind = run(
            settings,
            source=args.source,
            account_id=args.account_id,
            license_key=args.license_key,
            edition=args.edition,
            base_url=args.base_url,
            timeout=args.timeout,
        )
    except GeoipUpdateError as exc:
        print(f"pixel geoip update: {exc}", file=sys.stderr)
        return 1
    print(f"installed {kind} at {path}")
    return 0
