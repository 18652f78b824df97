"""The report cache (per-day aggregates) gives exactly what the raw events give.

Each report is asked twice: as is (no filter: answered from the cache) and with a filter every event
passes (answered from the raw events), on a generated set with sessions across local midnights,
sessions without pageviews, bots, other sites, in three zones (whole-hour DST, a :30 offset, DST in
another month). Then late events and client-retry copies (same event_id, a new insert) arrive, and the
cached answers must follow. Summaries are also checked against a plain Python computation.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api import dataset
from tests.api.conftest import Api, report_cache

pytestmark = pytest.mark.usefixtures("rebuild_at_once")

ENGINES = ("chdb", "clickhouse")

ZONES = {
    "berlin.example": "Europe/Berlin",
    "kolkata.example": "Asia/Kolkata",
    "newyork.example": "America/New_York",
}
FIRST, LAST = date(2024, 3, 6), date(2024, 3, 13)  # New York changes to DST on 10 March
RANGE = {"period": "custom", "from": FIRST.isoformat(), "to": LAST.isoformat()}
# A filter every event passes that no cache carries: the raw path, same rows.
EVERYTHING = json.dumps([["region", "not_contains", "never-in-any-region"]])
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs", "/signup"]
BREAKDOWNS = (
    "page",
    "entry_page",
    "exit_page",
    "event",
    "country",
    "browser",
    "source",
    "referrer",
    "device",
    "utm_campaign",
    "channel",
)


def _row(
    n: int, site: str, t: datetime, visitor: str, session: str, name: str, path: str, rnd: random.Random
) -> dict[str, Any]:
    src = rnd.choice(["", "Google", "Twitter"])
    return {
        "timestamp": dataset.ch(t),
        "received_at": dataset.ch(t),
        "site": site,
        "event_id": f"{site}-{n}",
        "event_name": name,
        "visitor_id": visitor,
        "session_id": session,
        "path": path,
        "host": site,
        "country": rnd.choice(["DE", "IN", "US"]),
        "browser": rnd.choice(["Chrome", "Firefox"]),
        "device_type": rnd.choice(["desktop", "mobile"]),
        "source": src,
        "channel": "Direct" if not src else "Search",
        "ref_host": src.lower() + ".com" if src else "",
        "utm_campaign": rnd.choice(["", "", "spring"]),
        "props": {},
        "is_bot": 0,
    }


def generate(site: str, tz: str, seed: int = 11) -> list[dict[str, Any]]:
    """Sessions of 1-5 events 1-25 minutes apart; every local midnight has sessions across it."""
    rnd = random.Random(seed)
    zone = ZoneInfo(tz)
    rows: list[dict[str, Any]] = []
    n = 0
    starts = []
    for day in range(-2, 12):
        midnight = datetime.combine(FIRST + timedelta(days=day), datetime.min.time(), zone).astimezone(UTC)
        starts += [midnight - timedelta(minutes=rnd.randint(1, 40)) for _ in range(3)]  # across midnight
        starts += [midnight + timedelta(minutes=rnd.randint(0, 24 * 60 - 1)) for _ in range(8)]
    for s, start in enumerate(starts):
        visitor = f"v{rnd.randint(0, 40)}"
        t = start
        only_events = s % 13 == 0  # a session without any pageview
        for _ in range(rnd.randint(1, 5)):
            n += 1
            name = "signup" if only_events or rnd.random() < 0.15 else "pageview"
            rows.append(_row(n, site, t, visitor, f"{site}-s{s}", name, rnd.choice(PAGES), rnd))
            t += timedelta(minutes=rnd.randint(1, 25), seconds=rnd.randint(0, 59))
    noon = datetime.combine(FIRST + timedelta(days=2), datetime.min.time(), zone).astimezone(UTC) + timedelta(
        hours=12
    )
    bot = _row(n + 1, site, noon, "bot", "bot-s", "pageview", "/", rnd)
    bot["is_bot"] = 1
    rows.append(bot)
    return rows


def pin_clock(api: Api, monkeypatch: pytest.MonkeyPatch, tz: str, hour: int) -> datetime:
    """Pin the app's clock (periods, today, retention) to `hour`:00 in `tz` of the last such moment before
    the real time, for the rest of the test: the period and today cannot move between two requests, and
    the data made relative to it has the same shape at whatever hour the test runs. The store keeps its own
    clock; the moment is in its past."""
    zone = ZoneInfo(tz)
    real = datetime.now(UTC)
    local = real.astimezone(zone)
    moment = datetime(local.year, local.month, local.day, hour, tzinfo=zone).astimezone(UTC)
    if moment > real:
        moment = datetime.combine(
            local.date() - timedelta(days=1), datetime.min.time().replace(hour=hour), zone
        )
        moment = moment.astimezone(UTC)
    monkeypatch.setattr(report_cache(api), "clock", moment.timestamp)
    return moment


@pytest.fixture(scope="module")
def sites(api: Api) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    from pixel.server.api.app import open_meta

    meta = open_meta(api.settings)
    out = {}
    for site, tz in ZONES.items():
        site_id = meta.insert("sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0})
        rows = generate(site, tz)
        api.store.insert_rows("events", rows)
        out[site] = (site_id, rows)
    return out


def get(api: Api, site_id: int, path: str, **params: Any) -> dict[str, Any]:
    r = api.client.get(f"/api/sites/{site_id}/reports/{path}", params=params, headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    for key in ("from", "to", "period", "site", "timezone"):
        body.pop(key, None)
    return body


def answers(api: Api, site_id: int, **params: Any) -> dict[str, Any]:
    out = {"summary": get(api, site_id, "summary", **params)}
    for interval in ("day", "week", "month"):
        out[f"timeseries/{interval}"] = get(
            api,
            site_id,
            "timeseries",
            interval=interval,
            **params,
            metrics="visitors,pageviews,events,sessions,bounce_rate,visit_duration,views_per_session",
        )
    for dim in BREAKDOWNS:
        out[dim] = get(api, site_id, f"breakdown/{dim}", limit=3, **params)
        out[f"{dim}/2"] = get(
            api, site_id, f"breakdown/{dim}", limit=2, page=2, sort="value", order="asc", **params
        )
    return out


def builds(api: Api, site: str) -> int:
    return int(api.store.scalar("SELECT count() FROM day_builds WHERE site = {s:String}", {"s": site}))


def latest_builds(api: Api, site: str) -> dict[str, int]:
    """Each built day's newest build. day_builds is a ReplacingMergeTree: a background merge may fold a day's
    older build rows at any moment, so a rebuild is seen as a day whose newest build changed, not by a count."""
    rows = api.store.query(
        "SELECT toString(day), max(build) FROM day_builds WHERE site = {s:String} GROUP BY day", {"s": site}
    )
    return {str(day): int(build) for day, build in rows.rows}


def expected_summary(rows: list[dict[str, Any]], tz: str, first: date, last: date) -> dict[str, float]:
    zone = ZoneInfo(tz)
    lo = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    latest = {r["event_id"]: r for r in rows}  # one copy of each event
    picked = [r for r in latest.values() if not r["is_bot"] and lo <= dataset.ts(r) < hi]
    return dataset.summary(picked)


def test_cache_equals_raw_events_in_every_zone(
    api: Api, sites: dict[str, tuple[int, list[dict[str, Any]]]]
) -> None:
    for site, (site_id, rows) in sites.items():
        cached = answers(api, site_id, **RANGE)
        assert builds(api, site) > 0, site  # the cache was used
        raw = answers(api, site_id, filters=EVERYTHING, **RANGE)
        assert cached == raw, site
        metrics = {k: v["value"] for k, v in cached["summary"]["metrics"].items()}
        assert metrics == expected_summary(rows, ZONES[site], FIRST, LAST), site
        assert metrics["sessions"] > 50 and 0 < metrics["bounce_rate"] < 100
        # sessions across the midnights inside the range count once: cutting them would add sessions
        zone = ZoneInfo(ZONES[site])
        by_day = sum(
            expected_summary(rows, ZONES[site], d, d)["sessions"]
            for d in (FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1))
        )
        assert by_day > metrics["sessions"], site
        assert zone  # zone used above through expected_summary


def test_late_events_and_client_retry_copies(
    api: Api, sites: dict[str, tuple[int, list[dict[str, Any]]]]
) -> None:
    site = "berlin.example"
    site_id, rows = sites[site]
    before = answers(api, site_id, **RANGE)
    built = latest_builds(api, site)
    assert (
        answers(api, site_id, **RANGE) == before and latest_builds(api, site) == built
    )  # nothing changed: no rebuild
    # client-retry copies: the same events again, in new inserts; nothing may change
    api.store.insert_rows("events", rows[10:30])
    api.store.insert_rows("events", rows[40:41])
    assert answers(api, site_id, **RANGE) == before
    # a late session on 8 March (Berlin), received now: one more session, visitor and pageviews
    late_t = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)
    rnd = random.Random(3)
    late = [
        _row(
            90_000 + i,
            site,
            late_t + timedelta(minutes=5 * i),
            "late-visitor",
            "late-s",
            "pageview",
            "/late",
            rnd,
        )
        for i in range(2)
    ]
    api.store.insert_rows("events", late)
    after = answers(api, site_id, **RANGE)
    m0, m1 = before["summary"]["metrics"], after["summary"]["metrics"]
    assert m1["sessions"]["value"] == m0["sessions"]["value"] + 1
    assert m1["pageviews"]["value"] == m0["pageviews"]["value"] + 2
    assert m1["visitors"]["value"] == m0["visitors"]["value"] + 1
    assert {"value": "/late", "visitors": 1, "sessions": 1} in after["entry_page/2"]["rows"] + after[
        "entry_page"
    ]["rows"] or after["entry_page"]["total_rows"] == before["entry_page"]["total_rows"] + 1
    assert after == answers(api, site_id, filters=EVERYTHING, **RANGE)
    metrics = {k: v["value"] for k, v in after["summary"]["metrics"].items()}
    assert metrics == expected_summary(rows + late, ZONES[site], FIRST, LAST)
    day = [p for p in after["timeseries/day"]["points"] if p["bucket"] == "2024-03-08"][0]
    old = [p for p in before["timeseries/day"]["points"] if p["bucket"] == "2024-03-08"][0]
    assert (day["pageviews"], day["sessions"]) == (old["pageviews"] + 2, old["sessions"] + 1)
    # a late copy of an event already counted: still nothing changes
    api.store.insert_rows("events", late[:1])
    assert answers(api, site_id, **RANGE) == after
    # a session seen on 9 March only (Berlin 23:50), then its next event 20 minutes later, after midnight,
    # arrives late: 9 March must be rebuilt too, and the session still counts once
    berlin = ZoneInfo("Europe/Berlin")
    t0 = datetime(2024, 3, 9, 23, 50, tzinfo=berlin).astimezone(UTC)
    first_part = _row(95_000, site, t0, "night-owl", "night-s", "pageview", "/night", rnd)
    api.store.insert_rows("events", [first_part])
    one = answers(api, site_id, **RANGE)["summary"]["metrics"]
    assert one["sessions"]["value"] == m1["sessions"]["value"] + 1
    second_part = _row(
        95_001, site, t0 + timedelta(minutes=20), "night-owl", "night-s", "pageview", "/dawn", rnd
    )
    api.store.insert_rows("events", [second_part])
    two = answers(api, site_id, **RANGE)
    assert two["summary"]["metrics"]["sessions"]["value"] == m1["sessions"]["value"] + 1
    assert two["summary"]["metrics"]["pageviews"]["value"] == m1["pageviews"]["value"] + 2
    assert two == answers(api, site_id, filters=EVERYTHING, **RANGE)
    metrics = {k: v["value"] for k, v in two["summary"]["metrics"].items()}
    assert metrics == expected_summary(rows + late + [first_part, second_part], ZONES[site], FIRST, LAST)


def test_ranges_that_are_not_whole_days_or_have_filters_read_raw_events(
    api: Api, sites: dict[str, tuple[int, list[dict[str, Any]]]]
) -> None:
    site = "kolkata.example"
    site_id, rows = sites[site]
    api.store.command("TRUNCATE TABLE day_builds")
    hourly = get(
        api,
        site_id,
        "timeseries",
        interval="hour",
        period="custom",
        **{"from": "2024-03-08", "to": "2024-03-08"},
    )
    by_filter = get(api, site_id, "summary", filters=json.dumps([["country", "is", "IN"]]), **RANGE)
    bots = get(api, site_id, "summary", include_bots="true", **RANGE)
    assert builds(api, site) == 0
    assert len(hourly["points"]) == 24 and hourly["points"][0]["bucket"] == "2024-03-08 00:00:00"
    expected: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        local = dataset.ts(r).astimezone(ZoneInfo(ZONES[site]))
        if local.date() == date(2024, 3, 8) and not r["is_bot"]:
            expected[local.strftime("%Y-%m-%d %H:00:00")].add(r["visitor_id"])
    assert {p["bucket"]: p["visitors"] for p in hourly["points"] if p["visitors"]} == {
        k: len(v) for k, v in expected.items()
    }
    assert (
        by_filter["metrics"]["visitors"]["value"]
        < get(api, site_id, "summary", **RANGE)["metrics"]["visitors"]["value"]
    )
    assert (
        bots["metrics"]["pageviews"]["value"]
        == get(api, site_id, "summary", **RANGE)["metrics"]["pageviews"]["value"] + 1
    )


def test_previous_period_is_whole_local_days_across_a_dst_change(
    api: Api, sites: dict[str, tuple[int, list[dict[str, Any]]]]
) -> None:
    site_id, rows = sites["newyork.example"]
    body = get(api, site_id, "summary", period="custom", **{"from": "2024-03-11", "to": "2024-03-13"})
    before = expected_summary(
        rows, "America/New_York", date(2024, 3, 8), date(2024, 3, 10)
    )  # 10 March: 23 hours
    assert {k: v["previous"] for k, v in body["metrics"].items()} == before
    raw = get(
        api,
        site_id,
        "summary",
        period="custom",
        filters=EVERYTHING,
        **{"from": "2024-03-11", "to": "2024-03-13"},
    )
    assert raw == body


def test_days_before_today_merged_once_and_today_read_by_day(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixel.server.api.app import open_meta

    site = "recent.example"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": "Asia/Tokyo", "created_at": 0.0}
    )
    rnd = random.Random(5)
    now = pin_clock(api, monkeypatch, "Asia/Tokyo", 12)
    tokyo = ZoneInfo("Asia/Tokyo")
    today = now.astimezone(tokyo).date()
    starts = [now - timedelta(minutes=rnd.randint(60, 8 * 24 * 60)) for _ in range(80)]
    # sessions across the period's start (00:00 six days ago) and across last midnight: a minute before,
    # and their next event at least a minute later
    for session, back in ((0, 6), (1, 0)):
        midnight = datetime.combine(today - timedelta(days=back), datetime.min.time(), tokyo)
        starts[session] = midnight.astimezone(UTC) - timedelta(minutes=1)
    rows = [
        _row(
            i,
            site,
            starts[i // 3] + timedelta(minutes=(i % 3) * rnd.randint(1, 20)),
            f"v{i // 3 % 31}",
            f"s{i // 3}",
            "pageview",
            rnd.choice(PAGES),
            rnd,
        )
        for i in range(240)
    ]
    api.store.insert_rows("events", rows)
    week = answers(api, site_id, period="7d")
    assert week == answers(api, site_id, period="7d", filters=EVERYTHING)
    merged = "SELECT uniqExact(build) FROM day_dimensions WHERE site = {s:String} AND day = toDate(0)"
    ranges = int(api.store.scalar(merged, {"s": site}))
    assert ranges >= 2  # this period's days before today, and the previous period's
    assert answers(api, site_id, period="7d") == week
    assert int(api.store.scalar(merged, {"s": site})) == ranges  # unchanged days: merged once
    # while today was rebuilt less than rebuild_min_seconds ago, its build stands
    cache = report_cache(api)
    cache.rebuild_min_seconds = 3600.0  # restored by the autouse fixture
    api.store.insert_rows(
        "events", [_row(999, site, now - timedelta(seconds=5), "v-new", "s-new", "pageview", "/new", rnd)]
    )
    assert answers(api, site_id, period="7d") == week
    cache.rebuild_min_seconds = 0.0
    after = answers(api, site_id, period="7d")
    # today (built in two pieces: before 10:00, the cut, and from it on) rebuilt again and again: every
    # DROP_AFTER_REBUILDS, only the first piece and the two newest builds of the second keep rows
    cache.drop_after_rebuilds = 1  # restored below
    # today by the clock the cache uses (Pixel's), not the store's now()
    today_builds = """SELECT groupUniqArray(build) FROM day_dimensions WHERE site = {s:String}
        AND day = {today:Date}"""
    tails = []
    for i in range(3):
        api.store.insert_rows(
            "events", [_row(1000 + i, site, now, "v-new", "s-new", "pageview", "/new", rnd)]
        )
        assert get(api, site_id, "breakdown/page", period="7d")["total_rows"] > 0
        tails.append(cache._known[(site, "Asia/Tokyo")].split[today.isoformat()].tail[0])
    split = cache._known[(site, "Asia/Tokyo")].split[today.isoformat()]
    assert split.cut == now - timedelta(hours=2)
    kept = api.store.scalar(today_builds, {"s": site, "today": today})
    assert sorted(kept) == [split.head[0], *tails[-2:]]
    cache.drop_after_rebuilds = 20
    after = answers(api, site_id, period="7d")
    assert (
        after["summary"]["metrics"]["visitors"]["value"]
        == week["summary"]["metrics"]["visitors"]["value"] + 1
    )
    assert after == answers(api, site_id, period="7d", filters=EVERYTHING)


def test_entry_and_exit_pages_at_one_instant_follow_the_path_order(api: Api) -> None:
    """Pageviews of a session at the same instant: the entry page is the least path, the exit page the
    greatest, in the cache as in the raw events, within a day and across a midnight. The rows are stored
    by event id, so each tie's other path is met first (the one argMin/argMax alone would keep)."""
    from pixel.server.api.app import open_meta

    site = "ties.example"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": "Europe/Berlin", "created_at": 0.0}
    )
    berlin = ZoneInfo("Europe/Berlin")
    day = datetime(2024, 3, 7, 10, 0, tzinfo=berlin).astimezone(UTC)
    night = datetime(2024, 3, 7, 23, 50, tzinfo=berlin).astimezone(UTC)
    rnd = random.Random(1)
    plan = [  # (session, moment, path) in event-id order
        ("day", day, "/entry-z"),
        ("day", day, "/entry-a"),
        ("day", day + timedelta(minutes=5), "/exit-a"),
        ("day", day + timedelta(minutes=5), "/exit-z"),
        ("night", night, "/night-z"),
        ("night", night, "/night-a"),
        ("night", night + timedelta(minutes=20), "/dawn-a"),
        ("night", night + timedelta(minutes=20), "/dawn-z"),
    ]
    rows = [
        _row(i + 1, site, t, f"v-{s}", f"{site}-{s}", "pageview", path, rnd)
        for i, (s, t, path) in enumerate(plan)
    ]
    api.store.insert_rows("events", rows)
    span = {"period": "custom", "from": "2024-03-07", "to": "2024-03-08"}
    expected = {
        "entry_page": [
            {"value": "/entry-a", "visitors": 1, "sessions": 1},
            {"value": "/night-a", "visitors": 1, "sessions": 1},
        ],
        "exit_page": [
            {"value": "/dawn-z", "visitors": 1, "sessions": 1},
            {"value": "/exit-z", "visitors": 1, "sessions": 1},
        ],
    }
    for dim, want in expected.items():
        for params in (span, {**span, "filters": EVERYTHING}):
            body = get(api, site_id, f"breakdown/{dim}", sort="value", order="asc", **params)
            assert (body["rows"], body["total_rows"]) == (want, 2), (dim, params)
    assert builds(api, site) == 2  # the first answers came from the cache
    # the night session only: 8 March alone, its part after midnight
    one = {"period": "custom", "from": "2024-03-08", "to": "2024-03-08"}
    for params in (one, {**one, "filters": EVERYTHING}):
        assert get(api, site_id, "breakdown/entry_page", **params)["rows"] == [
            {"value": "/dawn-a", "visitors": 1, "sessions": 1}
        ]
        assert get(api, site_id, "breakdown/exit_page", **params)["rows"] == [
            {"value": "/dawn-z", "visitors": 1, "sessions": 1}
        ]


