"""The Qt-free core of the "Public address" step (app/stack/public_address.py): domain validation, the DNS check
with an injected resolver (never real DNS), and the certificate status read from real certificates."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.app.stack.errors import StackError
from pixel.app.stack.public_address import certificate_status, check_dns, validate_domain


@pytest.mark.parametrize(
    "text, expected",
    [
        ("stats.example.com", "stats.example.com"),
        ("  Stats.Example.COM  ", "stats.example.com"),
        ("stats.example.com.", "stats.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("統計.例え.jp", "xn--4d0av1x.xn--r8jz45g.jp"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("s." + "a" * 63 + ".com", "s." + "a" * 63 + ".com"),
    ],
)
def test_good_names(text, expected):
    assert validate_domain(text) == expected


@pytest.mark.parametrize(
    "text, problem, action",
    [
        ("https://stats.example.com", "is a web address", "Leave out http:// or https://"),
        ("http://stats.example.com/", "is a web address", "Leave out http://"),
        ("stats.example.com/pixel.js", "has a path", "Leave out everything after the name"),
        ("stats.example.com?x=1", "has a path", ""),
        ("user@stats.example.com", "has a path", ""),
        ("203.0.113.7", "is an IP address", "Create a DNS record (A)"),
        ("2001:db8::1", "is an IP address", ""),
        ("[2001:db8::1]", "is an IP address", ""),
        ("stats.example.com:443", "has a port", "Leave out the port"),
        ("*.example.com", "is a wildcard", "stats.example.com"),
        ("stats", "is a single word", ""),
        ("localhost", "is a single word", ""),
        ("stats..example.com", "has an empty part", ""),
        (".example.com", "has an empty part", ""),
        ("-stats.example.com", "may only hold letters, digits and hyphens", ""),
        ("stats-.example.com", "may only hold letters", ""),
        ("st_ats.example.com", "may only hold letters", ""),
        ("stats.example.123", "ends in a number", ""),
        ("stats example.com", "contains spaces", ""),
        ("", "No domain name was given", ""),
        ("   ", "No domain name was given", ""),
        ("s." + "a" * 64 + ".com", "", ""),
        ("a" + ".".join(["abcdefghi"] * 25) + ".com", "The name is 254 characters long; at most 253", ""),
    ],
)
def test_bad_names_say_what_is_wrong(text, problem, action):
    with pytest.raises(StackError) as info:
        validate_domain(text)
    assert info.value.code == "bad-domain"
    assert problem in info.value.problem
    assert action in info.value.action and info.value.action


def test_253_characters_is_the_limit():
    head = ".".join(["a" * 63] * 3)
    name = f"{head}.{'a' * 57}.com"
    assert len(name) == 253 and validate_domain(name) == name
    with pytest.raises(StackError, match="254 characters"):
        validate_domain(f"{head}.{'a' * 58}.com")
    with pytest.raises(StackError, match="is 64 characters long; at most 63"):
        validate_domain(f"{'a' * 64}.com")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=80))
def test_any_input_is_a_valid_ascii_name_or_a_bad_domain_error(text):
    try:
        name = validate_domain(text)
    except StackError as exc:
        assert exc.code == "bad-domain" and exc.action
        return
    assert name == name.lower() and name.isascii() and len(name) <= 253
    assert all(0 < len(label) <= 63 for label in name.split("."))
    assert not any(c in name for c in "/:*@?# ")
    assert validate_domain(name) == name  # idempotent


def _resolver(table: dict[str, list[str]]):
    def resolve(name: str) -> list[str]:
        if name not in table:
            raise OSError(f"NXDOMAIN {name}")
        return table[name]

    return resolve


def test_dns_points_here():
    check = check_dns("stats.example.com", ["203.0.113.7"], _resolver({"stats.example.com": ["203.0.113.7"]}))
    assert check.ok and check.addresses == ("203.0.113.7",)
    assert check.message == "stats.example.com points at this server (203.0.113.7)."


def test_dns_one_of_several_addresses_is_enough():
    table = {"stats.example.com": ["2001:db8::7", "198.51.100.1"]}
    assert check_dns("stats.example.com", ["203.0.113.7", "2001:db8::7"], _resolver(table)).ok


def test_dns_missing_says_which_record_to_create():
    check = check_dns("stats.example.com", ["203.0.113.7"], _resolver({}))
    assert not check.ok and check.addresses == ()
    assert check.message == "stats.example.com does not resolve to any address yet."
    assert check.action == (
        "Create a DNS record of type A named stats.example.com with the value 203.0.113.7 at your DNS provider. "
        "Then check again."
    )
    assert "type A or AAAA" in check_dns("x.example", ["203.0.113.7", "2001:db8::7"], _resolver({})).action


def test_dns_pointing_elsewhere_says_where():
    check = check_dns(
        "stats.example.com", ["203.0.113.7"], _resolver({"stats.example.com": ["198.51.100.9"]})
    )
    assert not check.ok
    assert check.message == "stats.example.com points at 198.51.100.9, not at this server (203.0.113.7)."
    assert check.action.startswith("Change the DNS record of stats.example.com to 203.0.113.7 (A).")


def _cert(domain: str, not_before: dt.datetime, days: float, issuer_org: str = "Pebble") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_org)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def test_certificate_status_newest_for_the_domain():
    old = _cert("stats.example.com", NOW - dt.timedelta(days=80), 90, "Old CA")
    new = _cert("stats.example.com", NOW - dt.timedelta(days=20), 90, "Let's Encrypt")
    other = _cert("other.example.com", NOW - dt.timedelta(days=1), 90)
    status = certificate_status("stats.example.com", [old, b"not a pem", new, other], NOW)
    assert status is not None
    assert status.issuer == "Let's Encrypt"
    assert status.not_before == NOW - dt.timedelta(days=20)
    assert status.not_after == NOW + dt.timedelta(days=70)
    assert status.days_left == 70.0 and not status.warn
    assert status.message == "Certificate by Let's Encrypt, valid until 2027-02-11 12:00 UTC."
    assert certificate_status("none.example.com", [old, new], NOW) is None


@pytest.mark.parametrize(
    "days_left, warn, start",
    [
        (14.01, False, "Certificate by"),
        (13.99, True, "The certificate of stats.example.com expires on"),
        (0.5, True, "The certificate of stats.example.com expires on"),
        (-1, True, "The certificate of stats.example.com expired on"),
    ],
)
def test_certificate_warns_14_days_before_expiry(days_left, warn, start):
    pem = _cert("stats.example.com", NOW - dt.timedelta(days=90 - days_left), 90)
    status = certificate_status("stats.example.com", [pem], NOW)
    assert status is not None and status.warn is warn and status.message.startswith(start)
