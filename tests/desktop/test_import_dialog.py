"""The import dialog against a real `pixel serve`, opened from the Sites page's "Import history…" button: a
GoatCounter export uploaded, its kind guessed, the preview's tables exact, the import run to 100 % and read back
through the API (the import, the reports), undone from the past imports list; a large access log cancelled
leaves nothing; a refusal shows the API's words; screenshots for docs/screenshots/."""

from __future__ import annotations

from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pixel.app.client import ApiClient
from pixel.app.client.site_admin import SiteAdmin
from pixel.app.desktop.import_dialog import ImportDialog
from pixel.app.desktop.sites_page import SitesPage
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import save_screenshot
from tests.importer.test_import_accesslog import big_log

FIXTURES = Path(__file__).resolve().parents[1] / "importer" / "fixtures"
GOAT = FIXTURES / "goatcounter_export.csv"
SITE = "docs.example"  # in UTC: a UTC day is the site's day


def cells(table: Any) -> list[list[str]]:
    return [
        [table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def idle(qtbot: Any, dialog: ImportDialog, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: dialog.runner.busy == 0 and dialog.task is None, timeout=timeout)


@pytest.fixture
def opened(qtbot, live_api) -> Any:
    runner = Runner()
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    page = SitesPage(runner)
    qtbot.addWidget(page)
    page.show()
    page.set_admin(SiteAdmin(client))
    qtbot.waitUntil(lambda: runner.busy == 0 and page.list.count() >= 3, timeout=60_000)
    page.list.setCurrentRow([s["domain"] for s in page.sites].index(SITE))
    page.import_button.click()
    dialogs = page.findChildren(ImportDialog)
    assert len(dialogs) == 1
    dialog = dialogs[0]
    assert dialog.site.currentText() == SITE and dialog.site.currentData() == live_api.sites[SITE]
    dialog.timer.setInterval(100)
    idle(qtbot, dialog)
    yield dialog
    dialog.close()
    runner.shutdown()
    client.close()


def summary(live_api) -> dict[str, Any]:
    with closing(live_api.http()) as client:
        r = client.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/summary",
            params={"period": "custom", "from": "2024-03-05", "to": "2024-03-06", "compare": "false"},
        )
        assert r.status_code == 200, r.text
        return {k: v["value"] for k, v in r.json()["metrics"].items()}


def test_whole_flow_preview_import_undo(qtbot, live_api, opened: ImportDialog) -> None:
    dialog = opened
    dialog.ask_path = lambda: str(GOAT)
    dialog.choose_button.click()
    idle(qtbot, dialog)
    assert dialog.upload is not None and dialog.kind.currentData() == "goatcounter"
    assert dialog.guess.text() == "(guessed from its first lines)" and dialog.bar.value() == 100
    dialog.preview_button.click()
    idle(qtbot, dialog)
    # goatcounter_export.csv by hand (tests/importer/test_import_goatcounter.py)
    assert cells(dialog.days) == [["2024-03-05", "3", ""], ["2024-03-06", "3", ""]]
    assert cells(dialog.skips) == [
        ["bot (GoatCounter)", "1"],
        ["malformed lines (2), first ones:", "2"],
        ["line 9: 8 fields, the header has 14", ""],
        ["line 10: bad Date 'not a date'", ""],
    ]
    assert dialog.summary.text() == (
        "11 lines, 2024-03-05 to 2024-03-06. Sites found: docs.example (6). Events to import: 6 "
        "(no day has live data yet)."
    )
    assert dialog.start_button.isEnabled() and dialog.overlap_skip.isChecked()
    dialog.resize(760, 640)
    save_screenshot(dialog, "import-dialog-preview")

    dialog.start_button.click()
    qtbot.waitUntil(
        lambda: not dialog.import_id and dialog.task is None and "Imported" in dialog.status.text(),
        timeout=120_000,
    )
    assert dialog.bar.value() == 100
    import_id = dialog.status.text().split(" as ")[1].rstrip(".")
    assert dialog.status.text() == f"Imported 6 events as {import_id}."
    with closing(live_api.http()) as client:
        state = client.get(f"/api/imports/{import_id}").json()
    assert (state["status"], state["rows"], state["site"], state["percent"]) == ("done", 6, SITE, 100.0)
    got = summary(live_api)
    assert (got["pageviews"], got["visitors"], got["sessions"]) == (5, 3, 3)
    idle(qtbot, dialog)
    row = [r[0] for r in cells(dialog.past)].index(import_id)
    assert cells(dialog.past)[row][1:] == [
        SITE,
        "goatcounter",
        "goatcounter_export.csv",
        "done",
        "6",
        "2024-03-05 (3), 2024-03-06 (3)",
    ]
    save_screenshot(dialog, "import-dialog-done")

    asked: list[str] = []
    dialog.confirm = lambda text: asked.append(text) or True  # type: ignore[func-returns-value]
    dialog.past.selectRow(row)
    dialog.undo_button.click()
    idle(qtbot, dialog)
    assert asked == [
        f"Remove the 6 events of import {import_id} (goatcounter_export.csv) from {SITE}? "
        "This cannot be undone."
    ]
    assert dialog.status.text() == f"Import {import_id} undone: 6 events removed."
    got = summary(live_api)
    assert (got["pageviews"], got["visitors"], got["sessions"]) == (0, 0, 0)
    with closing(live_api.http()) as client:
        assert import_id not in [i["id"] for i in client.get("/api/imports").json()]
    assert import_id not in [r[0] for r in cells(dialog.past)]


def test_cancel_removes_everything_and_refusals_show_the_api_words(
    qtbot, live_api, opened: ImportDialog, tmp_path: Path
) -> None:
    dialog = opened
    log = tmp_path / "access.log"
    big_log(log, 200_000)
    dialog.ask_path = lambda: str(log)
    dialog.choose_button.click()
    idle(qtbot, dialog)
    assert dialog.kind.currentData() == "accesslog"
    # the wrong kind chosen by hand: the API's refusal in the status line
    dialog.kind.setCurrentIndex(dialog.kind.findData("ga4"))
    dialog.preview_button.click()
    idle(qtbot, dialog)
    assert dialog.status.text() == (
        "Preview failed: access.log is not a GA4 BigQuery export (newline-delimited JSON with event_timestamp)"
    )
    assert not dialog.start_button.isEnabled()

    dialog.kind.setCurrentIndex(dialog.kind.findData("accesslog"))
    dialog.preview_button.click()
    idle(qtbot, dialog)
    assert dialog.start_button.isEnabled()
    with closing(live_api.http()) as client:
        before = {i["id"] for i in client.get("/api/imports").json()}
    dialog.start_button.click()
    qtbot.waitUntil(lambda: bool(dialog.import_id), timeout=60_000)
    import_id = dialog.import_id
    assert dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.import_id, timeout=120_000)
    assert dialog.status.text() == "Import cancelled; what it had imported was removed."
    with closing(live_api.http()) as client:
        assert client.get(f"/api/imports/{import_id}").json()["status"] == "cancelled"
        assert {i["id"] for i in client.get("/api/imports").json() if i["status"] != "cancelled"} == before
        r = client.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/summary",
            params={"period": "custom", "from": "2023-02-01", "to": "2023-02-28", "compare": "false"},
        )
    assert r.json()["metrics"]["pageviews"]["value"] == 0  # big_log's days: nothing of it left


