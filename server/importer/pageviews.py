"""Which access-log lines are pageviews, and why the others are skipped.

A pageview is a GET of an HTML page that succeeded: status 2xx or 304 (a browser revalidating the page it
shows), a path whose last segment has no extension or an HTML-like one (.html, .htm, .php, .asp(x), .jsp,
.shtml, .cgi, .pl, .cfm). Everything else is skipped with one reason: another method (HEAD, POST, ...), a
request line that is not `METHOD TARGET [PROTOCOL]`, another status class, a static asset or any other file
(images, scripts, styles, fonts, media, feeds, robots.txt, ...). Bots are decided later by the same
enrichment as live events (`pixel.server.enrich`), on the user agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pixel.server.importer.accesslog import LogLine

PAGE_EXTENSIONS = frozenset(
    ("html", "htm", "xhtml", "shtml", "php", "asp", "aspx", "jsp", "jspx", "cgi", "pl", "cfm", "do")
)


@dataclass(slots=True)
class Page:
    host: str  # from the vhost field or an absolute request target; '' when unknown
    path: str
    query: str


def _host(vhost: str) -> str:
    """`www.example.com:443` -> `www.example.com`; `[::1]:80` -> `::1`."""
    host = vhost.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def classify(line: LogLine) -> Page | str:
    """The pageview of `line`, or the reason it is not one."""
    page = page_of(line.request, line.status, line.vhost)
    return page if isinstance(page, str) else Page(*page)


def page_of(request: str, status: int, vhost: str | None) -> tuple[str, str, str] | str:
    """The rules on a line's fields: (host, path, query) of the pageview, or the reason it is not one
    (`classify`, and the fused parse of `accesslog_hits`, which makes no `LogLine` or `Page`)."""
    parts = request.split(" ")
    if len(parts) not in (2, 3) or not parts[0].isalpha() or not parts[1]:
        return "request line unreadable"
    method, target = parts[0], parts[1]
    if method != "GET":
        return f"method {method[:10]}"
    if not (200 <= status < 300 or status == 304):
        return f"status {status // 100}xx"
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
        path = path.partition("#")[0]
    last = path.rpartition("/")[2]
    if "." in last and last.rpartition(".")[2].lower() not in PAGE_EXTENSIONS:
        return "static asset or file"
    return host, path, query


def host_of(line: LogLine) -> str:
    """The site a line names (its vhost without port), '' when the format has none."""
    return _host(line.vhost) if line.vhost and line.vhost != "-" else ""
