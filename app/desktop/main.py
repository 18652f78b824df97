"""`pixel-desktop`: start the app (the first-run wizard when no stack is set up yet).

Flags for benchmarks, scripts and the bundle's clean-machine test (none changes what is stored):
- `--first-chart-exit [SECONDS]`: print the seconds from the start to the first drawn chart and quit with
  status 0; no chart within SECONDS (default 20): a line saying so on stderr and status 1.
- `--screenshot PATH`: with `--first-chart-exit`, save a PNG of the window once the first chart is drawn.
- `--password-stdin`: the password of the profile's account is the first line of standard input, kept in
  this process's memory for this run only (a session keyring: the system keyring is neither read nor
  written). For a computer without a keyring or a script; the profile is `--profile` or the current one.
- `--demo`: open the `pixel serve --demo` running on this computer (its data folder and API port from
  `--data-dir` or PIXEL_DATA_DIR, PIXEL_HOST, PIXEL_API_PORT, as `pixel serve` reads them): the profile
  `Demo` and its account are made or refreshed, the password through the system keyring only
  (`pixel.app.demo_profile`); a problem is one line on stderr and status 2. `--demo-wait SECONDS`: how long
  to wait for the demo's API to answer (default 60: `scripts/run` starts both at once).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

START = time.perf_counter()


def _session_keyring(profile: str, password: str) -> None:
    """Put `password` in a keyring that lives in this process only and make it the one in use."""
    import keyring
    import keyring.backend
    import keyring.errors

    from pixel.app import secret_store

    class SessionKeyring(keyring.backend.KeyringBackend):
        priority = 1

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self.items.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError(username)

    keyring.set_keyring(SessionKeyring())
    secret_store.set_secret(profile, "admin_password", password)


def _open_demo(data_dir: str | None, wait: float) -> str:
    """Make the `Demo` profile current (waits for the API); an error's text, or "" when it is ready."""
    from pixel.app.demo_profile import api_url, ensure_demo_profile, wait_for_api
    from pixel.app.errors import AppError
    from pixel.app.profiles import ProfileStore
    from pixel.server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(data_dir=data_dir)
        url = api_url(settings.host, settings.api_port)
        wait_for_api(url, wait)
        ensure_demo_profile(ProfileStore(), settings.meta_db_path, url)
    except (AppError, SettingsError) as exc:
        return str(exc)
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pixel-desktop", description="Pixel analytics on your desktop")
    parser.add_argument("--profile", help="open this stack profile")
    parser.add_argument(
        "--first-chart-exit",
        nargs="?",
        type=float,
        const=20.0,
        metavar="SECONDS",
        help="print the seconds from start to the first drawn chart, then quit (benchmark, smoke test)",
    )
    parser.add_argument(
        "--screenshot", metavar="PATH", help="with --first-chart-exit: save the window as PNG"
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the profile's password from standard input, for this run only (no keyring used)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the `pixel serve --demo` running on this computer (its password kept in the keyring)",
    )
    parser.add_argument("--data-dir", help="with --demo: the demo's data folder (default: PIXEL_DATA_DIR)")
    parser.add_argument(
        "--demo-wait", type=float, default=60.0, metavar="SECONDS", help="with --demo: wait for its API (60)"
    )
    args = parser.parse_args(argv)
    if args.screenshot and args.first_chart_exit is None:
        parser.error("--screenshot needs --first-chart-exit")
    if args.demo and (args.password_stdin or args.profile):
        parser.error("--demo makes its own profile: no --profile or --password-stdin with it")
    if args.data_dir and not args.demo:
        parser.error("--data-dir goes with --demo")
    if args.demo:
        demo_error = _open_demo(args.data_dir, args.demo_wait)
        if demo_error:
            print(f"pixel-desktop: {demo_error}", file=sys.stderr, flush=True)
            return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from pixel.app.desktop.gcguard import collect_on_the_gui_thread
    from pixel.app.desktop.none_refs import pin_none
    from pixel.app.desktop.window import MainWindow
    from pixel.app.profiles import ProfileStore

    if args.password_stdin:
        current = ProfileStore().current()
        name = args.profile or (current.name if current else "")
        if not name:
            parser.error("--password-stdin needs a profile: --profile NAME")
        _session_keyring(name, sys.stdin.readline().rstrip("\r\n"))

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Pixel")
    pin_none()  # PySide6's void calls lose references to None (none_refs.py)
    collector = collect_on_the_gui_thread()  # kept until exec() returns
    window = MainWindow()
    drawn: list[float] = []
    if args.first_chart_exit is not None:

        def check() -> None:
            if window.dashboard.chart.labels and not drawn:
                drawn.append(time.perf_counter() - START)
                print(
                    f"first chart after {drawn[0]:.3f} s "
                    f"({len(window.dashboard.chart.labels)} points, {window.dashboard.status.text()})",
                    flush=True,
                )
                if args.screenshot:
                    window.grab().save(args.screenshot)
                window.close()
                app.quit()

        def give_up() -> None:
            if not drawn:
                print(f"no chart within {args.first_chart_exit:g} s", file=sys.stderr, flush=True)
                window.close()
                app.quit()

        timer = QTimer()
        timer.timeout.connect(check)
        timer.start(5)
        QTimer.singleShot(int(args.first_chart_exit * 1000), give_up)
    if args.profile or args.demo:
        window.reload_profiles(args.profile or "Demo")
    window.show()
    if not window.store.all() and args.first_chart_exit is None:
        window.open_wizard()
    status = int(app.exec())
    collector.timer.stop()
    if args.first_chart_exit is not None:
        return 0 if drawn else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
