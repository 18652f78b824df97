"""The public address in the desktop app: the wizard's "Public address" step for server installs (SSH, Docker
over TLS) and its certificate step, and the form the stack page reuses to set or change the domain later.

- `PublicAddressForm`: the domain field and "Check DNS" / "Check again". The input is validated first
  (`public_address.validate_domain`: a scheme or path, an IP address, a wildcard, an over-long name are each a
  plain message; an internationalised name is shown as the punycode that will be requested); then, on a worker,
  the name is resolved with the injectable `resolver` (tests pass a table: never real DNS) and compared with the
  server's own addresses (the engine URL's host, resolved the same way). `ok` only when the name points here;
  the message says which A/AAAA record to create otherwise.
- `PublicAddressPage`: the form, plus "Skip: do it later from the stack page" with the plain statement that
  real websites need a domain and HTTPS. Complete when the DNS check passed for the name in the field, or when
  skipped; nothing is installed before (the wizard's Install page comes after).
- `CertificatePage`: after an install with a domain, the certificate request's progress read from the edge's
  log every few seconds (`acme_errors.certificate_progress`), its error in plain words with what to do. The
  `watch` hook returns the edge's log lines (default: through the Docker engine); tests may set it.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from pixel.app.desktop.status_colours import Kind, status_style
from pixel.app.desktop.workers import Runner, Task
from pixel.app.stack.acme_errors import CertificateProgress, certificate_progress
from pixel.app.stack.errors import StackError
from pixel.app.stack.public_address import DnsCheck, Resolver, check_dns, system_resolver, validate_domain

if TYPE_CHECKING:
    from pixel.app.desktop.wizard import SetupWizard

# Status kinds of status_colours: the text colour is picked for the widget's palette when it is shown.
GREEN: Kind = "good"
RED: Kind = "bad"
AMBER: Kind = "warn"
NEEDS_HTTPS = (
    "Real websites are served over HTTPS, and browsers block a tracker loaded over plain HTTP from them: "
    "Pixel needs a domain name pointing at this server to get a certificate. Without one, Pixel works "
    "for testing only."
)


def server_addresses(engine_url: str, resolver: Resolver) -> list[str]:
    """The addresses of the server behind `engine_url` (ssh://user@host, tcp://host:2376): its host itself when
    it is an IP address, else what `resolver` says (empty when nothing)."""
    host = urllib.parse.urlparse(engine_url).hostname or ""
    if not host:
        return []
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        return list(resolver(host))
    except (OSError, UnicodeError):
        return []


class PublicAddressForm(QWidget):
    """Domain field + DNS check (see the module's contract). `checked` is emitted after every check."""

    checked = Signal()

    def __init__(self, runner: Runner, server: Callable[[], str]) -> None:
        super().__init__()
        self.runner = runner
        self.server = server  # the engine URL of the server (its host is where the name must point)
        self.resolver: Resolver = system_resolver
        self.domain = QLineEdit()
        self.domain.setPlaceholderText("stats.example.com")
        self.ascii = QLabel("")  # the name that will be requested (punycode for an IDN)
        self.check = QPushButton("Check DNS")
        self.check.clicked.connect(self.run_check)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.domain.textChanged.connect(self._edited)
        self.ok = False
        self.ascii_domain = ""  # the validated name the last check was for
        self.last: DnsCheck | None = None
        self.task: Task | None = None
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.domain, 1)
        row.addWidget(self.check)
        form.addRow("Domain for the collector", row)
        form.addRow("", self.ascii)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.result)

    def _edited(self) -> None:
        self.ok, self.last, self.ascii_domain = False, None, ""
        self.result.setText("")
        self.ascii.setText("")
        self.check.setText("Check DNS")
        self.checked.emit()

    def run_check(self) -> None:
        """Validate the name; when valid, resolve it and the server on a worker."""
        self.ok, self.last = False, None
        try:
            name = validate_domain(self.domain.text())
        except StackError as exc:
            self.ascii_domain = ""
            self.ascii.setText("")
            self._say(RED, exc.problem + (f"\nWhat to do: {exc.action}" if exc.action else ""))
            self.checked.emit()
            return
        self.ascii_domain = name
        typed = self.domain.text().strip().rstrip(".").lower()
        self.ascii.setText(f"Will be requested as: {name}" if name != typed else "")
        self._say(AMBER, f"Looking up {name}…")
        self.check.setEnabled(False)
        engine, resolver = self.server(), self.resolver

        def work(_task: Task) -> DnsCheck:
            here = server_addresses(engine, resolver)
            if not here:
                host = urllib.parse.urlparse(engine).hostname or engine
                return DnsCheck(
                    False,
                    (),
                    f"The address of the server ({host}) could not be found.",
                    "Check the server's address on the first page.",
                )
            return check_dns(name, here, resolver)

        self.task = self.runner.submit(work, on_done=lambda r: self._show(name, r), on_error=self._failed)

    def _show(self, name: str, result: DnsCheck) -> None:
        self.check.setEnabled(True)
        if name != self.ascii_domain:  # edited meanwhile: that check is stale
            return
        self.last = result
        self.ok = result.ok
        self.check.setText("Check again")
        self._say(
            GREEN if result.ok else RED,
            result.message + (f"\nWhat to do: {result.action}" if result.action else ""),
        )
        self.checked.emit()

    def _failed(self, exc: BaseException) -> None:
        self.check.setEnabled(True)
        self._say(RED, f"The DNS check failed: {exc}")
        self.checked.emit()

    def _say(self, kind: Kind, text: str) -> None:
        self.result.setStyleSheet(status_style(kind, self.result))
        self.result.setText(text)


