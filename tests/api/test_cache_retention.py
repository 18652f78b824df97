"""Retention drops old events; the report cache must drop them from reports too.

The store's retention (the events' TTL): a site has sessions 40 days ago and 3 days ago; reports over
the last 45 days are built into the report cache. Then the store is migrated with a 30-day retention and
ClickHouse applies it: the cached answers must equal the raw events' (now without the old sessions) and
a Python computation, and the cached rows of the expired days (visitor ids among them) must be gone.

A site's own retention (set through the API, applied to the events by the store process's hourly
DELETE, server/retention.py): the same, for that site only.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.api import dataset
from tests.api.conftest import Api, report_cache
from tests.api.test_daycache import EVERYTHING, _row, answers, builds, expected_summary

ENGINES = ("chdb", "clickhouse")
SITE, TZ = "retained.example", "Europe/Berlin"


def local_time(day: date, hour: int, tz: str) -> datetime:
    """`hour`:00 of the local `day` in zone `tz`, as a UTC datetime."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def sessions_at(site: str, ages: list[int], seed: int) -> list[dict[str, Any]]:
    """Three pageviews per session, one session per age (days before now), visitor per session."""
    rnd = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for s, age in enumerate(ages):
        start = now - timedelta(days=age, minutes=rnd.randint(0, 600))
        for i in range(3):
            rows.append(
                _row(
                    s * 10 + i,
                    site,
                    start + timedelta(minutes=4 * i),
                    f"v{s}",
                    f"s{s}",
                    "pageview",
                    rnd.choice(["/", "/a", "/b"]),
                    rnd,
                )
            )
    return rows


@pytest.fixture(autouse=True)
def check_at_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """In service, a changed retention is re-read within retention_check_seconds; changed days rebuilt at once."""
    monkeypatch.setattr(report_cache(api), "retention_check_seconds", 0.0)
    monkeypatch.setattr(report_cache(api), "rebuild_min_seconds", 0.0)


@pytest.mark.store_clock  # the events' TTL runs on the store's clock, the report cache on Pixel's
def test_days_past_retention_leave_the_cached_reports(api: Api) -> None:
    from pixel.server.api.app import open_meta

    site_id = open_meta(api.settings).insert(
        "sites", {"domain": SITE, "name": SITE, "timezone": TZ, "created_at": 0.0}
    )
    rnd = random.Random(21)
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(ZoneInfo(TZ)).date()
    # Half the sessions on the local day 40 days back, half 3 days back, all between 08:00 and 18:10
    # local time: whatever the hour of the run, each session lies inside its day, past the 30-day
    # retention (40) or well within it (3).
    old_day, recent_day = today - timedelta(days=40), today - timedelta(days=3)
    rows = []
    for s in range(40):
        day = old_day if s % 2 else recent_day
        start = local_time(day, 8, TZ) + timedelta(minutes=rnd.randint(0, 600))
        for i in range(3):
            rows.append(
                _row(
                    s * 10 + i,
                    SITE,
                    start + timedelta(minutes=4 * i),
                    f"v{s}",
                    f"s{s}",
                    "pageview",
                    rnd.choice(["/", "/a", "/b"]),
                    rnd,
                )
            )
    assert {dataset.local_day(r, TZ) for r in rows} == {old_day.isoformat(), recent_day.isoformat()}
    api.store.insert_rows("events", rows)
    first, last = today - timedelta(days=45), today - timedelta(days=1)
    span = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}

    before = answers(api, site_id, **span)
    assert builds(api, SITE) > 0  # answered from the report cache
    assert before["summary"]["metrics"]["sessions"]["value"] == 40
    visited = {p["bucket"] for p in before["timeseries/day"]["points"] if p["visitors"]}
    assert visited == {old_day.isoformat(), recent_day.isoformat()}

    api.store.migrate(retention_days=30)
    api.store.command("OPTIMIZE TABLE events FINAL")  # apply the TTL now (ClickHouse does it on merges)
    kept = [
        r
        for r in rows
        if datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC) > now - timedelta(days=30)
    ]
    assert int(api.store.scalar("SELECT count() FROM events WHERE site = {s:String}", {"s": SITE})) == len(
        kept
    )

    after = answers(api, site_id, **span)
    assert after == answers(api, site_id, filters=EVERYTHING, **span)  # cache = raw events
    metrics = {k: v["value"] for k, v in after["summary"]["metrics"].items()}
    assert metrics == expected_summary(kept, TZ, first, last)
    assert metrics["sessions"] == 20
    assert {p["bucket"] for p in after["timeseries/day"]["points"] if p["visitors"]} == {
        recent_day.isoformat()
    }
    # the dashboard endpoint reads the same days
    dashboard = api.client.get(
        f"/api/sites/{site_id}/reports/dashboard", params=span, headers=api.admin
    ).json()
    assert dashboard["summary"] == after["summary"]
    # the expired days' cached rows are deleted (day 0 holds merged ranges, dropped by their own TTL)
    for table in ("day_dimensions", "day_session_edges", "day_builds"):
        left = api.store.scalar(
            f"SELECT count() FROM {table} WHERE site = {{s:String}} AND day <= {{d:Date}} "
            "AND day != toDate(0)",
            {"s": SITE, "d": (now - timedelta(days=32)).date()},
        )
        assert int(left) == 0, table
    # and no longer built for reports (build 0): no new builds of those days appear
    again = answers(api, site_id, **span)
    assert again == after
    assert (
        int(
            api.store.scalar(
                "SELECT count() FROM day_builds WHERE site = {s:String} AND day <= {d:Date}",
                {"s": SITE, "d": (now - timedelta(days=32)).date()},
            )
        )
        == 0
    )


