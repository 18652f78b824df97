"""One bad event never stops ingestion: the collector and the shipper share one event format, the shipper
dead-letters what it cannot store (bounded, without raw IPs) and splits a batch the store refuses, and
/health and /metrics say when the shipper stalls. Real Collector, real Shipper, real chDB in tmp folders."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from pixel.server.collector.core import Collector
from pixel.server.settings import Settings
from pixel.server.shipper import Shipper
from pixel.server.shipper.deadletter import PAYLOAD_MAX, dead_letter, scrub
from pixel.server.shipper.shipper import Batch, encode_rows, store_cannot_write
from pixel.server.spool import SpoolWriter, encode_record
from pixel.server.store import StoreError, StoreUnavailable, dedup_token
from pixel.server.store.chdb_engine import ChdbStore
from pixel.server.storeservice import StoreService

IP = b"203.0.113.77"
NOW_MS = 1_764_260_000_000


def deep(levels: int = 300) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


POISON = {"n": "purchase", "h": "poison.example", "p": {"u": "https://poison.example/"}, "a": {"k": deep()}}
POISON_BODY = b'{"n":"purchase","h":"poison.example","p":{"u":"https://poison.example/"},"a":{"k":' + (
    b"[" * 300 + b"1" + b"]" * 300 + b"}}"
)


def ok_event(i: int, site: str = "fine.example") -> dict[str, Any]:
    return {
        "event_name": "pageview",
        "event_id": f"{site}-{i}",
        "site": site,
        "page": {"url": f"https://{site}/{i}"},
    }


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spool(
    settings: Settings, bodies: list[bytes], received_ms: int = NOW_MS, ip: bytes = IP, flags: bytes = b""
) -> None:
    """Append one record per body (as the collector writes them; without `eventformat.CHECKED` in `flags`, as an
    older collector did) and seal the segment."""
    writer = SpoolWriter(settings.spool_dir, fsync_interval=0)
    for body in bodies:
        writer.append(encode_record(received_ms, ip, b"Mozilla/5.0", b"en", b"", b"", flags, body))
    writer.rotate()
    writer.close()


def rows(store: ChdbStore, sql: str) -> list[list[Any]]:
    return store.query(sql).rows


def drain(shipper: Shipper, limit: int = 20) -> None:
    for _ in range(limit):
        if shipper.step() == 0 and shipper.checkpoint.pending is None:
            return
    raise AssertionError("the shipper did not drain the spool")


# -- the collector -------------------------------------------------------------------------------------


@pytest.fixture
def collector(settings: Settings) -> Any:
    c = Collector(settings)
    c.start()
    yield c
    c.stop()


def post(c: Collector, body: bytes) -> tuple[int, dict[str, Any]]:
    r = c.handle("POST", "/track", "", {}, "198.51.100.1", body, False)
    return r.status, orjson.loads(r.body) if r.body else {}


def get(c: Collector, body: bytes) -> tuple[int, dict[str, Any]]:
    e = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    r = c.handle("GET", "/track", f"e={e}", {}, "198.51.100.1", b"", False)
    return r.status, orjson.loads(r.body) if r.status != 200 else {}


@pytest.mark.parametrize("send", [post, get], ids=["POST", "GET"])
def test_the_poison_pill_is_refused_by_the_collector_with_a_clear_400(
    collector: Collector, send: Any
) -> None:
    assert send(collector, POISON_BODY) == (
        400,
        {
            "error": "invalid event",
            "detail": "parameter k must be a string, number, boolean or null, not an array",
        },
    )
    array = b"[" + orjson.dumps(ok_event(1)) + b"," + POISON_BODY + b"]"
    assert send(collector, array)[1]["detail"] == (
        "item 1: parameter k must be a string, number, boolean or null, not an array"
    )


BAD_EVENTS = [
    (
        {"n": "x", "h": "s.example", "a": {"k": {"nested": 1}}},
        "parameter k must be a string, number, boolean or null, not an object",
    ),
    (
        {"event_name": "x", "site": "s", "params": {"k": [1]}},
        "parameter k must be a string, number, boolean or null, not an array",
    ),
    (
        {"event_name": "x", "site": "s", "extra": {"a": 1}},
        "extra must be a string, number, boolean or null, not an object",
    ),
    (
        {"event_name": "x", "site": "s", "tags": [1, 2]},
        "tags must be a string, number, boolean or null or an object, not an array",
    ),
    (
        {"event_name": "x", "site": "s", "page": {"url": {"u": 1}}},
        "page.url must be a string, number, boolean or null, not an object",
    ),
    (
        {"event_name": "x", "site": "s", "device": {"s": [1]}},
        "device.s must be a string, number, boolean or null, not an array",
    ),
    (
        {"event_name": "x", "site": "s", "params": {f"k{i}": i for i in range(51)}},
        "params has 51 parameters; the limit is 50",
    ),
    (
        {"event_name": "x", "site": "s", "params": {"k" * 65: 1}},
        f"parameter name {'k' * 40}... is longer than 64 characters",
    ),
    ({f"k{i}": i for i in range(65)}, "the event has 65 keys; the limit is 64"),
    (
        {"event_name": "x", "page": {"url": "javascript:alert(1)"}, "site": "s"},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": " JavaScript:alert(document.cookie)"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": "java\tscript:alert(1)"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": "data:text/html,<script>alert(1)</script>"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": "vbscript:msgbox(1)"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": "file:///etc/passwd"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    (
        {"n": "x", "h": "s", "p": {"u": "https:///nohost"}},
        "page.url must be an http(s) URL or a path starting with /",
    ),
    ({"n": "x", "h": "s", "p": {"u": 42}}, "page.url must be a string"),
    ({"n": "x", "h": "s", "p": "https://s/"}, "page must be an object"),
]


@pytest.mark.parametrize(("event", "detail"), BAD_EVENTS, ids=range(len(BAD_EVENTS)))
def test_events_outside_the_format_are_400_with_the_reason(
    collector: Collector, event: dict, detail: str
) -> None:
    assert post(collector, orjson.dumps(event)) == (400, {"error": "invalid event", "detail": detail})


GOOD_EVENTS = [
    {
        "n": "pageview",
        "h": "",
        "p": {"u": "https://shop.example/?q=1", "t": "Shop", "r": ""},
        "d": {"s": "1x1", "r": 2, "w": False},
        "a": {},
    },
    {"n": "x", "h": "s", "a": {"s": "v", "n": 1.5, "b": True, "z": None, "": "empty name"}},
    {"n": "x", "p": {"u": "HTTPS://Shop.Example/A"}},
    {"n": "x", "p": {"u": "//cdn.example/page"}},
    {"n": "x", "h": "s", "p": {"u": "/path/only"}},
    {"event_name": "x", "site": "s", "page": {"url": ""}, "p": "not an alias without n"},
]


@pytest.mark.parametrize("event", GOOD_EVENTS, ids=range(len(GOOD_EVENTS)))
def test_what_the_tracker_sends_is_accepted(collector: Collector, event: dict) -> None:
    assert post(collector, orjson.dumps(event))[0] == 204


INCOMPLETE = [
    ({"event_name": "\x00 ", "site": "s"}, "event_name is missing or not a non-empty string"),
    ({"n": 5, "h": "s"}, "event_name is missing or not a non-empty string"),
    ({"site": "s"}, "event_name is missing or not a non-empty string"),
    ({"n": "x", "p": {"u": "/relative/path"}}, "no site: neither site nor page.url is given"),
    ({"n": "x", "h": " \x00"}, "no site: neither site nor page.url is given"),
    ({"n": "x", "p": {"u": "http://[::1/"}}, "page.url is not a URL"),
]


def test_accepted_events_without_a_name_or_a_site_end_as_dead_letters(
    collector: Collector, settings: Settings, store: ChdbStore
) -> None:
    """What an event must have is the shipper's to check: accepted, then dead-lettered with the reason."""
    for event, _reason in INCOMPLETE:
        assert post(collector, orjson.dumps(event))[0] == 204
    collector.spool.close()  # type: ignore[union-attr]
    drain(Shipper(settings, store))
    assert rows(store, "SELECT reason FROM dead_letters ORDER BY offset") == [[r] for _e, r in INCOMPLETE]
    assert rows(store, "SELECT count() FROM events") == [[0]]


