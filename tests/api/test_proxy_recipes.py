"""First-party proxy recipes (server/proxyrecipes.py): exact texts honouring a renamed script and track path, the
platform formats parse (vercel.json as JSON, Netlify's line format, the Worker and next.config.js by node), hostile
inputs are refused, and the API route serves them to any user who sees the site."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.proxyrecipes import RecipeError, recipes

R = recipes("shop.example", "http://10.0.0.5:8081", "insights.js", "/collect", "/metrics-x")
BY_ID = {r["id"]: r for r in R["recipes"]}


def test_the_snippet_and_paths_honour_the_renamed_script_and_track_path() -> None:
    assert R["snippet"] == (
        '<script defer src="https://shop.example/metrics-x/insights.js" data-site="shop.example" '
        'data-endpoint="https://shop.example/metrics-x/collect"></script>'
    )
    assert (R["script_path"], R["track_path"], R["client_ip_header"]) == (
        "/metrics-x/insights.js",
        "/metrics-x/collect",
        "X-Forwarded-For",
    )
    assert list(BY_ID) == ["nginx", "caddy", "apache", "cloudflare-worker", "netlify", "vercel", "nextjs"]


def test_nginx_text() -> None:
    assert BY_ID["nginx"]["config"] == (
        "# Pixel, first-party\n"
        "location = /metrics-x/insights.js {\n"
        "    proxy_pass http://10.0.0.5:8081/insights.js;\n"
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "}\n"
        "location = /metrics-x/collect {\n"
        "    proxy_pass http://10.0.0.5:8081/collect;\n"
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "}\n"
    )
    assert BY_ID["nginx"]["trust"].startswith("127.0.0.1 (and ::1) when this proxy runs on the collector's")
    https = recipes("shop.example", "https://stats.shop.example", "pixel.js", "/track")
    assert "    proxy_ssl_server_name on;\n" in https["recipes"][0]["config"]  # SNI toward an https collector


def test_caddy_text() -> None:
    assert BY_ID["caddy"]["config"] == (
        "# Pixel, first-party (Caddy sets X-Forwarded-For to the visitor's address itself)\n"
        "handle /metrics-x/insights.js {\n"
        "\trewrite * /insights.js\n"
        "\treverse_proxy http://10.0.0.5:8081 {\n"
        "\t\theader_up Host {upstream_hostport}\n"
        "\t}\n"
        "}\n"
        "handle /metrics-x/collect {\n"
        "\trewrite * /collect\n"
        "\treverse_proxy http://10.0.0.5:8081 {\n"
        "\t\theader_up Host {upstream_hostport}\n"
        "\t}\n"
        "}\n"
    )


def test_apache_text() -> None:
    assert BY_ID["apache"]["config"] == (
        "# Pixel, first-party (mod_proxy_http adds X-Forwarded-For with the visitor's address itself)\n"
        'ProxyPass "/metrics-x/insights.js" "http://10.0.0.5:8081/insights.js"\n'
        'ProxyPassReverse "/metrics-x/insights.js" "http://10.0.0.5:8081/insights.js"\n'
        'ProxyPass "/metrics-x/collect" "http://10.0.0.5:8081/collect"\n'
        'ProxyPassReverse "/metrics-x/collect" "http://10.0.0.5:8081/collect"\n'
    )
    https = recipes("shop.example", "https://stats.shop.example", "pixel.js", "/track")
    assert https["recipes"][2]["config"].splitlines()[1] == "SSLProxyEngine on"


def test_netlify_lines_are_from_to_status() -> None:
    text = BY_ID["netlify"]["config"]
    assert text == (
        "# Pixel, first-party\n"
        "/metrics-x/insights.js  http://10.0.0.5:8081/insights.js  200\n"
        "/metrics-x/collect  http://10.0.0.5:8081/collect  200\n"
    )
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert all(
        len(r) == 3 and r[0].startswith("/") and r[1].startswith("http") and r[2] == "200" for r in rules
    )


def test_vercel_json_parses_to_the_rewrites() -> None:
    assert json.loads(BY_ID["vercel"]["config"]) == {
        "rewrites": [
            {"source": "/metrics-x/insights.js", "destination": "http://10.0.0.5:8081/insights.js"},
            {"source": "/metrics-x/collect", "destination": "http://10.0.0.5:8081/collect"},
        ]
    }


def test_nextjs_text() -> None:
    assert BY_ID["nextjs"]["config"] == (
        "// Pixel, first-party\n"
        "module.exports = {\n"
        "  async rewrites() {\n"
        "    return [\n"
        '      { source: "/metrics-x/insights.js", destination: "http://10.0.0.5:8081/insights.js" },\n'
        '      { source: "/metrics-x/collect", destination: "http://10.0.0.5:8081/collect" },\n'
        "    ];\n"
        "  },\n"
        "};\n"
    )


def test_worker_text() -> None:
    text = BY_ID["cloudflare-worker"]["config"]
    assert text.splitlines()[1:3] == [
        'const COLLECTOR = "http://10.0.0.5:8081";',
        'const PATHS = { "/metrics-x/insights.js": "/insights.js", "/metrics-x/collect": "/collect" };',
    ]
    assert '    headers.set("X-Forwarded-For", request.headers.get("CF-Connecting-IP") || "");\n' in text
    assert BY_ID["cloudflare-worker"]["trust"] == (
        "Cloudflare's published address ranges (https://www.cloudflare.com/ips/)"
    )


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is installed by scripts/system.d/30-browser.sh"
)
def test_node_evaluates_the_next_config_and_parses_the_worker(tmp_path: Path) -> None:
    (tmp_path / "next.config.js").write_text(BY_ID["nextjs"]["config"])
    (tmp_path / "worker.mjs").write_text(BY_ID["cloudflare-worker"]["config"])
    out = subprocess.run(
        [
            "node",
            "-e",
            "require('./next.config.js').rewrites().then(r => console.log(JSON.stringify(r)))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(BY_ID["vercel"]["config"])["rewrites"]
    check = subprocess.run(["node", "--check", "worker.mjs"], cwd=tmp_path, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    "domain, collector, script, track, prefix, what",
    [
        ('evil.com"; drop', "http://a:1", "pixel.js", "/track", "/stats", "the site's domain"),
        ("a.com", "http://a:1/x y", "pixel.js", "/track", "/stats", "the collector URL"),
        ("a.com", "javascript:alert(1)", "pixel.js", "/track", "/stats", "the collector URL"),
        ("a.com", "http://a:1", "pixel.js", "/track", "/stats}; }", "the path prefix"),
        ("a.com", "http://a:1", "pixel.js", "/track", "stats", "the path prefix"),
        ("a.com", "http://a:1", 'p".js', "/track", "/stats", "the script name"),
        ("a.com", "http://a:1", "pixel.js", "/tr$ack", "/stats", "the track path"),
    ],
)
def test_hostile_inputs_are_refused(
    domain: str, collector: str, script: str, track: str, prefix: str, what: str
) -> None:
    with pytest.raises(RecipeError, match=f"^{what} "):
        recipes(domain, collector, script, track, prefix)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=40), st.text(max_size=40))
def test_no_input_breaks_out_of_a_recipe(domain: str, prefix: str) -> None:
    """Whatever comes in, a recipe either is refused or carries no quote, brace, semicolon or newline of it."""
    try:
        out = recipes(domain, "http://127.0.0.1:8081", "pixel.js", "/track", prefix)
    except RecipeError:
        return
    for bad in ('"', "'", "{", "}", ";", "\n", " ", "$", "<", ">", "\\"):
        assert bad not in domain + prefix
    assert out["domain"] == domain


def test_the_api_route(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(
        f"/api/sites/{api.site_id}/proxy-recipes",
        params={"collector_url": "https://stats.example.org"},
        headers=api.headers("viewer", "viewer-password-123"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["site_id"] == api.site_id and body["collector_url"] == "https://stats.example.org"
    assert body["trusted_proxies"] == []
    assert [x["id"] for x in body["recipes"]][:2] == ["nginx", "caddy"]
    bad = api.client.get(
        f"/api/sites/{api.site_id}/proxy-recipes", params={"prefix": "/a b"}, headers=api.admin
    )
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_recipe_input")
    other = api.client.get(
        f"/api/sites/{api.other_site_id}/proxy-recipes", headers=api.headers("viewer", "viewer-password-123")
    )
    assert other.status_code == 404  # a site the viewer does not see