def test_a_sites_own_retention(api: Api) -> None:
    from pixel.server.api.app import open_meta
    from pixel.server.retention import SiteRetention

    meta = open_meta(api.settings)
    short, kept_site = "short.example", "kept.example"
    ids = {
        site: meta.insert("sites", {"domain": site, "name": site, "timezone": "UTC", "created_at": 0.0})
        for site in (short, kept_site)
    }
    rows = {site: sessions_at(site, [20, 2] * 10, seed) for seed, site in enumerate((short, kept_site))}
    for site_rows in rows.values():
        api.store.insert_rows("events", site_rows)
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=29), today - timedelta(days=1)
    span = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
    before = {site: answers(api, site_id, **span) for site, site_id in ids.items()}
    assert [before[s]["summary"]["metrics"]["sessions"]["value"] for s in ids] == [20, 20]

    r = api.client.patch(f"/api/sites/{ids[short]}", json={"retention_days": 10}, headers=api.admin)
    assert r.status_code == 200 and r.json()["retention_days"] == 10
    # at once, before the store process deletes anything: the days past 10 days read as empty when cached
    assert answers(api, ids[short], **span)["summary"]["metrics"]["sessions"]["value"] == 10
    # the store process's hourly job deletes the events; then cache and raw events agree
    assert SiteRetention(api.store, api.settings.meta_db_path).run_once() == {short: 30}
    after = answers(api, ids[short], **span)
    assert after == answers(api, ids[short], filters=EVERYTHING, **span)
    kept = [
        r
        for r in rows[short]
        if datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(days=10)
    ]
    assert {k: v["value"] for k, v in after["summary"]["metrics"].items()} == expected_summary(
        kept, "UTC", first, last
    )
    assert after["summary"]["metrics"]["sessions"]["value"] == 10
    # the other site keeps everything, its cached rows too
    assert answers(api, ids[kept_site], **span) == before[kept_site]
    old = {"d": today - timedelta(days=15)}
    for site, left in ((short, 0), (kept_site, None)):
        count = int(
            api.store.scalar(
                "SELECT count() FROM day_session_edges WHERE site = {s:String} AND day <= {d:Date}",
                {"s": site, **old},
            )
            or 0
        ) + int(
            api.store.scalar(
                "SELECT count() FROM day_dimensions WHERE site = {s:String} AND day <= {d:Date} "
                "AND day != toDate(0)",
                {"s": site, **old},
            )
        )
        assert count == 0 if left == 0 else count > 0, site