# -- the shipper ---------------------------------------------------------------------------------------


def test_an_old_spool_with_the_poison_pill_ships_everything_else(
    settings: Settings, store: ChdbStore
) -> None:
    """Records written before the shared check (by an older collector): the poison is dead-lettered, the
    events before and after it, in the same request and in others, are stored. Fails before the fix:
    step() raised 'Recursion limit reached' for the whole batch, every time."""
    mixed = b"[" + orjson.dumps(ok_event(2)) + b"," + POISON_BODY + b"," + orjson.dumps(ok_event(3)) + b"]"
    spool(settings, [orjson.dumps([ok_event(1)]), mixed, orjson.dumps(ok_event(4, "other.example"))])
    shipper = Shipper(settings, store)
    drain(shipper)
    assert rows(store, "SELECT event_id FROM events ORDER BY event_id") == [
        ["fine.example-1"],
        ["fine.example-2"],
        ["fine.example-3"],
        ["other.example-4"],
    ]
    # too deep to serialise again: the payload is the request's body as received
    assert rows(store, "SELECT reason, payload FROM dead_letters") == [
        ["parameter k must be a string, number, boolean or null, not an array", mixed.decode()]
    ]
    assert shipper.stats.dead == 1 and shipper.stats.inserted == 4
    assert shipper.checkpoint.pending is None