def live_day(live_api) -> str:
    """A UTC day on which docs.example has live (demo) events."""
    with closing(live_api.http()) as client:
        r = client.post(
            "/api/sql",
            json={
                "site_id": live_api.sites[SITE],
                "query": "SELECT toString(toDate(timestamp)) AS d FROM events WHERE import_id = '' "
                "GROUP BY d ORDER BY count() DESC, d LIMIT 1",
            },
        )
        assert r.status_code == 200, r.text
        return str(r.json()["rows"][0][0])


def test_overlap_choice_include(qtbot, live_api, opened: ImportDialog, tmp_path: Path) -> None:
    dialog = opened
    day = live_day(live_api)
    d = date.fromisoformat(day)
    month = d.strftime("%b")
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"
    lines = [
        f'198.51.100.{i} - - [{d.day:02d}/{month}/{d.year}:0{i}:00:00 +0000] "GET /imported/{i} HTTP/1.1" 200 9 '
        f'"-" "{agent}"'
        for i in range(1, 4)
    ] + [
        f'198.51.100.9 - - [07/Mar/2024:1{i}:00:00 +0000] "GET /old/{i} HTTP/1.1" 200 9 "-" "{agent}"'
        for i in range(2)
    ]
    log = tmp_path / "overlap.log"
    log.write_text("\n".join(lines) + "\n")
    dialog.ask_path = lambda: str(log)
    dialog.choose_button.click()
    idle(qtbot, dialog)
    assert dialog.kind.currentData() == "accesslog"
    dialog.preview_button.click()
    idle(qtbot, dialog)
    assert sorted(cells(dialog.days)) == sorted(
        [["2024-03-07", "2", ""], [day, "3", "yes: skipped unless included"]]
    )
    assert dialog.summary.text().endswith(
        "Events to import: 2 (5 with the 1 day(s) that already have live data)."
    )
    dialog.overlap_include.setChecked(True)
    save_screenshot(dialog, "import-dialog-overlap")
    dialog.start_button.click()
    qtbot.waitUntil(
        lambda: not dialog.import_id and dialog.task is None and "Imported" in dialog.status.text(),
        timeout=120_000,
    )
    import_id = dialog.status.text().split(" as ")[1].rstrip(".")
    with closing(live_api.http()) as client:
        state = client.get(f"/api/imports/{import_id}").json()
        assert (state["rows"], state["overlap"], state["days"]) == (5, "include", {"2024-03-07": 2, day: 3})
        assert client.delete(f"/api/imports/{import_id}").json()["rows_deleted"] == 5


