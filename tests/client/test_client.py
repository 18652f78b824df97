"""The Qt-free API client and offline cache against a real `pixel serve` with generated traffic."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from pixel.app.client import (
    ApiClient,
    ApiRequestError,
    AuthError,
    NoData,
    ReportCache,
    ReportSource,
    Unreachable,
)
from pixel.app.client.cache import default_cache_dir, request_key
from tests.conftest import free_port


def test_reports_equal_the_apis_own_numbers(live_api) -> None:
    site = live_api.sites["shop.example"]
    with (
        ApiClient(live_api.url, live_api.username, live_api.password) as client,
        closing(live_api.http()) as ref,
    ):
        assert [s["domain"] for s in client.sites()] == ["shop.example", "blog.example", "docs.example"]
        for name, params in (
            ("summary", {"period": "30d"}),
            ("timeseries", {"period": "30d", "metrics": "visitors,pageviews"}),
            ("breakdown/page", {"period": "7d", "limit": 5}),
            ("summary", {"period": "30d", "filters": [["device", "is", "Mobile"]]}),
        ):
            mine = client.report(site, name, params)
            query = {**params}
            if "filters" in query:
                query["filters"] = '[["device","is","Mobile"]]'
            theirs = ref.get(f"/api/sites/{site}/reports/{name}", params=query).json()
            assert mine == theirs
        total = client.report(site, "summary", {"period": "30d"})["metrics"]["pageviews"]["value"]
        assert total > 100  # the generated traffic is there


def test_wrong_password_and_bad_input_are_clear_errors(live_api) -> None:
    with ApiClient(live_api.url, live_api.username, "not-the-password") as client:
        with pytest.raises(AuthError) as err:
            client.sites()
        assert (err.value.status, err.value.code) == (401, "invalid_credentials")
    with ApiClient(live_api.url, live_api.username, live_api.password) as client:
        with pytest.raises(ApiRequestError) as err:
            client.report(live_api.sites["shop.example"], "summary", {"period": "fortnight"})
        assert (err.value.status, err.value.code) == (400, "invalid_range")
        assert not isinstance(err.value, AuthError)


class _CountingTransport(httpx.HTTPTransport):
    """The real HTTP transport, counting the requests per path."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_a_refused_password_is_sent_once(live_api) -> None:
    """Retrying a refused password would count as failed logins and lock the account out for everyone on this
    address (the API's limiter): the client sends it once and answers every later call with the same refusal."""
    transport = _CountingTransport()
    with ApiClient(live_api.url, "nobody-here", "not-the-password", transport=transport) as client:
        for _ in range(6):
            with pytest.raises(AuthError) as err:
                client.sites()
            assert (err.value.status, err.value.code) == (401, "invalid_credentials")
    assert transport.paths == ["/api/auth/login"]


def test_revoked_access_token_is_renewed(live_api) -> None:
    with ApiClient(live_api.url, live_api.username, live_api.password) as client:
        client.sites()
        first = client._access
        client.request("POST", "/api/auth/logout")  # revokes this access token
        assert len(client.sites()) == 3  # 401 -> refresh token -> new pair -> the call succeeds
        assert client._access != first


def test_unreachable_host() -> None:
    with (
        ApiClient(f"http://127.0.0.1:{free_port()}", "a", "b", timeout=2) as client,
        pytest.raises(Unreachable),
    ):
        client.sites()


def test_offline_serves_cache_as_of_then_refreshes(live_api, tmp_path: Path) -> None:
    """API stopped -> the cached answer with its time; back -> live again, newer 'as of'."""
    site = live_api.sites["blog.example"]
    cache = ReportSource(
        ApiClient(live_api.url, live_api.username, live_api.password, timeout=3),
        ReportCache(tmp_path / "c.sqlite3"),
        "home",
    )
    live = cache.report(site, "summary", {"period": "30d"})
    assert live.live and live.problem == ""
    server = live_api.server
    server.stop()
    try:
        offline = cache.report(site, "summary", {"period": "30d"})
        assert not offline.live and offline.data == live.data and offline.as_of == live.as_of
        assert "did not answer" in offline.problem
        assert offline.as_of_text().startswith("as of 20")
        with pytest.raises(NoData):
            cache.report(site, "summary", {"period": "7d"})  # never fetched
    finally:
        server.start()
    time.sleep(0.01)
    again = cache.report(site, "summary", {"period": "30d"})
    assert again.live and again.as_of > live.as_of and again.data == live.data


def test_cache_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    cache = ReportCache(tmp_path / "c.sqlite3", max_bytes=10_000)
    blob = {"points": ["x" * 1000]}
    size = len('{"points":["' + "x" * 1000 + '"]}')
    for i in range(9):
        cache.put(request_key("p", f"/r{i}"), blob)
    assert len(cache) == 9 and cache.size_bytes() == 9 * size
    time.sleep(0.01)
    assert cache.get(request_key("p", "/r0")) is not None  # r0 is now the most recently used
    cache.put(request_key("p", "/r9"), blob)
    cache.put(request_key("p", "/r10"), blob)
    assert cache.size_bytes() <= 10_000
    assert cache.get(request_key("p", "/r1")) is None  # least recently used went first
    assert cache.get(request_key("p", "/r0")) is not None
    cache.clear("p")
    assert len(cache) == 0


def test_cache_lives_in_the_platform_cache_folder(private_dirs: Path) -> None:
    cache = ReportCache()
    assert cache.path == private_dirs / "xdg_cache_home" / "pixel-desktop" / "reports.sqlite3"
    assert default_cache_dir() == cache.path.parent
    cache.close()