def test_dead_letters_hold_no_raw_ip_and_are_bounded(settings: Settings, store: ChdbStore) -> None:
    ip = "2001:db8:85a3::8a2e:370:7334"
    bad = {
        "n": "x",
        "h": "s.example",
        "p": {"u": f"https://s.example/?ip={ip}&v4=192.0.2.200&enc=2001%3Adb8%3A%3A1"},
        "a": {"k": ["x" * 100_000]},
    }
    spool(settings, [orjson.dumps(bad), b"not json 192.0.2.9"], ip=ip.encode())
    with open(next(settings.spool_dir.glob("*.seg")), "ab") as f:
        f.write(b"1764260000000\t" + ip.encode() + b'\tua\ten\t\t\t\t{"torn')  # a torn last record
    drain(Shipper(settings, store))
    dead = rows(store, "SELECT reason, payload FROM dead_letters ORDER BY offset")
    assert [reason for reason, _ in dead] == [
        "parameter k must be a string, number, boolean or null, not an array",
        "unreadable record: invalid literal, expected 'null': line 1 column 1 (char 0)",
        "torn record at the end of a segment",
    ]
    payload = dead[0][1]
    assert ip not in payload and "192.0.2.200" not in payload and "2001%3Adb8%3A%3A1" not in payload
    assert "?ip=[ip]&v4=[ip]&enc=[ip]" in payload
    assert len(payload) <= PAYLOAD_MAX + 40 and payload.endswith(" more characters]")
    assert dead[1][1] == "not json [ip]"
    assert dead[2][1] == '{"torn'
    for _, text in dead:
        assert ip not in text


def test_scrub_replaces_addresses_and_keeps_what_only_looks_like_one() -> None:
    assert scrub("a 192.0.2.1, [2001:db8::1]:80, ::1, fe80::1 x", "") == "a [ip], [[ip]]:80, [ip], [ip] x"
    assert scrub("12:30:45 v1.2.3.400 aa:bb:cc:dd:ee:ff", "") == "12:30:45 v1.2.3.400 aa:bb:cc:dd:ee:ff"
    assert scrub("id=zz-10.0.0.1-zz nul\x00", "zz-10.0.0.1-zz") == "id=[ip] nul\\u0000"
    # the request's own address in the spellings stored rows are scrubbed of (privacy.scrub_text)
    assert scrub("u=/ip/203-0-113-7/x&v=203_000_113_007", "203.0.113.7") == "u=/ip/[ip]/x&v=[ip]"
    assert scrub("h=2001-db8-0-0-0-0-0-1.example", "2001:db8::1") == "h=[ip].example"
    letter = dead_letter(NOW_MS, "seg", 7, "refused near 192.0.2.5 " + "r" * 5000, b"\xff\x00{}")
    assert letter["reason"].startswith("refused near [ip] rrr") and len(letter["reason"]) < 1100
    assert letter["payload"] == "\ufffd\\u0000{}"


def test_nul_bytes_are_stored_in_no_string_column(settings: Settings, store: ChdbStore) -> None:
    event = {
        "n": "sign\x00up",
        "i": "id\x001",
        "h": "nul.example",
        "v": "vis\x00itor",
        "p": {"u": "https://nul.example/a\x00b?q=\x00", "t": "ti\x00tle", "r": "https://ref.example/\x00"},
        "d": {"s": "1x\x001", "l": "en\x00", "z": "Europe/\x00Berlin"},
        "a": {"k\x00ey": "va\x00lue", "plain": "ok"},
    }
    spool(settings, [orjson.dumps(event)])
    drain(Shipper(settings, store))
    (row,) = store.query("SELECT * FROM events").dicts()
    assert (row["event_name"], row["event_id"], row["title"], row["props"]) == (
        "signup",
        "id1",
        "title",
        {"key": "value", "plain": "ok"},
    )
    assert row["timezone"] == "Europe/Berlin" and row["language"] == "en" and row["screen"] == "1x1"
    for name, value in row.items():
        assert "\x00" not in str(value), name


