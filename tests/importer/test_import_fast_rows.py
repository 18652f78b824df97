"""The import core's fast row path (`rowcache.RowTemplates`, the per-day cache, the cyclic GC paused over a batch)
makes exactly the rows the plain path makes: `normalize` of the event, then the live enrichment, line by line.

The plain path is written out here as the oracle (`reference_rows`: what `run.LineProcessor.process` did before
the fast path), run with the same salts on a second enricher, and compared row for row (every column, its value
and the columns' order) with the import core's rows, on generated lines holding pages, assets, bots, IPv6 and
IPv4 clients, the client's own address echoed in the URL and the referrer, PII parameters, other hosts, bad and
over-long lines, plain and gzip. Then the row templates themselves: a bounded cache that starts over, a refused
page remembered with its reason, a new `props` dict per row; and the GC paused while lines are read.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from pixel.server.enrich import RequestFacts
from pixel.server.importer import run
from pixel.server.importer.accesslog import MAX_LINE
from pixel.server.importer.hits import Hit, Source
from pixel.server.importer.lines import TOO_LONG, read_lines
from pixel.server.importer.rowcache import RowTemplates
from pixel.server.importer.sources import ACCESSLOG, SOURCES, accesslog_line
from pixel.server.settings import Settings
from pixel.server.shipper.normalize import BadEvent, normalize
from pixel.server.store.chdb_engine import ChdbStore

SITE = "example.com"
CITY = Path(__file__).parent.parent / "enrich" / "data" / "GeoLite2-City-Test.mmdb"  # MaxMind's test database
SALTS = {f"2023-01-{d:02d}": f"{d:02d}" * 32 for d in range(1, 32)}
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
    "-",
]
ADDRESSES = [
    "81.2.69.142",
    "216.160.83.56",
    "2001:480::1",
    "203.0.113.7",
    "198.51.100.4",
    "2001:db8::1",
    "2001:db8:0:0:0:0:0:2",
    "::ffff:192.0.2.9",
    "10.1.2.3",
]


def generated_lines(count: int, seed: int = 7) -> list[str]:
    """A mixed log over three days of January 2023, in time order."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        second = i * 3 * 86_400 // count
        day, rest = second // 86_400 + 1, second % 86_400
        when = f"{day:02d}/Jan/2023:{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d} +0000"
        ip = rng.choice(ADDRESSES)
        roll = rng.random()
        if roll < 0.15:
            target = f"/static/app.{rng.choice(['css', 'js', 'png'])}"
        elif roll < 0.2:
            target = f"/echo/{ip}?from={ip}"  # the client's own address in the URL: scrubbed
        elif roll < 0.25:
            target = "/signup?email=someone%40example.org&utm_source=news&ref=1"  # a PII parameter
        elif roll < 0.28:
            target = "http://www.example.com/absolute?x=1"
        elif roll < 0.3:
            target = "http://other.example.net/elsewhere"  # another site
        else:
            target = f"/blog/post-{rng.randrange(12)}" + (
                "?utm_source=x&gclid=abc" if rng.random() < 0.2 else ""
            )
        method = "POST" if rng.random() < 0.05 else "GET"
        status = rng.choice([200, 200, 200, 304, 404, 500])
        referrer = rng.choice(
            ["-", "https://www.google.com/", f"http://{ip}/page", "https://news.ycombinator.com/"]
        )
        agent = rng.choice(AGENTS)
        line = f'{ip} - - [{when}] "{method} {target} HTTP/1.1" {status} 512 "{referrer}" "{agent}"'
        kind = rng.random()
        if kind < 0.03:
            line = "this is not a log line"
        elif kind < 0.05:
            line = f'{ip} - - [{when}] "GET /common/format HTTP/1.0" 200 99'  # common format
        elif kind < 0.06:
            line = line.replace("Jan/2023", "Foo/2023")  # a bad time
        lines.append(line)
    lines.insert(count // 2, "x" * (MAX_LINE + 10))
    return lines


def reference_rows(
    settings: Settings, lines: list[str], keep_dropped: bool = False
) -> tuple[list[dict[str, Any]], run.Preview]:
    """The plain path: every line parsed, its event normalized and enriched (as `process` did before). Lines the
    site's rules drop are counted by reason with `keep_dropped` (else none may be dropped)."""
    enricher, _salt = run.make_enricher(settings, dict(SALTS))
    sites = {SITE, "www." + SITE}
    out = run.Preview()
    rows: list[dict[str, Any]] = []
    offset = 0
    for number, text in enumerate(lines, 1):
        line_offset, offset = offset, offset + len(text.encode()) + 1
        out.lines += 1
        parsed = accesslog_line(text if len(text) <= MAX_LINE else TOO_LONG)
        if not isinstance(parsed, Hit):
            if isinstance(parsed, str):
                out.skipped[parsed] += 1
            else:
                out.malformed_count += 1
                out.malformed.append((number, parsed.reason))
            continue
        host = parsed.host or SITE
        out.hosts[host] += 1
        if host not in sites:
            out.skipped[run.OTHER_HOST] += 1
            continue
        url = f"https://{host}{parsed.path}" + (f"?{parsed.query}" if parsed.query else "")
        event: dict[str, Any] = {
            "event_name": parsed.event_name,
            "ts": parsed.ts_ms,
            "site": SITE,
            "event_id": hashlib.blake2b(f"test:{line_offset}".encode(), digest_size=16).hexdigest(),
            "page": {"url": url, "referrer": parsed.referrer, "title": parsed.title},
        }
        try:
            row = normalize(event, parsed.ts_ms, min_ms=0, segment="", offset=line_offset, index=0)
        except BadEvent as exc:
            out.skipped[f"not storable ({exc})"] += 1
            continue
        facts = RequestFacts(parsed.ts_ms, parsed.ip, parsed.user_agent, run.UNKNOWN_LANGUAGE, "")
        if not enricher.enrich(row, event, facts):
            assert keep_dropped
            (reason,) = [r for r, n in enricher.dropped.items() if n]
            out.skipped[f"site rules ({reason})"] += 1
            enricher.dropped.clear()
            continue
        if row.get("is_bot"):
            out.skipped[run.BOT] += 1
            continue
        row["import_id"] = "test"
        out.rows += 1
        out.days[run._day(parsed.ts_ms)] += 1
        rows.append(row)
    return rows, out


def core_rows(settings: Settings, path: Path) -> tuple[list[dict[str, Any]], run.Preview]:
    """The import core's rows (those it made as JSON bytes read back) and its counts."""
    processor = run.LineProcessor(settings, SITE, "test", set(), dict(SALTS))
    out = run.Preview()
    rows: list[run.Row] = []
    for number, offset, _end, text in read_lines(path):
        processor.process(number, offset, text, out, rows)
    return [orjson.loads(row) if type(row) is bytes else row for row in rows], out


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_the_fast_path_makes_the_plain_paths_rows(tmp_path: Path, compress: bool) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data", geoip_db=str(CITY))
    lines = generated_lines(3000)
    path = tmp_path / ("access.log.gz" if compress else "access.log")
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)

    expected, expected_out = reference_rows(settings, lines)
    got, got_out = core_rows(settings, path)

    assert len(got) == len(expected) > 500
    for mine, theirs in zip(got, expected, strict=True):
        # every column and its value, in JSON (1 and 1.0 differ); the order of the columns is not kept: a
        # JSONEachRow insert reads them by name
        assert orjson.dumps(mine, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            theirs, option=orjson.OPT_SORT_KEYS
        )
    assert got_out.skipped == expected_out.skipped
    assert got_out.days == expected_out.days
    assert got_out.hosts == expected_out.hosts
    assert got_out.malformed_count == expected_out.malformed_count
    assert got_out.malformed == expected_out.malformed[: run.MALFORMED_SHOWN]
    # the generated mix holds each case the fast path must get right
    assert {"bot", "static asset or file", run.OTHER_HOST} <= set(got_out.skipped)
    assert any(row["url"].startswith("https://example.com/echo/[ip]") for row in got)
    assert any("[ip]" in row["referrer"] for row in got)
    assert not any("someone" in row["url"] for row in got)
    assert any(row["url"].startswith("https://www.example.com/absolute") for row in got)
    assert {row.get("country") for row in got} >= {"GB", "US"}  # the test database knows some addresses


