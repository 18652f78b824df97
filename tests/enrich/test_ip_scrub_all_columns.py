"""The visitor's own address, when a page echoes it, is stored in no column: every String column of the events
table (enumerated from the real table, so a new column fails here until it is accounted for) and the custom
properties, for IPv4 and IPv6 in their different spellings; end to end through `pixel serve` (the address given
by a trusted proxy), and in units over the scrub itself (hypothesis over addresses and spellings)."""

from __future__ import annotations

import ipaddress
import random
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.enrich import Enricher, RequestFacts
from pixel.server.enrich.privacy import IP_MARK, scrub_row, scrub_text
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import normalize

V4 = "203.0.113.7"
V6 = "2001:db8:85a3::8a2e:370:7334"

# How the planted address reaches each String column of `events`. A new String column makes
# test_every_string_column_is_accounted_for fail until it is added here (and so thought about).
PLANTED = {
    "site": "event.site",
    "event_id": "event.event_id",
    "event_name": "event.event_name",
    "visitor_id": "event.visitor_id",
    "session_id": "event.session_id",
    "user_id": "event.user_id",
    "url": "page.url (path and query)",
    "host": "page.url's host",
    "path": "page.url's path",
    "query": "page.url's query",
    "title": "page.title",
    "referrer": "page.referrer",
    "ref_host": "page.referrer's host",
    "source": "utm_source",
    "medium": "utm_medium",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "device_model": "the User-Agent's Android model",
    "screen": "device.screen",
    "language": "device.lang",
    "timezone": "device.tz",
    "props": "params (names and values)",
}
# Columns whose values come from a fixed vocabulary or a computation, which a client cannot fill with an
# address of its choosing (the scrub covers them all the same).
FIXED = {
    "channel": "GA4 channel names",
    "click_id": "names of known click-id parameters",
    "country": "GeoIP database or a 2-letter CDN code",
    "region": "GeoIP database (CDN headers: test_cdn_geo_texts_are_scrubbed)",
    "city": "GeoIP database (CDN headers: test_cdn_geo_texts_are_scrubbed)",
    "browser": "ua-parser's families",
    "browser_version": "ua-parser: the major version number",
    "os": "ua-parser's families",
    "os_version": "ua-parser: the major version number",
    "device_type": "desktop/mobile/tablet/bot",
    "device_brand": "ua-parser's brands",
    "ip_hash": "hex digest",
    "currency": "ISO 4217 codes (pixel.server.typedfields.CURRENCIES)",
    "ttfb_rating": "good/needs-improvement/poor",
    "fcp_rating": "good/needs-improvement/poor",
    "lcp_rating": "good/needs-improvement/poor",
    "cls_rating": "good/needs-improvement/poor",
    "inp_rating": "good/needs-improvement/poor",
    "import_id": "the id `pixel import` generates (empty for live events)",
}
# Columns filled only on `error` / `web_vitals` events: the address is planted in them, in every spelling,
# by tests/shipper/test_vitals_end_to_end.py::test_echoed_addresses_leave_no_trace_in_typed_texts.
PLANTED_ON_TYPED_EVENTS = {
    "error_message": "error params.message",
    "error_source": "error params.source",
    "error_hash": "error params.hash",
    "lcp_element": "web_vitals params.lcp_el",
    "inp_target": "web_vitals params.inp_el",
}