def test_encode_rows_removes_nul_from_columns_added_after_normalize() -> None:
    batch = [{"a": "x\x00y", "props": {"k\x00": "v\x00"}, "n": 1}, {"b": "clean"}]
    assert encode_rows(batch) == b'[{"a":"xy","props":{"k":"v"},"n":1},{"b":"clean"}]'


def test_a_javascript_url_in_an_old_spool_is_dead_lettered_not_stored_as_a_path(
    settings: Settings, store: ChdbStore
) -> None:
    events = [
        {"n": "pageview", "h": "x.example", "p": {"u": "javascript:alert(document.domain)"}},
        {"event_name": "pageview", "site": "x.example", "page": {"path": "javascript:alert(1)"}},
        {
            "event_name": "pageview",
            "site": "x.example",
            "page": {"url": "https://x.example/ok", "referrer": "javascript:evil()"},
        },
    ]
    spool(settings, [orjson.dumps(events)])
    drain(Shipper(settings, store))
    assert rows(store, "SELECT reason FROM dead_letters") == [
        ["page.url must be an http(s) URL or a path starting with /"]
    ]
    assert rows(store, "SELECT path, url, referrer FROM events ORDER BY path") == [
        ["", "", ""],
        ["/ok", "https://x.example/ok", ""],
    ]


def test_a_record_with_an_impossible_receive_time_is_dead_lettered(
    settings: Settings, store: ChdbStore
) -> None:
    """The store refuses a DateTime64 beyond its range for the whole insert; such a record (a corrupt or
    forged spool line) is unreadable, and the others are stored."""
    spool(settings, [orjson.dumps(ok_event(1))], received_ms=10**22)
    spool(settings, [orjson.dumps(ok_event(2))])
    drain(Shipper(settings, store))
    assert rows(store, "SELECT event_id FROM events") == [["fine.example-2"]]
    assert rows(store, "SELECT reason, received_at FROM dead_letters") == [
        [f"unreadable record: receive time {10**22} is out of range", "1970-01-01 00:00:00.000"]
    ]


# -- a batch the store refuses ------------------------------------------------------------------------


def refused_batch(shipper: Shipper, n: int, bad: set[int]) -> Batch:
    """A batch of n rows of which those in `bad` hold a value the store refuses (a DateTime64 out of
    range: what a future bug or an older shipper could produce)."""
    spool(shipper.settings, [orjson.dumps(ok_event(i)) for i in range(n)])
    batch = shipper.reader.plan(shipper.checkpoint.offsets)
    assert len(batch.rows) == n
    for i in bad:
        batch.rows[i]["timestamp"] = 1e19
    return batch


class CountingStore(ChdbStore):
    """The real chDB store, counting the inserts it is asked for; `crash_after` stops the process (as a
    crash would) at the given insert."""

    calls: list[tuple[str, int, str]]
    crash_after: int = 0

    def insert_json(self, table: str, data: bytes, *, token: str | None = None, settings: Any = None) -> None:
        self.calls.append((table, len(orjson.loads(data)), token or ""))
        if self.crash_after and len(self.calls) == self.crash_after:
            raise SystemExit("crash")
        super().insert_json(table, data, token=token, settings=settings)


@pytest.fixture
def counting(tmp_path: Path) -> Any:
    s = CountingStore(tmp_path / "data" / "store")
    s.migrate()
    s.calls = []
    yield s
    s.close()


def test_a_refused_batch_is_split_until_the_bad_rows_are_dead_lettered(
    settings: Settings, counting: CountingStore
) -> None:
    shipper = Shipper(settings, counting)
    batch = refused_batch(shipper, 16, {3, 11})
    token = dedup_token(batch.ranges)
    shipper.cycle.begin(batch, token)
    shipper.inserter.insert(batch, token)
    shipper.cycle.commit(batch)
    assert rows(counting, "SELECT count() FROM events") == [[14]]
    reasons = rows(
        counting, "SELECT reason, JSONExtractString(payload, 'event_id') FROM dead_letters ORDER BY 2"
    )
    assert [r[1] for r in reasons] == ["fine.example-11", "fine.example-3"]
    assert all(r[0].startswith("store refused: Code: 407.") for r in reasons)
    sizes = [n for table, n, _ in counting.calls if table == "events"]
    # 16 refused -> 0-7 refused -> 0-3 refused -> 0-1 in, 2-3 refused -> 2 in, 3 alone refused; 4-7 in;
    # 8-15 refused -> 8-11 refused -> 8-9 in, 10-11 refused -> 10 in, 11 alone refused; 12-15 in
    assert sizes == [16, 8, 4, 2, 2, 1, 1, 4, 8, 4, 2, 2, 1, 1, 4]
    assert shipper.stats.refused_batches == 1 and shipper.stats.dead == 2 and shipper.stats.inserted == 14
    assert shipper.checkpoint.pending is None