class PublicAddressPage(QWizardPage):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Public address")
        self.setSubTitle("The name your websites' visitors reach Pixel at, with HTTPS.")
        self.form = PublicAddressForm(wizard.runner, lambda: self.w.where.url.text().strip())
        self.needs = QLabel(NEEDS_HTTPS)
        self.needs.setWordWrap(True)
        self.skip = QCheckBox("Skip: do it later from the stack page")
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addStretch(1)
        layout.addWidget(self.needs)
        layout.addWidget(self.skip)
        self.form.checked.connect(self.completeChanged)
        self.skip.toggled.connect(self._skipped)

    def _skipped(self, on: bool) -> None:
        self.form.setEnabled(not on)
        self.completeChanged.emit()

    def domain(self) -> str:
        """The public domain to install with, "" when skipped."""
        return "" if self.skip.isChecked() or not self.form.ok else self.form.ascii_domain

    def isComplete(self) -> bool:
        return self.skip.isChecked() or self.form.ok


def edge_log(w: SetupWizard) -> list[str]:
    """The edge's recent log lines, through the Docker engine of the install."""
    from pixel.app.stack.engine import connect
    from pixel.app.stack.manage import open_stack

    client = connect(w.target())
    try:
        container = open_stack(client, w.project, None, target=w.target()).container("edge")
        if container is None:
            return []
        return container.logs(tail=400).decode("utf-8", "replace").splitlines()
    finally:
        client.close()


class CertificatePage(QWizardPage):
    def __init__(self, wizard: SetupWizard, poll_ms: int = 3000) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Getting the HTTPS certificate")
        self.watch: Callable[[], Sequence[str]] = lambda: edge_log(self.w)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.action = QLabel("")
        self.action.setWordWrap(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("The certificate authority's own words")
        self.details.setMaximumHeight(110)
        layout = QVBoxLayout(self)
        for widget in (self.state, self.action, self.details):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)
        self.progress: CertificateProgress | None = None
        self._busy = False

    def domain(self) -> str:
        return self.w.public.domain()

    def initializePage(self) -> None:
        self.state.setText(f"Waiting for the edge to ask for the certificate of {self.domain()}…")
        self.timer.start()
        self.poll()

    def cleanupPage(self) -> None:
        self.timer.stop()

    def poll(self) -> None:
        if self._busy or (self.progress is not None and self.progress.state == "obtained"):
            return
        self._busy = True
        domain, watch = self.domain(), self.watch

        def work(_task: Task) -> CertificateProgress:
            return certificate_progress(watch(), domain)

        self.w.runner.submit(work, on_done=self._show, on_error=self._failed)

    def _show(self, progress: CertificateProgress) -> None:
        self._busy = False
        self.progress = progress
        kind = {"obtained": GREEN, "failed": RED}.get(progress.state, AMBER)
        self.state.setStyleSheet(status_style(kind, self.state) + "; font-weight:bold")
        self.state.setText(progress.message)
        why = progress.explanation
        self.action.setText(f"What to do: {why.action}" if why is not None else "")
        self.details.setPlainText(progress.raw_error)
        if progress.state == "obtained":
            self.timer.stop()
        self.completeChanged.emit()

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self.action.setText(f"The edge's log could not be read: {exc}")

    def isComplete(self) -> bool:
        return True  # the certificate may take a while (or need a DNS fix): the snippet is shown anyway