def spellings(ip: str) -> list[str]:
    """Spellings of `ip` a page may echo (written here independently of the scrub's own parser)."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        octets = ip.split(".")
        return [
            ip,
            "-".join(octets),  # ip-203-0-113-7.example.net
            "_".join(octets),
            "%2E".join(octets),
            ".".join(o.zfill(3) for o in octets),
            f"::ffff:{ip}",
            f"::FFFF:{int(octets[0]):02X}{int(octets[1]):02X}:{int(octets[2]):02X}{int(octets[3]):02X}",
        ]
    exploded = address.exploded
    return [
        ip,
        ip.upper(),
        exploded,
        exploded.upper(),
        ":".join(g.lstrip("0") or "0" for g in exploded.split(":")),  # no compression, no leading zeros
        ip.replace(":", "%3A"),
        ip.replace(":", "-"),  # ipv6-literal host names
    ]


def _event(ip: str, spelling: str, i: int) -> dict[str, Any]:
    s = spelling
    host = f"[{s}]" if ":" in s and "%" not in s and "-" not in s else s
    return {
        "event_id": f"id-{s}-{ipaddress.ip_address(ip).version}-{i}",
        "event_name": f"echo {s}",
        "ts": int(time.time() * 1000),
        "site": s,
        "visitor_id": f"v:{s}",
        "session_id": f"s/{s}",
        "user_id": f"u {s}",
        "page": {
            "url": (
                f"http://{host}/you/{s}/x?ip={s}&utm_source={s}&utm_medium={s}&utm_campaign=c+{s}"
                f"&utm_term={s}&utm_content=x-{s}"
            ),
            "title": f"Your address is {s}",
            "referrer": f"http://{host}/from?ip={s}",
        },
        "device": {"screen": s[:20], "lang": s[:35], "tz": s[:64]},
        "params": {"echo": s, s[:64]: "key", "plain": "kept"},
    }


def _ua(spelling: str) -> str:
    return (
        f"Mozilla/5.0 (Linux; Android 10; Nexus {spelling}) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36"
    )


def _wait_spool_clean(spool: Path, ips: tuple[str, ...], timeout: float = 30.0) -> None:
    """Until no spool segment holds one of `ips` (or `timeout`: the data-folder check below then names the file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = False
        for path in spool.glob("*"):
            try:
                text = path.read_bytes().decode("utf-8", "replace")
            except FileNotFoundError:  # deleted meanwhile
                continue
            held = held or any(_holds(text, ip) for ip in ips)
        if not held:
            return
        time.sleep(0.1)


def _holds(value: str, ip: str) -> list[str]:
    folded = value.lower()
    forms = {s.lower() for s in spellings(ip)} | {
        ipaddress.ip_address(ip).compressed,
        ipaddress.ip_address(ip).exploded,
    }
    return [form for form in forms if form.lower() in folded]


def test_every_string_column_is_accounted_for_and_holds_no_echoed_address(pixel_factory) -> None:
    server = pixel_factory("serve", pixel_trusted_proxies="127.0.0.1,::1", pixel_segment_max_age="0.5")
    sent = 0
    for ip in (V4, V6):
        for i, spelling in enumerate(spellings(ip)):
            headers = {"X-Forwarded-For": ip, "User-Agent": _ua(spelling), "Accept-Language": "en"}
            r = httpx.post(
                f"{server.collector}/track", content=orjson.dumps(_event(ip, spelling, i)), headers=headers
            )
            assert r.status_code == 204
            sent += 1
    server.wait_shipped(sent)
    # The spool holds the raw requests until they are shipped and their segment is sealed and deleted: the
    # shipper deletes a sealed segment on its next cycle, so wait for that (bounded) before stopping.
    _wait_spool_clean(server.data_dir / "spool", (V4, V6))
    with server.open_store() as store:
        columns = store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events'"
        ).rows
        rows = store.query("SELECT * FROM events FINAL ORDER BY event_name").dicts()

    string_columns = {name for name, kind in columns if "String" in kind}
    assert string_columns == set(PLANTED) | set(FIXED) | set(PLANTED_ON_TYPED_EVENTS), (
        "classify the new String column in PLANTED or FIXED"
    )
    assert len(rows) == sent
    # the plants arrived (scrubbed): each planted column holds the mark on every row but the props
    limits = {"screen": 20, "language": 35}  # a longer spelling is cut there: no address left to mark
    for row in rows:
        version, i = row["event_id"].rsplit("-", 2)[1:]
        planted = spellings(V4 if version == "4" else V6)[int(i)]
        for column in sorted(set(PLANTED) - {"props", "site"}):
            if len(planted) <= limits.get(column, 64):
                assert IP_MARK in row[column], (column, row[column])
    assert {row["site"] for row in rows} == {IP_MARK}
    assert all(row["props"] == {"plain": "kept"} for row in rows)
    for row in rows:
        for column in string_columns:
            value = row[column]
            text = orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
            for ip in (V4, V6):
                assert not _holds(text, ip), (column, value)
    # nor any file of the data folder outside the store's own (identity state, checkpoint, spool, ...)
    for path in server.data_dir.rglob("*"):
        if path.is_file() and "store" not in path.relative_to(server.data_dir).parts:
            text = path.read_bytes().decode("utf-8", "replace")
            for ip in (V4, V6):
                assert not _holds(text, ip), path


