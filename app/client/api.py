"""A small synchronous client for the Pixel API (`/api/...`): login with a password, access tokens
refreshed with the rotating refresh token, typed errors. Blocking by design: the GUI calls it from
worker threads only."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from pixel.app.errors import AppError


class ApiRequestError(AppError):
    """The API answered with an error (bad input, not found...): the host is up, the request is wrong. (The
    server's own `pixel.server.api.errors.ApiError` is what such an answer is made from.)"""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({status} {code})")
        self.status = status
        self.code = code
        self.detail = detail


class AuthError(ApiRequestError):
    """Wrong username or password, or the account is disabled."""


class Unreachable(AppError):
    """The host did not answer (down, no network, timeout, or a proxy saying the API is unavailable)."""

    retryable = True


# Answers that mean "the API is not there right now", not "your request is wrong".
_UNAVAILABLE = {502, 503, 504}

# The most items a list answer gives per page (the API's `limit` bound, server/api/pagination.py).
PAGE_LIMIT = 1000
# Pages read at most by `ApiClient.every` (a list that keeps growing while it is read cannot loop forever).
MAX_PAGES = 1000


class ApiClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "pixel-desktop"},
        )
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        # A password the API refused is not sent again: every retry would count as a failed login, and a few
        # of them lock the account out (the API's login limiter) for everyone on this address.
        self._refused: AuthError | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access}"} if auth and self._access else {}
        try:
            response = self._http.request(method, path, params=params, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(f"{self.base_url} did not answer: {exc}") from exc
        if response.status_code in _UNAVAILABLE:
            raise Unreachable(f"{self.base_url} answered {response.status_code}")
        return response

    @staticmethod
    def _error(response: httpx.Response) -> ApiRequestError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and "error" in body:
            code, detail = str(body["error"]), str(body.get("detail", ""))
        else:
            code, detail = "error", response.text[:500]
        cls = AuthError if response.status_code in (401, 403) else ApiRequestError
        return cls(response.status_code, code, detail)

    # ---------------------------------------------------------------- auth
    def login(self) -> dict[str, Any]:
        if self._refused is not None:
            raise self._refused
        response = self._send(
            "POST",
            "/api/auth/login",
            body={"username": self.username, "password": self._password},
            auth=False,
        )
        if response.status_code != 200:
            error = self._error(response)
            if response.status_code == 401 and isinstance(error, AuthError):
                self._refused = error
            raise error
        data = response.json()
        self._access, self._refresh = data["access_token"], data["refresh_token"]
        return data

    def _renew(self) -> None:
        """A fresh access token: the refresh token if we hold one, else the password."""
        if self._refresh:
            response = self._send(
                "POST", "/api/auth/refresh", body={"refresh_token": self._refresh}, auth=False
            )
            if response.status_code == 200:
                data = response.json()
                self._access, self._refresh = data["access_token"], data["refresh_token"]
                return
        self.login()

    def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> Any:
        with self._lock:
            if self._access is None:
                self.login()
            response = self._send(method, path, params=params, body=body)
            if response.status_code == 401:
                self._access = None
                self._renew()
                response = self._send(method, path, params=params, body=body)
        if response.status_code >= 400:
            raise self._error(response)
        return response.json() if response.content else None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def every(
        self, path: str, params: dict[str, Any] | None = None, *, page_size: int = PAGE_LIMIT
    ) -> list[Any]:
        """Every item of a paged list (`items`, `total`, `page`, `limit`), page after page in the list's own
        order (`params` may set `sort`, `order` and filters; not `page` or `limit`). An owner's lists have no
        other bound than the API's page size: a desktop reading one page would miss the rest."""
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self.get(path, {**(params or {}), "limit": page_size, "page": page})
            items += answer["items"]
            if len(items) >= answer["total"] or len(answer["items"]) < page_size:
                break
        return items

    # ---------------------------------------------------------------- conveniences
    def health(self) -> dict[str, Any]:
        response = self._send("GET", "/api/health", auth=False)
        if response.status_code != 200:
            raise self._error(response)
        return response.json()

    def sites(self) -> list[dict[str, Any]]:
        return self.every("/api/sites")

    def create_site(self, domain: str, timezone: str = "UTC", name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"domain": domain, "timezone": timezone}
        if name:
            body["name"] = name
        return dict(self.request("POST", "/api/sites", body=body))

    def report(self, site_id: int, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.get(f"/api/sites/{site_id}/reports/{name}", report_params(params or {})))

    def geoip(self) -> dict[str, Any]:
        """The GeoIP database in place (date, source, attribution) and its refresher's last check and error."""
        return dict(self.get("/api/geoip"))

    def proxy_recipes(
        self, site_id: int, collector_url: str | None = None, prefix: str = "/stats"
    ) -> dict[str, Any]:
        """The snippet and the first-party proxy recipes (nginx, Caddy, ...) for serving Pixel under the site's
        own domain; `collector_url`: where the proxy reaches the collector (default: the server's own)."""
        params: dict[str, Any] = {"prefix": prefix}
        if collector_url:
            params["collector_url"] = collector_url
        return dict(self.get(f"/api/sites/{site_id}/proxy-recipes", params))

    def check_installation(self, site_id: int, page_url: str) -> dict[str, Any]:
        """The server fetches `page_url`, finds the snippet, loads the script: findings in plain words."""
        return dict(
            self.request("POST", f"/api/sites/{site_id}/check-installation", body={"page_url": page_url})
        )


def report_params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters as the API wants them: filters as a JSON list, booleans as true/false."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or (key == "filters" and not value):
            continue
        if key in ("filters", "steps") and not isinstance(value, str):
            value = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out
