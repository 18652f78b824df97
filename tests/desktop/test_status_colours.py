"""Status colours follow the OS theme: every variant is legible on the light and the dark palette, the stack
page's sparklines and the owner pages' error messages switch when the palette turns dark."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from pixel.app.desktop.charts import contrast
from pixel.app.desktop.owner_widgets import MessagePage
from pixel.app.desktop.stack_page import HEALTH_KINDS, StackPage, ThemedSparkline
from pixel.app.desktop.status_colours import DARK, LIGHT, status_colour, status_style
from pixel.app.desktop.workers import Runner
from tests.desktop.test_owner_pages import dark


def _palette(window: str, base: str) -> QPalette:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor(window))
    palette.setColor(QPalette.ColorRole.Base, QColor(base))
    return palette


@pytest.mark.parametrize(
    ("palette", "table"),
    [
        (_palette("#efefef", "#ffffff"), LIGHT),  # Fusion's light Window, and white
        (_palette("#1f2937", "#111827"), DARK),  # the dark palette of the screenshots
        (_palette("#353535", "#2a2a2a"), DARK),  # Fusion's own dark
    ],
)
def test_every_status_colour_is_legible_on_its_background(palette: QPalette, table: dict[str, str]) -> None:
    for kind, hex_colour in table.items():
        chosen = status_colour(kind, palette)  # type: ignore[arg-type]
        assert chosen == QColor(hex_colour), kind
        for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
            assert contrast(chosen, palette.color(role)) >= 4.5, (kind, role, hex_colour)


def test_the_light_and_dark_variants_differ_for_every_kind() -> None:
    assert LIGHT.keys() == DARK.keys()
    assert all(LIGHT[k] != DARK[k] for k in LIGHT)


def test_stack_sparklines_and_messages_switch_with_the_theme(qtbot) -> None:  # type: ignore[no-untyped-def]
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    sparks = {kind: ThemedSparkline(kind) for kind in ("cpu", "memory", "ingest")}
    for spark in sparks.values():
        qtbot.addWidget(spark)
        spark.show()

    class Page(QWidget, MessagePage):
        def __init__(self) -> None:
            super().__init__()
            self.message = QLabel(self)

    page = Page()
    qtbot.addWidget(page)
    page.show()
    if app.palette().color(QPalette.ColorRole.Window).lightnessF() >= 0.5:
        for kind, spark in sparks.items():
            assert spark.curve.opts["pen"].color() == QColor(LIGHT[kind]), kind
        page.say("refused", error=True)
        assert page.message.styleSheet() == f"color:{LIGHT['bad']}"
    with dark():
        qtbot.wait(20)
        for kind, spark in sparks.items():
            assert spark.curve.opts["pen"].color() == QColor(DARK[kind]), kind
        page.say("refused", error=True)
        assert page.message.styleSheet() == f"color:{DARK['bad']}"
        assert status_style("good", page) == f"color:{DARK['good']}"
        page.error_style = "font-weight:bold"
        page.say("refused", error=True)
        assert page.message.styleSheet() == f"color:{DARK['bad']}; font-weight:bold"
        page.say("saved")
        assert page.message.styleSheet() == ""


def test_stack_page_recolours_health_message_and_logs_when_the_theme_turns_dark(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QTableWidgetItem

    page = StackPage(Runner(), poll_ms=3_600_000)
    qtbot.addWidget(page)
    page.show()
    page.table.setRowCount(2)
    for row, health in enumerate(("healthy", "unhealthy")):
        item = QTableWidgetItem(health)
        item.setForeground(status_colour(HEALTH_KINDS[health], page.palette()))
        page.table.setItem(row, 2, item)
    page._error(RuntimeError("engine gone"))
    with dark():
        qtbot.wait(20)
        assert page.table.item(0, 2).foreground().color() == QColor(DARK["good"])
        assert page.table.item(1, 2).foreground().color() == QColor(DARK["bad"])
        assert page.message.styleSheet() == f"color:{DARK['bad']}"
        # the log view has no style sheet, so its background is the dark theme's
        assert page.log.styleSheet() == ""
        assert page.log.palette().color(QPalette.ColorRole.Base) == QColor("#111827")


def test_public_address_and_backup_messages_follow_the_theme(qtbot) -> None:  # type: ignore[no-untyped-def]
    """The wizard's DNS answer and the backup panel's error take the colour of the palette shown at the time
    (they were fixed light-theme colours: dark red on a dark window)."""
    from pixel.app.desktop.backup_panel import BackupPanel
    from pixel.app.desktop.public_address_page import AMBER, GREEN, RED, PublicAddressForm

    form = PublicAddressForm(Runner(), lambda: "203.0.113.7")
    panel = BackupPanel(Runner(), check_ms=3_600_000)
    for widget in (form, panel):
        qtbot.addWidget(widget)
        widget.show()
    with dark():
        qtbot.wait(20)
        for kind, name in ((RED, "bad"), (GREEN, "good"), (AMBER, "warn")):
            form._say(kind, "checked")
            assert form.result.styleSheet() == f"color:{DARK[name]}"
        panel._show_error("the folder is gone")
        assert panel.error.styleSheet() == f"color:{DARK['bad']}"
