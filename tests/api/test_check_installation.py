"""The nginx and Caddy recipes run for real (Debian's packages, scripts/system.d/26-proxies.sh) on free loopback
ports, each serving a test site and proxying /stats/pixel.js and /stats/<track path> to a real `pixel serve`: the
script loads through them, an event lands with the address the proxy forwarded (a client bound to 127.0.0.2 is
excluded by the site's IP rule, one on 127.0.0.3 is stored), and check-installation reports OK; then broken
variants each give their finding code (snippet missing, proxy not forwarding X-Forwarded-For, proxy not trusted,
script path 404, mixed content, CSP, wrong site, a redirect elsewhere, a non-http URL)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from pixel.server.installcheck import check_installation
from pixel.server.proxyrecipes import recipes
from pixel.server.settings import Settings
from tests.conftest import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(
    NGINX is None or CADDY is None, reason="nginx and caddy come from scripts/system.d/26-proxies.sh"
)
TRACK = "/collect"  # a renamed track path, honoured by the recipes
PASSWORD = "admin-password-1"


def page(port: int, site: str = "example.com", scheme: str = "http") -> str:
    base = f"{scheme}://127.0.0.1:{port}/stats"
    return (
        "<!doctype html><html><head><title>Shop</title>"
        f'<script defer src="{base}/pixel.js" data-site="{site}" data-endpoint="{base}{TRACK}"></script>'
        "</head><body>Hello</body></html>"
    )


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace"))
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}: {log.read_text(errors='replace')}")


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start nginx or Caddy with a site folder and a recipe; returns the port. All stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(kind: str, site: Path, recipe: str, extra: str = "", port: int | None = None) -> int:
        port = port or free_port()
        work = tmp_path / f"{kind}-{port}"
        work.mkdir()
        log = work / "log"
        if kind == "nginx":
            user = "user root;\n" if os.geteuid() == 0 else ""
            temps = "".join(
                f"  {name}_temp_path {work}/{name};\n"
                for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            conf = work / "nginx.conf"
            conf.write_text(
                f"{user}worker_processes 1;\ndaemon off;\npid {work}/nginx.pid;\nerror_log {log};\n"
                "events { worker_connections 64; }\n"
                "http {\n  access_log off;\n" + temps + "  types { text/html html; }\n"
                f"  server {{\n    {extra or f'listen 127.0.0.1:{port};'}\n    root {site};\n"
                + "".join("    " + line + "\n" for line in recipe.splitlines())
                + "  }\n}\n"
            )
            cmd = [str(NGINX), "-c", str(conf), "-p", str(work), "-e", str(log)]
        else:
            conf = work / "Caddyfile"
            conf.write_text(
                "{\n\tadmin off\n\tauto_https off\n}\n"
                f":{port} {{\n\tbind 127.0.0.1\n"
                + "".join("\t" + line + "\n" for line in recipe.splitlines())
                + f"\thandle {{\n\t\troot * {site}\n\t\tfile_server\n\t}}\n}}\n"
            )
            cmd = [str(CADDY), "run", "--config", str(conf), "--adapter", "caddyfile"]
        env = dict(os.environ, HOME=str(work), XDG_DATA_HOME=str(work), XDG_CONFIG_HOME=str(work))
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        procs.append(proc)
        if not extra:
            wait_port(port, proc, log)
        return port

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def stack(pixel_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pixel.server.api.app import open_meta
    from pixel.server.api.security import hash_password

    data = tmp_path / "data"
    open_meta(Settings(data_dir=data)).create_user("admin", hash_password(PASSWORD), "admin")
    server = pixel_factory(
        "serve",
        data_dir=data,
        pixel_trusted_proxies="127.0.0.1/32",
        pixel_track_path=TRACK,
        pixel_segment_max_age="0.3",
    )
    token = httpx.post(
        f"{server.api}/api/auth/login", json={"username": "admin", "password": PASSWORD}
    ).json()["access_token"]
    server.headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        f"{server.api}/api/sites",
        json={"domain": "example.com", "excluded_ips": ["127.0.0.2"]},
        headers=server.headers,
    )
    assert r.status_code == 201, r.text
    server.site_id = r.json()["id"]
    site = tmp_path / "site"
    site.mkdir()
    server.site = site
    return server


def recipe_for(server, kind: str) -> str:  # type: ignore[no-untyped-def]
    r = httpx.get(
        f"{server.api}/api/sites/{server.site_id}/proxy-recipes",
        params={"collector_url": server.collector},
        headers=server.headers,
    )
    assert r.status_code == 200, r.text
    return next(x["config"] for x in r.json()["recipes"] if x["id"] == kind)


def check(server, url: str) -> dict:  # type: ignore[no-untyped-def]
    r = httpx.post(
        f"{server.api}/api/sites/{server.site_id}/check-installation",
        json={"page_url": url},
        headers=server.headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def codes(result: dict) -> list[str]:
    return [f["code"] for f in result["findings"]]


def event(path: str) -> bytes:
    return orjson.dumps(
        {
            "event_name": "pageview",
            "ts": int(time.time() * 1000),
            "site": "example.com",
            "page": {"url": f"https://example.com{path}", "path": path, "title": "", "referrer": ""},
        }
    )


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_the_recipe_runs_for_real(kind: str, stack, proxies) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    (stack.site / "index.html").write_text(page(port))
    proxies(kind, stack.site, recipe_for(stack, kind), port=port)
    base = f"http://127.0.0.1:{port}"
    script = httpx.get(f"{base}/stats/pixel.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    assert script.content == httpx.get(f"{stack.collector}/pixel.js").content
    # the visitor's address reaches the collector: the site's rule excludes 127.0.0.2, so that one is dropped
    for address, path in (("127.0.0.2", "/excluded"), ("127.0.0.3", "/kept")):
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address)) as client:
            echo = client.get(f"{base}/stats{TRACK}?echo=1").json()
            assert echo == {
                "client_ip": address,
                "forwarded": True,
                "proxy_trusted": True,
                "proxy": "127.0.0.1",
            }
            assert client.post(f"{base}/stats{TRACK}", content=event(path)).status_code == 204
    seen = stack.wait_shipped(2)
    assert (seen["pixel_shipper_events_inserted_total"], seen["pixel_shipper_events_dropped_total"]) == (1, 1)
    result = check(stack, f"{base}/")
    assert result["ok"] is True, result
    assert codes(result) == ["snippet_found", "script_ok", "client_ip_ok"]
    assert (result["snippet"], result["script_url"], result["endpoint"]) == (
        "proxied",
        f"{base}/stats/pixel.js",
        f"{base}/stats{TRACK}",
    )
    assert result["findings"][2]["message"] == "the proxy forwards the visitor's address (seen: 127.0.0.1)"
    with stack.open_store() as store:
        assert store.query("SELECT path FROM events").rows == [["/kept"]]  # type: ignore[attr-defined]


def _nginx_variant(stack, proxies, recipe: str, html: str = "", extra: str = "") -> str:  # type: ignore[no-untyped-def]
    port = free_port()
    (stack.site / "index.html").write_text(html or page(port))
    proxies("nginx", stack.site, recipe, port=port)
    return f"http://127.0.0.1:{port}/"


def test_broken_installations_each_say_what_is_wrong(stack, proxies, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = recipe_for(stack, "nginx")
    # the snippet is missing
    url = _nginx_variant(stack, proxies, good, html="<html><head></head><body>no snippet</body></html>")
    result = check(stack, url)
    assert (result["ok"], codes(result)) == (False, ["snippet_missing"])
    assert result["findings"][0]["message"] == (
        f"no <script> loading pixel.js on {url}: paste the snippet into the page's <head>"
    )
    # the proxy does not forward the visitor's address
    no_xff = "\n".join(line for line in good.splitlines() if "X-Forwarded-For" not in line)
    result = check(stack, _nginx_variant(stack, proxies, no_xff))
    assert codes(result) == ["snippet_found", "script_ok", "proxy_not_forwarding"]
    # the proxy forwards it but connects from an address the collector does not trust
    untrusted = good.replace(
        "    proxy_set_header X-Forwarded-For",
        "    proxy_bind 127.0.0.5;\n    proxy_set_header X-Forwarded-For",
    )
    result = check(stack, _nginx_variant(stack, proxies, untrusted))
    assert codes(result) == ["snippet_found", "script_ok", "proxy_not_trusted"]
    assert result["findings"][2]["message"] == (
        "the proxy sends X-Forwarded-For, but the collector does not trust it: add 127.0.0.5 to PIXEL_TRUSTED_PROXIES"
    )
    # the script's path is not proxied: the site answers 404
    blocks = good.split("location = ")
    no_script = blocks[0] + "location = " + blocks[2]
    assert "pixel.js" not in no_script
    result = check(stack, _nginx_variant(stack, proxies, no_script))
    assert codes(result) == ["snippet_found", "script_not_found", "client_ip_ok"]
    # another site's id in the snippet
    port = free_port()
    (stack.site / "other.html").write_text(page(port, site="other.com"))
    proxies("nginx", stack.site, good, port=port)
    result = check(stack, f"http://127.0.0.1:{port}/other.html")
    assert codes(result) == ["wrong_site", "script_ok", "client_ip_ok"]
    assert (
        result["findings"][0]["message"]
        == 'the snippet says data-site="other.com", but this site is example.com'
    )
    # a Content-Security-Policy that leaves the script out
    (stack.site / "csp.html").write_text(
        page(port).replace(
            "<head>",
            '<head><meta http-equiv="Content-Security-Policy" content="script-src https://cdn.example; connect-src \'self\'">',
        )
    )
    result = check(stack, f"http://127.0.0.1:{port}/csp.html")
    assert codes(result) == ["snippet_found", "csp_blocks_script", "script_ok", "client_ip_ok"]
    # a redirect to another site is reported, not followed
    redirect = good + "location = /moved {\n    return 302 http://example.org/;\n}\n"
    url = _nginx_variant(stack, proxies, redirect)
    result = check(stack, url + "moved")
    assert codes(result) == ["redirected_elsewhere"]


def test_mixed_content_on_an_https_page(stack, proxies, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    http_port = free_port()
    proxies("nginx", stack.site, recipe_for(stack, "nginx"), port=http_port)
    https_port = free_port()
    (stack.site / "index.html").write_text(page(http_port))  # an http script on the https page
    listen = f"listen 127.0.0.1:{https_port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};"
    proxies("nginx", stack.site, "", extra=listen, port=https_port)
    time.sleep(0.5)
    result = check_installation(
        f"https://127.0.0.1:{https_port}/",
        "example.com",
        Settings(),
        verify=ssl.create_default_context(cafile=str(cert)),
    )
    assert codes(result) == ["snippet_found", "mixed_content", "mixed_content", "script_ok", "client_ip_ok"]
    assert result["findings"][1]["message"] == (
        f"the script http://127.0.0.1:{http_port}/stats/pixel.js is plain http on an https page: browsers block "
        "it; use an https address"
    )


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "file:///etc/passwd",
            "only http:// and https:// pages can be checked; 'file:///etc/passwd' uses file:",
        ),
        (
            "gopher://127.0.0.1:70/",
            "only http:// and https:// pages can be checked; 'gopher://127.0.0.1:70/' uses gopher:",
        ),
        (
            "example.com/page",
            "only http:// and https:// pages can be checked; 'example.com/page' has no scheme",
        ),
    ],
)
def test_non_http_urls_are_refused_and_say_so(url: str, message: str) -> None:
    result = check_installation(url, "example.com", Settings())
    assert result["ok"] is False
    assert result["findings"] == [{"code": "bad_url", "level": "error", "message": message}]


def test_recipe_texts_used_here_are_the_api_ones() -> None:
    text = recipes("example.com", "http://127.0.0.1:1", "pixel.js", TRACK)["recipes"][0]["config"]
    assert "location = /stats/collect {" in text
