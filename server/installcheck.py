"""Check installation: fetch a site's page, find Pixel's snippet, load the script and ask the collector, through
the same path, which visitor address it would record; report what is wrong in plain words, each with a code.

`check_installation(page_url, domain, settings)` returns `{"page_url", "ok", "snippet", "script_url",
"endpoint", "findings": [{"code", "level", "message"}]}`, `level` one of "ok", "warning", "error"; `ok` is
True when no finding is an error. Codes:

- `bad_url` (only http:// and https:// pages are fetched: any other scheme is refused and said so),
  `page_unreachable`, `page_error` (an HTTP error status), `page_too_large`, `redirected_elsewhere`;
- `snippet_found`, `snippet_missing` (no `<script>` whose src ends with the script name), `wrong_site` (its
  data-site names another site), `mixed_content` (an http:// script or endpoint on an https:// page),
  `csp_blocks_script` / `csp_blocks_events` (the page's Content-Security-Policy, header or meta, leaves them out);
- `script_ok`, `script_not_found` (404), `script_error`, `script_unreachable`, `script_not_javascript` (an
  HTML page answered with 200, as a catch-all route of a site does);
- `client_ip_ok`, `proxy_not_forwarding` (a proxied snippet whose proxy sends no X-Forwarded-For: every visitor
  would have the proxy's address), `proxy_not_trusted` (it sends one, but its address is not in
  PIXEL_TRUSTED_PROXIES: the message names the address when the collector shows it), `endpoint_not_found`,
  `endpoint_error`.

The visitor-address check is `GET <endpoint>?echo=1` (server/collector/core.py `_echo`): it stores nothing,
so the check sends no test event into the site's figures.

Bounds (it is an owner's action, but it fetches what a page names): http and https only; each response read
up to `MAX_BYTES`; `TIMEOUT` per request; at most `MAX_REDIRECTS` redirects for the page, each to the same host,
its www. twin or from http to https — anything else is reported, not followed; the script and the echo are not
redirected at all. No cookies or credentials are sent.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from pixel.server.errors import PixelError
from pixel.server.settings import Settings

MAX_BYTES = 2 * 1024 * 1024
TIMEOUT = 10.0
MAX_REDIRECTS = 3
USER_AGENT = "Pixel-installation-check"


@dataclass(frozen=True)
class Finding:
    code: str
    level: str  # ok | warning | error
    message: str


class _Page(HTMLParser):
    """The page's script tags (src and data-* attributes) and CSP meta tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str]] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "script" and values.get("src"):
            self.scripts.append(values)
        elif tag == "meta" and values.get("http-equiv", "").lower() == "content-security-policy":
            self.csp.append(values.get("content", ""))


class _TooLarge(PixelError):
    """A fetched page or script is over the size the check reads."""


def _get(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, bytes]:
    with client.stream("GET", url, headers=headers) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise _TooLarge
        return response, bytes(body)


def _same_site(a: str, b: str) -> bool:
    strip = lambda host: host[4:] if host.startswith("www.") else host  # noqa: E731
    return strip(a.lower()) == strip(b.lower())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _csp_allows(policies: list[str], directive: str, url: str, page_url: str) -> bool:
    """Whether every policy lets `directive` (falling back to default-src) load `url`. Sources understood:
    *, 'self', schemes (https:), hosts with an optional scheme, port and leading wildcard; anything else (nonces,
    hashes, 'strict-dynamic') is taken as allowing, so the check never claims a block it cannot see."""
    target = urlsplit(url)
    for policy in policies:
        directives: dict[str, list[str]] = {}
        for part in policy.split(";"):
            words = part.split()
            if words:
                directives.setdefault(words[0].lower(), [w for w in words[1:]])
        sources = directives.get(directive, directives.get("default-src"))
        if sources is None:
            continue
        if not _sources_allow(sources, target, page_url):
            return False
    return True


