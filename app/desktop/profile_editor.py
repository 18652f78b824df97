"""Dialogs for saved profiles without the wizard: connect to an existing Pixel (an API address and an
account, no Docker engine) and edit a profile (addresses, account password, SSH key and passphrase, TLS
folder, the trusted SSH host key) or remove it with its keyring entries.

Contract: secrets typed here go to the keyring only (`pixel.app.profile_edit`); a password or passphrase
field left empty keeps the stored one ("Forget the passphrase" removes it). A new SSH host key replaces the
trusted one only after `confirm_key` (the main window's confirmation, showing both fingerprints) says yes.
Removing asks `confirm` first, naming the profile. Blocking work runs on the runner; `saved` is emitted with
the profile's name after a save, "" after a removal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixel.app import profile_edit
from pixel.app.desktop.workers import Runner
from pixel.app.profiles import Profile, ProfileStore

if TYPE_CHECKING:
    from pixel.app.stack.engine import HostKey


def _password_field() -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


class ConnectExistingDialog(QDialog):
    saved = Signal(str)

    def __init__(self, runner: Runner, store: ProfileStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to an existing Pixel")
        self.runner, self.store = runner, store
        self.name = QLineEdit()
        self.api_url = QLineEdit()
        self.api_url.setPlaceholderText("https://pixel.example.com:8082")
        self.username = QLineEdit()
        self.password = _password_field()
        self.message = QLabel(
            "For a Pixel someone else installed (or one installed by hand with compose): only its API "
            "address and your account. No Docker is needed on this computer."
        )
        self.message.setWordWrap(True)
        self.connect_button = QPushButton("&Connect")
        self.connect_button.setDefault(True)
        self.connect_button.clicked.connect(self.submit)
        form = QFormLayout()
        form.addRow("&Name of this profile:", self.name)
        form.addRow("&API address:", self.api_url)
        form.addRow("&User name:", self.username)
        form.addRow("&Password:", self.password)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(self.connect_button)

    def submit(self) -> None:
        args = (
            self.name.text().strip(),
            self.api_url.text().strip(),
            self.username.text().strip(),
            self.password.text(),
        )
        self.connect_button.setEnabled(False)
        self.message.setText("Signing in…")

        def made(profile: Profile) -> None:
            self.password.clear()
            self.saved.emit(profile.name)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.connect_button.setEnabled(True)
            self.message.setText(str(getattr(exc, "detail", "") or exc))

        self.runner.submit(
            lambda _t: profile_edit.connect_existing(self.store, *args), on_done=made, on_error=failed
        )


class ProfileEditor(QDialog):
    saved = Signal(str)

    def __init__(
        self,
        runner: Runner,
        store: ProfileStore,
        profile: Profile,
        confirm_key: Callable[[str], bool],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Edit {profile.name}")
        self.runner, self.store, self.profile = runner, store, profile
        self.confirm_key = confirm_key
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        self.host_key = profile.host_key

        self.api_url = QLineEdit(profile.api_url)
        self.collector_url = QLineEdit(profile.collector_url)
        self.username = QLineEdit(profile.username)
        self.password = _password_field()
        self.password.setPlaceholderText("unchanged")
        self.engine = QLineEdit(profile.engine)
        self.ssh_key = QLineEdit(profile.ssh_key)
        browse_key = QPushButton("…")
        browse_key.clicked.connect(self._browse_key)
        self.passphrase = _password_field()
        self.passphrase.setPlaceholderText("unchanged" if profile.ssh_key_locked else "none")
        self.forget_passphrase = QPushButton("Forget the passphrase")
        self.forget_passphrase.setEnabled(profile.ssh_key_locked)
        self.forget_passphrase.clicked.connect(self._forget_passphrase)
        self._passphrase_forgotten = False
        self.tls_dir = QLineEdit(profile.tls_dir)
        browse_tls = QPushButton("…")
        browse_tls.clicked.connect(self._browse_tls)
        self.host_key_label = QLabel(self._fingerprint(profile.host_key))
        self.host_key_label.setWordWrap(True)
        self.check_key = QPushButton("Check the server's &key…")
        self.check_key.clicked.connect(self.review_host_key)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.save_button = QPushButton("&Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("&Remove this profile…")
        self.remove_button.clicked.connect(self.remove)

        def row(*widgets: QWidget) -> QHBoxLayout:
            box = QHBoxLayout()
            for w in widgets:
                box.addWidget(w)
            return box

        form = QFormLayout()
        form.addRow("&API address:", self.api_url)
        form.addRow("&Collector address:", self.collector_url)
        form.addRow("&User name:", self.username)
        form.addRow("&Password:", self.password)
        if profile.has_engine:
            form.addRow("&Docker engine:", self.engine)
            form.addRow("SSH &key file:", row(self.ssh_key, browse_key))
            form.addRow("SSH key pass&phrase:", row(self.passphrase, self.forget_passphrase))
            form.addRow("&TLS folder:", row(self.tls_dir, browse_tls))
            form.addRow("Trusted host key:", row(self.host_key_label, self.check_key))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addLayout(row(self.remove_button, QLabel(""), self.save_button))

    @staticmethod
    def _fingerprint(line: str) -> str:
        if not line:
            return "none"
        from pixel.app.stack.engine import parse_host_key

        return parse_host_key(line).fingerprint

    def _browse_key(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SSH private key")
        if path:
            self.ssh_key.setText(path)

    def _browse_tls(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder with ca.pem, cert.pem and key.pem")
        if path:
            self.tls_dir.setText(path)

    def _forget_passphrase(self) -> None:
        self._passphrase_forgotten = True
        self.passphrase.clear()
        self.passphrase.setPlaceholderText("none")
        self.forget_passphrase.setEnabled(False)

    def review_host_key(self) -> None:
        """Fetch the key of the server at the engine address now typed; trust it only if confirmed."""
        engine = self.engine.text().strip()
        if not engine.startswith("ssh://"):
            self.message.setText("Only an ssh:// engine has a host key.")
            return

        def fetch(_t: object) -> HostKey:
            from pixel.app.stack.engine import fetch_host_key

            return fetch_host_key(engine)

        def fetched(new: HostKey) -> None:
            old = self._fingerprint(self.host_key)
            if self.host_key and new.known_hosts_line == self.host_key:
                self.message.setText("The server presents the key you trust.")
                return
            text = (
                f"The server {new.host} presents the host key\n{new.fingerprint}\n\nThe key you trusted was\n{old}"
                "\n\nAccept it only if the server's administrator confirms this fingerprint. Otherwise someone "
                "may be intercepting the connection."
            )
            if self.confirm_key(text):
                self.host_key = new.known_hosts_line
                self.host_key_label.setText(new.fingerprint)
                self.message.setText("The new key is trusted once you save.")

        self.runner.submit(fetch, on_done=fetched, on_error=lambda e: self.message.setText(str(e)))

    def edited(self) -> Profile:
        return replace(
            self.profile,
            api_url=self.api_url.text().strip(),
            collector_url=self.collector_url.text().strip(),
            username=self.username.text().strip(),
            engine=self.engine.text().strip() or self.profile.engine,
            ssh_key=self.ssh_key.text().strip(),
            tls_dir=self.tls_dir.text().strip(),
            host_key=self.host_key,
        )

    def save(self) -> None:
        try:
            profile = self.edited()
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        password = self.password.text() or None
        passphrase: str | None = self.passphrase.text() or None
        if self._passphrase_forgotten and passphrase is None:
            passphrase = ""

        def stored(result: Profile) -> None:
            self.password.clear()
            self.passphrase.clear()
            self.profile = result
            self.saved.emit(result.name)
            self.accept()

        self.runner.submit(
            lambda _t: profile_edit.save_edit(self.store, profile, password=password, passphrase=passphrase),
            on_done=stored,
            on_error=lambda e: self.message.setText(str(e)),
        )

    def remove(self) -> None:
        name = self.profile.name
        if not self.confirm(
            f"Remove the profile {name!r} and its passwords from the keyring? The Pixel itself is not "
            "touched: its stack and data stay where they are."
        ):
            return

        def removed(_r: object) -> None:
            self.saved.emit("")
            self.accept()

        self.runner.submit(
            lambda _t: profile_edit.forget(self.store, name),
            on_done=removed,
            on_error=lambda e: self.message.setText(str(e)),
        )

    def _confirm_dialog(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Remove the profile?", text)
        return answer == QMessageBox.StandardButton.Yes
