"""The enrichment pipeline the shipper calls for every event (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixel.server.enrich.iphash import DailySalt
from pixel.server.settings import Settings


@dataclass(slots=True)
class RequestFacts:
    """Server-side facts of the request that carried an event, as the collector spooled them."""

    received_ms: int
    ip: str
    user_agent: str
    accept_language: str
    origin_host: str
    cdn_country: str = ""  # CF-IPCountry from a trusted proxy, when the operator enabled CDN geo headers


class Enricher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.salt = DailySalt(settings.state_dir / "salts")

    def enrich(self, row: dict[str, Any], event: dict[str, Any], facts: RequestFacts) -> None:
        row["ip_hash"] = self.salt.hash_ip(facts.ip, facts.received_ms)

    def close(self) -> None:
        pass
