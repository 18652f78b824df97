"""The stack's own health as alert findings: ingestion stopped, disk filling, certificate near expiry.

The contract:
- Each judge returns `Finding`s: `state` "alert", "ok" or "unknown" (could not judge: never alerts and never
  ends an alert in course), the `target` judged (a site's domain, "shipper", "dead letters", the data folder,
  the edge's address), a plain `message` and the `episode` that identifies this alert: while it stays the
  same nothing more is sent; a new episode (another gap, a renewed certificate near expiry again) is sent again.
- Ingestion stopped reuses the automatic annotations' judgement (`server/annotations/watch.py`, run by the
  same store process): an open `ingestion_gap` annotation of a site (no events for longer than its usual
  interval times the observer's factor) or an open `shipper_degraded` one is an alert, its annotation the
  episode. Dead letters are judged here: at least the rule's count failed in the hour before `now`.
- Disk filling: the data folder's free space (`usage`, statvfs by default) below the rule's percentage or
  absolute figure. Each recorded round keeps a sample (`auto_state` key `disk_samples`, the last
  `SAMPLE_WINDOW` seconds, at most `MAX_SAMPLES`); the time to full is projected from the least-squares slope of those samples when
  the free space shrinks (None otherwise, or with fewer than two samples an hour apart).
- Certificate near expiry: the certificate the edge serves at the rule's address (read over TLS without
  verification, so an expired or self-signed one is still read), alerting when it expires in fewer than
  the rule's days. An edge that cannot be reached is "unknown", with the reason.
- Time is always given (`now`, epoch seconds); nothing here reads the clock.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixel.server.alerts.rules import CertificateRule, DiskRule, IngestionRule

if TYPE_CHECKING:  # the API's package imports this module's router: no import of it at run time
    from pixel.server.api.meta import MetaDB
    from pixel.server.api.query.runner import QueryRunner

Usage = Callable[[Path], tuple[int, int]]  # (total bytes, free bytes) of the file system holding the folder
SAMPLES_KEY = "disk_samples"
SAMPLE_WINDOW = 86400.0
MAX_SAMPLES = 300  # the newest kept: an admin's repeated checks cannot grow the stored list without end
MIN_SPAN = 3600.0
GB = 1_000_000_000
TIMEOUT = 10.0


@dataclass(frozen=True)
class Finding:
    kind: str  # "ingestion_stopped" | "disk_filling" | "certificate_expiry"
    target: str
    state: str  # "alert" | "ok" | "unknown"
    episode: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def alerting(self) -> bool:
        return self.state == "alert"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alerting": self.alerting}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"


def _ch_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# -- ingestion stopped ---------------------------------------------------------------------------------


def ingestion(meta: MetaDB, runner: QueryRunner, rule: IngestionRule, now: float) -> list[Finding]:
    """One finding per site (an open ingestion gap or ok), the shipper's open degraded episode if any, and
    the dead letters of the last hour."""
    if not rule.enabled:
        return []
    gaps = {
        int(r["site_id"]): r
        for r in meta.all(
            "SELECT id, site_id, text, starts_at FROM annotations WHERE kind = 'ingestion_gap' "
            "AND ends_at IS NULL AND site_id IS NOT NULL AND starts_at <= ? ORDER BY id",
            now,
        )
    }
    out: list[Finding] = []
    for site in meta.sites():
        gap = gaps.get(int(site["id"]))
        if gap is None:
            out.append(
                Finding("ingestion_stopped", site["domain"], "ok", "", f"{site['domain']}: events arriving")
            )
        else:
            out.append(
                Finding(
                    "ingestion_stopped",
                    site["domain"],
                    "alert",
                    f"gap:{gap['id']}",
                    f"Ingestion stopped: {gap['text']}",
                    {"last_event": gap["starts_at"], "annotation": gap["id"]},
                )
            )
    degraded = meta.one(
        "SELECT id, text, starts_at FROM annotations WHERE kind = 'shipper_degraded' AND ends_at IS NULL "
        "ORDER BY id DESC LIMIT 1"
    )
    if degraded is None:
        out.append(Finding("ingestion_stopped", "shipper", "ok", "", "The shipper is storing events"))
    else:
        out.append(
            Finding(
                "ingestion_stopped",
                "shipper",
                "alert",
                f"degraded:{degraded['id']}",
                f"{degraded['text']} (since {_iso(degraded['starts_at'])})",
                {"since": degraded["starts_at"], "annotation": degraded["id"]},
            )
        )
    out.append(dead_letters(runner, rule, now))
    return out


def dead_letters(runner: QueryRunner, rule: IngestionRule, now: float) -> Finding:
    params = {"since": _ch_time(now - 3600), "until": _ch_time(now)}
    try:
        rows = runner.query(
            "SELECT count() AS n, any(reason) AS reason FROM dead_letters WHERE "
            "failed_at > {since:DateTime64(3, 'UTC')} AND failed_at <= {until:DateTime64(3, 'UTC')}",
            params,
        ).dicts()
    except Exception as exc:  # the store unreachable: the shipper's degraded episode says so
        return Finding("ingestion_stopped", "dead letters", "unknown", "", f"Dead letters not counted: {exc}")
    n = int(rows[0]["n"]) if rows else 0
    if n >= rule.dead_letters_per_hour:
        reason = str(rows[0]["reason"])[:200]
        return Finding(
            "ingestion_stopped",
            "dead letters",
            "alert",
            "dead-letters",
            f"Ingestion degraded: {n} events sent to the dead letters in the last hour "
            f"(alert from {rule.dead_letters_per_hour}); one of the reasons: {reason}",
            {"count": n},
        )
    return Finding(
        "ingestion_stopped", "dead letters", "ok", "", f"{n} dead letters in the last hour", {"count": n}
    )


# -- disk filling --------------------------------------------------------------------------------------


def statvfs_usage(path: Path) -> tuple[int, int]:
    """(total, free for an unprivileged writer) bytes of the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def time_to_full(samples: list[tuple[float, int]]) -> float | None:
    """Seconds until the free space reaches zero at the samples' least-squares rate, from the last sample;
    None when it does not shrink or the samples span less than `MIN_SPAN`."""
    if len(samples) < 2 or samples[-1][0] - samples[0][0] < MIN_SPAN:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mf = sum(f for _, f in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    slope = sum((t - mt) * (f - mf) for t, f in samples) / var
    if slope >= 0:
        return None
    return samples[-1][1] / -slope


def _samples(meta: MetaDB) -> list[tuple[float, int]]:
    row = meta.one("SELECT value FROM auto_state WHERE key = ?", SAMPLES_KEY)
    return [(float(t), int(f)) for t, f in json.loads(row["value"])] if row else []


def disk(
    meta: MetaDB,
    folder: Path,
    rule: DiskRule,
    now: float,
    usage: Usage = statvfs_usage,
    record: bool = True,
) -> list[Finding]:
    """The data folder's free space against the rule; with `record`, this reading is kept as a sample."""
    if not rule.enabled:
        return []
    try:
        total, free = usage(folder)
    except OSError as exc:
        return [Finding("disk_filling", str(folder), "unknown", "", f"Free space not read: {exc}")]
    samples = [(t, f) for t, f in _samples(meta) if now - SAMPLE_WINDOW <= t < now][-(MAX_SAMPLES - 1) :]
    samples.append((now, free))
    if record:
        with meta.transaction() as conn:
            conn.execute(
                "INSERT INTO auto_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value, updated_at = excluded.updated_at",
                (SAMPLES_KEY, json.dumps(samples), now),
            )
    percent = 100.0 * free / total if total else 0.0
    left = time_to_full(samples)
    details: dict[str, Any] = {
        "total_bytes": total,
        "free_bytes": free,
        "free_percent": round(percent, 2),
        "seconds_to_full": None if left is None else round(left),
    }
    said = f"{free / GB:.1f} GB free of {total / GB:.1f} GB ({percent:.1f} %)"
    projection = "" if left is None else f"; full in about {duration(left)} at the recent growth"
    low = percent < rule.min_free_percent or free < rule.min_free_gb * GB
    if low:
        message = (
            f"Disk filling: the data folder {folder} has {said}, below the alert's "
            f"{rule.min_free_percent:g} % or {rule.min_free_gb:g} GB{projection}"
        )
        return [Finding("disk_filling", str(folder), "alert", "low", message, details)]
    return [
        Finding("disk_filling", str(folder), "ok", "", f"The data folder has {said}{projection}", details)
    ]


# -- certificate near expiry ---------------------------------------------------------------------------


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.partition(":")
    return host, int(port) if port else 443


def served_certificate(address: str, timeout: float = TIMEOUT) -> tuple[datetime, str]:
    """(expiry, issuer) of the certificate served at `address` (host[:port], SNI = host). Raises OSError."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    host, port = split_address(address)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # read it whatever it is: an expired one is what this is about
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError("the edge sent no certificate")
    cert = x509.load_der_x509_certificate(der)
    attrs = cert.issuer.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME
    ) or cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(attrs[0].value) if attrs else cert.issuer.rfc4514_string()
    return cert.not_valid_after_utc, issuer


def certificate(
    rule: CertificateRule,
    now: float,
    read: Callable[[str], tuple[datetime, str]] = served_certificate,
) -> list[Finding]:
    if not rule.enabled or not rule.address:
        return []
    try:
        expiry, issuer = read(rule.address)
    except (OSError, ValueError) as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return [
            Finding(
                "certificate_expiry",
                rule.address,
                "unknown",
                "",
                f"The certificate at {rule.address} could not be read: {reason}",
            )
        ]
    left = expiry.timestamp() - now
    until = expiry.strftime("%Y-%m-%d %H:%M UTC")
    details = {"expires_at": expiry.timestamp(), "issuer": issuer, "days_left": round(left / 86400, 2)}
    episode = f"expiry:{expiry.timestamp():.0f}"
    if left <= 0:
        message = (
            f"The certificate of {rule.address} expired on {until} (issuer {issuer}): visitors get warnings"
        )
        return [Finding("certificate_expiry", rule.address, "alert", episode, message, details)]
    if left < rule.days * 86400:
        message = (
            f"The certificate of {rule.address} expires in {duration(left)}, on {until} (issuer {issuer}); "
            "the edge renews it by itself: if it has not, see the stack page"
        )
        return [Finding("certificate_expiry", rule.address, "alert", episode, message, details)]
    return [
        Finding(
            "certificate_expiry",
            rule.address,
            "ok",
            "",
            f"The certificate of {rule.address} is valid until {until} ({duration(left)})",
            details,
        )
    ]
