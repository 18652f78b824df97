"""The Qt-free client's calls for the public part (GeoIP, proxy recipes, check installation) against a real
`pixel serve`: each answer equals the API's own, a refused input is an `ApiRequestError` with the API's code."""

from __future__ import annotations

from contextlib import closing

import pytest

from pixel.app.client import ApiClient, ApiRequestError


def test_geoip_recipes_and_check_equal_the_apis_own(live_api) -> None:
    site = live_api.sites["blog.example"]
    with (
        ApiClient(live_api.url, live_api.username, live_api.password) as client,
        closing(live_api.http()) as ref,
    ):
        assert client.geoip() == ref.get("/api/geoip").json()
        mine = client.proxy_recipes(site, "https://stats.example.com", prefix="/p")
        assert (
            mine
            == ref.get(
                f"/api/sites/{site}/proxy-recipes",
                params={"collector_url": "https://stats.example.com", "prefix": "/p"},
            ).json()
        )
        assert mine["snippet"].startswith('<script defer src="https://blog.example/p/pixel.js"')
        assert (
            client.proxy_recipes(site)["collector_url"]
            == ref.get(f"/api/sites/{site}/proxy-recipes").json()["collector_url"]
        )
        checked = client.check_installation(site, "ftp://blog.example/")
        assert checked["ok"] is False and [f["code"] for f in checked["findings"]] == ["bad_url"]
        with pytest.raises(ApiRequestError) as refused:
            client.proxy_recipes(site, prefix="no slash")
        assert (refused.value.status, refused.value.code) == (422, "invalid_recipe_input")
        with pytest.raises(ApiRequestError) as missing:
            client.check_installation(999_999, "https://blog.example/")
        assert missing.value.status == 404
