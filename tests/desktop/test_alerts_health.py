"""The Alerts tab's stack health: the rules read from and saved to a real `pixel serve` (read back through the
API), the stack's findings shown and notified once per episode (the data folder's disk with a threshold above
what is free; the certificate a TLS stand-in for the edge serves, 5 days before its expiry), and "backup
failing" judged by the app from the backup panel: a scheduled backup that fails (its folder cannot be made),
and a last good backup older than twice the interval (clock pinned)."""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from pathlib import Path
from typing import Any

from pixel.app.client.api import ApiClient
from pixel.app.desktop.alerts_page import AlertsPage
from pixel.app.desktop.backup_panel import BackupPanel
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.stack.backup_schedule import BackupPlan, BackupScheduler, file_name
from tests.alerts.tls_edge import make_certificate, tls_edge
from tests.desktop.conftest import LiveApi, save_screenshot

T0 = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def _page(qtbot: Any, notes: list[tuple[str, str]], now: dt.datetime = T0) -> AlertsPage:
    page = AlertsPage(Runner(), notify=lambda t, m: notes.append((t, m)), clock=lambda: now)
    qtbot.addWidget(page)
    return page


def finding(kind: str, target: str, state: str, episode: str, message: str) -> dict[str, Any]:
    return {"kind": kind, "target": target, "state": state, "episode": episode, "message": message}


def test_findings_are_told_once_per_episode(qtbot: Any) -> None:
    notes: list[tuple[str, str]] = []
    page = _page(qtbot, notes)
    gap = finding("ingestion_stopped", "shop.example", "alert", "gap:4", "Ingestion stopped: no events")
    disk = finding("disk_filling", "/data", "ok", "", "The data folder has 50 GB free")
    page.show_health([disk, gap])
    page.show_health([disk, gap])
    assert notes == [("Pixel: ingestion stopped (shop.example)", "Ingestion stopped: no events")]
    cells = [[page.health_table.item(r, c).text() for c in range(3)] for r in range(2)]
    assert cells == [
        ["ingestion stopped", "shop.example", "alert"],
        ["disk filling", "/data", "ok"],
    ]  # alerts first
    page.show_health([{**gap, "episode": "gap:9"}])  # another gap: told again
    page.show_health([{**gap, "state": "unknown"}])  # not judged: changes nothing
    page.show_health([{**gap, "episode": "gap:9"}])
    page.show_health([{**gap, "state": "ok"}])
    page.show_health([{**gap, "episode": "gap:9"}])  # after an "ok": a new episode
    assert len(notes) == 3


def test_a_scheduled_backup_that_fails_is_told_once(qtbot: Any, tmp_path: Path) -> None:
    """The real panel runs the due backup into a folder that cannot be made (its parent is a file): the
    failure reaches the page through the panel's hook as one notification, not again at the next check."""
    notes: list[tuple[str, str]] = []
    page = _page(qtbot, notes)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    store = ProfileStore()
    extra = {"backup_folder": str(blocker / "backups"), "backup_every": "daily", "backup_keep": "3"}
    store.save(Profile("local", project="pxalert", extra=extra))
    panel = BackupPanel(Runner())
    qtbot.addWidget(panel)
    panel.clock = lambda: T0
    panel.on_checked = page.backup_checked

    def no_stack() -> Any:
        raise AssertionError("the folder fails first: no stack is opened")

    panel.set_profile(store, store.get("local"), no_stack)
    qtbot.waitUntil(lambda: any("backup failing" in t for t, _ in notes), timeout=30_000)
    qtbot.waitUntil(lambda: panel.running is None, timeout=30_000)
    [(title, message)] = notes
    assert title == f"Pixel: backup failing ({blocker / 'backups'})"
    assert message.startswith("The backup of 2026-03-01 09:30 UTC failed: the folder ")
    assert message.endswith("(no good backup yet).")
    panel.show_backups()  # the panel's next look: the same episode
    assert len(notes) == 1
    assert page.health_table.item(0, 0).text() == "backup failing"


def test_no_good_backup_for_twice_the_interval(qtbot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    taken = T0 - dt.timedelta(days=3)
    (folder / file_name("pxold", taken)).write_bytes(b"a backup")
    notes: list[tuple[str, str]] = []
    page = _page(qtbot, notes)
    scheduler = BackupScheduler(BackupPlan(folder, "daily", 3), "pxold", lambda p: p, lambda: T0)
    page.backup_checked(scheduler)
    assert [t for t, _ in notes] == [f"Pixel: backup failing ({folder})"]
    assert notes[0][1].startswith(
        "No scheduled backup succeeded for 3.0 days (daily backups; the last good one is of 2026-02-26 09:30 UTC)"
    )
    page.rules["backup"]["factor"] = 4.0  # 4 days allowed: ok, and the episode ends
    page.backup_checked(scheduler)
    assert page.backup is not None and page.backup["state"] == "ok"
    page.rules["backup"]["enabled"] = False
    page.backup_checked(scheduler)
    assert page.backup is None and page.health_table.rowCount() == 0
    assert len(notes) == 1


def test_health_rules_saved_to_a_real_stack(qtbot: Any, live_api: LiveApi, tmp_path: Path) -> None:
    notes: list[tuple[str, str]] = []
    now = dt.datetime.now(dt.UTC)  # the stack judges at its own clock
    page = _page(qtbot, notes, now)
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    with closing(live_api.http()) as http:
        before = http.get("/api/alerts/rules").json()
    cert, key = make_certificate(tmp_path, "stats.example.com", now + dt.timedelta(days=5), "Pebble Test CA")
    try:
        with tls_edge(cert, key) as address:
            page.set_client(client)
            qtbot.waitUntil(lambda: page.save_rules_button.isEnabled(), timeout=30_000)
            assert (page.cert_days.value(), page.disk_on.isChecked()) == (14, True)
            qtbot.waitUntil(lambda: any(f["kind"] == "disk_filling" for f in page.findings), timeout=30_000)
            page.disk_percent.setValue(100.0)  # above what is free on any disk
            page.cert_address.setText(address)
            page.save_rules_button.click()
            qtbot.waitUntil(lambda: page.rules_result.text() == "Alert rules saved.", timeout=30_000)
            with closing(live_api.http()) as http:
                saved = http.get("/api/alerts/rules").json()
            assert (saved["disk"]["min_free_percent"], saved["certificate"]["address"]) == (100.0, address)
            data = str(live_api.server.data_dir)
            qtbot.waitUntil(
                lambda: (f"Pixel: disk filling ({data})") in [t for t, _ in notes], timeout=30_000
            )
            title = f"Pixel: certificate near expiry ({address})"
            qtbot.waitUntil(lambda: title in [t for t, _ in notes], timeout=30_000)
            said = dict(notes)[title]
            assert said.startswith(f"The certificate of {address} expires in 5 days, on ")
            assert "(issuer Pebble Test CA)" in said
            shown = page.findings
            page.check_traffic()  # a second look: nothing told again
            qtbot.waitUntil(lambda: page.findings is not shown, timeout=30_000)
            assert [t for t, _ in notes].count(title) == 1
            page.message.clear()
            page.resize(1100, 1250)
            save_screenshot(page, "alerts-page-health")
    finally:
        with closing(live_api.http()) as http:
            assert http.put("/api/alerts/rules", json=before).status_code == 200
        client.close()
