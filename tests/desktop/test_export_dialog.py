"""The export dialog against a real `pixel serve`: the saved files equal the API's own exports and JSON; a
refusal shows the API's words and leaves no file; a cancelled export leaves no file; the dashboard's Export…
button opens it on the dashboard's site, range and filters; a screenshot for docs/screenshots/."""

from __future__ import annotations

import csv
import io
import zipfile
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pixel.app.client import ApiClient
from pixel.app.client import exports as client_exports
from pixel.app.desktop.export_dialog import ExportDialog
from pixel.app.desktop.workers import Runner
from tests.desktop.conftest import save_screenshot


@pytest.fixture
def dialog(qtbot, live_api):
    runner = Runner()
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    site = {"id": live_api.sites["shop.example"], "domain": "shop.example"}
    dlg = ExportDialog(runner, client, site, {"period": "30d", "filters": [["device", "is", "desktop"]]})
    qtbot.addWidget(dlg)
    dlg.resize(560, 200)
    dlg.show()
    yield dlg
    runner.shutdown()
    client.close()


def choose(dlg: ExportDialog, kind: str, path: Path, dimension: str = "") -> list[tuple[str, str]]:
    asked: list[tuple[str, str]] = []
    dlg.kind.setCurrentIndex(dlg.kind.findData(kind))
    if dimension:
        dlg.dimension.setCurrentText(dimension)

    def ask(name: str, file_filter: str) -> str:
        asked.append((name, file_filter))
        return str(path)

    dlg.ask_path = ask
    return asked


def export(qtbot, dlg: ExportDialog) -> None:
    dlg.save_button.click()
    qtbot.waitUntil(lambda: dlg.runner.busy == 0 and dlg.save_button.isEnabled(), timeout=60_000)


def api_bytes(live_api, path: str, **params) -> bytes:
    with closing(live_api.http()) as client:
        r = client.get(f"/api/sites/{live_api.sites['shop.example']}/exports/{path}", params=params)
        assert r.status_code == 200, r.text
        return r.content


FILTERS = '[["device","is","desktop"]]'


def test_dashboard_zip_and_report_csv_equal_the_api(
    qtbot, live_api, dialog: ExportDialog, tmp_path: Path
) -> None:
    target = tmp_path / "dash.zip"
    asked = choose(dialog, "dashboard", target)
    with qtbot.waitSignal(dialog.saved, timeout=60_000) as saved:
        export(qtbot, dialog)
    assert asked == [("shop.example-dashboard-30d.zip", "ZIP (*.zip)")]
    assert saved.args == [str(target), target.stat().st_size]
    assert dialog.status.text().startswith("Saved ") and str(target) in dialog.status.text()
    archive = zipfile.ZipFile(target)
    assert "summary.csv" in archive.namelist() and "breakdown-page.csv" in archive.namelist()
    assert archive.read("breakdown-page.csv") == api_bytes(
        live_api, "breakdown/page.csv", period="30d", filters=FILTERS
    )

    target = tmp_path / "countries.csv"
    asked = choose(dialog, "breakdown", target, "country")
    assert dialog.dimension.isVisible()
    dialog.status.setText("")  # the screenshot shows no path of this machine
    save_screenshot(dialog, "export-dialog")
    export(qtbot, dialog)
    assert asked == [("shop.example-country-30d.csv", "CSV (*.csv)")]
    rows = list(csv.reader(io.StringIO(target.read_text("utf-8"))))
    with closing(live_api.http()) as client:
        js = client.get(
            f"/api/sites/{live_api.sites['shop.example']}/reports/breakdown/country",
            params={"period": "30d", "filters": FILTERS, "limit": 1000},
        ).json()
    assert rows[0] == ["country", *js["metrics"]]
    assert [r[0] for r in rows[1:]] == [x["value"] for x in js["rows"]] and len(rows) > 2


def test_events_parquet_and_no_partial_file(qtbot, live_api, dialog: ExportDialog, tmp_path: Path) -> None:
    target = tmp_path / "events.parquet"
    choose(dialog, "events", target)
    export(qtbot, dialog)
    table = pq.read_table(target)
    assert table.num_rows > 0 and set(table.column("device_type").to_pylist()) == {"desktop"}
    assert (
        table.num_rows
        == pq.read_table(
            io.BytesIO(api_bytes(live_api, "events.parquet", period="30d", filters=FILTERS))
        ).num_rows
    )

    # a refusal: the API's own words, no file, the old file untouched
    target.write_bytes(b"old")
    dialog.params = {"period": "30d", "filters": [["nope", "is", "x"]]}
    choose(dialog, "events", target)
    export(qtbot, dialog)
    assert (
        dialog.status.text().startswith("Export failed: ")
        and "unknown dimension 'nope'" in dialog.status.text()
    )
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]


def test_cancel_leaves_no_file(qtbot, live_api, dialog: ExportDialog, tmp_path: Path, monkeypatch) -> None:
    real = client_exports.download

    def slow(client, path, params, dest, on_chunk=None):  # cancels itself on the first chunk
        def chunk(n: int) -> None:
            dialog.task.cancel()  # type: ignore[union-attr]
            if on_chunk:
                on_chunk(n)

        return real(client, path, params, dest, chunk)

    monkeypatch.setattr("pixel.app.desktop.export_dialog.download", slow)
    target = tmp_path / "cancelled.zip"
    choose(dialog, "dashboard", target)
    export(qtbot, dialog)
    assert dialog.status.text() == "Export cancelled; nothing was saved."
    assert list(tmp_path.iterdir()) == []


def test_dashboard_button_opens_it_on_the_current_view(qtbot, live_api, tmp_path: Path) -> None:
    from pixel.app.client import ReportCache, ReportSource
    from pixel.app.desktop.dashboard import DashboardPage

    runner = Runner()
    source = ReportSource(
        ApiClient(live_api.url, live_api.username, live_api.password),
        ReportCache(tmp_path / "c.sqlite3"),
        "t",
    )
    page = DashboardPage(runner, source, realtime_ms=3_600_000)
    qtbot.addWidget(page)
    page.show()
    page.load_sites()
    qtbot.waitUntil(lambda: page.runner.busy == 0 and page.site is not None, timeout=60_000)
    page.add_filter("country", "DE")
    page.export_button.click()
    dialogs = page.findChildren(ExportDialog)
    assert len(dialogs) == 1 and dialogs[0].site["id"] == page.site["id"]
    assert (
        dialogs[0].params["filters"] == [["country", "is", "DE"]] and "1 filter " in dialogs[0].scope.text()
    )
    dialogs[0].close()
    qtbot.waitUntil(lambda: page.runner.busy == 0, timeout=60_000)
    runner.shutdown()
    source.client.close()
