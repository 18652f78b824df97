"""The first-run wizard: where Pixel runs (this computer / SSH / Docker over TLS), checks in plain
words with what to do (and a host-key trust step for SSH), the site's domain, one Install button with
a real progress bar and a details log (cancellable: nothing is left behind), then the admin password
shown once (and kept in the keyring), the tracking snippet with Copy, and "waiting for your first
visit…" turning green when the first event arrives.

The install and the first site are `pixel.app.stack.onboarding.install_site` (Qt-free, shared with
`pixel stack install --site`), run on a worker; the first two pages (where, checks) are in `wizard_engine`.
On a remote host the API listens on the server's 127.0.0.1 only: creating the site and the first-visit
check go through a tunnel opened by the install (SSH: a port forward; Docker over TLS: an exec relay
through the engine, `pixel.app.stack.tunnel`) and closed with the wizard. The SSH host key the user
trusted is saved in the profile (one known_hosts line: public, plain config) and is the only key later
connections accept; a key's passphrase goes to the keyring. When the stack is installed but its site
could not be created, the admin account made is kept for the next press of Install.

For a server install (SSH, TLS) a "Public address" step comes before Install (`public_address_page`): the
domain is checked, then its DNS, before anything is installed; with it the stack gets the HTTPS edge
(`PIXEL_DOMAIN`), a certificate step after the install shows the ACME request in plain words, and the snippet
points at https://DOMAIN/pixel.js. It can be skipped (the stack page sets it later); this computer has no
such step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from pixel.app.client import ApiClient
from pixel.app.desktop.public_address_page import CertificatePage, PublicAddressPage
from pixel.app.desktop.wizard_engine import CheckPage, WherePage, check_values
from pixel.app.desktop.workers import Cancelled, Runner, Task
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.secret_store import KeyringUnavailable
from pixel.app.stack import maxmind_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.onboarding import InstallOutcome, SiteNotCreated, domain_ok, install_site
from pixel.app.stack.progress import Progress

if TYPE_CHECKING:
    from pixel.app.stack.engine import EngineTarget, HostKey
    from pixel.app.stack.provisioner import Credentials
    from pixel.app.stack.public_address import Resolver
    from pixel.app.stack.tunnel import PortForward


class SitePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Your website")
        self.domain = QLineEdit()
        self.domain.setPlaceholderText("example.com")
        self.timezone = QComboBox()
        self.timezone.setEditable(True)
        from zoneinfo import available_timezones

        self.timezone.addItems(sorted(available_timezones()))
        self.timezone.setCurrentText("UTC")
        # GeoIP: DB-IP's free database by default; a MaxMind account instead (the key goes to the keyring)
        self.dbip = QRadioButton("DB-IP's free City Lite database (no account needed)")
        self.maxmind = QRadioButton("I have a MaxMind account (GeoLite2)")
        self.dbip.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.dbip)
        group.addButton(self.maxmind)
        self.maxmind_account = QLineEdit()
        self.maxmind_account.setPlaceholderText("account ID (digits)")
        self.maxmind_key = QLineEdit()
        self.maxmind_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.maxmind_key.setPlaceholderText("licence key (kept in your system keyring only)")
        form = QFormLayout(self)
        form.addRow("Domain", self.domain)
        form.addRow("Time zone for reports", self.timezone)
        form.addRow("Countries and cities", self.dbip)
        form.addRow("", self.maxmind)
        form.addRow("MaxMind account ID", self.maxmind_account)
        form.addRow("MaxMind licence key", self.maxmind_key)
        self.domain.textChanged.connect(self.completeChanged)
        for w in (self.maxmind_account, self.maxmind_key):
            w.textChanged.connect(self.completeChanged)
        self.maxmind.toggled.connect(self._toggle_geoip)
        self._toggle_geoip()

    def _toggle_geoip(self) -> None:
        for w in (self.maxmind_account, self.maxmind_key):
            w.setEnabled(self.maxmind.isChecked())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        if self.maxmind.isChecked() and not maxmind_key.ok(
            self.maxmind_account.text(), self.maxmind_key.text()
        ):
            return False
        return domain_ok(self.domain.text())


class InstallPage(QWizardPage):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Install Pixel")
        self.install = QPushButton("Install")
        self.install.clicked.connect(self.start)
        self.cancel = QPushButton("Cancel install")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.stop)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.step = QLabel("")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Details")
        row = QHBoxLayout()
        row.addWidget(self.install)
        row.addWidget(self.cancel)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        for w in (self.bar, self.step, self.details):
            layout.addWidget(w)
        self.task: Task | None = None
        self.result: InstallOutcome | None = None
        self.admin: Credentials | None = None  # made by an install whose site step failed: for the retry
        self.error = ""

    def install_values(self) -> dict[str, str]:
        """The settings the install is given: the wizard's, the public domain if its step passed (else the
        edge's settings are left out, as for the checks: a skipped step never fails on "unknown setting"),
        and with a MaxMind account its id and key (the key becomes a file in the data volume, never a
        setting: `secret_files`)."""
        values = dict(self.w.values)
        public = self.w.public_domain()
        if public:  # the edge gets the certificate; the snippet points at https://<public>/pixel.js
            values["PIXEL_DOMAIN"] = public
        values = check_values(values)
        site = self.w.site
        if site.maxmind.isChecked():
            values = maxmind_key.install_values(values, site.maxmind_account.text(), site.maxmind_key.text())
        return values

    def start(self) -> None:
        self.install.setEnabled(False)
        self.cancel.setEnabled(True)
        self.error = ""
        self.details.clear()
        try:
            values = self.install_values()
        except StackError as exc:
            self._failed(exc)
            return
        target, project = self.w.target(), self.w.project
        domain, timezone = self.w.site.domain.text(), self.w.site.timezone.currentText()
        name, admin, tunnels = self.w.where.name.text().strip(), self.admin, self.w.tunnels
        key = values.get(maxmind_key.KEY_SETTING, "")

        def work(task: Task) -> InstallOutcome:
            if key:  # the keyring under the profile's name: upgrades from the app deliver it again
                try:
                    maxmind_key.remember(name or project, key)
                except KeyringUnavailable as exc:
                    task.progress_callback(Progress("keyring", None, f"MaxMind key not kept: {exc}"))
            outcome = install_site(
                target,
                project,
                domain,
                name=name,
                timezone=timezone,
                values=values,
                admin=admin,
                keyring=True,
                keep_tunnel=True,  # for the first-visit check; the wizard closes it when it closes
                progress=task.progress_callback,
            )
            if outcome.tunnel is not None:
                tunnels.append(outcome.tunnel)  # at once: the wizard may be closing meanwhile
            return outcome

        self.task = self.w.runner.submit(
            work, on_done=self._done, on_error=self._failed, on_progress=self._progress
        )

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.step.setText("Cancelling… (removing what was created)")

    def _progress(self, event: Progress) -> None:
        if event.fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(int(event.fraction * 100))
        self.step.setText(event.message)
        self.details.appendPlainText(f"[{event.step}] {event.message}")

    def _done(self, result: InstallOutcome) -> None:
        self.result, self.admin = result, None
        self.bar.setRange(0, 100)
        self.bar.setValue(100)
        self.cancel.setEnabled(False)
        self.w.store.save(result.profile)
        self.w.profile = result.profile
        self.details.appendPlainText("changed: " + ", ".join(result.changed))
        self.completeChanged.emit()

    def _failed(self, exc: BaseException) -> None:
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.install.setEnabled(True)
        self.cancel.setEnabled(False)
        if isinstance(exc, Cancelled):
            self.error = "Cancelled. Nothing was left behind."
        elif isinstance(exc, StackError):
            self.error = exc.problem + (f"\nWhat to do: {exc.action}" if exc.action else "")
            if isinstance(exc, SiteNotCreated):
                self.admin = exc.admin  # the stack is installed: the next try creates only the site
        else:
            self.error = f"{type(exc).__name__}: {exc}"
        self.step.setText(self.error)
        self.details.appendPlainText(self.error)

    def isComplete(self) -> bool:
        return self.result is not None


class DonePage(QWizardPage):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Pixel is running")
        self.password = QLineEdit()
        self.password.setReadOnly(True)
        self.copy_password = QPushButton("Copy")
        self.copy_password.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.password.text()))
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        self.snippet.setMaximumHeight(90)
        self.copy_snippet = QPushButton("Copy snippet")
        self.copy_snippet.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.snippet.toPlainText())
        )
        self.first_visit = QLabel("⏳ Waiting for your first visit…")
        self.first_visit.setStyleSheet("color:#b45309; font-weight:bold")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Admin password (shown once):"))
        row.addWidget(self.password)
        row.addWidget(self.copy_password)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(QLabel("Paste this into every page of your site, just before </head>:"))
        layout.addWidget(self.snippet)
        layout.addWidget(self.copy_snippet)
        layout.addWidget(self.first_visit)
        self.timer = QTimer(self)
        self.timer.setInterval(2000)
        self.timer.timeout.connect(self.check_visit)
        self.seen = False
        self._checking = False

    def initializePage(self) -> None:
        result = self.w.install.result
        if result is None:
            return
        self.password.setText(result.password)
        problem = result.keyring_problem
        self.note.setText(
            f"Not stored: {problem}"
            if problem
            else "Stored in your system keyring, so the app can sign in. Keep a copy somewhere safe."
        )
        self.snippet.setPlainText(result.snippet)
        self.timer.start()
        self.check_visit()

    def cleanupPage(self) -> None:
        self.timer.stop()

    def check_visit(self) -> None:
        result = self.w.install.result
        if result is None or self.seen or self._checking:
            return
        profile: Profile = result.profile
        password, base = result.password, result.api_base  # base: the tunnel's end for a remote stack
        self._checking = True

        def work(_task: Task) -> int:
            with ApiClient(base, profile.username, password, timeout=5) as client:
                summary = client.report(
                    profile.site_id or 0,
                    "summary",
                    {"period": "today", "compare": False, "include_bots": True},
                )
            return int(summary["metrics"]["pageviews"]["value"])

        def done(pageviews: int) -> None:
            self._checking = False
            if pageviews > 0:
                self.seen = True
                self.timer.stop()
                self.first_visit.setText("✔ First visit received: Pixel is counting.")
                self.first_visit.setStyleSheet("color:#15803d; font-weight:bold")

        def failed(_exc: BaseException) -> None:
            self._checking = False

        self.w.runner.submit(work, on_done=done, on_error=failed)


class SetupWizard(QWizard):
    def __init__(
        self,
        runner: Runner,
        store: ProfileStore,
        project: str = "pixel",
        values: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Set up Pixel")
        self.runner = runner
        self.store = store
        self.project = project
        self.values = dict(values or {})  # stack settings (ports, image); the defaults suit most people
        self.profile: Profile | None = None
        self.trusted: HostKey | None = None  # the SSH host key the user accepted
        self.tunnels: list[PortForward] = []  # to the new stack's API (opened by the install worker)
        self.where = WherePage()
        self.checks = CheckPage(self)
        self.site = SitePage()
        self.public = PublicAddressPage(self)  # server installs only
        self.install = InstallPage(self)
        self.certificate = CertificatePage(self)  # after an install with a public domain
        self.done_page = DonePage(self)
        self.ids: dict[str, int] = {}
        for key, page in (
            ("where", self.where),
            ("checks", self.checks),
            ("site", self.site),
            ("public", self.public),
            ("install", self.install),
            ("certificate", self.certificate),
            ("done", self.done_page),
        ):
            self.ids[key] = self.addPage(page)
        self.resize(760, 560)

    @property
    def resolver(self) -> Resolver:
        """How the public-address step resolves names (tests give a table; never real DNS there)."""
        return self.public.form.resolver

    @resolver.setter
    def resolver(self, resolver: Resolver) -> None:
        self.public.form.resolver = resolver

    def public_domain(self) -> str:
        """The public domain to install with: only for a server install whose DNS check passed."""
        return "" if self.where.kind() == "local" else self.public.domain()

    def nextId(self) -> int:
        current = self.currentId()
        if current == self.ids["site"] and self.where.kind() == "local":
            return self.ids["install"]
        if current == self.ids["install"] and not self.public_domain():
            return self.ids["done"]
        return super().nextId()

    def target(self) -> EngineTarget:
        return self.where.target(self.trusted.known_hosts_line if self.trusted else "")

    def done(self, result: int) -> None:
        self.done_page.timer.stop()
        self.certificate.timer.stop()
        if self.install.task is not None and not self.install.task.finished.is_set():
            self.install.task.cancel()
        self.close_tunnels()
        super().done(result)

    def close_tunnels(self) -> None:
        while self.tunnels:
            self.tunnels.pop().stop()
