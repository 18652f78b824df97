"""The SQL console's hard bound, measured: a console query ClickHouse cannot interrupt, and a viewer's
summary sent 0.2 s after it, on the embedded store with the API tests' data set and a 0.5 s console
limit (hard bound 0.75 s), after a warm-up. Prints, per run: the console's answer and when it came, the summary's
status and time, and when the stopped call really ended.

Run from the checkout: `PYTHONPATH=. .venv/bin/python bench/sql_console_bound.py [runs]`.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from pixel.server.api import create_app
from pixel.server.api.app import open_meta
from pixel.server.api.security import hash_password
from pixel.server.settings import Settings
from pixel.server.store.chdb_engine import ChdbStore
from tests.api import dataset

QUERIES = {
    "sleep(3)": "SELECT sleep(3)",
    "arrayReduce 30M": "SELECT arrayReduce('uniqExact', arrayMap(x -> cityHash64(x), range(30000000)))",
}
PASSWORD = "bench-password-123"


def main(runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pixel-sql-bound-"))
    store = ChdbStore(folder / "store")
    store.migrate()
    store.insert_rows("events", dataset.generate())
    store.insert_rows("events", dataset.noise())
    settings = Settings(data_dir=folder)
    meta = open_meta(settings)
    meta.create_user("admin", hash_password(PASSWORD), "admin")
    site = meta.insert(
        "sites", {"domain": dataset.SITE, "name": "Shop", "timezone": dataset.TZ, "created_at": 0.0}
    )
    with TestClient(create_app(settings, store, sql_seconds=0.5)) as client:
        login = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        # warm-up, not measured: the function catalog (read once) and the report cache's first build
        client.post("/api/sql", json={"site_id": site, "query": "SELECT 1"}, headers=headers)
        client.get(f"/api/sites/{site}/reports/summary", params={"period": "7d"}, headers=headers)
        for name, query in QUERIES.items():
            for run in range(runs):
                answer: dict[str, Any] = {}

                def console(query: str = query, answer: dict[str, Any] = answer) -> None:
                    started = time.monotonic()
                    r = client.post("/api/sql", json={"site_id": site, "query": query}, headers=headers)
                    answer.update(status=r.status_code, seconds=time.monotonic() - started)

                thread = threading.Thread(target=console)
                began = time.monotonic()
                thread.start()
                time.sleep(0.2)
                started = time.monotonic()
                report = client.get(
                    f"/api/sites/{site}/reports/summary",
                    params={
                        "period": "custom",
                        "from": "2024-03-04",
                        "to": "2024-03-10",
                        "filters": f'[["page", "is_not", "/bench-{name}-{run}"]]',
                    },
                    headers=headers,
                )
                report_ms = (time.monotonic() - started) * 1000
                thread.join()
                busy = store.__dict__["_console_busy"]
                while busy.locked():
                    time.sleep(0.01)
                print(
                    f"{name}: console {answer['status']} after {answer['seconds']:.2f} s; "
                    f"summary {report.status_code} in {report_ms:.0f} ms; "
                    f"the call ended {time.monotonic() - began:.2f} s after it started"
                )
    store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
