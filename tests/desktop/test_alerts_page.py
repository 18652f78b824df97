"""The Alerts tab against a real `pixel serve`: the traffic table equals the API's verdicts, a planted drop
gives one OS notification, channels added from the form never show their secret, "Send test" shows
"Sent." for a webhook whose receiver verifies the signature and the receiver's own refusal for a wrong secret,
and due digests are made into the chosen folder with a notification each (time injected)."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pixel.app.client.api import ApiClient
from pixel.app.desktop.alerts_page import AlertsPage
from pixel.app.desktop.workers import Runner
from pixel.server.alerts.detect import judge
from tests.alerts.receivers import smtp_server, webhook_receiver
from tests.alerts.traffic import NOW, hourly
from tests.desktop.conftest import LiveApi, save_screenshot

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SECRET = "whsec-0123456789abcdef"


def _page(qtbot: Any, notes: list[tuple[str, str]], now: datetime | None = None) -> AlertsPage:
    page = AlertsPage(Runner(), notify=lambda t, m: notes.append((t, m)), clock=lambda: now or NOW)
    qtbot.addWidget(page)
    return page


def test_planted_drop_notifies_once(qtbot: Any) -> None:
    notes: list[tuple[str, str]] = []
    page = _page(qtbot, notes)
    drop = judge(hourly(2, NOW.replace(hour=9, minute=0), 0.1), "shop.example", NOW).as_dict()
    normal = judge(hourly(1), "blog.example", NOW).as_dict()
    page.show_verdicts([normal, drop])
    assert [page.traffic_table.item(r, 1).text() for r in range(2)] == ["normal", "drop"]
    assert notes == [("Pixel: traffic drop on shop.example", drop["message"])]


def test_alerts_page_live(qtbot: Any, live_api: LiveApi, tmp_path: Path, monkeypatch: Any) -> None:
    notes: list[tuple[str, str]] = []
    page = _page(qtbot, notes, datetime.now(UTC))  # the demo traffic is laid out around the real date
    page.set_folder(str(tmp_path / "digests"))
    client = ApiClient(live_api.url, live_api.username, live_api.password)

    def verdicts() -> dict[str, str]:
        with closing(live_api.http()) as http:
            answers = [http.get(f"/api/sites/{sid}/alerts/traffic").json() for sid in live_api.sites.values()]
        return {v["site"]: v["kind"] for v in answers}

    # The server judges the last whole hours at its own clock: the verdicts asked just before and just after the
    # page's bracket it, so an hour boundary crossed meanwhile (CI runs at any hour) cannot fail the comparison.
    before = verdicts()
    page.set_client(client)
    qtbot.waitUntil(
        lambda: page.traffic_table.rowCount() == 3 and page.traffic_table.item(2, 1) is not None,
        timeout=60_000,
    )
    shown = {page.traffic_table.item(r, 0).text(): page.traffic_table.item(r, 1).text() for r in range(3)}
    assert shown in (before, verdicts())
    # Due digests made into the chosen folder at connection, one notification each (3 sites x 2 kinds).
    qtbot.waitUntil(lambda: len(list((tmp_path / "digests").glob("*.pdf"))) == 6, timeout=120_000)
    qtbot.waitUntil(lambda: sum(1 for t, _ in notes if "digest ready" in t) == 6, timeout=10_000)

    with webhook_receiver(SECRET, time.time()) as hook:
        for name, secret in (("ops", SECRET), ("stale", "an-old-rotated-secret")):
            page.kind.setCurrentText("webhook")
            page.name.setText(name)
            page.url.setText(hook.url)
            page.secret.setText(secret)
            page.add_button.click()
            qtbot.waitUntil(lambda name=name: any(c["name"] == name for c in page.channels), timeout=20_000)
            assert page.secret.text() == ""
        cells = [
            page.channel_table.item(r, c).text()
            for r in range(page.channel_table.rowCount())
            for c in range(5)
        ]
        assert not any(SECRET in c or "rotated" in c for c in cells)
        assert cells[:4] == ["ops", "webhook", hook.url, "set"]

        page.channel_table.selectRow(0)
        page.test_button.click()
        qtbot.waitUntil(lambda: page.test_result.text() not in ("", "Sending…"), timeout=20_000)
        assert page.test_result.text() == "Sent."
        assert len(hook.accepted) == 1 and hook.accepted[0]["json"]["kind"] == "test"

        page.channel_table.selectRow(1)
        page.test_button.click()
        qtbot.waitUntil(lambda: page.test_result.text().startswith("Not sent"), timeout=20_000)
        assert page.test_result.text() == (
            "Not sent: the receiver refused the message: HTTP 401 Unauthorized: invalid signature"
        )
        qtbot.waitUntil(
            lambda: page.channel_table.item(1, 4).text().startswith("the receiver refused"), timeout=20_000
        )
        monkeypatch.setenv(
            "HOME", str(tmp_path / "home")
        )  # the folder the screenshot shows, under the test's home
        page.set_folder("~/Documents/Pixel digests")
        assert page.folder() == str(tmp_path / "home" / "Documents" / "Pixel digests")
        page.message.clear()
        page.resize(1100, 1250)  # the stack-health group too
        save_screenshot(page, "alerts-page")

        for _ in range(2):
            count = len(page.channels)
            page.channel_table.selectRow(0)
            page.delete_button.click()
            qtbot.waitUntil(lambda count=count: len(page.channels) == count - 1, timeout=20_000)
    client.close()


def test_main_window_has_the_alerts_tab(qtbot: Any) -> None:
    from pixel.app.desktop.window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    texts = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert window.tabs.widget(texts.index("Alerts and digests")) is window.alerts_page
    assert window.alerts_page.runner is window.runner
    window.runner.shutdown()


def test_smtp_send_test_shows_the_refused_login(qtbot: Any, live_api: LiveApi) -> None:
    page = _page(qtbot, [])
    client = ApiClient(live_api.url, live_api.username, live_api.password)
    page.set_client(client)
    qtbot.waitUntil(lambda: page.add_button.isEnabled() and page.client is not None, timeout=30_000)
    with smtp_server("pixel", "right-password") as box:
        page.kind.setCurrentText("smtp")
        page.name.setText("mail")
        page.smtp_host.setText("127.0.0.1")
        page.smtp_port.setValue(box.port)
        page.smtp_security.setCurrentText("none")
        page.smtp_username.setText("pixel")
        page.secret.setText("wrong-password")
        page.sender_edit.setText("pixel@example.com")
        page.recipients.setText("owner@example.com, ops@example.com")
        page.add_button.click()
        qtbot.waitUntil(lambda: any(c["name"] == "mail" for c in page.channels), timeout=20_000)
        row = next(i for i, c in enumerate(page.channels) if c["name"] == "mail")
        assert page.channels[row]["recipients"] == ["owner@example.com", "ops@example.com"]
        page.channel_table.selectRow(row)
        page.test_button.click()
        qtbot.waitUntil(lambda: page.test_result.text().startswith("Not sent"), timeout=20_000)
        assert page.test_result.text() == (
            "Not sent: the server refused the login: 535 5.7.8 Authentication credentials invalid"
        )
        assert box.messages == []
        page.delete_button.click()
        qtbot.waitUntil(lambda: not any(c["name"] == "mail" for c in page.channels), timeout=20_000)
    client.close()
