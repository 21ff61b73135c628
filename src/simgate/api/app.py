"""The ASGI application: health, metrics and the dialect routers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from simgate.api import exact_paths, http, not_found
from simgate.api.dialect import Dialect
from simgate.errors import ServiceError, StorageFull
from simgate.services.container import Services

log = logging.getLogger(__name__)

# FastAPI's own OpenTelemetry: with it on (its default) every request asks the global
# providers whether one is configured, which reads environment variables each time (~7 % of
# the server's CPU on a one-number send, issue 15). simgate exports Prometheus /metrics.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    services: Services,
    dialects: Sequence[Dialect[Any]],
    dialect_settings: Mapping[str, BaseModel],
) -> FastAPI:
    """The application with the routes of ``dialects``, each with its validated settings."""
    app = FastAPI(
        title="simgate",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        telemetry=NO_TELEMETRY,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        try:
            await services.health.ping()
        except StorageFull as exc:  # says what is wrong; other errors might carry secrets
            body = {"status": "error", "detail": type(exc).__name__, "message": str(exc)}
            return JSONResponse(body, status_code=503)
        except Exception as exc:  # a health check reports, it does not raise
            return JSONResponse({"status": "error", "detail": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    if services.settings.http.metrics_listen is None:  # else only on that address
        _add_metrics(app, services)

    @app.exception_handler(http.ClientGone)
    async def client_gone(request: Request, exc: Exception) -> Response:
        # Clients hang up; one line says so, without a traceback (issue 14 item 10).
        log.info("%s on %s %s", exc, request.method, request.url.path)
        return Response(status_code=400)  # sent nowhere: the connection is closed

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Dialects render their own errors; this is the last resort, logged with its cause.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500)

    # First: the dialects' claims on unmatched requests chain onto it (api/not_found.py).
    app.router.default = not_found.default(app.router)
    for dialect in dialects:
        dialect.install(app, services, dialect_settings[dialect.name])
    exact_paths.install(app.router)  # after every route: see api/exact_paths.py
    return app


def create_metrics_app(services: Services) -> FastAPI:
    """/metrics alone, for ``[http] metrics_listen`` (an address only operators reach)."""
    app = FastAPI(
        title="simgate metrics",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_TELEMETRY,
    )
    _add_metrics(app, services)
    # Anything else asked of this address (a scanner, a typo) takes create_app's cheap 404:
    # sent, not raised (api/not_found.py), without the router's walk (api/exact_paths.py).
    app.router.default = not_found.default(app.router)
    exact_paths.install(app.router)
    return app


async def metrics_text(services: Services) -> bytes:
    """What /metrics answers in the process that merges (the only one, but for the extra
    HTTP processes of ``--workers N``, which ask that one: cli/http_workers.py)."""
    await services.health.refresh_metrics()
    # Push gauges too, so a serve-only process reports the outbox like a worker does.
    await services.pushes.refresh_metrics()
    # With the other processes of this `simgate run` merged in (simgate/metrics.py).
    return await services.metrics.exposition()


def _add_metrics(app: FastAPI, services: Services) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        answered_by = services.metrics.answered_by
        if answered_by is None:
            return Response(await metrics_text(services), media_type=CONTENT_TYPE_LATEST)
        try:
            body = await answered_by()
        except ServiceError as exc:  # the first process is gone or too slow: no half answer
            return JSONResponse({"status": "error", "message": str(exc)}, status_code=503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