def test_plausible_export_zip(qtbot, live_api, opened: ImportDialog, tmp_path: Path) -> None:
    """Plausible's CSV export (a ZIP of daily reports: tests/importer/test_import_plausible.py) guessed by its
    tables' names, previewed per day, imported into the aggregate tables the reports add in, undone."""
    from tests.importer.test_import_plausible import PAGEVIEWS, VISITORS, export_zip

    dialog = opened
    path = export_zip(tmp_path)
    dialog.ask_path = lambda: str(path)
    dialog.choose_button.click()
    idle(qtbot, dialog)
    assert dialog.upload is not None and dialog.kind.currentData() == "plausible"
    dialog.preview_button.click()
    idle(qtbot, dialog)
    assert [row[0] for row in cells(dialog.days)] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert cells(dialog.skips)[-3:] == [
        ["malformed lines (2), first ones:", "2"],
        ["imported_sources_20240101_20240103.csv:8: pageviews is 'x', not a whole number", ""],
        ["imported_visitors_20240101_20240103.csv:6: bad date '2024-01-0x'", ""],
    ]
    assert dialog.summary.text() == (
        f"Daily reports, 2024-01-01 to 2024-01-03: {VISITORS} visitors (summed over the days), {PAGEVIEWS} "
        "pageviews. Report rows to import: 71 (no day has live data yet)."
    )
    dialog.resize(760, 640)
    save_screenshot(dialog, "import-dialog-plausible")
    dialog.start_button.click()
    qtbot.waitUntil(
        lambda: not dialog.import_id and dialog.task is None and "Imported" in dialog.status.text(),
        timeout=120_000,
    )
    import_id = dialog.status.text().split(" as ")[1].rstrip(".")
    with closing(live_api.http()) as client:
        state = client.get(f"/api/imports/{import_id}").json()
        assert (state["status"], state["kind"], state["site"]) == ("done", "plausible", SITE)
        r = client.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/summary",
            params={"period": "custom", "from": "2024-01-01", "to": "2024-01-03", "compare": "false"},
        )
        got = {k: v["value"] for k, v in r.json()["metrics"].items()}
        assert (got["visitors"], got["pageviews"]) == (VISITORS, PAGEVIEWS)
        assert client.delete(f"/api/imports/{import_id}").json()["rows_deleted"] == state["rows"]
        r = client.get(
            f"/api/sites/{live_api.sites[SITE]}/reports/summary",
            params={"period": "custom", "from": "2024-01-01", "to": "2024-01-03", "compare": "false"},
        )
        assert r.json()["metrics"]["visitors"]["value"] == 0
