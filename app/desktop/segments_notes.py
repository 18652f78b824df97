"""Wiring saved segments and annotations into the dashboard page (dashboard.py makes one `SegmentsAndNotes` and
calls its `load` on each refresh): the segments bar under the filter bar, a "Compare segments" tab, and the annotation markers on
every time series chart the page shows (the overview, the saved dashboards' line widgets, the compare chart, the
performance and errors charts): one `AnnotationLayer` per chart, made by `annotate` the first time a chart is seen,
all fed the same markers; a right-click on any of them adds a note on that day, or edits or deletes a manual
note under the cursor (the API decides who may: the author or an admin).

Reads go through the page's report source (drawn from the cache first, offline too); writes (save a segment, add a
note) go to the API on a worker thread and reload the list when done. A refusal or an unreachable host is shown in
the page's status line, as every other part of the page does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout

from pixel.app.client import annotations as notes_api
from pixel.app.client import segments as segments_api
from pixel.app.client.annotations import Marker
from pixel.app.client.api import ApiClient
from pixel.app.client.source import Fetched
from pixel.app.desktop.annotations import AnnotationLayer
from pixel.app.desktop.charts import TimeSeriesChart
from pixel.app.desktop.segments_bar import EVERYONE, SegmentCompare, SegmentsBar

if TYPE_CHECKING:
    from pixel.app.desktop.dashboard import DashboardPage


class SegmentsAndNotes:
    def __init__(self, page: DashboardPage) -> None:
        self.page = page
        self.bar = SegmentsBar()
        self.compare_view = SegmentCompare()
        self.markers: list[Marker] = []
        self.timezone = "UTC"
        self.notes = self.layer(page.chart)  # the overview's
        layout = page.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.indexOf(page.filter_bar) + 1, self.bar)
        page.tabs.addTab(self.compare_view, "Compare segments")
        self.bar.chosen.connect(self._apply)
        self.bar.save_requested.connect(self.save_segment)
        self.bar.compare_requested.connect(self.compare)
        self.bar.rename_requested.connect(lambda seg, name: self.change_segment(seg, name=name))
        self.bar.share_requested.connect(lambda seg, shared: self.change_segment(seg, shared=shared))
        self.bar.delete_requested.connect(self.delete_segment)

    def layer(self, chart: TimeSeriesChart) -> AnnotationLayer:
        """The annotation layer of `chart`, made (wired to `add_note`, given the current markers) if it has none."""
        found = chart.findChildren(AnnotationLayer, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if found:
            return found[0]
        made = AnnotationLayer(chart)
        made.add_requested.connect(self.add_note)
        made.edit_requested.connect(self.edit_note)
        made.delete_requested.connect(self.delete_note)
        made.set_markers(self.markers, self.timezone)
        return made

    def annotate(self) -> list[AnnotationLayer]:
        """Every time series chart of the page with its layer (charts made since the last call get one)."""
        return [self.layer(chart) for chart in self.page.findChildren(TimeSeriesChart)]

    def set_markers(self, markers: list[Marker], timezone: str) -> None:
        self.markers, self.timezone = markers, timezone
        for layer in self.annotate():
            layer.set_markers(markers, timezone)

    def load(self, current: int | None = None) -> None:
        """The site's segments into the bar and its annotations onto the chart."""
        page = self.page
        if page.source is None or page.site is None:
            return
        source, site = page.source, page.site
        segments_path = f"/api/sites/{site['id']}/segments"
        segments_query = {"sort": "name"}
        page._part(
            "segments",
            lambda cached: (
                source.cached_every(segments_path, segments_query)
                if cached
                else source.every(segments_path, segments_query)
            ),
            lambda data: self.bar.set_segments(data["items"], current),
        )
        notes_path = f"/api/sites/{site['id']}/annotations"
        notes_query = {"sort": "starts_at"}
        page._part(
            "annotations",
            lambda cached: (
                source.cached_every(notes_path, notes_query)
                if cached
                else source.every(notes_path, notes_query)
            ),
            lambda data: self.set_markers(notes_api.markers(data["items"]), site["timezone"]),
        )

    def _apply(self, filters: list[list[str]]) -> None:
        page = self.page
        page.filters = [list(f) for f in filters]
        page.filter_bar.set_filters(page.filters)
        page.refresh()

    def _write(self, name: str, work: Callable[[ApiClient], Any], done: Callable[[Any], None]) -> None:
        page = self.page
        client = page.source.client if page.source is not None else None
        if client is None:
            page.errors[name] = "Not connected: nothing can be saved offline."
            page._update_status()
            return

        def failed(exc: BaseException) -> None:
            page.errors[name] = f"Not saved: {getattr(exc, 'detail', None) or exc}"
            page._update_status()

        page.runner.submit(lambda _task: work(client), on_done=done, on_error=failed)

    def save_segment(self, name: str, shared: bool) -> None:
        """The page's current filters as a new segment, then picked in the bar."""
        page = self.page
        if page.site is None:
            return
        site_id, filters = page.site["id"], [list(f) for f in page.filters]

        def saved(made: dict[str, Any]) -> None:
            page.errors.pop("segments", None)
            self.load(current=made["id"])

        self._write(
            "segments", lambda client: segments_api.save(client, site_id, name, filters, shared), saved
        )

    def change_segment(
        self, segment: dict[str, Any], name: str | None = None, shared: bool | None = None
    ) -> None:
        """Rename or share/unshare a segment (the API's access rules), then reload it into the bar, still picked."""

        def changed(made: dict[str, Any]) -> None:
            self.page.errors.pop("segments", None)
            self.load(current=made["id"])

        self._write(
            "segments", lambda client: segments_api.update(client, segment, name=name, shared=shared), changed
        )

    def delete_segment(self, segment: dict[str, Any]) -> None:
        """Delete a segment; the page keeps the filters it shows."""

        def deleted(_none: object) -> None:
            self.page.errors.pop("segments", None)
            self.load()

        self._write("segments", lambda client: segments_api.delete(client, segment["id"]), deleted)

    def add_note(self, day: date, text: str) -> None:
        page = self.page
        if page.site is None:
            return
        site_id = page.site["id"]
        self._write(
            "annotations", lambda client: notes_api.add(client, site_id, text, day), lambda _made: self.load()
        )

    def edit_note(self, marker: Marker, text: str) -> None:
        self._write(
            "annotations", lambda client: notes_api.edit(client, marker, text), lambda _made: self.load()
        )

    def delete_note(self, marker: Marker) -> None:
        self._write(
            "annotations", lambda client: notes_api.delete(client, marker.id), lambda _none: self.load()
        )

    def compare(self, first: dict[str, Any] | None, second: dict[str, Any] | None) -> None:
        """Summary and visitors over time of two segments (None: everyone), side by side in the compare tab."""
        page = self.page
        if page.source is None or page.site is None:
            return
        source, site_id, base = page.source, page.site["id"], page.range.params()
        pair = (first, second)
        names = [s["name"] if s else EVERYONE for s in pair]

        def fetch(cached: bool) -> Fetched | None:
            answers: list[Fetched] = []
            for segment in pair:
                params = {**base, "filters": [list(f) for f in (segment["filters"] if segment else [])]}
                for report, extra in (("summary", {}), ("timeseries", {"metrics": "visitors"})):
                    path, query = f"/api/sites/{site_id}/reports/{report}", {**params, **extra}
                    got = source.cached(path, query) if cached else source.get(path, query)
                    if got is None:
                        return None
                    answers.append(got)
            data = {
                "names": names,
                "summaries": [answers[0].data, answers[2].data],
                "timeseries": [answers[1].data, answers[3].data],
            }
            oldest = min(answers, key=lambda f: f.as_of)
            return Fetched(data, oldest.as_of, all(a.live for a in answers), oldest.problem)

        page.tabs.setCurrentWidget(self.compare_view)
        page._part("compare", fetch, self.compare_view.set_data, on_missing=self.compare_view.set_message)