def test_a_long_first_build_runs_in_the_background(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Days never built holding more than background_min_rows events: the first reports read the raw events
    (the same numbers) and build nothing on the request; the worker then builds the days one at a time, and
    later reports read them. At or under the threshold, the days are built on the request as before."""
    from pixel.server.api.app import open_meta

    site = "cold.example"
    tz = "Europe/Berlin"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0}
    )
    rows = generate(site, tz, seed=23)
    api.store.insert_rows("events", rows)
    cache = report_cache(api)
    started: list[Any] = []
    monkeypatch.setattr(cache, "_start", started.append)  # the worker is run by hand below
    monkeypatch.setattr(cache, "background_min_rows", 10)
    raw = answers(api, site_id, filters=EVERYTHING, **RANGE)
    first = answers(api, site_id, **RANGE)
    assert first == raw
    assert builds(api, site) == 0  # nothing built on the requests
    assert len(started) == 1  # one worker for the whole queue
    board = get(api, site_id, "dashboard", **RANGE)
    assert builds(api, site) == 0 and len(started) == 1
    cache.build_pending()
    # the range and the previous period, one build per day
    days = 2 * ((LAST - FIRST).days + 1)
    assert builds(api, site) == days
    assert (
        int(api.store.scalar("SELECT uniqExact(build) FROM day_builds WHERE site = {s:String}", {"s": site}))
        == days
    )
    built = latest_builds(api, site)
    assert len(built) == days
    assert answers(api, site_id, **RANGE) == raw
    assert get(api, site_id, "dashboard", **RANGE) == board
    assert latest_builds(api, site) == built  # read, not built again
    # a changed built day is rebuilt on the request (few days), whatever the threshold
    api.store.insert_rows("events", [{**rows[0], "event_id": "cold-late-1"}])
    assert answers(api, site_id, **RANGE) == answers(api, site_id, filters=EVERYTHING, **RANGE)
    # the late event's day (and the next or previous one when it is near midnight)
    rebuilt = {day for day, build in latest_builds(api, site).items() if build != built.get(day)}
    assert 1 <= len(rebuilt) <= 2 and len(started) == 1
    # under the threshold: built on the request
    other = "warm.example"
    other_id = open_meta(api.settings).insert(
        "sites", {"domain": other, "name": other, "timezone": tz, "created_at": 0.0}
    )
    api.store.insert_rows("events", generate(other, tz, seed=29))
    monkeypatch.setattr(cache, "background_min_rows", 10**9)
    get(api, other_id, "summary", **RANGE)
    assert builds(api, other) == days and len(started) == 1


def test_a_changed_day_lags_seconds_and_rebuilds_cost_a_tenth(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In service a changed day (today, while events stream in) is rebuilt at most every
    REBUILD_MIN_SECONDS (so events older than 5 s show), and at most once per REBUILD_COST_FACTOR times
    its last build's duration (a slow build is not redone back to back)."""
    from pixel.server.api.app import open_meta
    from pixel.server.api.query import report_cache as module

    assert module.REBUILD_MIN_SECONDS <= 4.5 and module.REBUILD_COST_FACTOR >= 5
    site, tz = "lag.example", "Asia/Kolkata"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0}
    )
    rows = generate(site, tz, seed=31)
    api.store.insert_rows("events", rows)
    before = get(api, site_id, "summary", **RANGE)
    cache = report_cache(api)
    cache.rebuild_min_seconds = 0.001  # restored by the autouse fixture
    known = cache._known[(site, tz)]
    known.build_seconds = 3600.0  # the last build took an hour: the next waits ten
    inside = next(
        r for r in rows if not r["is_bot"] and FIRST < dataset.ts(r).astimezone(ZoneInfo(tz)).date() < LAST
    )
    api.store.insert_rows("events", [{**inside, "event_id": "lag-late-1", "visitor_id": "lag-new"}])
    assert get(api, site_id, "summary", **RANGE) == before  # the build stands
    known.build_seconds = 0.0
    time.sleep(0.01)
    after = get(api, site_id, "summary", **RANGE)
    assert after == get(api, site_id, "summary", filters=EVERYTHING, **RANGE)
    assert after["metrics"]["visitors"]["value"] == before["metrics"]["visitors"]["value"] + 1


