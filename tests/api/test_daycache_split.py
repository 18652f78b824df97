"""The day the live events arrive in, built in two pieces (`ReportCache._ensure_split`), gives exactly what
the raw events give, and a change after the cut rebuilds only the second piece.

The cut is the start of the UTC hour before the one of ten minutes before the app's (pinned) present. The
data has sessions across the cut (their events minutes apart on both sides, one at the cut's very
millisecond), sessions across last midnight, sessions whose pageviews are all on one side and other events on
the other, bots and another site's events; every answer is compared with the raw path's (a filter every event
passes) and with a Python computation, in zones with whole-hour and half-hour offsets.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api import dataset
from tests.api.conftest import Api, report_cache
from tests.api.test_daycache import EVERYTHING, PAGES, _row, answers, get, pin_clock

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")


def _site(api: Api, site: str, tz: str) -> int:
    from pixel.server.api.app import open_meta

    return int(
        open_meta(api.settings).insert(
            "sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0}
        )
    )


def _today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def _cut(now: datetime) -> datetime:
    """The cut at a pinned whole hour (`pin_clock`): the start of the hour before the one ten minutes ago."""
    assert now.minute == 0 or now.minute == 30  # a half-hour zone's whole hour
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1 if now.minute == 30 else 2)


def _rows(site: str, tz: str, now: datetime, seed: int) -> list[dict[str, Any]]:
    """Yesterday and today up to `now`: sessions at random, a dozen across the cut, three across last
    midnight; sessions with their pageviews on one side of the cut and a custom event on the other; a bot."""
    rnd = random.Random(seed)
    zone = ZoneInfo(tz)
    midnight = datetime.combine(_today(now, tz), datetime.min.time(), zone).astimezone(UTC)
    cut = _cut(now)
    starts = [midnight - timedelta(hours=20) + timedelta(minutes=rnd.randint(0, 60 * 30)) for _ in range(40)]
    starts += [midnight - timedelta(minutes=rnd.randint(1, 40)) for _ in range(3)]
    starts += [cut - timedelta(minutes=rnd.randint(1, 30)) for _ in range(12)]
    rows: list[dict[str, Any]] = []
    n = 0
    for s, start in enumerate(starts):
        t, visitor = start, f"v{rnd.randint(0, 30)}"
        for _ in range(rnd.randint(1, 5)):
            if t >= now:
                break
            n += 1
            name = "signup" if rnd.random() < 0.15 else "pageview"
            rows.append(_row(n, site, t, visitor, f"{site}-s{s}", name, rnd.choice(PAGES), rnd))
            t += timedelta(minutes=rnd.randint(1, 25), seconds=rnd.randint(0, 59))
    # the cut's very millisecond, and a millisecond before it, in one session
    for k, (moment, name) in enumerate(((cut - timedelta(milliseconds=1), "pageview"), (cut, "pageview"))):
        rows.append(_row(5000 + k, site, moment, "v-edge", f"{site}-edge", name, PAGES[k], rnd))
    # pageviews before the cut, a custom event after it (a bounce: one pageview); and the other way round
    for k, (first, second) in enumerate((("pageview", "signup"), ("signup", "pageview"))):
        for j, (moment, name) in enumerate(
            ((cut - timedelta(minutes=4), first), (cut + timedelta(minutes=6), second))
        ):
            rows.append(
                _row(5100 + 10 * k + j, site, moment, f"v-one-{k}", f"{site}-one-{k}", name, "/docs", rnd)
            )
    bot = _row(6000, site, cut + timedelta(minutes=2), "bot", "bot-s", "pageview", "/", rnd)
    bot["is_bot"] = 1
    other = _row(6001, "elsewhere.example", cut + timedelta(minutes=3), "v-x", "x-s", "pageview", "/", rnd)
    return [*rows, bot, other]


def _live_site(
    api: Api, monkeypatch: pytest.MonkeyPatch, site: str, tz: str, hour: int, seed: int
) -> tuple[int, datetime, list[dict[str, Any]]]:
    """A site in `tz`, the app's clock pinned at `hour`:00 there, `_rows` of yesterday and today inserted."""
    site_id = _site(api, site, tz)
    now = pin_clock(api, monkeypatch, tz, hour)
    rows = _rows(site, tz, now, seed=seed)
    api.store.insert_rows("events", rows)
    return site_id, now, rows


def _expected(rows: list[dict[str, Any]], site: str, tz: str, first: date, last: date) -> dict[str, float]:
    return dataset.summary(dataset.select(rows, first, last, site=site, tz=tz))


def _range(first: date, last: date) -> dict[str, str]:
    return {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}


def _summary(api: Api, site_id: int, **params: Any) -> dict[str, float]:
    return {k: v["value"] for k, v in get(api, site_id, "summary", **params)["metrics"].items()}


