"""The wizard's "Public address" step and its certificate step, click by click (offscreen Qt): a server install
over TLS (the engine's address is an IP, so the server's address needs no lookup), names resolved by a table
given as the resolver (never real DNS). The DNS failure names the record to create and "Check again" turns it
green; bad inputs each say what is wrong and nothing is looked up or installed; skipping is possible; this
computer has no such step. The certificate step reads Caddy's log lines (the JSON Caddy writes) and says the
ACME server's error in plain words."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from pixel.app.desktop.wizard import SetupWizard
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import ProfileStore
from tests.desktop.conftest import save_screenshot

SERVER = "203.0.113.7"
DOMAIN = "stats.example.com"


class Table:
    """A resolver from a table; remembers what it was asked."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, name: str) -> list[str]:
        self.asked.append(name)
        if name not in self.table:
            raise OSError(f"{name}: no such name")
        return self.table[name]


def server_wizard(qtbot, start: str = "public") -> tuple[SetupWizard, Table]:  # type: ignore[no-untyped-def]
    wizard = SetupWizard(Runner(), ProfileStore())
    qtbot.addWidget(wizard)
    wizard.where.tls.setChecked(True)
    wizard.where.url.setText(f"tcp://{SERVER}:2376")
    wizard.where.tls_dir.setText("certs")
    table = Table({})
    wizard.resolver = table
    wizard.setStartId(wizard.ids[start])
    wizard.restart()
    wizard.show()
    return wizard, table


def check(qtbot, wizard: SetupWizard, text: str) -> str:  # type: ignore[no-untyped-def]
    form = wizard.public.form
    form.domain.setText(text)
    qtbot.mouseClick(form.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: form.check.isEnabled() and not form.result.text().startswith("Looking up"))
    return form.result.text()


def next_enabled(wizard: SetupWizard) -> bool:
    return wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def test_dns_failure_names_the_record_then_check_again(qtbot) -> None:
    wizard, table = server_wizard(qtbot)
    assert wizard.public.needs.text().startswith("Real websites are served over HTTPS")
    assert check(qtbot, wizard, DOMAIN) == (
        "stats.example.com does not resolve to any address yet.\n"
        "What to do: Create a DNS record of type A named stats.example.com with the value 203.0.113.7 at your "
        "DNS provider. Then check again."
    )
    assert wizard.public.form.check.text() == "Check again"
    assert not next_enabled(wizard) and wizard.public_domain() == ""
    save_screenshot(wizard, "wizard-public-address-dns-missing")

    table.table[DOMAIN] = ["198.51.100.9"]  # an old record pointing elsewhere
    assert check(qtbot, wizard, DOMAIN) == (
        "stats.example.com points at 198.51.100.9, not at this server (203.0.113.7).\n"
        "What to do: Change the DNS record of stats.example.com to 203.0.113.7 (A). Changes can take a while "
        "to spread; then check again."
    )
    assert not next_enabled(wizard)

    table.table[DOMAIN] = ["2001:db8::1", SERVER]
    qtbot.mouseClick(wizard.public.form.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wizard.public.form.ok)
    assert (
        wizard.public.form.result.text()
        == "stats.example.com points at this server (2001:db8::1, 203.0.113.7)."
    )
    assert next_enabled(wizard) and wizard.public_domain() == DOMAIN
    save_screenshot(wizard, "wizard-public-address-ok")
    assert table.asked == [DOMAIN, DOMAIN, DOMAIN]  # only the typed name: the server's address is an IP
    # editing the name again takes the green away until it is checked
    wizard.public.form.domain.setText("other.example.com")
    assert not next_enabled(wizard) and wizard.public_domain() == ""
    assert wizard.install.task is None  # nothing was installed at any point


BAD = [
    (
        "https://stats.example.com",
        "'https://stats.example.com' is a web address, not a domain name.\n"
        "What to do: Leave out http:// or https://. Type only the name, e.g. stats.example.com.",
    ),
    (
        "stats.example.com/pixel",
        "'stats.example.com/pixel' has a path or other parts after the name.\n"
        "What to do: Leave out everything after the name.",
    ),
    (
        "203.0.113.7",
        "'203.0.113.7' is an IP address. Certificates for the public are issued for names, not addresses.\n"
        "What to do: Create a DNS record (A) for a name pointing at this address, and type that name.",
    ),
    (
        "*.example.com",
        "'*.example.com' is a wildcard. The edge needs one exact name (a wildcard needs a DNS challenge).\n"
        "What to do: Type only the name, e.g. stats.example.com.",
    ),
    (
        ".".join(["a" * 63] * 4),  # 255 characters
        "The name is 255 characters long; at most 253 are allowed.\n"
        "What to do: Type only the name, e.g. stats.example.com.",
    ),
    ("", "No domain name was given.\nWhat to do: Type only the name, e.g. stats.example.com."),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=["scheme", "path", "ip", "wildcard", "254+", "empty"])
def test_bad_input_says_what_is_wrong_and_nothing_happens(qtbot, text: str, message: str) -> None:
    wizard, table = server_wizard(qtbot)
    assert check(qtbot, wizard, text) == message
    assert table.asked == [] and not next_enabled(wizard)
    assert wizard.public_domain() == "" and wizard.install.task is None