def test_a_failing_background_build_drops_the_queue(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails in the worker (a closed store, a failing query) is logged, the queue is dropped
    and the worker ends; the reports keep reading the raw events and queue the days again."""
    from pixel.server.api.app import open_meta
    from pixel.server.store import StoreError

    site, tz = "failing.example", "America/New_York"
    site_id = open_meta(api.settings).insert(
        "sites", {"domain": site, "name": site, "timezone": tz, "created_at": 0.0}
    )
    api.store.insert_rows("events", generate(site, tz, seed=37))
    cache = report_cache(api)
    started: list[Any] = []
    monkeypatch.setattr(cache, "_start", started.append)
    monkeypatch.setattr(cache, "background_min_rows", 10)
    raw = get(api, site_id, "summary", filters=EVERYTHING, **RANGE)
    assert get(api, site_id, "summary", **RANGE) == raw and len(started) == 1

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the store is closed")

    monkeypatch.setattr(cache, "ensure", broken)
    cache.build_pending()
    assert not cache._pending and cache._worker is None and builds(api, site) == 0
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_start", started.append)
    monkeypatch.setattr(cache, "background_min_rows", 10)
    monkeypatch.setattr(cache, "rebuild_min_seconds", 0.0)
    assert get(api, site_id, "summary", **RANGE) == raw and len(started) == 2  # queued again
    cache.build_pending()
    assert builds(api, site) > 0 and get(api, site_id, "summary", **RANGE) == raw
