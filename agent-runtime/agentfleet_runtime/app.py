"""The HTTP API of an agent pod (shared/API.md, "Runtime HTTP API"), put together.

The parts live in agentfleet_runtime.api (routes by concern, middleware, error responses, OpenAI
shapes) and agentfleet_runtime.wiring (the runtime built from its config); this module only
assembles them into one FastAPI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import __version__
from .api.chat_routes import chat_router
from .api.error_responses import json_error
from .api.middleware import ApiMiddleware
from .api.openapi_docs import openapi_document
from .api.probe_routes import probe_router
from .api.responses_routes import responses_router
from .api.session_routes import session_router
from .config import RuntimeConfig
from .wiring import Runtime, build_memory, build_runtime

__all__ = ["Runtime", "build_memory", "build_runtime", "create_app"]

log = logging.getLogger("agentfleet_runtime.api")

_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # Starlette's own 404/405 in the one error shape, so unknown routes look like every other error.
    return json_error(
        exc.status_code, str(exc.detail), "invalid_request_error", _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return json_error(400, "invalid request parameters", "invalid_request_error", "invalid_request")


def create_app(config: RuntimeConfig, *, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "runtime started",
            extra={
                "provider": config.model.provider,
                "tools": list(rt.agent.tools.tools),
                "state": config.state.store if config.state else "stateless",
                "protocol": "https" if rt.tls is not None else "http",
            },
        )
        # Serving HTTPS: a rotated certificate (new files in its Secret volume) is picked up here.
        watch = (
            asyncio.create_task(rt.tls.watch(config.server.tls.reload_interval_seconds), name="tls-certificate")
            if rt.tls is not None and config.server.tls is not None
            else None
        )
        try:
            yield
        finally:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            await rt.aclose()
            log.info("runtime stopped")

    app = FastAPI(
        title="agentfleet agent runtime", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.runtime = rt
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for router in (chat_router(rt), responses_router(rt), session_router(rt), probe_router(rt)):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        return openapi_document(app)

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(ApiMiddleware, runtime=rt)
    return app
