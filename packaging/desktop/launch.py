"""Entry script of the frozen app (PyInstaller runs this file): the same `main` as `pixel-desktop`."""

import sys

from pixel.app.desktop.main import main

if __name__ == "__main__":
    sys.exit(main())
