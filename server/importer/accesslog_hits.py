"""One access-log line to the import core's `Hit` in one pass: `accesslog.parse_line` then `pageviews.classify`
then the `Hit`, fused.

`accesslog_hit(text)` returns exactly what that composition returns (the same `Hit`, the same `Malformed`
reason, the same skip reason, in the same order of checks: the line's shape, its time, then the pageview rules),
without the two intermediate objects per line (`LogLine`, `Page`): what a line costs before the enrichment is
mostly such per-line overhead. The pageview rules are one function for both (`pageviews.page_of`); tests compare
the two paths on known, generated and random lines.
"""

from __future__ import annotations

from pixel.server.importer.accesslog import _LINE, MAX_LINE, Malformed, _unescape, parse_time
from pixel.server.importer.hits import Hit
from pixel.server.importer.lines import TOO_LONG
from pixel.server.importer.pageviews import page_of

TOO_LONG_LINE = Malformed("line too long")
NOT_A_LINE = Malformed("not a common/combined log line")
_fullmatch = _LINE.fullmatch


def accesslog_hit(text: str) -> Hit | Malformed | str:
    """The `Hit` of one access-log line (without its newline), a `Malformed` with the reason, or the reason it
    is not a pageview. Never raises."""
    if text is TOO_LONG or len(text) > MAX_LINE:
        return TOO_LONG_LINE
    match = _fullmatch(text)
    if match is None:
        return NOT_A_LINE
    vhost, ip, when, request, status, _size, referrer, agent = match.groups()
    try:
        ts_ms = parse_time(when)
    except (ValueError, KeyError, IndexError):
        return Malformed(f"bad time [{when[:40]}]")
    if "\\" in request:
        request = _unescape(request)
    page = page_of(request, int(status), vhost)
    if isinstance(page, str):
        return page
    host, path, query = page
    return Hit(
        ts_ms,
        host,
        path,
        query,
        "" if referrer is None or referrer == "-" else _unescape(referrer),
        "pageview",
        "",
        ip,
        "" if agent is None or agent == "-" else _unescape(agent),
    )
