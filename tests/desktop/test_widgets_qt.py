"""Dashboard widgets on their own (no server): Qt's own methods stay callable on them, the funnel's
window is sent in seconds, the date pickers pop up a calendar, the filter bar replaces its chips."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from pixel.app.desktop.views import FunnelView
from pixel.app.desktop.widgets import FilterBar, RangePicker


def test_funnel_view_keeps_qwidget_window(qtbot) -> None:
    """Its spin box was once stored as `self.window`, which hid QWidget.window() (a QSpinBox is not
    callable): anything asking the view for its top-level window failed."""
    holder = QWidget()
    qtbot.addWidget(holder)
    funnel = FunnelView()
    QVBoxLayout(holder).addWidget(funnel)
    assert funnel.window() is holder
    assert FunnelView.window is QWidget.window


def test_funnel_request_sends_the_window_in_seconds(qtbot) -> None:
    funnel = FunnelView()
    qtbot.addWidget(funnel)
    funnel.steps.setText("/, event:signup , /thanks")
    funnel.window_minutes.setValue(90)
    with qtbot.waitSignal(funnel.run_requested) as blocker:
        funnel.request()
    assert blocker.args == [
        [
            {"kind": "page", "page_pattern": "/"},
            {"kind": "event", "event_name": "signup"},
            {"kind": "page", "page_pattern": "/thanks"},
        ],
        5400,
    ]
    funnel.steps.setText("/only-one")
    funnel.request()
    assert funnel.message.text() == "A funnel has 2 to 10 steps, separated by commas."


def test_range_picker_dates_pop_up_a_calendar(qtbot) -> None:
    picker = RangePicker()
    qtbot.addWidget(picker)
    assert picker.date_from.calendarPopup() and picker.date_to.calendarPopup()
    assert picker.date_from.displayFormat() == "yyyy-MM-dd"


def test_filter_bar_replaces_its_chips(qtbot) -> None:
    bar = FilterBar()
    qtbot.addWidget(bar)
    bar.set_filters([["device", "is", "Mobile"], ["page", "contains", "/blog"]])
    assert [c.text() for c in bar.chips] == ["device is Mobile  ✕", "page contains /blog  ✕"]
    assert bar.layout_.count() == 3  # two chips and the stretch
    bar.set_filters([["country", "is_not", "FR"]])
    assert [c.text() for c in bar.chips] == ["country is not FR  ✕"]
    assert bar.layout_.count() == 2
    with qtbot.waitSignal(bar.removed) as blocker:
        bar.chips[0].click()
    assert blocker.args == [0]
    bar.set_filters([])
    assert bar.chips == [] and bar.layout_.count() == 1 and bar.isHidden()