def test_row_templates_start_over_when_full_and_keep_refusals() -> None:
    def event(url: str, event_id: str, ts: int) -> dict[str, Any]:
        return {"event_name": "pageview", "ts": ts, "site": SITE, "event_id": event_id, "page": {"url": url}}

    def plain(url: str, event_id: str, ts: int) -> dict[str, Any]:
        return normalize(event(url, event_id, ts), ts, min_ms=0, segment="", offset=0, index=0)

    templates = RowTemplates(limit=2)
    seen = []
    for i, url in enumerate(["https://example.com/a", "https://example.com/b", "https://example.com/c"] * 2):
        ts = 1_672_531_200_000 + i * 1500
        row = templates.row(event(url, f"id{i}", ts), "pageview", url, "", "", ts, f"id{i}")
        assert isinstance(row, dict)
        assert list(row.items()) == list(plain(url, f"id{i}", ts).items())
        seen.append(row)
        assert len(templates._made) <= 2
    seen[0]["props"]["k"] = "v"  # the enrichment writes into props: no other row shares it
    assert all(row["props"] == {} for row in seen[1:])

    bad = "https://example.com/x"
    refusing = RowTemplates()  # an event normalize refuses (a blank name): the reason, once made
    nameless = {"event_name": " ", "ts": 1, "site": SITE, "event_id": "x", "page": {"url": bad}}
    with pytest.raises(BadEvent) as raised:
        normalize(dict(nameless), 1, min_ms=0, segment="", offset=0, index=0)
    for _ in range(2):  # made once, then remembered
        assert refusing.row(nameless, " ", bad, "", "", 1, "x") == f"not storable ({raised.value})"


