"""Fixtures of the Qt-free client's tests: the same real `pixel serve` (live_api), private XDG folders and real
Secret Service as the desktop tests, and the owner-task server of tests/desktop/owner_server.py."""

from tests.desktop.conftest import live_api, private_dirs, secret_service  # noqa: F401 (fixtures)
