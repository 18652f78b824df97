"""The setup wizard's first two pages: where Pixel runs (this computer, a server reached by SSH, a Docker
engine over TLS) with how the app will reach its API there, and the checks of that engine in plain words,
each with what to do (`pixel.app.stack.errors`, in the wizard's words), including the SSH host-key step:
the server's fingerprint is shown and nothing is trusted until the user presses "Trust this host"."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizardPage,
)

from pixel.app.desktop.workers import Task
from pixel.app.stack import docker_host
from pixel.app.stack.edge import EDGE_VARIABLES, has_domain
from pixel.app.stack.engine import EngineTarget, HostKey, fetch_host_key
from pixel.app.stack.errors import StackError, wizard_action

if TYPE_CHECKING:
    from pixel.app.desktop.wizard import SetupWizard

OK, BAD = "✔", "✘"

HOW = {
    "local": "The app reaches Pixel on this computer at 127.0.0.1.",
    "ssh": "Pixel's API listens on the server's own 127.0.0.1 only; this app reaches it through an SSH "
    "tunnel with the same key. Visitors reach the collector at the server's address.",
    "tls": "Pixel's API listens on the server's own 127.0.0.1 only (no port is opened to the network); this "
    "app reaches it through the Docker engine's TLS connection, with the same certificates. Visitors "
    "reach the collector at the server's address.",
}


# the edge's own settings, and the CDN name `edge.edge_values` expands: known only to a stack with a domain
EDGE_ONLY = frozenset({v.name for v in EDGE_VARIABLES} | {"PIXEL_EDGE_CDN"})


def check_values(values: Mapping[str, str]) -> dict[str, str]:
    """The settings the engine checks run with. The domain comes later (the Public-address step), so until
    it is set the edge's settings are left out here: the stack without the edge does not know them. They are
    validated with the domain, when the install resolves the stack with the edge."""
    if has_domain(values):
        return dict(values)
    return {k: v for k, v in values.items() if k not in EDGE_ONLY}


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
        # This computer's engine (docker_host.find, on a worker): what was found, or what to install/start
        self.engine: docker_host.Engine | None = None
        self.engine_note = QLabel("Looking for Docker on this computer…")
        self.engine_note.setWordWrap(True)
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
        layout.addWidget(self.engine_note)
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
        self.engine_note.setVisible(self.local.isChecked())
        self.completeChanged.emit()

    def initializePage(self) -> None:
        runner = getattr(self.wizard(), "runner", None)
        if runner is not None:
            runner.submit(lambda _t: docker_host.find(), on_done=self._engine_found)

    def _engine_found(self, engine: docker_host.Engine) -> None:
        self.engine = engine
        self.engine_note.setText(engine.message)
        self.engine_note.setStyleSheet("" if engine.ok else "color:#b91c1c; font-weight:bold")

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
        if self.local.isChecked():  # the engine found (Podman's socket, Colima's, …) or the default
            return EngineTarget(self.engine.url if self.engine is not None and self.engine.ok else "")
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
        self.host_key: HostKey | None = None  # the unknown key shown for the user to compare

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
                return [(False, exc.problem, wizard_action(exc))]
            try:
                values = check_values(self.w.values)
                prov = open_stack(client, self.w.project, "compact", values, target=target)
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
