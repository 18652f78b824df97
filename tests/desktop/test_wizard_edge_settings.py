"""The wizard given the edge's settings (ACME CA, the edge's address, a CDN) before the domain is known: its
checks page checks the engine without them (the stack without the edge does not know them) instead of
failing with "unknown setting(s)"; they are validated once the domain is set. Against the real engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.wizard_engine import check_values
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore
from pixel.app.stack.edge import has_domain
from pixel.app.stack.spec import SpecError, build_spec

BASE = {
    "PIXEL_COLLECTOR_BIND": "127.0.0.1",
    "PIXEL_COLLECTOR_PORT": "0",
    "PIXEL_API_PORT": "0",
    "PIXEL_WORKERS": "1",
}
EDGE = {
    "PIXEL_ACME_CA": "https://pebble:14000/dir",
    "PIXEL_ACME_EMAIL": "owner@pixel.test",
    "PIXEL_EDGE_IMAGE": "pixel-edge/caddy:bookworm",
    "PIXEL_EDGE_BIND": "127.0.0.1",
    "PIXEL_HTTP_PORT": "0",
    "PIXEL_HTTPS_PORT": "0",
    "PIXEL_EDGE_CDN": "cloudflare",
    "PIXEL_CDN_GEO_HEADERS": "0",
}


def test_check_values_leave_the_edge_settings_out_until_a_domain_is_set() -> None:
    assert check_values({**BASE, **EDGE}) == BASE
    assert check_values({**BASE, **EDGE, "PIXEL_DOMAIN": "  "}) == BASE  # a blank domain is no domain
    with_domain = {**BASE, **EDGE, "PIXEL_DOMAIN": "stats.example.com"}
    assert check_values(with_domain) == with_domain
    # what is left resolves against the stack without the edge; the edge's settings alone would not
    build_spec("compact").resolve(check_values({**BASE, **EDGE}))
    with pytest.raises(SpecError, match="unknown setting"):
        build_spec("compact").resolve({**BASE, "PIXEL_ACME_CA": EDGE["PIXEL_ACME_CA"]})
    # a setting unknown to both is still refused: only the edge's own are set aside
    assert check_values({**BASE, "PIXEL_NOPE": "1"}) == {**BASE, "PIXEL_NOPE": "1"}
    assert not has_domain(check_values({**BASE, **EDGE}))


def test_checks_page_with_edge_settings_passes_on_the_real_engine(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner = Runner()
    wizard = SetupWizard(
        runner,
        ProfileStore(tmp_path / "profiles.json"),
        project=f"pxe{uuid.uuid4().hex[:8]}",
        values={**BASE, **EDGE},
    )
    qtbot.addWidget(wizard)
    wizard.show()
    try:
        wizard.next()  # where: this computer
        checks = wizard.checks
        qtbot.waitUntil(lambda: checks.ok or "✘" in checks.results.text(), timeout=60_000)
        text = checks.results.text()
        assert "unknown setting" not in text
        assert checks.ok, text
        assert wizard.values == {**BASE, **EDGE}  # all kept for the install, which sets the domain
    finally:
        runner.shutdown(5_000)
