"""Identity: cookieless server-side visitor ids, sessions by inactivity, and cross-domain linking within 15 minutes
(a true link, no link beyond the window, no merge of two devices behind one IP), with bounded state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pixel.server.enrich.identity import IdentityResolver
from pixel.server.enrich.iphash import DailySalt

T0 = int(dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC).timestamp() * 1000)
MIN = 60_000
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36"
)
IPHONE_DEVICE = {"screen": "390x844", "viewport": "390x664", "lang": "en-GB", "tz": "Europe/London", "dpr": 3}
ANDROID_DEVICE = {
    "screen": "412x915",
    "viewport": "412x780",
    "lang": "en-GB",
    "tz": "Europe/London",
    "dpr": 2.625,
}


@pytest.fixture()
def ids(tmp_path: Path) -> IdentityResolver:
    return IdentityResolver(DailySalt(tmp_path / "salts"))


def hit(
    ids: IdentityResolver,
    site: str,
    at: int,
    *,
    visitor: str = "",
    session: str = "",
    device: dict[str, Any] | None = None,
    ip: str = "203.0.113.7",
    ua: str = IPHONE,
) -> dict[str, Any]:
    row: dict[str, Any] = {"site": site, "visitor_id": visitor, "session_id": session}
    event: dict[str, Any] = {"device": device} if device is not None else {}
    ip_hash = ids.salt.hash_ip(ip, at)
    ids.resolve(row, event, ip, ip_hash, ua, at)
    return row


def test_tracker_ids_are_kept(ids: IdentityResolver) -> None:
    row = hit(ids, "example.com", T0, visitor="v-tracker", session="s-tracker", device=IPHONE_DEVICE)
    assert (row["visitor_id"], row["session_id"]) == ("v-tracker", "s-tracker")


def test_server_visitor_id_is_a_daily_keyed_hash_of_site_ip_and_ua(ids: IdentityResolver) -> None:
    a = hit(ids, "example.com", T0)["visitor_id"]
    assert len(a) == 32 and "203.0.113.7" not in a
    assert hit(ids, "example.com", T0 + 5 * MIN)["visitor_id"] == a  # same day, same IP+UA
    assert hit(ids, "other.org", T0)["visitor_id"] != a  # per site
    assert hit(ids, "example.com", T0, ip="203.0.113.8")["visitor_id"] != a  # per IP
    assert hit(ids, "example.com", T0, ua=ANDROID)["visitor_id"] != a  # per UA
    assert hit(ids, "example.com", T0 + 24 * 60 * MIN)["visitor_id"] != a  # a new salt the next day


def test_sessions_split_after_30_minutes_of_inactivity(ids: IdentityResolver) -> None:
    s1 = hit(ids, "example.com", T0, visitor="v1")["session_id"]
    assert hit(ids, "example.com", T0 + 29 * MIN, visitor="v1")["session_id"] == s1
    assert hit(ids, "example.com", T0 + 58 * MIN, visitor="v1")["session_id"] == s1  # inactivity, not length
    s2 = hit(ids, "example.com", T0 + 89 * MIN, visitor="v1")["session_id"]
    assert s2 != s1 and len(s2) == 16
    assert hit(ids, "example.com", T0 + 90 * MIN, visitor="v2")["session_id"] not in (s1, s2)


def test_session_timeout_is_configurable(tmp_path: Path) -> None:
    ids = IdentityResolver(DailySalt(tmp_path), session_timeout=60)
    s1 = hit(ids, "example.com", T0, visitor="v1")["session_id"]
    assert hit(ids, "example.com", T0 + 59_000, visitor="v1")["session_id"] == s1
    assert hit(ids, "example.com", T0 + 120_000, visitor="v1")["session_id"] != s1


def test_true_link_across_two_sites_of_one_owner(ids: IdentityResolver) -> None:
    first = hit(ids, "shop.example", T0, visitor="vid-on-shop", device=IPHONE_DEVICE)
    linked = hit(ids, "blog.example", T0 + 10 * MIN, visitor="vid-on-blog", device=IPHONE_DEVICE)
    assert first["visitor_id"] == "vid-on-shop"
    assert linked["visitor_id"] == "vid-on-shop"
    # the visitor's later events on the blog keep the linked id
    assert (
        hit(ids, "blog.example", T0 + 12 * MIN, visitor="vid-on-blog", device=IPHONE_DEVICE)["visitor_id"]
        == "vid-on-shop"
    )


def test_link_also_works_for_cookieless_server_ids(ids: IdentityResolver) -> None:
    a = hit(ids, "shop.example", T0, device=IPHONE_DEVICE)["visitor_id"]
    b = hit(ids, "blog.example", T0 + MIN, device=IPHONE_DEVICE)["visitor_id"]
    assert a == b


def test_no_link_beyond_15_minutes(ids: IdentityResolver) -> None:
    hit(ids, "shop.example", T0, visitor="vid-on-shop", device=IPHONE_DEVICE)
    late = hit(ids, "blog.example", T0 + 15 * MIN + 1000, visitor="vid-on-blog", device=IPHONE_DEVICE)
    assert late["visitor_id"] == "vid-on-blog"


def test_two_devices_behind_one_ip_do_not_merge(ids: IdentityResolver) -> None:
    hit(ids, "shop.example", T0, visitor="iphone-vid", device=IPHONE_DEVICE, ua=IPHONE)
    other = hit(ids, "blog.example", T0 + MIN, visitor="android-vid", device=ANDROID_DEVICE, ua=ANDROID)
    assert other["visitor_id"] == "android-vid"
    # the same model with another screen setting is another device too
    other2 = hit(
        ids,
        "blog.example",
        T0 + 2 * MIN,
        visitor="iphone2-vid",
        ua=IPHONE,
        device=dict(IPHONE_DEVICE, screen="430x932"),
    )
    assert other2["visitor_id"] == "iphone2-vid"


def test_same_site_never_merges_two_tracker_ids(ids: IdentityResolver) -> None:
    hit(ids, "shop.example", T0, visitor="a", device=IPHONE_DEVICE)
    assert hit(ids, "shop.example", T0 + MIN, visitor="b", device=IPHONE_DEVICE)["visitor_id"] == "b"


def test_other_ip_does_not_link(ids: IdentityResolver) -> None:
    hit(ids, "shop.example", T0, visitor="a", device=IPHONE_DEVICE, ip="203.0.113.7")
    assert (
        hit(ids, "blog.example", T0 + MIN, visitor="b", device=IPHONE_DEVICE, ip="198.51.100.4")["visitor_id"]
        == "b"
    )


def test_events_without_device_signals_are_never_linked(ids: IdentityResolver) -> None:
    hit(ids, "shop.example", T0, visitor="a")
    assert hit(ids, "blog.example", T0 + MIN, visitor="b")["visitor_id"] == "b"
    hit(ids, "shop.example", T0, visitor="c", device={"screen": "390x844"})  # no time zone
    assert hit(ids, "blog.example", T0 + MIN, visitor="d", device={"screen": "390x844"})["visitor_id"] == "d"


def test_link_groups_limit_linking_to_one_owner(tmp_path: Path) -> None:
    ids = IdentityResolver(DailySalt(tmp_path), link_groups=("shop.example blog.example", "other.org"))
    hit(ids, "shop.example", T0, visitor="a", device=IPHONE_DEVICE)
    assert hit(ids, "other.org", T0 + MIN, visitor="b", device=IPHONE_DEVICE)["visitor_id"] == "b"
    assert hit(ids, "blog.example", T0 + 2 * MIN, visitor="c", device=IPHONE_DEVICE)["visitor_id"] == "a"
    assert hit(ids, "unlisted.net", T0 + 3 * MIN, visitor="d", device=IPHONE_DEVICE)["visitor_id"] == "d"


def test_state_survives_across_calls_and_is_bounded(tmp_path: Path) -> None:
    ids = IdentityResolver(DailySalt(tmp_path), max_entries=1000)
    for i in range(5000):
        hit(ids, "example.com", T0 + i, visitor=f"v{i}", device=dict(IPHONE_DEVICE, screen=f"{i}x1"))
    ids.prune(T0 + 5000)
    assert len(ids.sessions) <= 1000 and len(ids.links) <= 1000
    # entries also expire by time
    ids.prune(T0 + 31 * MIN + 5000)
    assert len(ids.sessions) == 0 and len(ids.links) == 0 and len(ids.aliases) == 0


def test_state_is_saved_and_restored_across_restarts(tmp_path: Path) -> None:
    salt = DailySalt(tmp_path / "salts")
    ids = IdentityResolver(salt)
    s1 = hit(ids, "example.com", T0, visitor="v1", device=IPHONE_DEVICE)["session_id"]
    hit(ids, "shop.example", T0, visitor="shop-vid", device=ANDROID_DEVICE, ua=ANDROID)
    hit(ids, "expired.example", T0 - 40 * MIN, visitor="old")
    state = tmp_path / "state" / "identity.json"
    ids.save(state, now_ms=T0 + MIN)
    assert state.stat().st_mode & 0o777 == 0o600
    assert "203.0.113.7" not in state.read_text()

    again = IdentityResolver(salt)
    again.load(state, now_ms=T0 + 2 * MIN)
    assert hit(again, "example.com", T0 + 2 * MIN, visitor="v1")["session_id"] == s1  # the session goes on
    linked = hit(again, "blog.example", T0 + 3 * MIN, visitor="blog-vid", device=ANDROID_DEVICE, ua=ANDROID)
    assert linked["visitor_id"] == "shop-vid"  # the link window too
    assert ("expired.example", "old") not in again.sessions


def test_unreadable_state_file_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "identity.json"
    state.write_text("{not json")
    ids = IdentityResolver(DailySalt(tmp_path / "salts"))
    ids.load(state)
    ids.load(tmp_path / "missing.json")
    assert len(ids.sessions) == 0
