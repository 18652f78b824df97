"""The collector: one request logic (`core`) behind an ASGI (uvicorn, the default) and an RSGI (granian) binding."""

from pixel.server.collector.app import create_app, create_rsgi_app
from pixel.server.collector.core import Collector

__all__ = ["Collector", "create_app", "create_rsgi_app"]