def test_the_cyclic_gc_is_paused_while_lines_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "access.log"
    path.write_text("\n".join(generated_lines(200)) + "\n")
    states: list[bool] = []

    def parser(text: str) -> Any:
        states.append(gc.isenabled())
        return accesslog_line(text)

    source = Source("accesslog", ACCESSLOG.what, ACCESSLOG.check, lambda _path: parser)
    assert gc.isenabled()
    shown = run.preview(settings, None, path, SITE, source=source)
    assert shown.rows > 0 and len(states) == 200  # the over-long line is malformed before the parser
    assert not any(states)
    assert gc.isenabled()


class NotingStore(ChdbStore):
    """The real chDB store; each insert of events but the last (`waiting` of them) first waits (up to `patience`
    s, generous for a loaded machine) for the import to read more lines than it had read when it handed that
    batch over (`submitted`, noted by `NotingExecutor`), and notes whether it did: with the insert in a second
    thread, the next batch's lines go on. Without it, the reader is blocked on this insert and the wait runs
    out. (Counted from the hand-over, not from the insert's start: the reader may have read the whole next
    batch before the insert thread runs.)"""

    def __init__(
        self, folder: Path, read: list[int], submitted: list[int], patience: float, waiting: int
    ) -> None:
        super().__init__(folder)
        self.read, self.submitted, self.patience, self.waiting = read, submitted, patience, waiting
        self.overlapped: list[bool] = []

    def insert_json(self, table: str, data: bytes, *, token: str | None = None, settings: Any = None) -> None:
        if table == "events" and len(self.overlapped) < self.waiting:
            before, deadline = self.submitted[len(self.overlapped)], time.monotonic() + self.patience
            while len(self.read) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            self.overlapped.append(len(self.read) > before)
        super().insert_json(table, data, token=token, settings=settings)


def noting_executor(read: list[int], submitted: list[int]) -> type[ThreadPoolExecutor]:
    """The import's executor, noting how many lines were read when each batch's insert was handed to it."""

    class NotingExecutor(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            submitted.append(len(read))
            return super().submit(fn, *args, **kwargs)

    return NotingExecutor


def test_a_batch_is_inserted_while_the_next_ones_lines_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    lines = generated_lines(899)  # and an over-long one: 900 lines, three batches
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    read: list[int] = []

    def parser(text: str) -> Any:
        read.append(1)
        return accesslog_line(text)

    monkeypatch.setitem(
        SOURCES, "accesslog", Source("accesslog", ACCESSLOG.what, ACCESSLOG.check, lambda _path: parser)
    )
    submitted: list[int] = []
    monkeypatch.setattr(run, "ThreadPoolExecutor", noting_executor(read, submitted))
    store = NotingStore(tmp_path / "data" / "store", read, submitted, patience=60.0, waiting=2)
    store.migrate()
    try:
        record = run.run(settings, store, run.start(settings, store, path, SITE), batch_lines=300)
        assert record.status == "done" and record.offset == path.stat().st_size
        # batches 1 and 2 landed while the next one's lines were read (the last has nothing after it)
        assert store.overlapped == [True, True]
        expected, _ = reference_rows(settings, lines)
        assert store.scalar("SELECT count() FROM events") == record.rows == len(expected)
        assert record.skipped == dict(core_rows(settings, path)[1].skipped)
    finally:
        store.close()
