"""The main window hands the stack page's public panel a client of the active profile's API: the GeoIP
text, the sites and their proxy recipes appear in the running app (a real `pixel serve`, a real Secret
Service holding the profile's password)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from pixel.app import secret_store
from pixel.app.client import ReportCache
from pixel.app.desktop.window import MainWindow
from pixel.app.profiles import Profile, ProfileStore
from tests.desktop.conftest import LiveApi

WAIT = 30_000


def test_main_window_wires_the_public_panel_to_the_profile_api(
    qtbot, secret_service: Path, live_api: LiveApi
) -> None:
    store = ProfileStore()
    store.save(Profile("wired", api_url=live_api.url, username=live_api.username))
    secret_store.set_secret("wired", "admin_password", live_api.password)
    window = MainWindow(store, ReportCache())
    qtbot.addWidget(window)
    window.show()
    panel = window.stack.public
    try:
        qtbot.waitUntil(lambda: panel.site.count() == 3, timeout=WAIT)
        assert [panel.site.itemText(i) for i in range(3)] == ["shop.example", "blog.example", "docs.example"]
        assert [panel.site.itemData(i) for i in range(3)] == list(live_api.sites.values())
        with closing(live_api.http()) as ref:
            info = ref.get("/api/geoip").json()
            recipes = ref.get(f"/api/sites/{live_api.sites['shop.example']}/proxy-recipes").json()
        first = panel.geoip.text().splitlines()[0]
        assert first == (
            f"GeoIP database: {info['database_type']}, dated {info['build_date']}"
            + (f", from {info['source']}" if info["source"] else "")
            if info["available"]
            else "No GeoIP database yet: countries and cities stay empty until one is in place."
        )
        qtbot.waitUntil(lambda: panel.recipe.count() == len(recipes["recipes"]), timeout=WAIT)
        assert [panel.recipe.itemText(i) for i in range(panel.recipe.count())] == [
            r["title"] for r in recipes["recipes"]
        ]
        assert panel.config.toPlainText() == recipes["recipes"][0]["config"]
    finally:
        window.close()
        secret_store.delete_profile("wired")
