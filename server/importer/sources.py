"""The raw sources `pixel import` knows, by name: each a `hits.Source` (file check and line parser).

`accesslog` adapts the access-log parser (`accesslog.parse_line` then `pageviews.classify`) to a `Hit`
(`accesslog_line`, the reference; the source itself uses `accesslog_hits.accesslog_hit`, the same fused); GA4's
BigQuery export, Umami's CSV, GoatCounter's CSV and Matomo's raw data have their own modules. Adding a source is adding its module and a line here.
"""

from __future__ import annotations

from pathlib import Path

from pixel.server.importer import ga4, goatcounter, matomo, umami
from pixel.server.importer.accesslog import Malformed, parse_line
from pixel.server.importer.accesslog_hits import accesslog_hit
from pixel.server.importer.hits import Hit, Parser, Source
from pixel.server.importer.lines import TOO_LONG, check_kind
from pixel.server.importer.pageviews import Page, classify


def accesslog_line(text: str) -> Hit | Malformed | str:
    parsed = parse_line(text) if text is not TOO_LONG else Malformed("line too long")
    if isinstance(parsed, Malformed):
        return parsed
    page = classify(parsed)
    if not isinstance(page, Page):
        return page
    return Hit(
        ts_ms=parsed.ts_ms,
        host=page.host,
        path=page.path,
        query=page.query,
        referrer=parsed.referrer,
        ip=parsed.ip,
        user_agent=parsed.user_agent,
    )


def _accesslog_parser(path: Path) -> Parser:
    return accesslog_hit


ACCESSLOG = Source(
    "accesslog",
    "an nginx/Apache access log (combined, common, vhost; gzip too)",
    check_kind,
    _accesslog_parser,
)

SOURCES: dict[str, Source] = {
    s.name: s for s in (ACCESSLOG, ga4.SOURCE, umami.SOURCE, goatcounter.SOURCE, matomo.SOURCE)
}
