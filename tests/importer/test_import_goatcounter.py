"""`pixel import goatcounter` (GoatCounter's CSV export of pageviews, version 2) end to end on both engines:
the fixture's known numbers in the store and the API's reports, undo leaving nothing, and wrong files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.importer import records, run
from pixel.server.importer.lines import WrongKind
from pixel.server.importer.sources import SOURCES
from pixel.server.settings import Settings
from pixel.server.store import Store
from tests.importer.reports import reports

FIXTURES = Path(__file__).parent / "fixtures"
GOAT = FIXTURES / "goatcounter_export.csv"
SOURCE = SOURCES["goatcounter"]
SITE = "example.com"
PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS d, countIf(event_name = 'pageview'), count(), uniqExact(visitor_id), "
    "uniqExact(session_id) FROM events FINAL WHERE site = {site:String} AND import_id != '' GROUP BY d ORDER BY d"
)
# goatcounter_export.csv, by hand (Date in RFC 3339, days in UTC):
#   2024-03-05: line 2 10:00 "/" from google (h), line 3 10:04 "/docs?page=2", line 4 10:05 event
#     "click-signup": session 1a2b3c. Line 5 is a bot (Bot 3): skipped.
#   2024-03-06: line 6 01:30 "/blog/post" from "Hacker News" (g; 23:30 -02:00 on the 5th), line 8 01:00
#     "/pricing" with campaign "newsletter" (c; 02:00 +01:00): session 4d5e6f; line 11 12:00 "/contact" from
#     duckduckgo.com (h, no scheme): 7g8h9i. Line 7 is blank, line 9 too short, line 10 has a bad Date.
GOAT_DAYS = [["2024-03-05", 2, 3, 1, 1], ["2024-03-06", 3, 3, 2, 2]]


def test_goatcounter_known_numbers_in_store_and_reports_then_undo(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    record = run.run(settings, store, run.start(settings, store, GOAT, SITE, "skip", SOURCE))
    assert (record.source, record.status, record.rows, record.skipped) == (
        "goatcounter",
        "done",
        6,
        {"bot (GoatCounter)": 1},
    )
    assert record.malformed == [[9, "8 fields, the header has 14"], [10, "bad Date 'not a date'"]]
    assert store.query(PER_DAY, {"site": SITE}).rows == GOAT_DAYS
    rows = store.query(
        "SELECT toString(timestamp), event_name, path, query, referrer, source, channel, utm_source, browser, "
        "os, country, screen, title FROM events FINAL ORDER BY timestamp"
    ).rows
    assert rows == [
        ["2024-03-05 10:00:00.000", "pageview", "/", "", "https://www.google.com/search", "Google",
         "Organic Search", "", "Chrome", "Windows", "US", "1920x1080", "Home"],
        ["2024-03-05 10:04:00.000", "pageview", "/docs", "page=2", "", "", "Direct", "", "Chrome", "Windows",
         "US", "1920x1080", "Docs"],
        ["2024-03-05 10:05:00.000", "click-signup", "", "", "", "", "Direct", "", "Chrome", "Windows", "US",
         "1920x1080", ""],
        ["2024-03-06 01:00:00.000", "pageview", "/pricing", "utm_source=newsletter", "", "newsletter",
         "Unassigned", "newsletter", "Safari", "iOS", "DE", "390x844", "Pricing"],
        ["2024-03-06 01:30:00.000", "pageview", "/blog/post", "", "", "Hacker News", "Referral", "", "Firefox",
         "Linux", "DE", "1366x768", 'Post, with "quotes"'],
        ["2024-03-06 12:00:00.000", "pageview", "/contact", "", "https://duckduckgo.com", "DuckDuckGo",
         "Organic Search", "", "Edge", "Windows", "GB", "1280x720", "Contact"],
    ]  # fmt: skip
    assert "1a2b3c" not in str(store.query("SELECT * FROM events").rows)

    with reports(settings, store, SITE) as api:
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (5, 3, 3)
        sources = api.get("breakdown/source", period="custom", **{"from": "2024-03-05", "to": "2024-03-06"})
        assert {r["value"]: r["pageviews"] for r in sources["rows"]} == {
            "": 1,  # direct
            "Google": 1,
            "Hacker News": 1,
            "newsletter": 1,
            "DuckDuckGo": 1,
        }
        assert run.undo(settings, store, record.id) == 6
        got = api.metrics("2024-03-05", "2024-03-06")
        assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
    assert store.scalar("SELECT count() FROM events") == 0
    assert [p.name for p in records.folder(settings.state_dir).iterdir()] == []


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"1Path,Title,Event,Bot,Session,FirstVisit,Referrer,Referrer scheme,Browser,Screen size,Location,Date\n",
         "version 1; only version 2"),
        ((FIXTURES / "umami_export.csv").read_bytes(), "not a GoatCounter CSV export"),
        ((FIXTURES / "ga4_events.ndjson").read_bytes(), "not a GoatCounter CSV export"),
        (b"\x1f\x8b" + b"\x00" * 30, "ends early or is damaged"),
    ],
)  # fmt: skip
def test_goatcounter_wrong_files(store: Store, tmp_path: Path, content: bytes, why: str) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(Exception, match=why) as caught:
        run.start(settings, store, path, SITE, "skip", SOURCE)
    assert isinstance(caught.value, (WrongKind, run.ImportFailed)) or "ends early" in str(caught.value)
    assert not records.folder(settings.state_dir).exists() or not list(
        records.folder(settings.state_dir).glob("*.json")
    )
