"""The main window: a profile (stack) switcher, the dashboard and stack pages, and a banner when the
system keyring is unusable (with what to do; secrets are never stored elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from pixel.app import secret_store
from pixel.app.client import ReportCache, ReportSource
from pixel.app.client.api import ApiClient
from pixel.app.client.connect import ApiConnection, engine_target, open_api
from pixel.app.client.dashboards_admin import DashboardsAdmin
from pixel.app.client.site_admin import SiteAdmin
from pixel.app.desktop.alerts_page import AlertsPage
from pixel.app.desktop.dashboard import DashboardPage
from pixel.app.desktop.dashboard_editor import DashboardEditor
from pixel.app.desktop.goals_page import GoalsPage
from pixel.app.desktop.journeys_page import JourneysPage
from pixel.app.desktop.owner_tabs import OwnerTabs
from pixel.app.desktop.sites_page import SitesPage
from pixel.app.desktop.stack_page import StackPage
from pixel.app.desktop.workers import Runner, Task
from pixel.app.profiles import Profile, ProfileStore

if TYPE_CHECKING:
    from pixel.app.desktop.wizard import SetupWizard
    from pixel.app.stack.engine import HostKey
    from pixel.app.stack.provisioner import Provisioner
    from pixel.app.stack.tunnel import PortForward


def _api_client(profile: Profile, base_url: str) -> ApiClient:
    """A new client of the profile's API (the stack page's public panel closes each one; on a worker)."""
    password = secret_store.get_secret(profile.name, "admin_password")
    if password is None:
        raise secret_store.KeyringUnavailable(
            f"No password for {profile.username!r} of {profile.name!r} in the keyring."
        )
    return ApiClient(base_url, profile.username, password)


class MainWindow(QMainWindow):
    def __init__(
        self,
        store: ProfileStore | None = None,
        cache: ReportCache | None = None,
        runner: Runner | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Pixel")
        self.store = store or ProfileStore()
        self.cache = cache or ReportCache()
        self.runner = runner or Runner(self)
        self.profile: Profile | None = None
        self.wizard: SetupWizard | None = None
        self._tunnel: PortForward | None = (
            None  # tunnel to a remote stack's API (SSH, or through a TLS engine)
        )
        # Asked before a changed SSH host key replaces the trusted one (tests answer without a dialog).
        self.confirm_key: Callable[[str], bool] = self._confirm_key_dialog

        self.keyring_banner = QLabel("")
        self.keyring_banner.setWordWrap(True)
        self.keyring_banner.setStyleSheet("background:#fef3c7; color:#78350f; padding:8px; border-radius:4px")
        self.keyring_banner.hide()
        self.retrust = QPushButton("The server's key changed: compare its new fingerprint…")
        self.retrust.clicked.connect(self.review_host_key)
        self.retrust.hide()
        self.profiles = QComboBox()
        self.profiles.currentIndexChanged.connect(self._profile_chosen)
        add = QPushButton("Add a Pixel stack…")
        add.clicked.connect(self.open_wizard)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Stack:"))
        bar.addWidget(self.profiles)
        bar.addWidget(add)
        bar.addStretch(1)

        self.dashboard = DashboardPage(self.runner)
        self.stack = StackPage(self.runner)
        self.sites_page = SitesPage(self.runner)
        self.goals_page = GoalsPage(self.runner)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.addTab(self.stack, "Stack")
        self.tabs.addTab(self.sites_page, "Sites")
        self.tabs.addTab(self.goals_page, "Goals and funnels")
        self.journeys_page = JourneysPage(self.runner, open_funnel=self.open_funnel)
        self.tabs.addTab(self.journeys_page, "Journeys")
        self.dashboard_editor = DashboardEditor(self.runner)
        self.tabs.addTab(self.dashboard_editor, "Edit dashboards")
        self.alerts_page = AlertsPage(self.runner)  # traffic alerts, channels, digests
        self.tabs.addTab(self.alerts_page, "Alerts and digests")
        self.stack.backups.on_checked = self.alerts_page.backup_checked  # "backup failing" notifications
        self.owner = OwnerTabs(self, bar)  # People, SQL (admins), connect-to-existing, edit profile
        # How to open the current profile's stack (on a worker) and its description, until the page shows.
        self._open_stack: tuple[Callable[[], Provisioner], str] | None = None
        self.tabs.currentChanged.connect(self._tab_changed)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.keyring_banner)
        layout.addWidget(self.retrust)
        layout.addLayout(bar)
        layout.addWidget(self.tabs)
        self.setCentralWidget(central)
        self.resize(1400, 1000)

        self.runner.submit(lambda _t: secret_store.check(), on_error=self._keyring_problem)
        self.reload_profiles()

    def _keyring_problem(self, exc: BaseException) -> None:
        self.keyring_banner.setText(str(exc))
        self.keyring_banner.show()

    def _connect_failed(self, exc: BaseException) -> None:
        self._keyring_problem(exc)
        self.retrust.setVisible(getattr(exc, "code", "") == "host-key-changed")

    # ------------------------------------------------------------------ a changed SSH host key
    def review_host_key(self) -> None:
        """Fetch the server's new host key (worker), show both fingerprints, and replace the trusted
        key only if the user confirms (after checking with the server's administrator)."""
        profile = self.profile
        if profile is None or not profile.host_key:
            return

        def fetch(_task: Task) -> tuple[HostKey, HostKey]:
            from pixel.app.stack.engine import fetch_host_key, parse_host_key

            return parse_host_key(profile.host_key), fetch_host_key(profile.engine)

        def fetched(keys: tuple[HostKey, HostKey]) -> None:
            old, new = keys
            text = (
                f"The server {new.host} now presents the host key\n{new.fingerprint}\n\nThe key you trusted "
                f"was\n{old.fingerprint}\n\nAccept the new key only if the server's administrator confirms "
                "this new fingerprint (for example after reinstalling the server). Otherwise someone may be "
                "intercepting the connection."
            )
            if self.store.get(profile.name) is None or not self.confirm_key(text):
                return
            profile.host_key = new.known_hosts_line
            self.store.save(profile)
            self.retrust.hide()
            self.keyring_banner.hide()
            self._profile_chosen()  # connect again, with the new key

        self.runner.submit(fetch, on_done=fetched, on_error=self._keyring_problem)

    def _confirm_key_dialog(self, text: str) -> bool:
        answer = QMessageBox.warning(
            self,
            "Trust the new host key?",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def reload_profiles(self, select: str | None = None) -> None:
        profiles = self.store.all()
        current_profile = self.store.current()
        current = select or (current_profile.name if current_profile else None)
        self.profiles.blockSignals(True)
        self.profiles.clear()
        for p in profiles:
            self.profiles.addItem(p.name)
        self.profiles.blockSignals(False)
        if profiles:
            names = [p.name for p in profiles]
            self.profiles.setCurrentIndex(names.index(current) if current in names else 0)
            self._profile_chosen()

    def _profile_chosen(self) -> None:
        name = self.profiles.currentText()
        profile = self.store.get(name) if name else None
        if profile is None:
            return
        self.profile = profile
        self.owner.profile_chosen(profile)
        self.store.set_current(name)
        # Draw from the cache at once; connect (keyring + HTTP) on a worker, then refresh.
        source = ReportSource(None, self.cache, profile.name)
        self.dashboard.set_source(source)
        self.journeys_page.set_source(source)
        if profile.api_url:

            def connected(connection: ApiConnection) -> None:
                if source is self.dashboard.source:
                    self._set_tunnel(connection.tunnel)
                    source.client = connection.client
                    self.sites_page.set_admin(SiteAdmin(connection.client))
                    self.goals_page.set_admin(SiteAdmin(connection.client))
                    self.dashboard_editor.set_admin(DashboardsAdmin(connection.client))
                    self.alerts_page.set_client(connection.client)
                    self.owner.connected(profile, connection.client)
                    self.stack.public.set_api(lambda: _api_client(profile, connection.base_url))
                    self.dashboard.load_sites(prefer=profile.site_id)
                    self.journeys_page.load_sites()
                else:  # another profile was chosen meanwhile
                    self.runner.submit(lambda _t: connection.close())

            self.retrust.hide()
            # keyring, then (remote stack) a tunnel through SSH or the TLS engine: on a worker
            self.runner.submit(lambda _t: open_api(profile), on_done=connected, on_error=self._connect_failed)

        def provisioner(project: str = profile.project) -> Provisioner:
            from pixel.app.stack.engine import connect
            from pixel.app.stack.manage import open_stack

            target = engine_target(profile)
            return open_stack(connect(target), project, target=target)

        self.stack.backups.set_profile(self.store, profile, provisioner if profile.has_engine else None)
        self.stack.profile_name = self.stack.public.profile_name = profile.name  # its MaxMind key (keyring)
        where = "the local Docker engine" if profile.engine in ("", "local") else profile.engine
        self._open_stack = (provisioner, f"{profile.name}: stack {profile.project!r} on {where}")
        self.stack.provisioner = None
        if self.tabs.currentWidget() is self.stack:
            self._tab_changed()

    def open_funnel(self, site_id: int, steps: list[dict[str, Any]]) -> None:
        """The funnel editor (Goals and funnels) with `steps` on the site, shown (from a journey's path)."""
        self.goals_page.open_funnel(site_id, steps)
        self.tabs.setCurrentWidget(self.goals_page)

    def _set_tunnel(self, tunnel: PortForward | None) -> None:
        """Keep one SSH tunnel (the current remote profile's); close the one it replaces."""
        previous, self._tunnel = self._tunnel, tunnel
        if previous is not None and previous is not tunnel:
            self.runner.submit(lambda _t: previous.stop())

    def _tab_changed(self) -> None:
        """The stack is contacted when its page is shown (docker-py stays out of the cold start)."""
        if self.tabs.currentWidget() is self.stack and self._open_stack is not None:
            connect, description = self._open_stack
            self._open_stack = None
            self.stack.open(connect, description)

    def open_wizard(self) -> None:
        from pixel.app.desktop.wizard import SetupWizard

        self.wizard = SetupWizard(self.runner, self.store)
        self.wizard.finished.connect(
            lambda _r: self.reload_profiles(
                self.wizard.profile.name if self.wizard and self.wizard.profile else None
            )
        )
        self.wizard.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stack.stop()
        self.dashboard.realtime_timer.stop()
        self.runner.shutdown(10_000)
        if self._tunnel is not None:
            self._tunnel.stop()
            self._tunnel = None
        if self.stack.provisioner is not None:  # its engine connection (over SSH: a session on the server)
            self.stack.provisioner.client.close()
        super().closeEvent(event)
