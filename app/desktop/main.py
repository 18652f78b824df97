"""`pixel-desktop`: start the app (the first-run wizard when no stack is set up yet)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

START = time.perf_counter()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pixel-desktop", description="Pixel analytics on your desktop")
    parser.add_argument("--profile", help="open this stack profile")
    parser.add_argument(
        "--first-chart-exit",
        action="store_true",
        help="print the seconds from start to the first drawn chart, then quit (benchmark)",
    )
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from pixel.app.desktop.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Pixel")
    window = MainWindow()
    if args.first_chart_exit:

        def check() -> None:
            if window.dashboard.chart.labels:
                print(
                    f"first chart after {time.perf_counter() - START:.3f} s "
                    f"({len(window.dashboard.chart.labels)} points, {window.dashboard.status.text()})",
                    flush=True,
                )
                window.close()
                app.quit()

        timer = QTimer()
        timer.timeout.connect(check)
        timer.start(5)
        QTimer.singleShot(20_000, app.quit)
    if args.profile:
        window.reload_profiles(args.profile)
    window.show()
    if not window.store.all() and not args.first_chart_exit:
        window.open_wizard()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
