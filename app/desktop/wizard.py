"""The first-run wizard: where Pixel runs (this computer / SSH / Docker over TLS), checks in plain
words with what to do (and a host-key trust step for SSH), the site's domain, one Install button with
a real progress bar and a details log (cancellable: nothing is left behind), then the admin password
shown once (and kept in the keyring), the tracking snippet with Copy, and "waiting for your first
visit…" turning green when the first event arrives.

On a remote host the API listens on the server's 127.0.0.1 only: creating the site and the first-visit
check go through a tunnel opened by the install worker (SSH: a port forward; Docker over TLS: an exec
relay through the engine, `pixel.app.stack.tunnel`) and closed with the wizard. The SSH host key the user
trusted is saved in the profile (one known_hosts line: public, plain config) and is the only key later
connections accept; a key's passphrase goes to the keyring."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

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

from pixel.app import secret_store
from pixel.app.client import ApiClient
from pixel.app.desktop.workers import Cancelled, Runner, Task
from pixel.app.profiles import Profile, ProfileStore
from pixel.app.stack.engine import EngineTarget, HostKey, fetch_host_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.progress import Progress

OK, BAD = "✔", "✘"
FIXES = {
    "docker-missing": "Install Docker Desktop (Windows, macOS) or Docker Engine (Linux), then press Check again.",
    "engine-down": "Start Docker Desktop (or `sudo systemctl start docker`), then press Check again.",
    "engine-permission": "Add your user to the docker group (`sudo usermod -aG docker $USER`) and log in again.",
    "ssh-key-refused": "Add your SSH public key to the server's ~/.ssh/authorized_keys.",
    "ssh-key-locked": "Go Back, type the key's passphrase (Pixel keeps it in your system keyring), then Next.",
    "host-key-unknown": "Compare the fingerprint below with the server's, then press 'Trust this host'.",
}


def public_host(engine_url: str) -> str:
    """The host name visitors' browsers (and, for TLS engines, this app) use to reach the stack's host."""
    host = urllib.parse.urlparse(engine_url).hostname if engine_url else None
    host = host or "127.0.0.1"
    return f"[{host}]" if ":" in host else host


HOW = {
    "local": "The app reaches Pixel on this computer at 127.0.0.1.",
    "ssh": "Pixel's API listens on the server's own 127.0.0.1 only; this app reaches it through an SSH "
    "tunnel with the same key. Visitors reach the collector at the server's address.",
    "tls": "Pixel's API listens on the server's own 127.0.0.1 only (no port is opened to the network); this "
    "app reaches it through the Docker engine's TLS connection, with the same certificates. Visitors "
    "reach the collector at the server's address.",
}


class WherePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Where should Pixel run?")
        self.local = QRadioButton("This computer (Docker Desktop or Docker Engine)")
        self.ssh = QRadioButton("A server I can reach by SSH")
        self.tls = QRadioButton("A Docker engine over TLS")
        self.local.setChecked(True)
        group = QButtonGroup(self)
        for b in (self.local, self.ssh, self.tls):
            group.addButton(b)
        self.url = QLineEdit()
        self.url.setPlaceholderText("ssh://user@server  or  tcp://server:2376")
        self.ssh_key = QLineEdit()
        self.ssh_key.setPlaceholderText("private key file (empty: your usual SSH keys and agent)")
        self.ssh_passphrase = QLineEdit()
        self.ssh_passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.ssh_passphrase.setPlaceholderText("only if the key has one (kept in your system keyring)")
        self.tls_dir = QLineEdit()
        self.tls_dir.setPlaceholderText("folder with ca.pem, cert.pem, key.pem")
        self.name = QLineEdit("My website")
        self.how = QLabel("")  # how this app will reach Pixel's API on the chosen kind of host
        self.how.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Address", self.url)
        form.addRow("SSH key", self.ssh_key)
        form.addRow("Key passphrase", self.ssh_passphrase)
        form.addRow("TLS certificates", self.tls_dir)
        form.addRow("Name for this stack", self.name)
        layout = QVBoxLayout(self)
        for b in (self.local, self.ssh, self.tls):
            layout.addWidget(b)
        layout.addLayout(form)
        layout.addWidget(self.how)
        for w in (self.local, self.ssh, self.tls):
            w.toggled.connect(self._toggle)
        self.url.textChanged.connect(self.completeChanged)
        self.name.textChanged.connect(self.completeChanged)
        self._toggle()

    def _toggle(self) -> None:
        self.url.setEnabled(not self.local.isChecked())
        self.ssh_key.setEnabled(self.ssh.isChecked())
        self.ssh_passphrase.setEnabled(self.ssh.isChecked())
        self.tls_dir.setEnabled(self.tls.isChecked())
        self.how.setText(HOW[self.kind()])
        self.completeChanged.emit()

    def kind(self) -> str:
        return "ssh" if self.ssh.isChecked() else "tls" if self.tls.isChecked() else "local"

    def isComplete(self) -> bool:
        if not self.name.text().strip():
            return False
        if self.ssh.isChecked():
            return self.url.text().startswith("ssh://")
        if self.tls.isChecked():
            return self.url.text().startswith("tcp://") and bool(self.tls_dir.text())
        return True

    def target(self, host_key: str = "") -> EngineTarget:
        """The engine chosen; for SSH with the host key the user trusted (a known_hosts line)."""
        if self.local.isChecked():
            return EngineTarget()
        if self.ssh.isChecked():
            key = self.ssh_key.text().strip()
            return EngineTarget(
                self.url.text().strip(),
                ssh_key=Path(key).expanduser() if key else None,
                host_key=host_key,
                ssh_passphrase=self.ssh_passphrase.text(),
            )
        folder = Path(self.tls_dir.text())
        return EngineTarget(
            self.url.text().strip(),
            tls_ca=folder / "ca.pem",
            tls_cert=folder / "cert.pem",
            tls_key=folder / "key.pem",
        )


class CheckPage(QWizardPage):
    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Checking…")
        self.results = QLabel("")
        self.results.setWordWrap(True)
        self.again = QPushButton("Check again")
        self.again.clicked.connect(self.run_checks)
        self.trust = QPushButton("Trust this host")
        self.trust.clicked.connect(self.trust_host)
        self.trust.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.results)
        row = QHBoxLayout()
        row.addWidget(self.again)
        row.addWidget(self.trust)
        row.addStretch(1)
        layout.addLayout(row)
        self.ok = False
        self.host_key: Any = None

    def initializePage(self) -> None:
        self.run_checks()

    def run_checks(self) -> None:
        self.ok = False
        self.completeChanged.emit()
        self.results.setText("Checking the Docker engine…")
        target = self.w.target()

        def work(_task: Task) -> list[tuple[bool, str, str]]:
            from pixel.app.stack.engine import connect
            from pixel.app.stack.manage import open_stack

            try:
                client = connect(target)
            except StackError as exc:
                if exc.code == "host-key-unknown":
                    self.host_key = fetch_host_key(target.url)
                return [(False, exc.problem, FIXES.get(exc.code, exc.action))]
            try:
                prov = open_stack(client, self.w.project, "compact", self.w.values, target=target)
                return [(f.ok, f.message, f.action) for f in prov.check()]
            finally:
                client.close()

        self.w.runner.submit(work, on_done=self._show, on_error=lambda e: self._show([(False, str(e), "")]))

    def _show(self, findings: list[tuple[bool, str, str]]) -> None:
        lines = []
        for ok, message, action in findings:
            lines.append(
                f"<p><b style='color:{'#15803d' if ok else '#b91c1c'}'>{OK if ok else BAD}</b> {message}"
                + (f"<br><i>What to do:</i> {action}" if action and not ok else "")
                + "</p>"
            )
        if self.host_key is not None:
            lines.append(f"<p>Host key of {self.host_key.host}: <code>{self.host_key.fingerprint}</code></p>")
        elif self.w.trusted is not None and self.w.where.kind() == "ssh":
            lines.append(
                f"<p>Trusted host key of {self.w.trusted.host}: <code>{self.w.trusted.fingerprint}</code> "
                "(kept with this stack's settings; a different key will be refused)</p>"
            )
        self.trust.setVisible(self.host_key is not None)
        self.results.setText("".join(lines))
        self.ok = all(ok for ok, _, _ in findings)
        self.setTitle("Everything is ready" if self.ok else "Something needs your attention")
        self.completeChanged.emit()

    def trust_host(self) -> None:
        """The user compared the fingerprint and said yes: the key goes into the profile at the end of
        the install (plain config) and every later connection accepts only that key."""
        if self.host_key is not None:
            self.w.trusted = self.host_key
            self.host_key = None
            self.run_checks()

    def isComplete(self) -> bool:
        return self.ok


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
        form = QFormLayout(self)
        form.addRow("Domain", self.domain)
        form.addRow("Time zone for reports", self.timezone)
        self.domain.textChanged.connect(self.completeChanged)

    def isComplete(self) -> bool:
        text = self.domain.text().strip()
        return "." in text and " " not in text and "/" not in text


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
        self.result: dict[str, Any] | None = None
        self.error = ""

    def start(self) -> None:
        self.install.setEnabled(False)
        self.cancel.setEnabled(True)
        self.error = ""
        self.details.clear()
        target = self.w.target()
        kind = self.w.where.kind()
        domain = self.w.site.domain.text().strip()
        tz = self.w.site.timezone.currentText()
        name = self.w.where.name.text().strip()
        project, values, engine = (
            self.w.project,
            dict(self.w.values),
            self.w.where.url.text().strip() or "local",
        )
        host = "127.0.0.1" if kind == "local" else public_host(engine)
        tls_dir = self.w.where.tls_dir.text().strip() if kind == "tls" else ""
        host_key = self.w.trusted.known_hosts_line if kind == "ssh" and self.w.trusted else ""
        tunnels = self.w.tunnels

        def work(task: Task) -> dict[str, Any]:
            from pixel.app.stack.engine import connect
            from pixel.app.stack.manage import open_stack

            task.report(Progress("connect", None, f"connecting to {target.describe()}"))
            client = connect(target)
            try:
                prov = open_stack(client, project, "compact", values, target=target)
                result = prov.install(progress=task.progress_callback)
                task.report(Progress("site", None, "creating the site"))
                api = next(c for c in prov.status().containers if 8082 in c.ports)
            finally:
                client.close()  # over SSH: the connection (and the server's dial-stdio) ends here
            # The API's address as the stack's host sees it (remote: the server's loopback, reached through
            # a tunnel); the collector's as visitors' browsers reach it.
            api_url = f"http://127.0.0.1:{api.ports[8082]}"
            collector_url = f"http://{host}:{api.ports[8081]}"
            if result.admin is None:
                raise StackError(result.admin_note or "no admin account was created", code="admin-failed")
            base = api_url
            if kind != "local":
                from pixel.app.stack.tunnel import stack_api_tunnel

                how = "an SSH tunnel" if kind == "ssh" else "a tunnel through the Docker engine"
                task.report(
                    Progress(
                        "tunnel",
                        None,
                        f"opening {how} to the API (port {api.ports[8082]} on the server's 127.0.0.1)",
                    )
                )
                tunnel = stack_api_tunnel(target, project, api_url)
                tunnels.append(tunnel)  # the wizard closes it when it closes
                base = tunnel.local_url
            with ApiClient(base, result.admin.username, result.admin.password) as api_client:
                site = api_client.create_site(domain, tz)
                snippet = api_client.get(f"/api/sites/{site['id']}/snippet", {"collector_url": collector_url})
            stored = ""
            try:
                secret_store.set_secret(name, "admin_password", result.admin.password)
                if target.ssh_passphrase:
                    secret_store.set_secret(name, "ssh_passphrase", target.ssh_passphrase)
            except secret_store.KeyringUnavailable as exc:
                stored = str(exc)
            profile = Profile(
                name,
                engine=engine,
                project=project,
                api_url=api_url,
                collector_url=collector_url,
                username=result.admin.username,
                domain=domain,
                site_id=site["id"],
                tls_dir=tls_dir,
                ssh_key=str(target.ssh_key or ""),
                ssh_key_locked=bool(target.ssh_passphrase),
                host_key=host_key,
            )
            task.report(Progress("done", 1.0, "Pixel is installed"))
            return {
                "profile": profile,
                "password": result.admin.password,
                "snippet": snippet["html"],
                "keyring_problem": stored,
                "changed": result.changed,
                "api_base": base,
            }

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

    def _done(self, result: dict[str, Any]) -> None:
        self.result = result
        self.bar.setRange(0, 100)
        self.bar.setValue(100)
        self.cancel.setEnabled(False)
        self.w.store.save(result["profile"])
        self.w.profile = result["profile"]
        self.details.appendPlainText("changed: " + ", ".join(result["changed"]))
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
        result = self.w.install.result or {}
        self.password.setText(result.get("password", ""))
        problem = result.get("keyring_problem")
        self.note.setText(
            f"Not stored: {problem}"
            if problem
            else "Stored in your system keyring, so the app can sign in. Keep a copy somewhere safe."
        )
        self.snippet.setPlainText(result.get("snippet", ""))
        self.timer.start()
        self.check_visit()

    def cleanupPage(self) -> None:
        self.timer.stop()

    def check_visit(self) -> None:
        result = self.w.install.result
        if result is None or self.seen or self._checking:
            return
        profile: Profile = result["profile"]
        password, base = result["password"], result["api_base"]  # base: the SSH tunnel's end for ssh://
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
        self.tunnels: list = []  # SSH tunnels to the new stack's API (opened by the install worker)
        self.where = WherePage()
        self.checks = CheckPage(self)
        self.site = SitePage()
        self.install = InstallPage(self)
        self.done_page = DonePage(self)
        for page in (self.where, self.checks, self.site, self.install, self.done_page):
            self.addPage(page)
        self.resize(760, 560)

    def target(self) -> EngineTarget:
        return self.where.target(self.trusted.known_hosts_line if self.trusted else "")

    def done(self, result: int) -> None:
        self.done_page.timer.stop()
        if self.install.task is not None and not self.install.task.finished.is_set():
            self.install.task.cancel()
        self.close_tunnels()
        super().done(result)

    def close_tunnels(self) -> None:
        while self.tunnels:
            self.tunnels.pop().stop()
