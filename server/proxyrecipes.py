"""First-party proxy recipes: the exact configuration that serves Pixel under a site's own domain.

Ad blockers block analytics scripts loaded from other hosts. Served by the site's own web server or platform at
`<prefix>/<script name>` and `<prefix><track path>` (by default `/stats/pixel.js` and `/stats/track`), the
tracker and its events stay first-party. `recipes()` gives, for one site and one collector URL, the snippet
that loads the tracker through the proxy and one recipe per tool: nginx, Caddy, Apache, a Cloudflare Worker,
Netlify `_redirects`, Vercel `vercel.json` rewrites and Next.js `rewrites`. The renamed script and track path
(`PIXEL_SCRIPT_NAME`, `PIXEL_TRACK_PATH`) are the upstream paths.

The visitor's address: the collector believes `X-Forwarded-For` only from an address in
`PIXEL_TRUSTED_PROXIES`, and takes the right-most address in it that is not itself trusted. Every recipe makes
the proxy send the visitor's address in `X-Forwarded-For` (nginx appends `$remote_addr`, Caddy and Apache set
it themselves, the Worker sets it from `CF-Connecting-IP`, Vercel and Netlify set it on their proxies); each says
which address to trust. Without that, every visitor is counted with the proxy's address: one country, one
visitor. `POST /api/sites/{id}/check-installation` (installcheck.py) tells whether it works.

The texts are plain templates: the domain, URLs and paths are validated before they are put in (no quotes,
spaces or braces), so a recipe cannot carry anything but what it shows.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from pixel.server.errors import PixelError

SAFE_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?$")
SAFE_DOMAIN = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~\-/]*$")

HEADER = "X-Forwarded-For"


class RecipeError(PixelError, ValueError):
    """An input that cannot go into a recipe; the message says which."""


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise RecipeError(f"{what} {value!r} cannot go into a proxy recipe")
    return value


def recipes(
    domain: str, collector_url: str, script_name: str, track_path: str, prefix: str = "/stats"
) -> dict[str, Any]:
    """The snippet and the recipes for the site `domain`, whose visitors' events reach the collector at
    `collector_url` (e.g. https://stats.example.com)."""
    _check(domain, SAFE_DOMAIN, "the site's domain")
    collector = _check(collector_url.rstrip("/"), SAFE_URL, "the collector URL")
    _check(prefix, SAFE_PREFIX, "the path prefix")
    _check("/" + script_name, SAFE_PATH, "the script name")
    _check(track_path, SAFE_PATH, "the track path")
    script_up = f"{collector}/{script_name}"
    track_up = f"{collector}{track_path}"
    script_at = f"{prefix}/{script_name}"
    track_at = f"{prefix}{track_path}"
    https = urlsplit(collector).scheme == "https"
    upstream_host = urlsplit(collector).netloc
    snippet = (
        f'<script defer src="https://{domain}{script_at}" data-site="{domain}" '
        f'data-endpoint="https://{domain}{track_at}"></script>'
    )
    same_machine = (
        "127.0.0.1 (and ::1) when this proxy runs on the collector's machine; otherwise the address this proxy "
        "connects to the collector from"
    )
    platform = (
        "{name} does not publish a fixed list of the addresses its proxies connect from: run the installation "
        "check, which shows the address the collector saw, and add it (the check tells you when it changes)"
    )
    out = [
        {
            "id": "nginx",
            "title": "nginx",
            "where": f"inside the server {{ }} block that serves {domain}",
            "config": _nginx(script_at, track_at, script_up, track_up, https),
            "trust": same_machine,
        },
        {
            "id": "caddy",
            "title": "Caddy",
            "where": f"inside the {domain} {{ }} site block of the Caddyfile",
            "config": _caddy(script_at, track_at, script_name, track_path, collector),
            "trust": same_machine,
        },
        {
            "id": "apache",
            "title": "Apache",
            "where": (
                f"inside the <VirtualHost> of {domain}; modules proxy and proxy_http"
                + (", and ssl for the https collector" if https else "")
            ),
            "config": _apache(script_at, track_at, script_up, track_up, https),
            "trust": same_machine,
        },
        {
            "id": "cloudflare-worker",
            "title": "Cloudflare Workers",
            "where": f"a Worker on the route {domain}{prefix}/*",
            "config": _worker(script_at, track_at, script_name, track_path, collector),
            "trust": "Cloudflare's published address ranges (https://www.cloudflare.com/ips/)",
        },
        {
            "id": "netlify",
            "title": "Netlify _redirects",
            "where": f"the _redirects file in the publish folder of {domain}, above any catch-all rule",
            "config": _netlify(script_at, track_at, script_up, track_up),
            "trust": platform.format(name="Netlify"),
        },
        {
            "id": "vercel",
            "title": "Vercel rewrites (vercel.json)",
            "where": f"vercel.json at the root of the {domain} project (merge with its own rewrites)",
            "config": _vercel(script_at, track_at, script_up, track_up),
            "trust": platform.format(name="Vercel"),
        },
        {
            "id": "nextjs",
            "title": "Next.js rewrites (next.config.js)",
            "where": "next.config.js of the site (merge with its own rewrites)",
            "config": _next(script_at, track_at, script_up, track_up),
            "trust": platform.format(name="Vercel")
            + "; a self-hosted `next start`: the address of the machine it runs on",
        },
    ]
    return {
        "domain": domain,
        "collector_url": collector,
        "script_path": script_at,
        "track_path": track_at,
        "upstream_host": upstream_host,
        "client_ip_header": HEADER,
        "snippet": snippet,
        "recipes": out,
    }


def _nginx(script_at: str, track_at: str, script_up: str, track_up: str, https: bool) -> str:
    sni = "    proxy_ssl_server_name on;\n" if https else ""
    block = (
        "location = {at} {{\n"
        "    proxy_pass {up};\n"
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "{sni}"
        "}}\n"
    )
    return (
        "# Pixel, first-party\n"
        + block.format(at=script_at, up=script_up, sni=sni)
        + block.format(at=track_at, up=track_up, sni=sni)
    )


def _caddy(script_at: str, track_at: str, script_name: str, track_path: str, collector: str) -> str:
    block = (
        "handle {at} {{\n"
        "\trewrite * {to}\n"
        "\treverse_proxy {collector} {{\n"
        "\t\theader_up Host {{upstream_hostport}}\n"
        "\t}}\n"
        "}}\n"
    )
    return (
        "# Pixel, first-party (Caddy sets X-Forwarded-For to the visitor's address itself)\n"
        + block.format(at=script_at, to="/" + script_name, collector=collector)
        + block.format(at=track_at, to=track_path, collector=collector)
    )


def _apache(script_at: str, track_at: str, script_up: str, track_up: str, https: bool) -> str:
    return (
        "# Pixel, first-party (mod_proxy_http adds X-Forwarded-For with the visitor's address itself)\n"
        + ("SSLProxyEngine on\n" if https else "")
        + f'ProxyPass "{script_at}" "{script_up}"\n'
        + f'ProxyPassReverse "{script_at}" "{script_up}"\n'
        + f'ProxyPass "{track_at}" "{track_up}"\n'
        + f'ProxyPassReverse "{track_at}" "{track_up}"\n'
    )


def _worker(script_at: str, track_at: str, script_name: str, track_path: str, collector: str) -> str:
    return (
        "// Pixel, first-party: a Cloudflare Worker\n"
        f'const COLLECTOR = "{collector}";\n'
        f'const PATHS = {{ "{script_at}": "/{script_name}", "{track_at}": "{track_path}" }};\n'
        "\n"
        "export default {\n"
        "  async fetch(request) {\n"
        "    const url = new URL(request.url);\n"
        "    const path = PATHS[url.pathname];\n"
        '    if (!path) return new Response("Not found", { status: 404 });\n'
        "    const headers = new Headers(request.headers);\n"
        '    headers.set("X-Forwarded-For", request.headers.get("CF-Connecting-IP") || "");\n'
        '    headers.delete("Cookie");\n'
        "    return fetch(COLLECTOR + path + url.search, {\n"
        "      method: request.method,\n"
        "      headers,\n"
        '      body: request.method === "POST" ? request.body : undefined,\n'
        "    });\n"
        "  },\n"
        "};\n"
    )


def _netlify(script_at: str, track_at: str, script_up: str, track_up: str) -> str:
    return f"# Pixel, first-party\n{script_at}  {script_up}  200\n{track_at}  {track_up}  200\n"


def _rewrites(script_at: str, track_at: str, script_up: str, track_up: str) -> list[dict[str, str]]:
    return [
        {"source": script_at, "destination": script_up},
        {"source": track_at, "destination": track_up},
    ]


def _vercel(script_at: str, track_at: str, script_up: str, track_up: str) -> str:
    return json.dumps({"rewrites": _rewrites(script_at, track_at, script_up, track_up)}, indent=2) + "\n"


def _next(script_at: str, track_at: str, script_up: str, track_up: str) -> str:
    rules = "".join(
        f'      {{ source: "{r["source"]}", destination: "{r["destination"]}" }},\n'
        for r in _rewrites(script_at, track_at, script_up, track_up)
    )
    return (
        "// Pixel, first-party\n"
        "module.exports = {\n"
        "  async rewrites() {\n"
        "    return [\n"
        f"{rules}"
        "    ];\n"
        "  },\n"
        "};\n"
    )
