"""The snippet endpoint offers both tracker builds, with one line on the difference."""

from __future__ import annotations

from tests.api.conftest import Api


def test_snippet_offers_the_default_and_the_extended_build(api: Api) -> None:
    r = api.client.get(f"/api/sites/{api.site_id}/snippet", headers=api.admin)
    body = r.json()
    assert body["html"] == (
        '<script defer src="http://127.0.0.1:8081/pixel.js" data-site="shop.example" '
        'data-endpoint="http://127.0.0.1:8081/track"></script>'
    )
    assert body["extended_html"] == (
        '<script defer src="http://127.0.0.1:8081/pixel.ext.js" data-site="shop.example" '
        'data-endpoint="http://127.0.0.1:8081/track"></script>'
    )
    assert "consent-free" in body["difference"] and "consent" in body["difference"].split(";")[1]
    assert "\n" not in body["difference"]
