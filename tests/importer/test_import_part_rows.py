"""An access-log line's row joined from parts (`importer/partrows.py`) is the row the live enrichment makes.

The oracle is `test_import_fast_rows.reference_rows` (every line normalized and enriched by a second `Enricher`,
the same salts): compared column for column on generated logs in time order and shuffled (the identity state's
sessions and its pruning schedule), with a site whose own rules exclude paths and networks (those lines go the
live way and are dropped with their reason), with the GeoIP test database. The address test that lets a part
skip the scrub (`_suspect`) is checked against the scrub itself, on hand-picked texts and with hypothesis. The
JSON bytes reach the store as rows of both engines, a NUL character (nginx's `\\x00` escape) removed first.
"""

from __future__ import annotations

import gzip
import ipaddress
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.api.meta import MetaDB
from pixel.server.enrich.privacy import ip_spelling, scrub_text
from pixel.server.importer import partrows, rowcache, run
from pixel.server.importer.lines import read_lines
from pixel.server.settings import Settings
from pixel.server.shipper.inserter import UNIQUE_KEYS
from pixel.server.store import Store
from tests.enrich.test_ip_scrub_all_columns import _random_spelling, addresses, spellings
from tests.enrich.test_site_rules import add_site
from tests.importer.test_import_fast_rows import CITY, SALTS, SITE, generated_lines, reference_rows


def core(settings: Settings, path: Path) -> tuple[list[dict[str, Any]], list[bool], run.Preview]:
    """The import core's rows as dicts, whether each was joined from parts, and its counts."""
    processor = run.LineProcessor(settings, SITE, "test", set(), dict(SALTS))
    out = run.Preview()
    rows: list[run.Row] = []
    for number, offset, _end, text in read_lines(path):
        processor.process(number, offset, text, out, rows)
    parted = [type(row) is bytes for row in rows]
    return [orjson.loads(row) if type(row) is bytes else row for row in rows], parted, out


def same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert orjson.dumps(mine, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            theirs, option=orjson.OPT_SORT_KEYS
        )


def shuffled(lines: list[str], seed: int) -> list[str]:
    """`lines` out of order within windows of 40 lines (a log of several workers, or merged logs)."""
    rng = random.Random(seed)
    out: list[str] = []
    for start in range(0, len(lines), 40):
        window = lines[start : start + 40]
        rng.shuffle(window)
        out += window
    return out


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_rows_from_parts_are_the_live_enrichments_rows(tmp_path: Path, order: str) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data", geoip_db=str(CITY))
    lines = generated_lines(4000, seed=11)
    if order == "shuffled":
        lines = shuffled(lines, 5)
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    expected, expected_out = reference_rows(settings, lines)
    got, parted, got_out = core(settings, path)

    same(got, expected)
    assert got_out.skipped == expected_out.skipped and got_out.days == expected_out.days
    # most rows joined from parts; those holding the visitor's address went the live way (scrubbed: [ip])
    echoed = ["[ip]" in orjson.dumps(row).decode() for row in got]
    assert sum(echoed) > 100
    assert not any(e and p for e, p in zip(echoed, parted, strict=True))
    assert len(got) > sum(parted) > len(got) // 2


