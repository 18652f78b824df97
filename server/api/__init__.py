"""The analytics API (FastAPI): accounts, sites, reports, dashboards and a guarded SQL console.

`create_app(settings, store)` builds it; `pixel serve` mounts it beside the shipper on one store,
and `pixel api` runs it alone against a ClickHouse server (see `pixel.server.api.cli`).
"""

from pixel.server.api.app import create_app

__all__ = ["create_app"]