def test_a_crash_mid_split_neither_loses_nor_duplicates(
    settings: Settings, counting: CountingStore, tmp_path: Path
) -> None:
    shipper = Shipper(settings, counting)
    batch = refused_batch(shipper, 16, {3, 11})
    bad_ids = {batch.rows[3]["event_id"], batch.rows[11]["event_id"]}
    token = dedup_token(batch.ranges)
    shipper.cycle.begin(batch, token)
    counting.crash_after = 9  # the first half is in, the second half's split under way
    with pytest.raises(SystemExit):
        shipper.inserter.insert(batch, token)
    landed = rows(counting, "SELECT count() FROM events")[0][0]
    assert 0 < landed < 14
    # the restart: the pending batch is replayed, rows made again from the spool (the bad rows too)
    counting.crash_after = 0
    restarted = Shipper(settings, counting)
    assert restarted.checkpoint.pending is not None
    replay = restarted.reader.replay(restarted.checkpoint.pending.ranges)
    for row in replay.rows:
        if row["event_id"] in bad_ids:
            row["timestamp"] = 1e19
    restarted.inserter.insert(replay, restarted.checkpoint.pending.token)
    restarted.cycle.commit(replay)
    assert rows(counting, "SELECT count(), uniqExact(event_id) FROM events") == [[14, 14]]  # no FINAL needed
    assert rows(counting, "SELECT count() FROM dead_letters") == [[2]]


def test_a_store_that_cannot_write_is_retried_not_split(settings: Settings, store: ChdbStore) -> None:
    for message in (
        "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)",
        "Code: 75. DB::Exception: Cannot write to file: No space left on device. (CANNOT_WRITE_TO_FILE_DESCRIPTOR)",
        "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
        "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)",
    ):
        assert store_cannot_write(StoreError(message)), message
    assert not store_cannot_write(
        StoreError("Code: 407. DB::Exception: Numeric value is out of range (DECIMAL_OVERFLOW)")
    )
    # a refusal quoting the data decides by its code, whatever the data says
    assert not store_cannot_write(StoreError("Code: 27. Cannot parse input: 'No space left on device'"))
    assert store_cannot_write(StoreError("Code: 60. DB::Exception: Table pixel.events does not exist"))
    assert store_cannot_write(StoreError("std::exception: No space left on device"))
    assert not store_cannot_write(
        StoreError("Code: 27. DB::Exception: Cannot parse input (CANNOT_PARSE_INPUT_ASSERTION_FAILED)")
    )

    class FullDisk(ChdbStore):
        def insert_json(
            self, table: str, data: bytes, *, token: str | None = None, settings: Any = None
        ) -> None:
            raise StoreError(
                "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)"
            )

    store.close()
    full = FullDisk(settings.store_dir)
    try:
        spool(settings, [orjson.dumps(ok_event(i)) for i in range(4)])
        shipper = Shipper(settings, full)
        with pytest.raises(StoreUnavailable):
            shipper.step()
        assert shipper.checkpoint.pending is not None and shipper.stats.dead == 0
        assert rows(full, "SELECT count() FROM dead_letters") == [[0]]
    finally:
        full.close()
    store._session = None  # closed above; the fixture's close is a no-op now


# -- health and metrics --------------------------------------------------------------------------------


