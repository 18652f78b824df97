"""Qt-free access to a Pixel API for the desktop app: an httpx client, a bounded SQLite cache of report
answers, and a source that serves the cache (marked "as of") when the host cannot be reached."""

from pixel.app.client.api import ApiClient, ApiRequestError, AuthError, Unreachable
from pixel.app.client.cache import ReportCache
from pixel.app.client.source import Fetched, NoData, ReportSource

__all__ = [
    "ApiClient",
    "ApiRequestError",
    "AuthError",
    "Fetched",
    "NoData",
    "ReportCache",
    "ReportSource",
    "Unreachable",
]
