"""An admin's access token for a running `pixel serve` / `pixel ship` (the store's /health details need one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import httpx


def admin_token(process: object, role: str = "admin") -> str:
    """Create an account with `pixel user add` in the process's data folder and log it in."""
    data_dir, api = process.data_dir, process.api  # type: ignore[attr-defined]
    name = f"ops{uuid.uuid4().hex[:8]}"
    added = subprocess.run(
        [sys.executable, "-m", "pixel.server.cli", "user", "add", name, "--role", role],
        capture_output=True,
        text=True,
        env={**os.environ, "PIXEL_DATA_DIR": str(data_dir)},
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    password = re.search(r"password: (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    r = httpx.post(f"{api}/api/auth/login", json={"username": name, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def health(process: object, token: str = "") -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{process.api}/health", headers=headers, timeout=5).json()  # type: ignore[attr-defined]
