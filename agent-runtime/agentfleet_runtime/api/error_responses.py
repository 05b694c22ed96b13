"""Every failure a caller sees is a JSON body in the one OpenAI shape (errors.error_body)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from ..errors import ApiError, UpstreamError, error_body

log = logging.getLogger("agentfleet_runtime.api")


def json_error(status: int, message: str, type: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type, code, param), status_code=status)


def api_error_response(exc: ApiError) -> JSONResponse:
    return json_error(exc.status, exc.message, exc.type, exc.code, exc.param)


def log_upstream_failure(exc: UpstreamError) -> None:
    """The model failed the request: the log says why, as the caller is told (no key, no prompt)."""
    log.warning("model failed the request", extra={"code": exc.code, "status": exc.status, "reason": str(exc)})


def upstream_error_response(exc: UpstreamError) -> JSONResponse:
    log_upstream_failure(exc)
    return json_error(exc.status, str(exc), "upstream_error", exc.code)


def guarded(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Every failure becomes an error body in the one shape; nothing escapes as a bare 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ApiError as exc:
            return api_error_response(exc)
        except UpstreamError as exc:
            return upstream_error_response(exc)
        except Exception:
            log.exception("unhandled error")
            return json_error(500, "internal error", "server_error", "internal_error")

    return wrapper