def test_an_internationalised_name_is_shown_and_checked_as_punycode(qtbot) -> None:
    wizard, table = server_wizard(qtbot)
    table.table["xn--bcher-kva.example"] = [SERVER]
    assert (
        check(qtbot, wizard, "Bücher.example") == "xn--bcher-kva.example points at this server (203.0.113.7)."
    )
    assert wizard.public.form.ascii.text() == "Will be requested as: xn--bcher-kva.example"
    assert table.asked == ["xn--bcher-kva.example"]
    assert wizard.public_domain() == "xn--bcher-kva.example"
    save_screenshot(wizard, "wizard-public-address-idn")


def test_a_server_by_name_is_looked_up_with_the_same_resolver(qtbot) -> None:
    wizard, table = server_wizard(qtbot)
    wizard.where.url.setText("tcp://docker.example.net:2376")
    assert check(qtbot, wizard, DOMAIN) == (
        "The address of the server (docker.example.net) could not be found.\n"
        "What to do: Check the server's address on the first page."
    )
    table.table.update({"docker.example.net": ["2001:db8::7"], DOMAIN: ["2001:db8::7"]})
    assert check(qtbot, wizard, DOMAIN) == "stats.example.com points at this server (2001:db8::7)."


def test_skip_goes_on_without_a_domain(qtbot) -> None:
    wizard, table = server_wizard(qtbot)
    assert not next_enabled(wizard)
    wizard.public.skip.click()
    assert wizard.public.skip.isChecked()
    assert next_enabled(wizard) and wizard.public_domain() == ""
    assert not wizard.public.form.isEnabled()
    save_screenshot(wizard, "wizard-public-address-skip")
    wizard.next()
    assert wizard.currentId() == wizard.ids["install"]
    assert table.asked == []


def test_this_computer_has_no_public_address_step(qtbot) -> None:
    wizard = SetupWizard(Runner(), ProfileStore())
    qtbot.addWidget(wizard)
    wizard.setStartId(wizard.ids["site"])
    wizard.restart()
    assert wizard.where.kind() == "local" and wizard.nextId() == wizard.ids["install"]
    wizard.where.ssh.setChecked(True)
    assert wizard.nextId() == wizard.ids["public"]


def _log(msg: str, level: str = "info", **fields: object) -> str:
    entry = {"level": level, "ts": 1780000000.0, "logger": "tls.obtain", "msg": msg, **fields}
    return "2026/12/03 07:00:00.000\t" + level.upper() + "\t" + json.dumps(entry)


def test_certificate_step_explains_the_acme_error(qtbot) -> None:
    wizard, table = server_wizard(qtbot)
    table.table[DOMAIN] = [SERVER]
    check(qtbot, wizard, DOMAIN)
    page = wizard.certificate
    lines: list[str] = []
    page.watch = lambda: list(lines)
    page.timer.setInterval(3_600_000)
    wizard.setStartId(wizard.ids["certificate"])
    wizard.restart()
    assert wizard.currentId() == wizard.ids["certificate"]

    def shown(state: str) -> None:
        page.poll()
        qtbot.waitUntil(lambda: page.progress is not None and page.progress.state == state and not page._busy)

    shown("waiting")
    assert page.state.text() == "Waiting for the edge to ask for the certificate of stats.example.com…"
    lines.append(_log("obtaining certificate", identifier=DOMAIN))
    shown("requesting")
    lines += [
        _log(
            "challenge failed",
            "error",
            identifier=DOMAIN,
            challenge_type="tls-alpn-01",
            problem={
                "type": "urn:ietf:params:acme:error:connection",
                "detail": f"{SERVER}: Connection refused",
            },
        ),
        _log(
            "could not get certificate from issuer",
            "error",
            identifier=DOMAIN,
            error=f"HTTP 400 urn:ietf:params:acme:error:connection - {SERVER}: Connection refused",
        ),
    ]
    shown("failed")
    assert page.state.text() == (
        "The certificate authority could not connect to this server on port 443: the port is closed or blocked "
        "by a firewall."
    )
    assert page.action.text() == (
        "What to do: Open ports 80 and 443 (TCP) to the internet in the server's firewall and in your hosting "
        "provider's panel; the edge tries again on its own."
    )
    assert "203.0.113.7: Connection refused" in page.details.toPlainText()
    save_screenshot(wizard, "wizard-certificate-port-closed")

    lines.append(
        _log(
            "could not get certificate from issuer",
            "error",
            identifier=DOMAIN,
            error="HTTP 400 urn:ietf:params:acme:error:dns - DNS problem: NXDOMAIN looking up A for "
            "stats.example.com - check that a DNS record exists for this domain",
        )
    )
    shown("failed")
    assert page.state.text() == (
        "The certificate authority could not find stats.example.com in DNS, or it points somewhere else."
    )
    lines.append(_log("certificate obtained successfully", identifier=DOMAIN))
    shown("obtained")
    assert page.state.text() == "The certificate of stats.example.com was issued: HTTPS works."
    assert page.action.text() == "" and not page.timer.isActive()
    save_screenshot(wizard, "wizard-certificate-obtained")
    assert wizard.nextId() == wizard.ids["done"]