def test_health_and_metrics_report_a_stalled_shipper(settings: Settings, store: ChdbStore) -> None:
    clock = Clock(NOW_MS / 1000 + 5)
    service = StoreService(settings, store, clock=clock)
    assert service.health()["status"] == "ok"
    spool(settings, [orjson.dumps(ok_event(1))], received_ms=NOW_MS)
    clock.now += 59
    assert service.health(details=True) | {"pid": 0, "uptime_seconds": 0} == {
        "status": "ok",
        "reasons": [],
        "store": "chdb",
        "store_reachable": True,
        "pid": 0,
        "last_error": "",
        "events_inserted": 0,
        "events_dead": 0,
        "refused_batches": 0,
        "backlog_bytes": service.shipper.backlog_bytes(),
        "stalled_seconds": 59.0,
        "oldest_unshipped_seconds": 64.0,
        "uptime_seconds": 0,
        "sessions_table": None,  # a new store: no sessions-table backfill pending
    }
    clock.now += 2  # past PIXEL_SHIPPER_STALL_SECONDS (60) without progress, the spool not empty
    health = service.health()
    assert health == {
        "status": "degraded",
        "reasons": ["the shipper has not advanced for 61 s while the spool holds unshipped events"],
        "store": "chdb",
        "store_reachable": True,
    }
    text = service.render_metrics().decode()
    assert "\npixel_spool_oldest_unshipped_seconds 66.0\n" in text
    assert "\npixel_shipper_stalled_seconds 61.0\n" in text
    assert "\npixel_healthy 0\n" in text
    assert service.shipper.step() == 1  # it ships: the checkpoint advances
    assert service.health()["status"] == "ok"
    text = service.render_metrics().decode()
    assert "\npixel_spool_oldest_unshipped_seconds 0.0\n" in text and "\npixel_healthy 1\n" in text
    clock.now += 3600  # idle for an hour with nothing to ship: not stalled
    assert service.health()["status"] == "ok"
    assert service.shipper.stalled_for() == 0.0


def test_a_stall_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"PIXEL_SHIPPER_STALL_SECONDS": "5"}).shipper_stall_seconds == 5.0
    assert Settings().shipper_stall_seconds == 60.0


def test_first_unshipped_receive_time_skips_the_header(settings: Settings) -> None:
    from pixel.server.shipper.segments import first_received_ms, list_segments

    spool(settings, [b"{}", b"{}"], received_ms=NOW_MS)
    (segment,) = list_segments(settings.spool_dir)
    assert first_received_ms(segment.path, 0) == NOW_MS
    assert first_received_ms(segment.path, segment.size()) == 0


def test_dead_letters_the_store_refuses_are_stored_bare(settings: Settings, counting: CountingStore) -> None:
    shipper = Shipper(settings, counting)
    letter = dead_letter(NOW_MS, "seg-1", 42, "event_name is missing", b'{"x":1}')
    letter["received_at"] = 1e19  # a value the store refuses (what an older shipper's bug could make)
    batch = Batch(ranges=[("seg-1", 0, 100)], dead=[letter])
    shipper.inserter.insert(batch, "t0ken")
    assert rows(counting, "SELECT segment, offset, reason, payload, received_at FROM dead_letters") == [
        ["seg-1", 42, "event_name is missing", "", "1970-01-01 00:00:00.000"]
    ]
    assert [table for table, _n, _t in counting.calls] == ["dead_letters", "dead_letters"]


def test_health_over_asgi_shows_details_to_nobody_without_the_api(
    settings: Settings, store: ChdbStore
) -> None:
    import asyncio

    service = StoreService(settings, store)
    assert service.api is not None  # installed here; a token that is not one gets no details
    scope = {
        "type": "http",
        "path": "/health",
        "method": "GET",
        "headers": [(b"authorization", b"Bearer nope")],
    }

    async def call() -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await service(scope, None, send)
        return orjson.loads(sent[1]["body"])

    expected = {"status": "ok", "reasons": [], "store": "chdb", "store_reachable": True}
    assert asyncio.run(call()) == expected
    service.api = None
    assert asyncio.run(call()) == expected


def test_split_parts_with_repeated_event_ids_keep_every_good_row(
    settings: Settings, counting: CountingStore
) -> None:
    """A client may repeat one event id on several sites: two parts of a split never share a token, so the
    store's insert deduplication drops no part that had not landed."""
    shipper = Shipper(settings, counting)
    spool(settings, [orjson.dumps({**ok_event(0, f"s{i}.example"), "event_id": "same"}) for i in range(8)])
    batch = shipper.reader.plan(shipper.checkpoint.offsets)
    batch.rows[5]["timestamp"] = 1e19
    token = dedup_token(batch.ranges)
    shipper.inserter.insert(batch, token)
    assert rows(counting, "SELECT site FROM events ORDER BY site") == [
        [f"s{i}.example"] for i in range(8) if i != 5
    ]
    tokens = [t for table, _n, t in counting.calls if table == "events"]
    assert len(tokens) == len(set(tokens)) == 7  # 8, 4+4 (4 ok), 2+2 (2 ok), 1+1
    assert all(t.startswith(token + "p") for t in tokens[1:])
