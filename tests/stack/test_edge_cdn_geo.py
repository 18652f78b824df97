"""A CDN named in PIXEL_EDGE_CDN (its ranges trusted, the edge keeping its location headers from those ranges
only) has its country header used by default (PIXEL_CDN_GEO_HEADERS=1); the owner's 0 turns it off; a proxy
given only by its ranges, or no CDN at all, leaves it off. Through the spec the collector is started with."""

from __future__ import annotations

import pytest

from pixel.app.stack.edge import edge_values
from pixel.app.stack.spec import build_spec
from pixel.server.settings import Settings

DOMAIN = {"PIXEL_DOMAIN": "stats.example.com"}


def collector_flag(topology: str, values: dict[str, str]) -> str:
    extra = {"CLICKHOUSE_PASSWORD": "x"} if topology == "standard" else {}
    spec = build_spec(topology, edge=True).resolve({**edge_values(values), **extra})
    return spec.service("pixel" if topology == "compact" else "collector").env["PIXEL_CDN_GEO_HEADERS"]


@pytest.mark.parametrize("topology", ["compact", "standard"])
@pytest.mark.parametrize(
    "given, expected",
    [
        ({"PIXEL_EDGE_CDN": "cloudflare"}, "1"),
        ({"PIXEL_EDGE_CDN": " Cloudflare "}, "1"),
        ({"PIXEL_EDGE_CDN": "cloudflare", "PIXEL_CDN_GEO_HEADERS": "0"}, "0"),
        ({"PIXEL_EDGE_CDN": "cloudflare", "PIXEL_CDN_GEO_HEADERS": "false"}, "false"),
        ({"PIXEL_EDGE_CDN": "cloudflare", "PIXEL_CDN_GEO_HEADERS": " "}, "1"),
        ({"PIXEL_EDGE_CDN": "cloudflare", "PIXEL_CDN_GEO_HEADERS": "1"}, "1"),
        ({}, "0"),
        ({"PIXEL_EDGE_CDN": ""}, "0"),
        ({"PIXEL_EDGE_TRUSTED_PROXIES": "203.0.113.0/24"}, "0"),
        ({"PIXEL_CDN_GEO_HEADERS": "1"}, "1"),  # the owner's own choice without a named CDN stays
    ],
)
def test_named_cdn_turns_its_country_header_on_by_default(topology: str, given: dict, expected: str) -> None:
    flag = collector_flag(topology, {**DOMAIN, **given})
    assert flag == expected
    on = Settings.from_env({"PIXEL_CDN_GEO_HEADERS": flag}).cdn_geo_headers
    assert on is (expected == "1")


def test_the_stored_choice_survives_a_later_install_without_the_cdn_name() -> None:
    """The settings label keeps edge_values' output (the CDN name expanded): a reinstall from it keeps 1,
    and the owner's 0 given then wins."""
    stored = edge_values({**DOMAIN, "PIXEL_EDGE_CDN": "cloudflare"})
    assert stored["PIXEL_CDN_GEO_HEADERS"] == "1" and "PIXEL_EDGE_CDN" not in stored
    assert edge_values(stored)["PIXEL_CDN_GEO_HEADERS"] == "1"
    assert edge_values({**stored, "PIXEL_CDN_GEO_HEADERS": "0"})["PIXEL_CDN_GEO_HEADERS"] == "0"