def _sources_allow(sources: list[str], target: Any, page_url: str) -> bool:
    for src in sources:
        low = src.lower()
        if low == "*" and target.scheme in ("http", "https"):
            return True
        if low == "'self'" and _origin(page_url) == f"{target.scheme}://{target.netloc}".lower():
            return True
        if low.startswith(("'nonce-", "'sha", "'strict-dynamic'")):
            return True  # allowed by what the check cannot see (the tag's nonce or hash)
        if re.fullmatch(r"[a-z][a-z0-9+.-]*:", low):
            if target.scheme == low[:-1]:
                return True
            continue
        m = re.fullmatch(r"(?:([a-z][a-z0-9+.-]*)://)?(\*\.)?([a-z0-9.-]+)(?::(\d+|\*))?(/.*)?", low)
        if not m:
            continue
        scheme, wild, host, port, _ = m.groups()
        if scheme and scheme != target.scheme:
            continue
        if not scheme and target.scheme not in ("http", "https"):
            continue
        thost = (target.hostname or "").lower()
        if wild:
            if not thost.endswith("." + host):
                continue
        elif thost != host:
            continue
        if port and port != "*" and str(target.port or {"http": 80, "https": 443}[target.scheme]) != port:
            continue
        return True
    return False


def check_installation(
    page_url: str,
    domain: str,
    settings: Settings,
    timeout: float = TIMEOUT,
    verify: bool | ssl.SSLContext = True,
) -> dict[str, Any]:
    """The findings for the page at `page_url` of the site `domain` (module docstring). `verify`: TLS
    verification as httpx takes it (a context trusting a private CA)."""
    findings: list[Finding] = []
    result: dict[str, Any] = {
        "page_url": page_url,
        "ok": False,
        "snippet": None,
        "script_url": None,
        "endpoint": None,
        "findings": findings,
    }

    def done() -> dict[str, Any]:
        result["ok"] = not any(f.level == "error" for f in findings)
        result["findings"] = [asdict(f) for f in findings]
        return result

    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        findings.append(
            Finding(
                "bad_url",
                "error",
                f"only http:// and https:// pages can be checked; {page_url!r} "
                + (f"uses {parts.scheme}:" if parts.scheme else "has no scheme"),
            )
        )
        return done()
    client = httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        verify=verify,
        trust_env=False,  # no proxy or netrc credentials from this process's environment
    )
    with client:
        url = page_url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response, body = _get(client, url)
                if response.is_redirect and "location" in response.headers:
                    target = urljoin(url, response.headers["location"])
                    t = urlsplit(target)
                    if t.scheme not in ("http", "https") or not _same_site(t.hostname or "", parts.hostname):
                        findings.append(
                            Finding(
                                "redirected_elsewhere",
                                "error",
                                f"{url} redirects to {target}, another site: check that page instead",
                            )
                        )
                        return done()
                    url = target
                    continue
                break
            else:
                findings.append(
                    Finding(
                        "redirected_elsewhere",
                        "error",
                        f"more than {MAX_REDIRECTS} redirects from {page_url}",
                    )
                )
                return done()
        except _TooLarge:
            findings.append(
                Finding("page_too_large", "error", f"the page is larger than {MAX_BYTES >> 20} MiB")
            )
            return done()
        except httpx.HTTPError as exc:
            findings.append(
                Finding("page_unreachable", "error", f"cannot load {url}: {exc or type(exc).__name__}")
            )
            return done()
        if response.status_code >= 400:
            findings.append(Finding("page_error", "error", f"{url} answered HTTP {response.status_code}"))
            return done()
        result["page_url"] = url
        page = _Page()
        page.feed(body.decode(response.encoding or "utf-8", errors="replace"))
        policies = [p for p in response.headers.get_list("content-security-policy")] + page.csp
        script = next(
            (
                s
                for s in page.scripts
                if urlsplit(urljoin(url, s["src"])).path.endswith("/" + settings.script_name)
            ),
            None,
        )
        if script is None:
            findings.append(
                Finding(
                    "snippet_missing",
                    "error",
                    f"no <script> loading {settings.script_name} on {url}: paste the snippet into the page's <head>",
                )
            )
            return done()
        script_url = urljoin(url, script["src"])
        endpoint = script.get("data-endpoint") or (script_url.rsplit("/", 1)[0] + "/track")
        endpoint = urljoin(url, endpoint)
        proxied = _same_site(urlsplit(script_url).hostname or "", parts.hostname)
        result.update(script_url=script_url, endpoint=endpoint, snippet="proxied" if proxied else "direct")
        site = script.get("data-site", "")
        if site.lower() != domain.lower():
            findings.append(
                Finding(
                    "wrong_site",
                    "error",
                    f'the snippet says data-site="{site}", but this site is {domain}'
                    if site
                    else f'the snippet has no data-site: add data-site="{domain}"',
                )
            )
        else:
            findings.append(Finding("snippet_found", "ok", f"the snippet for {domain} is on the page"))
        if urlsplit(url).scheme == "https":
            for what, target in (("script", script_url), ("endpoint", endpoint)):
                if urlsplit(target).scheme == "http":
                    findings.append(
                        Finding(
                            "mixed_content",
                            "error",
                            f"the {what} {target} is plain http on an https page: browsers block it; "
                            "use an https address",
                        )
                    )
        if not _csp_allows(policies, "script-src", script_url, url):
            findings.append(
                Finding(
                    "csp_blocks_script",
                    "error",
                    f"the page's Content-Security-Policy does not allow scripts from {_origin(script_url)}",
                )
            )
        if not _csp_allows(policies, "connect-src", endpoint, url):
            findings.append(
                Finding(
                    "csp_blocks_events",
                    "error",
                    f"the page's Content-Security-Policy does not allow sending to {_origin(endpoint)} "
                    "(connect-src)",
                )
            )
        _check_script(client, script_url, findings)
        _check_echo(client, endpoint, proxied, findings)
    return done()


