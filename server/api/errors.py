"""One error shape for every API answer: `{"error": <code>, "detail": <human text>}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixel.server.api.meta import LimitReached
from pixel.server.errors import PixelError
from pixel.server.store import StoreError, StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(PixelError):
    """Raised anywhere in the API; becomes `{"error": code, "detail": detail}` with `status`."""

    def __init__(
        self, status: int, code: str, detail: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def bad_request(detail: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, detail)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def unauthorized(detail: str, code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, detail, {"WWW-Authenticate": "Bearer"})


def _body(code: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail}


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}

# ClickHouse error codes that mean "the user's input is wrong" (a bad regex in a filter, ...).
_USER_ERROR_CODES = ("Code: 427.", "Code: 36.")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.detail), exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(_body("invalid_request", "; ".join(problems)), 422)

    @app.exception_handler(LimitReached)
    async def _limit_reached(_: Request, exc: LimitReached) -> JSONResponse:
        return JSONResponse(_body("limit_reached", str(exc)), 409)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(_body("store_unavailable", str(exc)), 503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        message = str(exc)
        if message.startswith(_USER_ERROR_CODES):
            return JSONResponse(_body("query_failed", message.split("\n")[0]), 400)
        log.exception("api: store query failed")
        return JSONResponse(_body("store_error", "the store could not answer this query"), 500)
