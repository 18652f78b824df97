"""The page `GET /` (and `HEAD /`) of the store process answers: what runs there and how to open the app.

Contract: a fixed, self-contained HTML page (no script, no style sheet, no image, no link to another host),
`text/html; charset=utf-8`, with a Content-Security-Policy that allows nothing to load or run, and
`X-Content-Type-Options: nosniff`. Nothing of the request (Host header, path, query) is echoed into it, so a
crafted request cannot change what it says. Pixel has no web interface: the page points to the desktop app.
"""

from __future__ import annotations

from typing import Any

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pixel store and API</title>
</head>
<body>
<h1>Pixel is running here</h1>
<p>This is Pixel's store process: it saves the events the collector receives and answers Pixel's
analytics API under <code>/api/</code>. It also serves <code>/health</code> and <code>/metrics</code>.</p>
<p>Pixel has no web interface. To read the charts, open the desktop app:</p>
<ul>
<li>Started with <code>pixel serve --demo</code> (or <code>scripts/run</code>): run
<code>pixel-desktop --demo</code> on this computer.</li>
<li>Otherwise: run <code>pixel-desktop</code> and choose "Connect to an existing Pixel" with this
address and your account.</li>
</ul>
<p>An account is made with <code>pixel user add NAME</code> on the machine that runs Pixel.</p>
</body>
</html>
"""

CSP = b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", b"%d" % len(PAGE)),
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


def is_home(scope: dict[str, object]) -> bool:
    """A GET or HEAD of `/` (any query string)."""
    return scope.get("type") == "http" and scope.get("path") == "/" and scope.get("method") in ("GET", "HEAD")


async def send_home(scope: dict[str, Any], send: Any) -> None:
    """Answer the page (headers only for HEAD)."""
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    body = b"" if scope.get("method") == "HEAD" else PAGE
    await send({"type": "http.response.body", "body": body})
