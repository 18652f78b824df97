"""A request's events are checked once: the collector marks the spool records it accepted
(`pixel.server.eventformat.CHECKED`), the shipper checks the events of every other record. Real Collector, real
Shipper, real chDB in tmp folders."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pixel.server.collector.core import Collector
from pixel.server.eventformat import CHECKED, check_event
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.spool.record import parse_record
from pixel.server.store.chdb_engine import ChdbStore

from .test_poison import drain, rows, spool

SITE = "mark.example"

# Events the check refuses and the shipper could still make a row of: with the mark, only a record the collector
# wrote can carry them (it refused them), so the shipper makes the row; without it, the check's reason.
REFUSED_BUT_ROWS: list[tuple[dict[str, Any], str, str]] = [
    (
        {
            "event_name": "pageview",
            "site": SITE,
            "page": {"url": f"https://{SITE}/a"},
            "params": {"k": [1, 2]},
        },
        "parameter k must be a string, number, boolean or null, not an array",
        "/a",
    ),
    (
        {"event_name": "pageview", "site": SITE, "page": {"url": f"https://{SITE}/b"}, "extra": {"x": 1}},
        "extra must be a string, number, boolean or null, not an object",
        "/b",
    ),
    (
        {"event_name": "pageview", "site": SITE, "page": {"url": f"https://{SITE}/c"}, "list": [1]},
        "list must be a string, number, boolean or null or an object, not an array",
        "/c",
    ),
    (
        {
            "event_name": "pageview",
            "site": SITE,
            "page": {"url": f"https://{SITE}/d"},
            **{f"k{i}": i for i in range(70)},
        },
        "the event has 73 keys; the limit is 64",
        "/d",
    ),
    (
        {"event_name": "pageview", "site": SITE, "page": {"url": "javascript:alert(1)"}},
        "page.url must be an http(s) URL or a path starting with /",
        "",
    ),
]


def test_the_table_holds_what_the_check_refuses() -> None:
    assert [check_event(event) for event, _reason, _path in REFUSED_BUT_ROWS] == [
        reason for _event, reason, _path in REFUSED_BUT_ROWS
    ]


@pytest.mark.parametrize(
    "flags", [b"", b"dg", b"c0", b"c", b"C1", b"1"], ids=["none", "dnt-gpc", "older-mark", "c", "upper", "1"]
)
def test_records_without_the_mark_are_checked(settings: Settings, store: ChdbStore, flags: bytes) -> None:
    spool(settings, [orjson.dumps([event for event, _r, _p in REFUSED_BUT_ROWS])], flags=flags)
    drain(Shipper(settings, store))
    assert rows(store, "SELECT reason FROM dead_letters ORDER BY reason") == sorted(
        [reason] for _e, reason, _p in REFUSED_BUT_ROWS
    )
    assert rows(store, "SELECT count() FROM events") == [[0]]


@pytest.mark.parametrize("flags", [CHECKED.encode(), b"d" + CHECKED.encode(), CHECKED.encode() + b"g"])
def test_records_with_the_mark_are_not_checked_again(
    settings: Settings, store: ChdbStore, flags: bytes
) -> None:
    spool(settings, [orjson.dumps(event) for event, _r, _p in REFUSED_BUT_ROWS], flags=flags)
    drain(Shipper(settings, store))
    assert rows(store, "SELECT count() FROM dead_letters") == [[0]]
    assert rows(store, "SELECT path FROM events ORDER BY path") == sorted(
        [p] for _e, _r, p in REFUSED_BUT_ROWS
    )
    # the row of the array parameter keeps it as its JSON, as normalize does for any non-scalar
    assert rows(store, "SELECT props['k'] FROM events WHERE path = '/a'") == [["[1,2]"]]


def test_what_must_be_there_is_still_the_shippers_to_check_with_the_mark(
    settings: Settings, store: ChdbStore
) -> None:
    """The mark skips the shared format check only: an event without a name or a site is dead-lettered."""
    bodies = [
        orjson.dumps({"site": SITE, "page": {"url": f"https://{SITE}/"}}),
        orjson.dumps({"event_name": "x"}),
    ]
    spool(settings, bodies, flags=CHECKED.encode())
    drain(Shipper(settings, store))
    assert rows(store, "SELECT reason FROM dead_letters ORDER BY reason") == [
        ["event_name is missing or not a non-empty string"],
        ["no site: neither site nor page.url is given"],
    ]


@pytest.mark.parametrize(
    ("headers", "flags"),
    [
        ({}, CHECKED),
        ({b"dnt": b"1"}, "d" + CHECKED),
        ({b"sec-gpc": b"1"}, "g" + CHECKED),
        ({b"dnt": b"1", b"sec-gpc": b"1"}, "dg" + CHECKED),
    ],
)
def test_the_collector_marks_what_it_accepted(
    settings: Settings, headers: dict[bytes, bytes], flags: str
) -> None:
    collector = Collector(settings)
    collector.start()
    try:
        good = orjson.dumps(
            [{"event_name": "pageview", "site": SITE, "page": {"url": f"https://{SITE}/"}}] * 3
        )
        assert collector.handle("POST", "/track", "", headers, "198.51.100.1", good, False).status == 204
        refused = orjson.dumps(REFUSED_BUT_ROWS[0][0])
        assert collector.handle("POST", "/track", "", headers, "198.51.100.1", refused, False).status == 400
    finally:
        collector.stop()
    lines = [
        line
        for segment in sorted(settings.spool_dir.iterdir())
        for line in segment.read_bytes().splitlines()
        if line and not line.startswith(b"#")
    ]
    assert [(parse_record(line).flags, parse_record(line).body) for line in lines] == [(flags, good)]
