"""One access-log line to the import core's `Hit` in one pass: `accesslog.parse_line` then `pageviews.classify`
then the `Hit`, fused.

`accesslog_hit(text)` returns exactly what that composition returns (the same `Hit`, the same `Malformed`
reason, the same skip reason, in the same order of checks: the line's shape, its time, then the pageview rules),
without the two intermediate objects per line (`LogLine`, `Page`) and their calls: what a line costs before the
enrichment is mostly such per-line overhead. The composition stays the reference (`parse_line` and `classify`
are the documented rules); tests compare the two on generated and random lines.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pixel.server.importer.accesslog import _LINE, MAX_LINE, Malformed, _unescape, parse_time
from pixel.server.importer.hits import Hit
from pixel.server.importer.lines import TOO_LONG
from pixel.server.importer.pageviews import PAGE_EXTENSIONS, _host

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
    # pageviews.classify, on the same fields
    if "\\" in request:
        request = _unescape(request)
    parts = request.split(" ")
    if len(parts) not in (2, 3) or not parts[0].isalpha() or not parts[1]:
        return "request line unreadable"
    method, target = parts[0], parts[1]
    if method != "GET":
        return f"method {method[:10]}"
    code = int(status)
    if not (200 <= code < 300 or code == 304):
        return f"status {code // 100}xx"
    host = _host(vhost) if vhost and vhost != "-" else ""
    if target[0] != "/":
        if not target.lower().startswith(("http://", "https://")):
            return "request line unreadable"
        try:
            split = urlsplit(target)
            host = (split.hostname or host).lower()
        except ValueError:
            return "request line unreadable"
        path, query = split.path or "/", split.query
    else:
        path, _, query = target.partition("?")
        if "#" in path:
            path = path.partition("#")[0]
    last = path.rpartition("/")[2]
    if "." in last and last.rpartition(".")[2].lower() not in PAGE_EXTENSIONS:
        return "static asset or file"
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
