"""The ASGI application: health, metrics and the dialect routers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from simgate.api import exact_paths, http, not_found
from simgate.api.dialect import Dialect
from simgate.errors import FlushFailed, ServiceError, StorageFull
from simgate.services.container import Services

log = logging.getLogger(__name__)

# FastAPI's own OpenTelemetry: with it on (its default) every request asks the global
# providers whether one is configured, which reads environment variables each time (~7 % of
# the server's CPU on a one-number send, issue 15). simgate exports Prometheus /metrics.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class SimgateApp(FastAPI):
    """FastAPI with a direct lane to the endpoints that answer every outcome themselves.

    A request passes Starlette's and FastAPI's layers before its route: the server-error
    layer (which wraps ``send`` to see the answer start), FastAPI's telemetry check, the
    exception layer (another wrapper), FastAPI's exit stack, the router, the exact-path
    index and the route's own handling: ~7 % of the server's CPU on a one-number OpenVox
    send (issue 15), for outcomes an endpoint like the OpenVox envelope never leaves to
    them. A request for an exact path served by such an endpoint (api/http.py
    ``SelfAnswering``, found by api/exact_paths.py ``direct``: the route the router would
    pick, whatever the method) is handed to it here. The rare exception it lets out (a
    client gone mid-body, or a bug) meets this application's own handlers, as in the
    layers: a handler of its class answers it; any other is logged by the catch-all
    handler, answered by it when nothing was sent yet, and raised on to the server.

    The lane stands aside whenever the layers could act differently: middleware added to
    the application, a debug application, a root path, or another router entry point than
    the index (a test comparing with the router's walk).
    """

    exact: exact_paths.ExactPaths | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exact = self.exact
        if (
            exact is not None
            and scope["type"] == "http"
            and self.router.middleware_stack is exact
            and not self.user_middleware
            and not self.debug
            and not self.root_path
            and not scope.get("root_path")
        ):
            endpoint = exact.direct(scope["path"])
            if endpoint is not None:
                # What Starlette, the index and Route.matches would have put in the scope.
                scope["app"] = self
                scope.setdefault("router", self.router)
                scope["endpoint"] = endpoint
                scope["path_params"] = {}
                try:
                    await endpoint(scope, receive, send)
                except Exception as exc:
                    await self._escaped(exc, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _escaped(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """``exc`` as Starlette's exception layers would treat it (see the class docstring)."""
        request = Request(scope, receive)
        handlers = self.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                break
            handler = handlers.get(cls)
            if handler is not None:  # starlette.middleware.exceptions: its answer
                response = await _handle(handler, request, exc)
                await response(scope, receive, send)
                return
        handler = handlers.get(500) or handlers.get(Exception)
        if handler is not None:  # starlette.middleware.errors: logged, answered, raised on
            response = await _handle(handler, request, exc)
            # Once an answer has started the server refuses another one, sending nothing:
            # the connection is closed when ``exc`` reaches it, as after the layers.
            with contextlib.suppress(RuntimeError):
                await response(scope, receive, send)
        raise exc


async def _handle(handler: Any, request: Request, exc: Exception) -> Response:
    if is_async_callable(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response


def create_app(
    services: Services,
    dialects: Sequence[Dialect[Any]],
    dialect_settings: Mapping[str, BaseModel],
) -> FastAPI:
    """The application with the routes of ``dialects``, each with its validated settings."""
    app = SimgateApp(
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
        except (StorageFull, FlushFailed) as exc:  # say what is wrong; others might carry secrets
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
    app.exact = exact_paths.install(app.router)  # after every route: see api/exact_paths.py
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
