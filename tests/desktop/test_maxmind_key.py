"""The MaxMind licence key from the desktop (#14): the wizard's GeoIP choice puts the key in the keyring under the
profile and in the values the install gives `open_stack`, where `secret_files.split` takes it out as the stack's
key file (never a setting, profile entry or compose text); the stack page's upgrade takes it from the keyring;
"forget" removes the keyring entry. An install whose Public-address step was skipped leaves the edge's settings
out instead of failing on "unknown setting(s)". Qt-free seams, pytest-qt without Docker, a real Secret Service
(gnome-keyring on a private D-Bus session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.app import secret_store
from pixel.app.desktop.stack_page import upgrade_values
from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.stack import maxmind_key, secret_files
from pixel.app.stack.compose import render_compose
from pixel.app.stack.errors import StackError
from pixel.app.stack.spec import build_spec
from tests.desktop.conftest import save_screenshot

KEY = "mmK3y_7fQ2-abcDEF"
BASE = {
    "PIXEL_COLLECTOR_BIND": "127.0.0.1",
    "PIXEL_COLLECTOR_PORT": "0",
    "PIXEL_API_PORT": "0",
    "PIXEL_WORKERS": "1",
}
EDGE = {
    "PIXEL_ACME_CA": "https://pebble:14000/dir",
    "PIXEL_ACME_EMAIL": "owner@pixel.test",
    "PIXEL_HTTP_PORT": "0",
    "PIXEL_HTTPS_PORT": "0",
    "PIXEL_EDGE_CDN": "cloudflare",
}


def test_install_values_hand_the_key_to_open_stack_as_a_file_secret_only() -> None:
    values = maxmind_key.install_values(BASE, " 123456 ", f"  {KEY}\n")
    assert values == {**BASE, "PIXEL_MAXMIND_ACCOUNT_ID": "123456", "PIXEL_MAXMIND_LICENSE_KEY": KEY}
    settings_, secrets = secret_files.split(values)
    assert secrets == {"PIXEL_MAXMIND_LICENSE_KEY": KEY}
    assert settings_ == {**BASE, "PIXEL_MAXMIND_ACCOUNT_ID": "123456"}
    spec = build_spec("compact").resolve(settings_)  # a known setting: no "unknown setting(s)"
    assert KEY not in repr(spec) and KEY not in render_compose(spec)
    assert "123456" in repr(spec)  # the account id is a plain setting of the store


@pytest.mark.parametrize(
    ("account", "key", "what"),
    [
        ("", KEY, "account ID"),
        ("12a4", KEY, "account ID"),
        ("-5", KEY, "account ID"),
        ("1" * 13, KEY, "account ID"),
        ("42", "", "licence key"),
        ("42", "two words", "licence key"),
        ("42", "line\nbreak", "licence key"),
        ("42", "nul\0key", "licence key"),
        ("42", "clé", "licence key"),
        ("42", "k" * 201, "licence key"),
    ],
)
def test_bad_accounts_and_keys_are_refused_before_anything(account: str, key: str, what: str) -> None:
    with pytest.raises(StackError, match=what) as caught:
        maxmind_key.install_values(BASE, account, key)
    assert caught.value.code == "bad-maxmind"
    assert maxmind_key.ok(account, key) is False


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=40), st.text(max_size=60))
def test_any_accepted_key_is_one_token_the_provisioner_can_write(account: str, key: str) -> None:
    try:
        values = maxmind_key.install_values({}, account, key)
    except StackError:
        return
    token = values["PIXEL_MAXMIND_LICENSE_KEY"]
    assert token == key.strip() and token.isascii() and token.isprintable() and " " not in token
    assert values["PIXEL_MAXMIND_ACCOUNT_ID"].isdigit()
    assert secret_files.split(values)[1] == {"PIXEL_MAXMIND_LICENSE_KEY": token}  # never "bad-secret"


def _wizard(qtbot, tmp_path: Path, values: dict[str, str]) -> SetupWizard:  # type: ignore[no-untyped-def]
    wizard = SetupWizard(Runner(), ProfileStore(tmp_path / "profiles.json"), project="pxmm", values=values)
    qtbot.addWidget(wizard)
    return wizard


def test_wizard_install_values_skip_the_edge_without_a_domain_and_carry_the_key(
    qtbot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    wizard = _wizard(qtbot, tmp_path, {**BASE, **EDGE})
    try:
        site = wizard.site
        assert site.dbip.isChecked() and not site.maxmind_account.isEnabled()  # DB-IP by default
        assert wizard.install.install_values() == BASE  # Public address skipped: no edge settings
        for kind in ("ssh", "tls"):  # a server install whose Public-address step was skipped
            getattr(wizard.where, kind).setChecked(True)
            assert wizard.public_domain() == ""
            assert wizard.install.install_values() == BASE
        build_spec("compact").resolve(wizard.install.install_values())
        site.domain.setText("www.example.com")
        assert site.isComplete()
        site.maxmind.setChecked(True)
        assert site.maxmind_key.isEnabled() and not site.isComplete()  # account and key now needed
        site.maxmind_account.setText("123456")
        site.maxmind_key.setText("has space")
        assert not site.isComplete()
        site.maxmind_key.setText(KEY)
        assert site.isComplete()
        assert site.maxmind_key.echoMode() == site.maxmind_key.EchoMode.Password
        wizard.setStartId(wizard.ids["site"])  # the page with its GeoIP choice, as the owner sees it
        wizard.restart()
        wizard.show()
        save_screenshot(wizard, "wizard-geoip-maxmind")
        values = wizard.install.install_values()
        assert values == {**BASE, "PIXEL_MAXMIND_ACCOUNT_ID": "123456", "PIXEL_MAXMIND_LICENSE_KEY": KEY}
        assert secret_files.split(values)[1] == {"PIXEL_MAXMIND_LICENSE_KEY": KEY}
        site.dbip.setChecked(True)  # changed their mind: no key goes anywhere
        assert wizard.install.install_values() == BASE
    finally:
        wizard.runner.shutdown(5_000)


def test_wizard_install_keeps_the_key_in_the_keyring_never_in_the_profile(
    qtbot,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    secret_service: Path,
) -> None:
    wizard = _wizard(qtbot, tmp_path, dict(BASE))
    try:
        wizard.where.ssh.setChecked(True)  # an engine that refuses at once: nothing is installed
        wizard.where.url.setText("ssh://nobody@127.0.0.1:1")
        wizard.where.name.setText("shop")
        wizard.site.domain.setText("shop.example.com")
        wizard.site.maxmind.setChecked(True)
        wizard.site.maxmind_account.setText("777")
        wizard.site.maxmind_key.setText(KEY)
        wizard.install.start()
        qtbot.waitUntil(lambda: bool(wizard.install.error), timeout=60_000)
        assert wizard.install.result is None
        assert secret_store.get_secret("shop", "maxmind_license_key") == KEY
        assert KEY not in wizard.install.details.toPlainText()
        # the profile file holds plain settings only; the keyring's own file is encrypted
        store = ProfileStore(tmp_path / "profiles.json")
        store.save(Profile("shop", engine="ssh://nobody@127.0.0.1:1", domain="shop.example.com"))
        assert KEY not in (tmp_path / "profiles.json").read_text()
        assert all(KEY.encode() not in p.read_bytes() for p in secret_service.rglob("*") if p.is_file())
        # an upgrade from the stack page takes it from the keyring; "forget" removes it
        assert upgrade_values("shop") == {"PIXEL_MAXMIND_LICENSE_KEY": KEY}
        assert maxmind_key.with_stored_key("shop", {"PIXEL_DOMAIN": "s.example.com"}) == {
            "PIXEL_DOMAIN": "s.example.com",
            "PIXEL_MAXMIND_LICENSE_KEY": KEY,
        }
        assert upgrade_values("other") == {}  # another profile's stack gets no key
        assert maxmind_key.forget("shop") is True
        assert secret_store.get_secret("shop", "maxmind_license_key") is None
        assert upgrade_values("shop") == {}
        assert maxmind_key.forget("shop") is False
    finally:
        wizard.runner.shutdown(5_000)
        secret_store.delete_profile("shop")


def test_a_bad_key_in_the_wizard_stops_before_the_keyring_and_the_engine(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wizard = _wizard(qtbot, tmp_path, dict(BASE))
    try:
        wizard.site.domain.setText("shop.example.com")
        wizard.site.maxmind.setChecked(True)
        wizard.site.maxmind_account.setText("777")
        wizard.site.maxmind_key.setText("bad key")
        wizard.install.start()  # Install pressed despite the page: refused in plain words, nothing run
        assert wizard.install.task is None
        assert "licence key" in wizard.install.error and wizard.install.install.isEnabled()
    finally:
        wizard.runner.shutdown(5_000)