@pytest.mark.parametrize(
    ("tz", "hour"), [("Europe/Berlin", 15), ("Asia/Kolkata", 15), ("America/New_York", 9), ("UTC", 23)]
)
def test_a_day_in_two_pieces_equals_the_raw_events(
    api: Api, monkeypatch: pytest.MonkeyPatch, tz: str, hour: int
) -> None:
    site = f"split-{tz.replace('/', '-').lower()}.example"
    site_id, now, rows = _live_site(api, monkeypatch, site, tz, hour, hour)
    today = _today(now, tz)
    for first in (today, today - timedelta(days=1)):
        cached = answers(api, site_id, **_range(first, today))
        split = report_cache(api)._known[(site, tz)].split[today.isoformat()]  # the day was built in two
        assert split.cut == _cut(now)
        assert cached == answers(api, site_id, filters=EVERYTHING, **_range(first, today)), first
        metrics = {k: v["value"] for k, v in cached["summary"]["metrics"].items()}
        assert metrics == _expected(rows, site, tz, first, today), first
    # each piece holds its side's events: the pageviews of the whole-day rows
    pieces = api.store.query(
        """SELECT build, sum(pageviews) FROM day_dimensions WHERE site = {s:String} AND tz = {tz:String}
            AND day = {d:Date} AND dimension = '' GROUP BY build""",
        {"s": site, "tz": tz, "d": today},
    ).rows
    cut = split.cut
    on_day = dataset.select(rows, today, today, lambda e: e["event_name"] == "pageview", site=site, tz=tz)
    assert dict(pieces) == {
        split.head[0]: sum(1 for e in on_day if dataset.ts(e) < cut),
        split.tail[0]: sum(1 for e in on_day if dataset.ts(e) >= cut),
    }