@pytest.fixture()
def enricher(tmp_path: Path) -> Enricher:
    e = Enricher(Settings(data_dir=tmp_path, cdn_geo_headers=True))
    yield e
    e.close()


def _row(event: dict[str, Any]) -> dict[str, Any]:
    return normalize(event, 1_700_000_000_000, min_ms=0, segment="s", offset=0, index=0)


def test_cdn_geo_texts_are_scrubbed(enricher: Enricher) -> None:
    row = _row({"event_name": "pageview", "site": "example.com", "page": {"url": "https://example.com/"}})
    facts = RequestFacts(
        1_700_000_000_000,
        V4,
        "Mozilla/5.0",
        "en",
        "example.com",
        "DE",
        cdn_geo={"cf-ipcountry": "DE", "cf-region": f"near {V4}", "cf-ipcity": V4},
    )
    assert enricher.enrich(row, {}, facts) is True
    assert (row["country"], row["region"], row["city"]) == ("DE", f"near {IP_MARK}", IP_MARK)


def test_a_failing_enrichment_still_scrubs(enricher: Enricher, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(enricher.identity, "resolve", broken)
    event = {"event_name": f"echo {V6}", "site": "example.com", "page": {"url": f"https://example.com/{V6}"}}
    row = _row(event)
    assert enricher.enrich(row, event, RequestFacts(1_700_000_000_000, V6, "", "", "")) is True
    assert (row["event_name"], row["url"]) == (f"echo {IP_MARK}", f"https://example.com/{IP_MARK}")
    assert len(row["ip_hash"]) == 32


@pytest.mark.parametrize(
    ("ip", "text", "expected"),
    [
        (V4, f"a {V4} b", f"a {IP_MARK} b"),
        (V4, "ip-203-0-113-7.example.net", f"ip-{IP_MARK}.example.net"),
        (V4, "id203.000.113.007abc", f"id{IP_MARK}abc"),  # letters around: still the address
        (V4, "1203.0.113.7 203.0.113.71 203.0.113.8", "1203.0.113.7 203.0.113.71 203.0.113.8"),  # others
        (V4, "::ffff:cb00:7107 and ::ffff:203.0.113.7", f"{IP_MARK} and {IP_MARK}"),
        ("::ffff:203.0.113.7", "203.0.113.7", IP_MARK),  # a mapped client address, echoed as IPv4
        (V6, f"[{V6}]:443", f"[{IP_MARK}]:443"),
        (V6, "2001:DB8:85A3:0:0:8A2E:370:7334", IP_MARK),
        (V6, "2001:db8:85a3::8a2e:3.112.115.52", IP_MARK),  # the last 32 bits as a dotted quad
        (V6, "2001-db8-85a3--8a2e-370-7334.ipv6-literal.net", f"{IP_MARK}.ipv6-literal.net"),
        (V6, "2001:db8:85a3::8a2e:370:7335", "2001:db8:85a3::8a2e:370:7335"),
        ("::1", "::12 and ::1", f"::12 and {IP_MARK}"),
        (V6, "c2001:db8:85a3::8a2e:370:7334", f"c{IP_MARK}"),  # letters around: still the address
        (V4, "c::ffff:cb00:7107", "c::ffff:cb00:7107"),  # another address: c:0:0:0:0:ffff:cb00:7107
        (V6, f"1:{V6} {V6}:1", f"1:{V6} {V6}:1"),  # parts of longer (invalid) addresses: not this one
        ("not-an-ip-at-all", "x not-an-ip-at-all y", f"x {IP_MARK} y"),  # literal when not an address
        ("junk", "junk", "junk"),  # too short to be matched literally
        ("", "anything 1.2.3.4", "anything 1.2.3.4"),
    ],
)
def test_scrub_text(ip: str, text: str, expected: str) -> None:
    assert scrub_text(text, ip) == expected


def test_scrub_row_covers_every_text_value_whatever_its_column() -> None:
    row = {"a_future_column": f"x{V4}", "n": 3, "f": 1.5, "none": None, "props": {"k": V4, V4: "v", "o": "k"}}
    scrub_row(row, V4)
    assert row == {"a_future_column": f"x{IP_MARK}", "n": 3, "f": 1.5, "none": None, "props": {"o": "k"}}


def _random_spelling(address: ipaddress.IPv4Address | ipaddress.IPv6Address, rnd: random.Random) -> str:
    if address.version == 4:
        octets = [str(o).zfill(rnd.choice((0, 0, 2, 3))) for o in address.packed]
        return rnd.choice([".", "-", "_", "%2e", "%2E"]).join(octets)
    groups = [format(int.from_bytes(address.packed[i : i + 2], "big"), "x") for i in range(0, 16, 2)]
    groups = [g.zfill(rnd.choice((0, 4))) for g in groups]
    text = ":".join(groups)
    zero_runs = [
        (i, j) for i in range(8) for j in range(i + 1, 9) if all(int(g, 16) == 0 for g in groups[i:j])
    ]
    if zero_runs and rnd.random() < 0.7:
        i, j = rnd.choice(zero_runs)
        text = ":".join(groups[:i]) + "::" + ":".join(groups[j:])
    text = text.upper() if rnd.random() < 0.3 else text
    sep = rnd.choice([":", ":", "%3A", "%3a", "-"])
    return text.replace(":", sep)


addresses = st.one_of(
    st.integers(min_value=1, max_value=2**32 - 1).map(ipaddress.IPv4Address),
    st.integers(min_value=1, max_value=2**128 - 1).map(ipaddress.IPv6Address),
    # IPv6 addresses with runs of zero groups (the compressed spellings)
    st.lists(st.sampled_from([0, 0, 0, 1, 0xDB8, 0xFFFF, 0x2001]), min_size=8, max_size=8)
    .filter(any)
    .map(lambda gs: ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in gs))),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    address=addresses,
    seed=st.integers(0, 2**32),
    before=st.text(alphabet="xyz /?=&#<>\"'( ", max_size=8),
    after=st.text(alphabet="xyz /?=&#<>\"'( ", max_size=8),
)
def test_any_spelling_of_the_address_is_scrubbed_and_only_it(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, seed: int, before: str, after: str
) -> None:
    rnd = random.Random(seed)
    spelling = _random_spelling(address, rnd)
    assert scrub_text(f"{before}{spelling}{after}", str(address)) == f"{before}{IP_MARK}{after}"
    other = ipaddress.ip_address(int(address) ^ 1 or 2) if address.version == 4 else address + 1
    if other.version == address.version and int(other) != int(address):
        text = f"{before}{_random_spelling(other, rnd)}{after}"
        # Dashes are ambiguous (a dash also ends words: ip-10-0-0-1, 2001-db8--1-cafe): where another dashed
        # address begins with a whole spelling of this one, that part is scrubbed too (see the table below).
        if "-" not in text:
            assert scrub_text(text, str(address)) == text


@pytest.mark.parametrize(
    ("text", "address", "scrubbed"),
    [
        # another address, written with dashes, that begins with this one's spelling: scrubbed, in doubt
        ("0-db8-0000-0-0000--0000-1", "0:db8::", "[ip]-1"),
        ("0000-0-0000-0000-0000-ffff-0-0001", "::ffff:0:0", "[ip]-0000-ffff-0-0001"),
        # this address followed by a dashed hex word: the same reading, so the address never stays
        ("2001-db8--1-cafe", "2001:db8::1", "[ip]-cafe"),
        ("host-2001-db8--1.ipv6-literal.net", "2001:db8::1", "host-[ip].ipv6-literal.net"),
        ("ip-10-0-0-1", "10.0.0.1", "ip-[ip]"),
        # with colons there is no doubt: another address is left as it is
        ("0:db8::1", "0:db8::", "0:db8::1"),
        ("2001:db8::1:cafe", "2001:db8::1", "2001:db8::1:cafe"),
    ],
)
def test_dashed_spellings_are_scrubbed_when_in_doubt(text: str, address: str, scrubbed: str) -> None:
    """Privacy first: a dashed run that can be read as this address followed by more is scrubbed."""
    assert scrub_text(text, address) == scrubbed