def _check_script(client: httpx.Client, script_url: str, findings: list[Finding]) -> None:
    try:
        response, _ = _get(client, script_url)
    except _TooLarge:
        findings.append(Finding("script_error", "error", f"{script_url} is larger than any tracker"))
        return
    except httpx.HTTPError as exc:
        findings.append(
            Finding("script_unreachable", "error", f"cannot load {script_url}: {exc or type(exc).__name__}")
        )
        return
    if response.status_code == 404:
        findings.append(
            Finding(
                "script_not_found",
                "error",
                f"{script_url} answers 404: the proxy does not forward this path, or the address is wrong",
            )
        )
    elif response.status_code != 200:
        findings.append(Finding("script_error", "error", f"{script_url} answers HTTP {response.status_code}"))
    elif "javascript" not in response.headers.get("content-type", ""):
        findings.append(
            Finding(
                "script_not_javascript",
                "error",
                f"{script_url} answers with {response.headers.get('content-type') or 'no content type'}, not "
                "the tracker: the site answers the path itself instead of forwarding it",
            )
        )
    else:
        findings.append(Finding("script_ok", "ok", f"the tracker loads from {script_url}"))


def _check_echo(client: httpx.Client, endpoint: str, proxied: bool, findings: list[Finding]) -> None:
    sep = "&" if urlsplit(endpoint).query else "?"
    try:
        response, body = _get(client, endpoint + sep + "echo=1")
    except (_TooLarge, httpx.HTTPError) as exc:
        findings.append(
            Finding("endpoint_error", "error", f"cannot reach {endpoint}: {exc or type(exc).__name__}")
        )
        return
    if response.status_code == 404:
        findings.append(
            Finding("endpoint_not_found", "error", f"{endpoint} answers 404: events would be lost")
        )
        return
    try:
        echo = orjson.loads(body) if response.status_code == 200 else None
    except orjson.JSONDecodeError:
        echo = None
    if not isinstance(echo, dict) or "client_ip" not in echo:
        findings.append(
            Finding(
                "endpoint_error",
                "error",
                f"{endpoint} answers HTTP {response.status_code}, not the collector",
            )
        )
        return
    if not proxied and not echo.get("forwarded"):
        findings.append(Finding("client_ip_ok", "ok", "the collector sees visitors' own addresses"))
    elif not echo.get("forwarded"):
        findings.append(
            Finding(
                "proxy_not_forwarding",
                "error",
                "the proxy does not send the visitor's address (X-Forwarded-For): every visitor would be "
                "counted with the proxy's address; use the recipe's X-Forwarded-For line",
            )
        )
    elif not echo.get("proxy_trusted"):
        proxy = echo.get("proxy")
        findings.append(
            Finding(
                "proxy_not_trusted",
                "error",
                "the proxy sends X-Forwarded-For, but the collector does not trust it: add "
                + (f"{proxy} " if proxy else "the proxy's address ")
                + "to PIXEL_TRUSTED_PROXIES",
            )
        )
    else:
        findings.append(
            Finding(
                "client_ip_ok", "ok", f"the proxy forwards the visitor's address (seen: {echo['client_ip']})"
            )
        )
