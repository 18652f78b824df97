"""`pixel import ga4-reports` (GA4 report CSV downloads with a Date column) end to end on both engines: the
fixture's known numbers in the API's reports, tables repeated or without a day skipped with their reason, a bad
row counted with its line, undo leaving nothing, a file of another kind refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel.server.importer import aggregates, records
from pixel.server.importer.jobs import guess_kind
from pixel.server.importer.lines import ImportFileError, WrongKind
from pixel.server.settings import Settings
from pixel.server.store import Store
from tests.importer.reports import reports

FIXTURES = Path(__file__).parent / "fixtures"
REPORT = FIXTURES / "ga4_reports.csv"
SITE = "example.com"
RANGE = {"period": "custom", "from": "2024-03-01", "to": "2024-03-02", "compare": "false"}
SOURCE = aggregates.GA4_REPORTS

# ga4_reports.csv, by hand: the snapshot's Date table gives the days (03-01: 12 users, 15 sessions of which 9
# engaged, 40 views, 60 s average; 03-02: 1,008 users, 1,200 sessions, 900 engaged, 3,000 views, 30.5 s), its line
# 13 has a bad day; the pages table (/ and /pricing), the source / medium table ("(direct) / (none)" is direct);
# the Nth day table repeats the users (skipped), the Country table (names, not codes) and the channel table
# without a Date are skipped.


def breakdown(api: object, dimension: str, metric: str = "visitors") -> dict[str, int]:
    body = api.get(f"breakdown/{dimension}", **RANGE)  # type: ignore[attr-defined]
    return {row["value"]: row[metric] for row in body["rows"]}


def test_ga4_reports_known_numbers_then_undo(store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    assert guess_kind(REPORT) == "ga4-reports"
    shown = aggregates.preview(store, REPORT, SITE, source=SOURCE)
    assert shown.tables == ["Date", "Page path and screen class", "Session source / medium"]
    assert shown.skipped == {
        "table at line 31: days already given by an earlier table": 1,
        "table at line 36 (Country): not imported": 1,
        "table at line 40 (Session default channel group): no Date column (add the Date dimension)": 1,
    }
    assert shown.malformed == [("ga4_reports.csv:13", "bad day '2024030x'")]
    assert (shown.visitors, shown.pageviews) == (12 + 1008, 40 + 3000)
    record = aggregates.import_file(settings, store, REPORT, SITE, source=SOURCE)
    assert (record.source, record.status) == ("ga4-reports", "done")
    with reports(settings, store, SITE) as api:
        body = api.get("summary", **RANGE)
        got = {name: item["value"] for name, item in body["metrics"].items()}
        assert got["visitors"] == 12 + 1008  # imported visitors are summed figures (exact at any size)
        assert (got["pageviews"], got["sessions"]) == (3040, 1215)
        assert got["bounce_rate"] == pytest.approx(100 * (6 + 300) / 1215, abs=0.1)
        assert got["visit_duration"] == pytest.approx((15 * 60 + 1200 * 30.5) / 1215, abs=0.6)
        assert breakdown(api, "page", "pageviews") == {"/": 3030, "/pricing": 10}
        assert breakdown(api, "source", "pageviews") == {"google": 3010, "": 20, "newsletter": 10}
        assert breakdown(api, "medium", "pageviews") == {"organic": 3010, "": 20, "email": 10}
        assert aggregates.undo(settings, store, record.id) == record.rows
        assert api.get("summary", **RANGE)["metrics"]["visitors"]["value"] == 0
    assert store.scalar("SELECT count() FROM imported_aggregates") == 0
    assert list(records.folder(settings.state_dir).glob("*.json")) == []


@pytest.mark.parametrize(
    ("text", "error", "why"),
    [
        ("Date,Users\n20240301,3\n", WrongKind, "not a GA4 report CSV"),
        ("# Report\n# Start date: 20240301\nCountry,Users\nGermany,3\n", ImportFileError,
         r"nothing to import \(table at line 3 \(Country\): no Date column"),
    ],
)  # fmt: skip
def test_ga4_reports_bad_files(
    store: Store, tmp_path: Path, text: str, error: type[Exception], why: str
) -> None:
    settings = Settings.from_env(data_dir=tmp_path / "data")
    path = tmp_path / "report.csv"
    path.write_text(text)
    with pytest.raises(error, match=why):
        aggregates.import_file(settings, store, path, SITE, source=SOURCE)
    assert store.scalar("SELECT count() FROM imported_aggregates") == 0


def test_hostile_figures_are_malformed_rows_not_crashes(tmp_path: Path) -> None:
    """Infinite, not-a-number, too large figures and an "Nth day" past the calendar are rows counted as malformed
    with their line; the readable row is imported (they raised OverflowError past the row check before)."""
    from pixel.server.importer import ga4_reports

    path = tmp_path / "report.csv"
    path.write_text(
        "# Pages\n# Start date: 20240101\n# End date: 20240131\n"
        "Nth day,Users,Views\n0000,5,9\n0001,1e400,3\n0002,nan,3\n99999999999999,1,1\n0003,2,1e13\n"
        "\n# Daily\n# Start date: 20240101\nDate,Users\n20240105,-inf\n"
    )
    found = ga4_reports.read(path)
    assert found.rows == {("2024-01-01", "", ""): [5, 9, 0, 0, 0]}
    assert [where for where, _why in found.malformed] == [f"report.csv:{n}" for n in (6, 7, 8, 9, 14)]
    assert found.malformed_count == 5


def test_plausible_counts_past_the_limit_are_malformed(tmp_path: Path) -> None:
    import zipfile

    from pixel.server.importer import plausible_csv

    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "imported_visitors_20240101_20240102.csv",
            "date,visitors,pageviews,bounces,visits,visit_duration\n"
            f"2024-01-01,3,4,1,2,60\n2024-01-02,{plausible_csv.MAX_COUNT + 1},1,0,1,1\n",
        )
    found = plausible_csv.read(path)
    assert found.rows == {("2024-01-01", "", ""): [3, 4, 2, 1, 60]}
    assert found.malformed == [
        (
            "imported_visitors_20240101_20240102.csv:3",
            "visitors is 1,000,000,000,001, more than 1,000,000,000,000",
        )
    ]
