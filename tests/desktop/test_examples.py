"""Every example script imports, builds its widget offscreen with generated data, and is saved as a
screenshot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.desktop.conftest import save_screenshot

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def test_there_is_an_example_per_view() -> None:
    assert [p.stem for p in EXAMPLES] == [
        "breakdown_bars",
        "dashboard_offline",
        "goals_funnel",
        "sparklines",
        "summary_tiles",
        "timeseries_chart",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_builds(qtbot, path: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the __main__ guard keeps it from opening a window
    assert module.__doc__
    widget = module.build(tmp_path) if path.stem == "dashboard_offline" else module.build()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    if path.stem == "dashboard_offline":
        qtbot.waitUntil(lambda: widget.runner.busy == 0, timeout=10_000)
        assert widget.status.text().startswith("Offline — as of ")
        assert len(widget.chart.labels) == 30 and widget.realtime.visitors == 7
        assert [len(b.rows) for b in widget.boxes] == [6, 6, 6, 6]
        widget.runner.shutdown()
    save_screenshot(widget, f"example-{path.stem}")
