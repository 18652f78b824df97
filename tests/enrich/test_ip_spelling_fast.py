"""The IPv4 fast path of `privacy.ip_spelling` (the address scrub's per-address setup, paid once per distinct
address): it must make exactly what the general `ipaddress`-based path makes, and leave every other text to it."""

from __future__ import annotations

import random

import pytest

from pixel.server.enrich.privacy import _any_spelling, _v4_spelling, ip_spelling, scrub_text

EDGES = ["0.0.0.0", "255.255.255.255", "1.0.0.1", "10.0.0.255", "100.64.0.0", "127.0.0.1", "0.0.255.255"]


def test_fast_path_equals_the_general_one_for_canonical_addresses() -> None:
    rng = random.Random(16)
    addresses = EDGES + [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(5_000)]
    for ip in addresses:
        fast = _v4_spelling(ip)
        assert fast is not None, ip
        assert fast == _any_spelling(ip), ip
        assert fast.part_sets == _any_spelling(ip).part_sets, ip  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "01.2.3.4",  # leading zero: not canonical (the general path reads it as a literal)
        "1.2.3.04",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.",
        " 1.2.3.4",
        "+1.2.3.4",
        "\u0661.2.3.4",  # an Arabic-Indic digit: str.isdigit says yes, an address it is not
        "1.2.3.1234",
        "::ffff:1.2.3.4",
        "[1.2.3.4]",
        "1.2.3.4%eth0",
        "2001:db8::1",
        "",
    ],
)
def test_other_texts_take_the_general_path(text: str) -> None:
    assert _v4_spelling(text) is None
    assert ip_spelling(text) == _any_spelling(text)


def test_scrub_through_the_fast_path_finds_every_spelling() -> None:
    ip = "203.0.113.7"
    assert _v4_spelling(ip) is not None
    text = "a 203.0.113.7 b ip-203-0-113-7 c ::ffff:cb00:7107 d ::FFFF:203.0.113.7 e 203.000.113.007 f"
    assert scrub_text(text, ip) == "a [ip] b ip-[ip] c [ip] d [ip] e [ip] f"
