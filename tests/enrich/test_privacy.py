"""Privacy rules: PII query parameters stripped (configurable), e-mails refused as user_id and redacted from
paths, titles and custom properties; the daily-salted keyed IP hash."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from pixel.server.enrich.iphash import DailySalt
from pixel.server.enrich.privacy import (
    DEFAULT_PII_PARAMS,
    clean_props,
    clean_query,
    clean_url,
    clean_user_id,
    redact_emails,
)

PII = frozenset(DEFAULT_PII_PARAMS)


@pytest.mark.parametrize(
    ("url", "expected_url", "expected_query"),
    [
        (
            "https://example.com/signup?email=jane%40example.com&plan=pro",
            "https://example.com/signup?plan=pro",
            "plan=pro",
        ),
        (
            "https://example.com/reset?token=abc123&step=2&password=hunter2",
            "https://example.com/reset?step=2",
            "step=2",
        ),
        ("https://example.com/?Email=jane@example.com", "https://example.com/", ""),
        (
            "https://example.com/?ACCESS_TOKEN=x&utm_source=news",
            "https://example.com/?utm_source=news",
            "utm_source=news",
        ),
        (
            "https://example.com/?contact=jane.doe%2Bnews%40mail.example.org&a=1",
            "https://example.com/?a=1",
            "a=1",
        ),
        (
            "https://example.com/?q=caf%C3%A9+au+lait&x=%2F",
            "https://example.com/?q=caf%C3%A9+au+lait&x=%2F",
            "q=caf%C3%A9+au+lait&x=%2F",
        ),  # kept parameters keep their exact bytes
        ("https://example.com/cb#access_token=abc&state=xyz", "https://example.com/cb#state=xyz", ""),
        ("https://example.com/docs#section-2", "https://example.com/docs#section-2", ""),
        (
            "https://example.com/users/jane@example.com/profile",
            "https://example.com/users/[email]/profile",
            "",
        ),
        ("https://example.com/u/jane%40example.com", "https://example.com/u/[email]", ""),
        ("https://admin:s3cret@example.com/x?y=1", "https://example.com/x?y=1", "y=1"),
        ("https://example.com/?phone=%2B4930123&first_name=Jane&ok=1", "https://example.com/?ok=1", "ok=1"),
        ("https://example.com/p?", "https://example.com/p", ""),
        ("https://example.com/p?a=1&&b=2", "https://example.com/p?a=1&b=2", "a=1&b=2"),
    ],
)
def test_pii_is_stripped_from_urls(url: str, expected_url: str, expected_query: str) -> None:
    cleaned, query, _ = clean_url(url, PII)
    assert (cleaned, query) == (expected_url, expected_query)


def test_params_are_returned_decoded_with_lower_case_names() -> None:
    _, _, params = clean_url("https://example.com/?UTM_Source=News+Letter&x=%C3%A9&x=2&token=t", PII)
    assert params == {"utm_source": "News Letter", "x": "é"}


def test_pii_parameter_list_is_configurable() -> None:
    assert clean_query("order=42&coupon=SAVE10", frozenset({"coupon"})) == ("order=42", {"order": "42"})
    # with an empty list only e-mail-looking values are removed
    assert clean_query("token=abc&to=jane@example.com", frozenset()) == ("token=abc", {"token": "abc"})


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("jane@example.com", ""),
        ("Jane.Doe+tag@mail.example.co.uk", ""),
        (" jane@example.com ", ""),
        ("user-12345", "user-12345"),
        ("@handle", "@handle"),
        ("a@b", "a@b"),  # not an address (no domain with a dot)
        ("", ""),
    ],
)
def test_email_is_refused_as_user_id(user_id: str, expected: str) -> None:
    assert clean_user_id(user_id) == expected


def test_emails_are_redacted_in_text_and_props() -> None:
    assert redact_emails("Inbox (3) - jane@example.com") == "Inbox (3) - [email]"
    props = {"plan": "pro", "contact": "jane@example.com", "Password": "x", "n": "3"}
    clean_props(props)
    assert props == {"plan": "pro", "n": "3"}


def test_ip_hash_is_keyed_per_day_and_salts_are_deleted_after_their_day(tmp_path: Path) -> None:
    salt = DailySalt(tmp_path / "salts")
    day1 = int(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)
    day2 = day1 + 86_400_000
    day4 = day1 + 3 * 86_400_000
    h1 = salt.hash_ip("81.2.69.142", day1)
    assert h1 == salt.hash_ip("81.2.69.142", day1 + 3_600_000)  # same day, same hash
    assert h1 != salt.hash_ip("81.2.69.142", day2)  # cannot be joined across days
    assert h1 != hashlib.md5(b"81.2.69.142Pixel_Privacy_Salt_v1").hexdigest()
    assert len(h1) == 32 and "81.2.69.142" not in h1
    # the key is a random 32-byte salt in the data folder, not derivable from the IP
    key1 = (tmp_path / "salts" / "2026-11-01.key").read_bytes()
    assert len(key1) == 32
    assert h1 == hashlib.blake2b(b"81.2.69.142", key=key1, digest_size=16).hexdigest()
    assert sorted(p.name for p in (tmp_path / "salts").iterdir()) == ["2026-11-01.key", "2026-11-02.key"]
    salt.hash_ip("81.2.69.142", day4)  # two days later: day 1 and 2 are gone for good
    assert sorted(p.name for p in (tmp_path / "salts").iterdir()) == ["2026-11-04.key"]
    assert (tmp_path / "salts").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "salts" / "2026-11-04.key").stat().st_mode & 0o777 == 0o600


def test_a_second_process_uses_the_same_salt_for_the_day(tmp_path: Path) -> None:
    day = int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp() * 1000)
    a = DailySalt(tmp_path).hash_ip("203.0.113.9", day)
    b = DailySalt(tmp_path).hash_ip("203.0.113.9", day)
    assert a == b
