"""The collector: a bare ASGI callable on the hot path (no web framework), one per worker process."""

from pixel.server.collector.app import Collector, create_app

__all__ = ["Collector", "create_app"]