def test_only_the_second_piece_is_rebuilt_for_events_after_the_cut(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, tz = "split-rebuilds.example", "Asia/Kolkata"
    site_id, now, rows = _live_site(api, monkeypatch, site, tz, 18, 3)
    today, cut = _today(now, tz), _cut(now)
    days = _range(today - timedelta(days=1), today)
    rnd = random.Random(4)

    def check(added: list[dict[str, Any]]) -> tuple[int, int]:
        """Add `added`; the answers equal the raw ones and the Python ones; the pieces' builds."""
        rows.extend(added)
        api.store.insert_rows("events", added)
        cached = answers(api, site_id, **days)
        assert cached == answers(api, site_id, filters=EVERYTHING, **days)
        expected = _expected(rows, site, tz, today - timedelta(days=1), today)
        assert {k: v["value"] for k, v in cached["summary"]["metrics"].items()} == expected
        split = report_cache(api)._known[(site, tz)].split[today.isoformat()]
        assert split.cut == cut
        return split.head[0], split.tail[0]

    head, tail = check([])
    # a new session after the cut: the second piece alone
    new_head, new_tail = check(
        [_row(7000, site, now - timedelta(seconds=10), "v-new", "s-new", "pageview", "/", rnd)]
    )
    assert new_head == head and new_tail != tail
    # a session before the cut goes on after it (an hour the first piece's window holds): both pieces
    last = max(
        (r for r in rows if r["session_id"].startswith(f"{site}-s") and dataset.ts(r) < cut), key=dataset.ts
    )
    assert dataset.ts(last) > cut - timedelta(minutes=30)
    going_on = {**last, "event_id": "on-1", "timestamp": dataset.ch(cut + timedelta(minutes=1))}
    head2, tail2 = check([{**going_on, "received_at": going_on["timestamp"]}])
    assert head2 != new_head and tail2 != new_tail
    # a late event of the morning: both pieces
    head3, tail3 = check(
        [_row(7001, site, cut - timedelta(hours=5), "v-late", "s-late", "pageview", "/", rnd)]
    )
    assert head3 != head2 and tail3 != tail2
    # nothing new: nothing rebuilt
    assert check([]) == (head3, tail3)


def test_the_cut_moves_on_with_the_next_rebuild(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    site, tz = "split-moves.example", "Europe/Berlin"
    site_id, now, rows = _live_site(api, monkeypatch, site, tz, 14, 5)
    today = _today(now, tz)
    cache = report_cache(api)
    before = answers(api, site_id, **_range(today, today))
    first = cache._known[(site, tz)].split[today.isoformat()]
    later = now + timedelta(hours=1)
    monkeypatch.setattr(cache, "clock", later.timestamp)
    assert answers(api, site_id, **_range(today, today)) == before  # nothing changed: the pieces stand
    assert cache._known[(site, tz)].split[today.isoformat()] == first
    added = [
        _row(
            8000, site, later - timedelta(minutes=1), "v-later", "s-later", "pageview", "/", random.Random(6)
        )
    ]
    api.store.insert_rows("events", added)
    cached = answers(api, site_id, **_range(today, today))
    moved = cache._known[(site, tz)].split[today.isoformat()]
    assert moved.cut == first.cut + timedelta(hours=1)
    assert moved.head[0] != first.head[0] and moved.tail[0] != first.tail[0]
    assert cached == answers(api, site_id, filters=EVERYTHING, **_range(today, today))
    summary = {k: v["value"] for k, v in cached["summary"]["metrics"].items()}
    assert summary == _expected(rows + added, site, tz, today, today)


def test_changes_within_the_wait_lag_and_a_late_event_holds_both_pieces(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, tz = "split-wait.example", "America/New_York"
    site_id, now, rows = _live_site(api, monkeypatch, site, tz, 16, 8)
    today, cut = _today(now, tz), _cut(now)
    day = _range(today, today)
    cache = report_cache(api)
    before = _summary(api, site_id, **day)
    known = cache._known[(site, tz)]
    rnd = random.Random(9)
    cache.rebuild_min_seconds = 3600.0  # restored by the autouse fixture
    api.store.insert_rows(
        "events", [_row(9000, site, now - timedelta(seconds=5), "v-w1", "s-w1", "pageview", "/", rnd)]
    )
    assert _summary(api, site_id, **day) == before  # the second piece was built less than an hour ago
    cache.rebuild_min_seconds = 0.001
    time.sleep(0.01)
    after_tail = _summary(api, site_id, **day)
    assert after_tail["visitors"] == before["visitors"] + 1
    # a late event and a new one after the cut while the first piece's wait holds: neither piece is rebuilt
    pieces = known.split[today.isoformat()]
    known.head_seconds = 3600.0  # the first piece took an hour to build: it waits ten
    api.store.insert_rows(
        "events",
        [
            _row(9001, site, cut - timedelta(hours=3), "v-w2", "s-w2", "pageview", "/", rnd),
            _row(9002, site, now - timedelta(seconds=3), "v-w3", "s-w3", "pageview", "/", rnd),
        ],
    )
    time.sleep(0.01)
    assert _summary(api, site_id, **day) == after_tail
    assert known.split[today.isoformat()] == pieces
    known.head_seconds = 0.0
    time.sleep(0.01)
    last = _summary(api, site_id, **day)
    assert last["visitors"] == before["visitors"] + 3
    assert last == _summary(api, site_id, filters=EVERYTHING, **day)


def test_just_after_midnight_yesterday_is_the_day_in_two_pieces(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 01:00 in Kolkata is 19:30 UTC: the cut, 18:00 UTC (the hour before 19:20's), is 23:30 yesterday
    site, tz = "split-midnight.example", "Asia/Kolkata"
    site_id, now, rows = _live_site(api, monkeypatch, site, tz, 1, 10)
    today = _today(now, tz)
    week = _range(today - timedelta(days=6), today)
    cached = answers(api, site_id, **week)
    known = report_cache(api)._known[(site, tz)]
    assert list(known.split) == [(today - timedelta(days=1)).isoformat()]
    assert cached == answers(api, site_id, filters=EVERYTHING, **week)
    summary = {k: v["value"] for k, v in cached["summary"]["metrics"].items()}
    assert summary == _expected(rows, site, tz, today - timedelta(days=6), today)
    # a day later the cut is in tomorrow: a report of tomorrow (compared with today) forgets yesterday's pieces
    tomorrow = today + timedelta(days=1)
    monkeypatch.setattr(report_cache(api), "clock", (now + timedelta(days=1, hours=2)).timestamp)
    assert _summary(api, site_id, **_range(tomorrow, tomorrow)) == dataset.summary([])
    assert list(known.split) == [tomorrow.isoformat()]


def test_imported_days_in_two_pieces_count_once_and_yield_to_live_events(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, tz = "split-imported.example", "Europe/Berlin"
    site_id = _site(api, site, tz)
    now = pin_clock(api, monkeypatch, tz, 13)
    today = _today(now, tz)
    imported = {"site": site, "import_id": "i1", "date": today, "value": "", "with_live": 0}
    api.store.insert_rows(
        "imported_aggregates",
        [
            {
                **imported,
                "dimension": "",
                "visitors": 10,
                "pageviews": 25,
                "visits": 12,
                "bounces": 6,
                "visit_duration": 600,
            },
            {
                **imported,
                "dimension": "page",
                "value": "/",
                "visitors": 9,
                "pageviews": 20,
                "visits": 0,
                "bounces": 0,
                "visit_duration": 0,
            },
        ],
    )
    day = _range(today, today)
    summary = _summary(api, site_id, **day)
    assert today.isoformat() in report_cache(api)._known[(site, tz)].split
    assert (summary["visitors"], summary["pageviews"], summary["sessions"]) == (10, 25, 12)
    assert get(api, site_id, "breakdown/page", **day)["rows"] == [
        {"value": "/", "visitors": 9, "pageviews": 20, "events": 20}
    ]
    # a live event after the cut: the day has live data, the imported rows (overlap: skip) give way
    live = _row(
        9500, site, now - timedelta(minutes=2), "v-live", "s-live", "pageview", "/live", random.Random(1)
    )
    api.store.insert_rows("events", [live])
    assert _summary(api, site_id, **day) == dataset.summary([live])
