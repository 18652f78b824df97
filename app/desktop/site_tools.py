"""The stack page's public part: the HTTPS certificate, the GeoIP database, the "Public address…" action, and per
site "Check installation" and the first-party proxy recipes with a Copy button.

- Certificate (`show_certificate`): issuer, expiry, last renewal (the certificate's start), and the warning
  14 days before expiry when renewal keeps failing (`public_address.certificate_status`); read from the edge's
  volume through the Docker engine (`load_certificate`); `clock` is injectable. Without a public domain it says
  plainly that real websites need one.
- GeoIP (`GET /api/geoip`): the database's date, source and attribution text (its licence asks for it), the last
  check and the last error; none yet is said plainly.
- Sites: "Check installation" posts the page address to the API (the server fetches it) and lists each finding
  with its level (the messages are escaped: a page's text never becomes markup here); the recipes (`GET /api/sites/{id}/proxy-recipes`) show one configuration at a time, with Copy.
- MaxMind: "MaxMind key…" keeps the key in the keyring (under the profile) and installs the stack again with
  it (the key file, `maxmind_key.apply`); "Forget MaxMind key" removes the keyring entry and the file. A
  re-install for a public address passes the kept key too.
- "Public address…" opens the same form as the wizard (validation, DNS check against the server); Apply (only
  after a passing DNS check, and confirmed) re-installs the stack with `PIXEL_DOMAIN`, which adds the edge.
The API calls run on workers with a client from `set_api`'s factory; errors are shown, never raised.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pixel.app.desktop.public_address_page import GREEN, NEEDS_HTTPS, RED, PublicAddressForm
from pixel.app.desktop.status_colours import status_style
from pixel.app.desktop.workers import Runner, Task
from pixel.app.stack import maxmind_key
from pixel.app.stack.errors import StackError
from pixel.app.stack.public_address import CertificateStatus, certificate_status, read_edge_certificates

if TYPE_CHECKING:
    from pixel.app.client import ApiClient
    from pixel.app.stack.provisioner import Provisioner

LEVEL_MARK = {"ok": "✔", "warning": "⚠", "error": "✘"}
LEVEL_COLOUR = {"ok": "#15803d", "warning": "#b45309", "error": "#b91c1c"}


def certificate_text(domain: str, status: CertificateStatus | None) -> tuple[str, bool]:
    """(the certificate's lines for the stack page, whether to show them as a warning)."""
    if not domain:
        return "No public address: the collector is plain HTTP (for testing). " + NEEDS_HTTPS, False
    if status is None:
        return f"No certificate for {domain} yet: the edge is still asking for one (see its log).", True
    fmt = "%Y-%m-%d %H:%M UTC"
    lines = [
        f"Certificate of {domain} by {status.issuer}",
        f"Expires: {status.not_after.strftime(fmt)} ({max(status.days_left, 0):.0f} days left)",
        f"Last renewal: {status.not_before.strftime(fmt)}",
    ]
    if status.warn:
        lines.append("⚠ " + status.message)
    return "\n".join(lines), status.warn


def geoip_text(info: dict[str, Any]) -> tuple[str, bool]:
    """(the GeoIP lines for the stack page, whether something is wrong)."""
    lines = []
    if info.get("available"):
        lines.append(
            f"GeoIP database: {info.get('database_type') or 'unknown type'}, dated {info.get('build_date')}"
            + (f", from {info['source']}" if info.get("source") else "")
        )
        if info.get("attribution"):
            lines.append(str(info["attribution"]))
    else:
        lines.append("No GeoIP database yet: countries and cities stay empty until one is in place.")
    if info.get("last_check"):
        lines.append(f"Last check: {info['last_check']}")
    if info.get("last_error"):
        lines.append(f"Last error: {info['last_error']}")
    return "\n".join(lines), bool(info.get("last_error")) or not info.get("available")


class PublicAddressDialog(QDialog):
    def __init__(self, runner: Runner, engine_url: str, current: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Public address")
        self.form = PublicAddressForm(runner, lambda: engine_url)
        self.form.domain.setText(current)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel
        )
        self.apply = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply.setEnabled(False)
        self.apply.clicked.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.form.checked.connect(lambda: self.apply.setEnabled(self.form.ok))
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        note = QLabel(NEEDS_HTTPS)
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.resize(640, 260)


class PublicPanel(QWidget):
    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.api: Callable[[], ApiClient] | None = None
        self.provisioner: Provisioner | None = None
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.recipes: dict[str, dict[str, Any]] = {}
        self.findings: list[dict[str, Any]] = []
        self.dialog: PublicAddressDialog | None = None
        # Hooks (tests drive them without modal dialogs): open the dialog; confirm the apply.
        self.confirm: Callable[[str], bool] = lambda _text: False
        self.applied: Callable[[str], None] = self._apply_domain
        # the MaxMind account: (account id, key) asked for, or None when cancelled
        self.profile_name = ""  # set by the window: the keyring entry of the profile shown
        self.ask_maxmind: Callable[[], tuple[str, str] | None] = self._maxmind_dialog

        self.certificate = QLabel("Certificate: —")
        self.certificate.setWordWrap(True)
        self.address = QPushButton("Public address…")
        self.address.clicked.connect(self.open_address)
        self.geoip = QLabel("GeoIP: —")
        self.geoip.setWordWrap(True)
        self.maxmind_set = QPushButton("MaxMind key…")
        self.maxmind_set.setToolTip("Use GeoLite2 with your MaxMind account (the key stays in your keyring)")
        self.maxmind_set.clicked.connect(self.set_maxmind)
        self.maxmind_forget = QPushButton("Forget MaxMind key")
        self.maxmind_forget.clicked.connect(self.forget_maxmind)
        self.maxmind_note = QLabel("")
        self.maxmind_note.setWordWrap(True)
        top = QHBoxLayout()
        for title, label in (("HTTPS", self.certificate), ("GeoIP", self.geoip)):
            box = QGroupBox(title)
            inner = QVBoxLayout(box)
            inner.addWidget(label)
            if label is self.certificate:
                inner.addWidget(self.address)
            else:
                row = QHBoxLayout()
                row.addWidget(self.maxmind_set)
                row.addWidget(self.maxmind_forget)
                row.addStretch(1)
                inner.addLayout(row)
                inner.addWidget(self.maxmind_note)
            top.addWidget(box, 1)

        self.site = QComboBox()
        self.site.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.site.currentIndexChanged.connect(self.load_recipes)
        self.page_url = QLineEdit()
        self.page_url.setPlaceholderText("https://www.example.com/  (a page of the site)")
        self.check = QPushButton("Check installation")
        self.check.clicked.connect(self.check_installation)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.recipe = QComboBox()
        self.recipe.currentIndexChanged.connect(self._show_recipe)
        self.recipe_where = QLabel("")
        self.recipe_where.setWordWrap(True)
        self.config = QPlainTextEdit()
        self.config.setReadOnly(True)
        # a font, not a style sheet: a widget with a style sheet keeps the colours of the theme it started in
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPixelSize(11)
        self.config.setFont(mono)
        self.config.setMaximumHeight(150)
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.config.toPlainText()))
        sites = QGroupBox("Sites")
        grid = QVBoxLayout(sites)
        row = QHBoxLayout()
        for w in (QLabel("Site"), self.site, self.page_url, self.check):
            row.addWidget(w)
        row.setStretch(2, 1)
        grid.addLayout(row)
        grid.addWidget(self.result)
        row = QHBoxLayout()
        for w in (QLabel("Serve Pixel under the site's own domain with"), self.recipe, self.copy):
            row.addWidget(w)
        row.addStretch(1)
        grid.addLayout(row)
        grid.addWidget(self.recipe_where)
        grid.addWidget(self.config)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(sites)

    # ------------------------------------------------------------------ certificate
    def domain(self) -> str:
        return self.provisioner.settings.get("PIXEL_DOMAIN", "").strip() if self.provisioner else ""

    def load_certificate(self, prov: Provisioner) -> None:
        self.provisioner = prov
        domain, now = self.domain(), self.clock()

        def work(_task: Task) -> CertificateStatus | None:
            edge = prov.container("edge") if domain else None
            return certificate_status(domain, read_edge_certificates(edge, domain), now) if edge else None

        self.runner.submit(
            work, on_done=lambda s: self.show_certificate(domain, s), on_error=self._cert_error
        )

    def show_certificate(self, domain: str, status: CertificateStatus | None) -> None:
        text, warn = certificate_text(domain, status)
        self.certificate.setText(text)
        self.certificate.setStyleSheet(
            status_style(RED, self.certificate) if warn and status is not None else ""
        )

    def _cert_error(self, exc: BaseException) -> None:
        self.certificate.setText(f"The certificate could not be read: {exc}")
        self.certificate.setStyleSheet(status_style(RED, self.certificate))

    # ------------------------------------------------------------------ API parts
    def set_api(self, factory: Callable[[], ApiClient]) -> None:
        """Where the API is (a new client per call, on a worker); loads GeoIP and the sites."""
        self.api = factory

        def work(_task: Task) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            with factory() as client:
                return client.geoip(), client.sites()

        self.runner.submit(work, on_done=self._loaded, on_error=self._api_error)

    def _loaded(self, result: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        info, sites = result
        text, bad = geoip_text(info)
        self.geoip.setText(text)
        self.geoip.setStyleSheet(status_style(RED, self.geoip) if bad else "")
        self.site.clear()
        for site in sites:
            self.site.addItem(str(site["domain"]), int(site["id"]))

    def _api_error(self, exc: BaseException) -> None:
        self.result.setStyleSheet(status_style(RED, self.result))
        self.result.setText(f"Pixel's API could not be reached: {exc}")

    def load_recipes(self) -> None:
        site_id, factory = self.site.currentData(), self.api
        if site_id is None or factory is None:
            return
        collector = f"https://{self.domain()}" if self.domain() else None

        def work(_task: Task) -> dict[str, Any]:
            with factory() as client:
                return client.proxy_recipes(site_id, collector)

        self.runner.submit(work, on_done=self._recipes_loaded, on_error=self._api_error)

    def _recipes_loaded(self, data: dict[str, Any]) -> None:
        self.recipes = {str(r["id"]): r for r in data.get("recipes", [])}
        self.recipe.blockSignals(True)
        self.recipe.clear()
        for key, r in self.recipes.items():
            self.recipe.addItem(str(r["title"]), key)
        self.recipe.blockSignals(False)
        self._show_recipe()

    def _show_recipe(self) -> None:
        r = self.recipes.get(self.recipe.currentData() or "")
        self.config.setPlainText(str(r["config"]) if r else "")
        self.recipe_where.setText(f"Where: {r['where']}" if r else "")

    def check_installation(self) -> None:
        site_id, factory, url = self.site.currentData(), self.api, self.page_url.text().strip()
        if site_id is None or factory is None:
            return
        if not url:
            self.result.setStyleSheet(status_style(RED, self.result))
            self.result.setText("Type the address of a page of the site first.")
            return
        self.check.setEnabled(False)
        self.result.setStyleSheet("")
        self.result.setText(f"Checking {url}…")

        def work(_task: Task) -> dict[str, Any]:
            with factory() as client:
                return client.check_installation(site_id, url)

        def failed(exc: BaseException) -> None:
            self.check.setEnabled(True)
            self._api_error(exc)

        self.runner.submit(work, on_done=self._checked, on_error=failed)

    def _checked(self, data: dict[str, Any]) -> None:
        self.check.setEnabled(True)
        self.findings = list(data.get("findings", []))
        lines = [
            f"<p style='margin:2px'><b style='color:{LEVEL_COLOUR.get(f['level'], '#666')}'>"
            f"{LEVEL_MARK.get(f['level'], '•')}</b> {html.escape(str(f['message']))}</p>"
            for f in self.findings
        ]
        head = "Installed correctly." if data.get("ok") else "Something needs your attention:"
        self.result.setStyleSheet(status_style(GREEN if data.get("ok") else RED, self.result))
        self.result.setText(f"<p><b>{head}</b></p>" + "".join(lines))

    # ------------------------------------------------------------------ MaxMind key
    def set_maxmind(self) -> Task | None:
        """Ask for the account and key; keyring, then the stack installed again with the key file."""
        prov, profile = self.provisioner, self.profile_name
        if prov is None or not profile:
            return None
        answer = self.ask_maxmind()
        if answer is None:
            return None
        try:
            account, key = maxmind_key.check(*answer)
        except StackError as exc:
            self._maxmind_done(exc.problem, bad=True)
            return None
        self.maxmind_note.setText("Installing the MaxMind key…")

        def work(_task: Task) -> str:
            maxmind_key.apply(prov, profile, account, key)
            return "MaxMind key kept in your keyring and given to the stack (GeoLite2 from the next refresh)."

        later = "The key is kept in your keyring: the next install or upgrade from this app gives it to the stack."
        return self.runner.submit(work, on_done=self._maxmind_done, on_error=self._maxmind_failed(later))

    def forget_maxmind(self) -> Task | None:
        """Remove the key from the keyring and its file from the stack's data volume (DB-IP again)."""
        prov, profile = self.provisioner, self.profile_name
        if prov is None or not profile:
            return None
        if not self.confirm("Forget the MaxMind key? The stack goes back to DB-IP's free database."):
            return None

        def work(_task: Task) -> str:
            maxmind_key.forget(profile)
            maxmind_key.remove_file(prov)
            return "MaxMind key removed from your keyring and from the stack."

        later = "Start the stack, then press Forget again to remove its key file."
        return self.runner.submit(work, on_done=self._maxmind_done, on_error=self._maxmind_failed(later))

    def _maxmind_failed(self, later: str) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            if isinstance(exc, StackError):
                text = exc.problem + (f"\nWhat to do: {exc.action}" if exc.action else "")
            else:  # the engine's own error (connection refused, …) in one line
                text = f"The Docker engine could not be reached ({type(exc).__name__}). {later}"
            self._maxmind_done(text, bad=True)

        return failed

    def _maxmind_done(self, text: str, bad: bool = False) -> None:
        self.maxmind_note.setText(text)
        self.maxmind_note.setStyleSheet(status_style(RED if bad else GREEN, self.maxmind_note))

    def _maxmind_dialog(self) -> tuple[str, str] | None:
        account, ok = QInputDialog.getText(self, "MaxMind account", "Account ID:")
        if not ok:
            return None
        key, ok = QInputDialog.getText(
            self, "MaxMind account", "Licence key (kept in your keyring only):", QLineEdit.EchoMode.Password
        )
        return (account, key) if ok else None

    # ------------------------------------------------------------------ public address
    def open_address(self) -> PublicAddressDialog | None:
        prov = self.provisioner
        if prov is None:
            return None
        self.dialog = PublicAddressDialog(self.runner, prov.target.url, self.domain(), self)
        self.dialog.accepted.connect(
            lambda: self.applied(self.dialog.form.ascii_domain if self.dialog else "")
        )
        self.dialog.open()
        return self.dialog

    def _apply_domain(self, domain: str) -> None:
        prov = self.provisioner
        if not domain or prov is None:
            return
        text = (
            f"Put the collector at https://{domain}? The stack is installed again with the HTTPS edge; "
            "visits arriving meanwhile wait in the browsers' outbox."
        )
        if not self.confirm(text):
            return

        def work(task: Task) -> Provisioner:
            from pixel.app.stack.manage import open_stack

            values = maxmind_key.with_stored_key(self.profile_name, {"PIXEL_DOMAIN": domain})
            new = open_stack(prov.client, prov.spec.project, None, values, target=prov.target)
            new.install(progress=task.progress_callback)
            return new

        self.certificate.setText(f"Installing the HTTPS edge for {domain}…")
        self.runner.submit(work, on_done=self.load_certificate, on_error=self._cert_error)
