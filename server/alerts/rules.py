"""The settings of the stack-health alert kinds, kept in the meta DB (`alert_rules`, one row per kind).

The contract:
- `Rules` holds every kind with its defaults; `load(meta)` never fails on a kind not saved yet (its defaults),
  and `save(meta, rules, now)` writes every kind. Input is validated here (`extra` fields refused, thresholds
  in range, the certificate's address a host name with an optional port, no scheme, no path).
- ingestion: on/off, `silence_factor` (a site silent for more than that many times its usual interval between
  events is stopped: 2 to 1000, default 10; the automatic annotations' observer, `server/annotations/watch.py`,
  judges the silence with it at each check and its `ingestion_gap` annotation is the alert) and the dead
  letters per hour that count as the shipper degraded.
- disk: on/off, the free space below which the data folder is "filling" (a percentage and an absolute
  figure in GB: either one alerts).
- certificate: on/off, the days before expiry that alert (14, as the stack page's warning), and the public
  address whose certificate the edge serves; left empty, `load` gives the stack's own public address (the
  `public_address` setting, which a stack behind the edge sets from its domain); empty both: not judged.
- backup: on/off and the factor of the schedule's interval without a good backup that alerts (the desktop
  judges it: the desktop schedules the backups).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:  # the API's package imports this module's router: no import of it at run time
    from pixel.server.api.meta import MetaDB

HOST_PORT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$")


class Strict(BaseModel):
    model_config = {"extra": "forbid"}


class IngestionRule(Strict):
    enabled: bool = True
    # a site is "stopped" when silent for more than this many times its usual interval between events (and
    # at least the observer's minimum gap, an hour): the annotations' observer reads it at each check
    silence_factor: float = Field(default=10.0, ge=2.0, le=1000.0)
    dead_letters_per_hour: int = Field(default=100, ge=1, le=10_000_000)


class DiskRule(Strict):
    enabled: bool = True
    min_free_percent: float = Field(default=10.0, ge=0.0, le=100.0)
    min_free_gb: float = Field(default=2.0, ge=0.0, le=1_000_000.0)


class CertificateRule(Strict):
    enabled: bool = True
    days: int = Field(default=14, ge=1, le=365)
    address: str = Field(default="", max_length=260)  # host[:port] of the edge, as the public address

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        v = v.strip()
        if v and not HOST_PORT.match(v):
            raise ValueError(
                "a host name with an optional port, such as stats.example.com or stats.example.com:443"
            )
        if ":" in v and not 1 <= int(v.rpartition(":")[2]) <= 65535:
            raise ValueError("a port between 1 and 65535")
        return v


class BackupRule(Strict):
    enabled: bool = True
    factor: float = Field(default=2.0, ge=1.0, le=30.0)


class Rules(Strict):
    ingestion: IngestionRule = Field(default_factory=IngestionRule)
    disk: DiskRule = Field(default_factory=DiskRule)
    certificate: CertificateRule = Field(default_factory=CertificateRule)
    backup: BackupRule = Field(default_factory=BackupRule)


KINDS = tuple(Rules.model_fields)


def load(meta: MetaDB, default_address: str = "") -> Rules:
    saved = {r["kind"]: json.loads(r["settings"]) for r in meta.all("SELECT kind, settings FROM alert_rules")}
    found = Rules.model_validate({k: v for k, v in saved.items() if k in KINDS})
    if not found.certificate.address and default_address:
        found.certificate = found.certificate.model_copy(update={"address": default_address})
    return found


def save(meta: MetaDB, rules: Rules, now: float) -> Rules:
    with meta.transaction() as conn:
        for kind in KINDS:
            conn.execute(
                "INSERT INTO alert_rules (kind, settings, updated_at) VALUES (?, ?, ?) ON CONFLICT (kind) DO "
                "UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                (kind, getattr(rules, kind).model_dump_json(), now),
            )
    return load(meta)