def test_a_sites_own_rules_drop_the_same_lines(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data", geoip_db=str(CITY))
    add_site(
        MetaDB(settings.meta_db_path),
        SITE,
        excluded_paths=["/signup*", "/blog/post-3"],
        excluded_ips=["81.2.69.0/24", "2001:480::/32"],
        honour_dnt=True,
    )
    lines = generated_lines(3000, seed=3)
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")

    expected, expected_out = reference_rows(settings, lines, keep_dropped=True)
    got, parted, got_out = core(settings, path)

    same(got, expected)
    assert got_out.skipped == expected_out.skipped
    reasons = {reason: n for reason, n in got_out.skipped.items() if reason.startswith("site rules")}
    assert reasons.keys() == {"site rules (excluded path)", "site rules (excluded ip)"}
    assert sum(parted) > len(got) // 2
    assert not any(row["path"].startswith("/signup") or row["path"] == "/blog/post-3" for row in got)


def test_a_rule_set_during_an_import_applies_from_the_next_batch(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    processor = run.LineProcessor(settings, SITE, "test", set(), dict(SALTS))
    lines = [
        f'198.51.100.{i % 50} - - [02/Jan/2023:10:{i // 60:02d}:{i % 60:02d} +0000] "GET /blog/post-1 HTTP/1.1" '
        f'200 5 "-" "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"'
        for i in range(200)
    ]
    out, rows = run.Preview(), []
    for i, text in enumerate(lines[:100]):
        processor.process(i + 1, i * 1000, text, out, rows)
    assert out.rows == 100
    meta = MetaDB(settings.meta_db_path)
    add_site(meta, SITE, excluded_paths=["/blog/*"])
    processor.enricher.site_rules._checked = float("-inf")  # as after its re-read interval
    processor.refresh()
    for i, text in enumerate(lines[100:], 100):
        processor.process(i + 1, i * 1000, text, out, rows)
    assert out.rows == 100 and out.skipped == {"site rules (excluded path)": 100}


@pytest.mark.parametrize(
    ("text", "suspect"),
    [
        ("https://example.com/blog/post-671", False),
        ("https://www.google.com/", False),
        ("/2024/01/15/a-title", False),
        ("17.5", False),
        ("10.15.7", True),  # an os version: three numbers, as an address's first three octets
        ("/2024-01-15/", True),
        ("ip-203-0-113-7.example.net", True),
        ("2001:db8::1", True),
        ("::1", True),
        ("%3a%3a1", True),
        ("fe80%3A%3A1", True),
        ("a_b_c", True),  # a, b and c are hex digits: three groups
        ("Saint-Jean-de-Luz", True),
        ("Köln", True),  # not ASCII: left to the scrub
        ("", False),
    ],
)
def test_which_texts_the_scrub_must_look_at(text: str, suspect: bool) -> None:
    assert partrows._suspect(text) is suspect


ALPHABET = "0123456789abcdefABCDEFxyz:.-_%/ ?=&[]3aAeE2"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    address=addresses,
    seed=st.integers(0, 2**32),
    before=st.text(alphabet=ALPHABET, max_size=12),
    after=st.text(alphabet=ALPHABET, max_size=12),
    noise=st.text(max_size=30),
)
def test_a_text_the_address_test_passes_is_never_changed_by_the_scrub(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, seed: int, before: str, after: str, noise: str
) -> None:
    """The test is only allowed to be wrong one way: a text it passes holds no spelling of any address."""
    ip = str(address)
    spelled = before + _random_spelling(address, random.Random(seed)) + after
    for text in (spelled, before + after, noise, before + noise + after):
        if not partrows._suspect(text):
            assert scrub_text(text, ip) == text
    assert partrows._suspect(spelled)  # every spelling is looked at


@pytest.mark.parametrize("ip", ["203.0.113.7", "2001:db8::1", "::ffff:192.0.2.9", "10.1.2.3"])
def test_every_written_spelling_is_looked_at(ip: str) -> None:
    for spelling in spellings(ip):
        for text in (spelling, f"x {spelling} y", f"/you/{spelling}?a=b"):
            assert partrows._suspect(text)
    assert ip_spelling(ip) is not None


def test_joined_rows_reach_the_store_and_a_nul_is_removed(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    lines = [
        f'198.51.100.7 - - [02/Jan/2023:10:00:0{i} +0000] "GET /p{i} HTTP/1.1" 200 5 "{referrer}" "{agent}"'
        for i, referrer in enumerate(["-", "https://a.example/x\\x00y", "https://b.example/", "-"])
    ]
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    record = run.run(settings, store, run.start(settings, store, path, SITE), batch_lines=2)
    assert record.status == "done" and record.rows == 4
    got = store.query(
        "SELECT path, referrer, session_id != '' FROM events FINAL WHERE site = {s:String} ORDER BY path",
        {"s": SITE},
    ).rows
    assert [tuple(row) for row in got] == [
        ("/p0", "", 1),
        ("/p1", "https://a.example/xy", 1),
        ("/p2", "https://b.example/", 1),
        ("/p3", "", 1),
    ]
    sessions = store.scalar("SELECT uniqExact(session_id) FROM events WHERE site = {s:String}", {"s": SITE})
    assert sessions == 1  # one visitor within the session timeout: one session across the batches


def test_sessions_move_on_as_the_live_enrichments_even_out_of_order(tmp_path: Path) -> None:
    """The identity state is pruned every 1024 events: an entry older than the session timeout at that moment
    is gone, so a late line of that visitor (within the timeout of its last one) starts a new session. The
    rows from parts count towards that schedule exactly as the live ones."""
    settings = Settings.from_env(data_dir=tmp_path / "data")
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"

    def line(ip: str, second: int) -> str:
        when = f"02/Jan/2023:{10 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d} +0000"
        return f'{ip} - - [{when}] "GET /blog/post-1 HTTP/1.1" 200 5 "-" "{agent}"'

    visitor = "203.0.113.7"
    lines = [line(visitor, 0)]
    lines += [line(f"198.51.{i // 250}.{i % 250 + 1}", 1 + i * 2) for i in range(1022)]
    lines += [
        line("192.0.2.1", 40 * 60),
        line(visitor, 25 * 60),
    ]  # the 1024th event prunes; then the late line
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")

    expected, _ = reference_rows(settings, lines)
    got, parted, _ = core(settings, path)

    same(got, expected)
    assert all(parted)
    first, late = got[0], got[-1]
    assert first["visitor_id"] == late["visitor_id"] and first["session_id"] != late["session_id"]


def test_an_imports_insert_does_not_look_for_copies_and_its_settings_are_checked(store: Store) -> None:
    """The import's batches hold each event id once, so they are inserted with `optimize_on_insert = 0`: two
    rows of one id in one insert then stay two until a merge (readers collapse them with FINAL), where the
    default insert collapses them at once. The settings reach the SQL only as checked names and integers."""
    row = {"timestamp": 1_672_650_000.0, "site": "s.example", "event_id": "e1", "event_name": "pageview"}
    data = orjson.dumps([row, {**row, "path": "/again"}])
    store.insert_json("events", data)
    store.insert_json("events", data.replace(b'"e1"', b'"e2"'), settings=UNIQUE_KEYS)
    counts = store.query(
        "SELECT event_id, count() FROM events WHERE site = 's.example' GROUP BY event_id ORDER BY event_id"
    ).rows
    assert [tuple(r) for r in counts] == [("e1", 1), ("e2", 2)]
    assert store.scalar("SELECT count() FROM events FINAL WHERE site = 's.example'") == 2
    for bad in (
        {"optimize_on_insert=0, readonly": 1},
        {"max_threads": "1"},
        {"a b": 1},
        {"\u00e9t\u00e9": 1},
    ):
        with pytest.raises(ValueError, match="not an insert setting"):
            store.insert_json("events", data, settings=bad)


def test_the_parts_stay_bounded_in_characters_and_the_rows_do_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile log of long distinct URLs and agents (lines are up to MAX_LINE long): each kind of part, and the
    row templates under them, start over past their characters' bound (made small here), and the rows are the
    live enrichment's still."""
    monkeypatch.setattr(partrows, "MAX_CHARS", 100_000)
    monkeypatch.setattr(rowcache, "MAX_CHARS", 100_000)
    settings = Settings.from_env(data_dir=tmp_path / "data")
    lines = [
        f'198.51.100.{i % 7} - - [02/Jan/2023:10:{i // 60:02d}:{i % 60:02d} +0000] "GET /p{i}/{"a" * 9000} '
        f'HTTP/1.1" 200 5 "https://r.example/{"b" * 3000}{i}" "Mozilla/5.0 {"c" * 4000}{i % 13}"'
        for i in range(120)
    ] * 2
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    processor = run.LineProcessor(settings, SITE, "test", set(), dict(SALTS))
    assert processor.parts is not None
    out, rows = run.Preview(), []
    peaks = {"pages": 0, "devices": 0, "templates": 0}
    for number, offset, _end, text in read_lines(path):
        processor.process(number, offset, text, out, rows)
        parts = processor.parts
        peaks["pages"] = max(peaks["pages"], parts._pages.chars)
        peaks["devices"] = max(peaks["devices"], parts._devices.chars)
        peaks["templates"] = max(peaks["templates"], processor.rows._chars)
    assert out.rows == 240 and all(type(row) is bytes for row in rows)
    assert 50_000 < peaks["pages"] <= 100_000 and 0 < peaks["devices"] <= 100_000
    assert 50_000 < peaks["templates"] <= 100_000
    expected, _ = reference_rows(settings, lines)
    same([orjson.loads(row) for row in rows], expected)
