"""Qt-free annotations over an `ApiClient` or a `ReportSource`: a site's annotations for a range (its own and
the stack-wide automatic ones), a note added on a date or a date range, changed, deleted.

Contract: the API is the validator and the access rule; refusals reach the caller as `ApiRequestError` with
the API's text. Listing goes through the report source, so a chart drawn from the cache offline still shows the
annotations fetched with it. `Marker` is what a chart draws: where (epoch seconds), the text, automatic or not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pixel.app.client.api import ApiClient
from pixel.app.client.site_admin import EmptyName
from pixel.app.client.source import ReportSource


@dataclass(frozen=True)
class Marker:
    id: int
    starts_at: float
    ends_at: float | None
    text: str
    automatic: bool
    kind: str
    author: str

    def label(self, zone: ZoneInfo | None = None) -> str:
        """The hover text: the note, who wrote it (Pixel for an automatic one) and when, in `zone` (the site's):
        a date for a note on whole days, a date and time for a moment."""
        zone = zone or ZoneInfo("UTC")

        def when(epoch: float, last: bool = False) -> str:
            moment = dt.datetime.fromtimestamp(epoch - (0.001 if last else 0), zone)
            return moment.strftime("%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M")

        start = dt.datetime.fromtimestamp(self.starts_at, zone)
        whole_days = (
            self.ends_at is not None
            and start.time() == dt.time()
            and (dt.datetime.fromtimestamp(self.ends_at, zone).time() == dt.time())
        )
        span = when(self.starts_at)
        if self.ends_at is not None and when(self.ends_at, last=whole_days) != span:
            span += " – " + when(self.ends_at, last=whole_days)
        who = "Pixel (automatic)" if self.automatic else self.author
        return f"{self.text}\n— {who}, {span}"


def markers(items: list[dict[str, Any]]) -> list[Marker]:
    return [
        Marker(
            int(i["id"]),
            float(i["starts_at"]),
            i.get("ends_at"),
            str(i["text"]),
            bool(i["automatic"]),
            str(i["kind"]),
            str(i["author"]),
        )  # fmt: skip
        for i in sorted(items, key=lambda i: (i["starts_at"], i["id"]))
    ]


def listing(
    source: ReportSource, site_id: int, since: float | None = None, until: float | None = None
) -> list[Marker]:
    params: dict[str, Any] = {"sort": "starts_at"}
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    return markers(source.every(f"/api/sites/{site_id}/annotations", params).data["items"])


def add(
    client: ApiClient, site_id: int, text: str, day: dt.date, end_day: dt.date | None = None
) -> dict[str, Any]:
    """A note on `day` (to `end_day`, inclusive), whole days in the site's time zone."""
    if not text.strip():
        raise EmptyName("An annotation needs a text.")
    body: dict[str, Any] = {"text": text.strip(), "date": day.isoformat()}
    if end_day is not None and end_day != day:
        body["end_date"] = end_day.isoformat()
    return dict(client.request("POST", f"/api/sites/{site_id}/annotations", body=body))


def delete(client: ApiClient, annotation_id: int) -> None:
    client.request("DELETE", f"/api/annotations/{annotation_id}")


def edit(client: ApiClient, marker: Marker, text: str) -> dict[str, Any]:
    """A manual note's text changed, its span kept (the API refuses an automatic one, or another's note to a
    non-admin)."""
    if not text.strip():
        raise EmptyName("An annotation needs a text.")
    body: dict[str, Any] = {"text": text.strip(), "starts_at": marker.starts_at}
    if marker.ends_at is not None:
        body["ends_at"] = marker.ends_at
    return dict(client.request("PUT", f"/api/annotations/{marker.id}", body=body))
