"""What the kubelet and Prometheus ask: liveness, readiness and metrics (no key, not API traffic)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from ..metrics import CONTENT_TYPE
from ..wiring import Runtime


def probe_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        # Ready means the state store answers: a pod that cannot keep sessions must not get traffic.
        store_ok = True if runtime.memory is None else await runtime.memory.ping()
        checks = {"config": "ok", "stateStore": "ok" if store_ok else "unreachable"}
        return JSONResponse(
            {"status": "ready" if store_ok else "not ready", "checks": checks}, status_code=200 if store_ok else 503
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)

    return router
