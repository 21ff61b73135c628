"""Mounting the OpenVox dialect: the envelope, authentication and the error table.

Every answer is HTTP 200 with ``{uri, code, msg, data}`` (§7); a bug becomes code 500 with a
generic ``msg`` and a logged traceback, never an HTTP 500 or a traceback on the wire. Routes
are plain Starlette routes (no FastAPI body models: the dialect parses its own JSON so every
malformed body gets a 400 in its own format). ``/smsoutbox/*`` and ``/smsinbox/*`` paths
that do not exist answer 404 in the envelope; ``/sms/*`` is shared with the itniotech
dialect, so unknown paths there are left to the application's default 404.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from simgate.api.dialects.openvox.auth import Authenticator, Caller
from simgate.api.dialects.openvox.endpoints import Handlers
from simgate.api.dialects.openvox.envelope import (
    INTERNAL,
    NOT_FOUND,
    BadRequest,
    Fields,
    code_for,
    message_for,
    parse_fields,
    read_body,
    respond,
)
from simgate.api.dialects.openvox.settings import OpenVoxSettings
from simgate.api.http import client_ip
from simgate.services.container import Services

log = logging.getLogger(__name__)

Handler = Callable[[Caller, Fields], Awaitable[list[Any]]]
Endpoint = Callable[[Request], Awaitable[Response]]


def mount(app: FastAPI, services: Services, cfg: OpenVoxSettings) -> None:
    handlers = Handlers(services, cfg)
    auth = Authenticator(
        services,
        ttl_seconds=cfg.auth_cache_seconds,
        max_entries=cfg.auth_cache_entries,
        max_failures=cfg.login_failures,
        window_seconds=cfg.login_window_seconds,
    )
    limit = services.settings.http.max_body_bytes
    trusted = services.settings.http.trusted_proxies

    def endpoint(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            uri = request.url.path
            try:
                if request.method != "POST":
                    raise BadRequest("use POST with a JSON body (spec: restful api as POST)")
                fields = parse_fields(await read_body(request, limit))
                caller = await auth.check(
                    fields.string("username", max_len=64),
                    fields.string("password", max_len=256),
                    # Behind a proxy every client would share the proxy's address (and its
                    # lockout): the forwarded address counts when the proxy is trusted.
                    client_ip(request, trusted),
                )
                data = await handler(caller, fields)
            except Exception as exc:
                code = code_for(exc)
                if code is None:
                    log.exception("openvox: unexpected error on %s", uri)
                    return respond(uri, INTERNAL, "internal error", [])
                return respond(uri, code, message_for(exc), [])
            return respond(uri, cfg.success_code, "success", data)

        return run

    async def unknown(request: Request) -> Response:
        return respond(request.url.path, NOT_FOUND, f"unknown uri {request.url.path}", [])

    routes: dict[str, Handler] = {
        "/sms/get_valid_spans": handlers.get_valid_spans,
        "/sms/send": handlers.send,
        "/smsoutbox/get": handlers.outbox_get,
        "/smsoutbox/get_config": handlers.get_config,
        "/smsoutbox/set_config": handlers.set_config,
        "/smsinbox/get": handlers.inbox_get,
    }
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    for path, handler in routes.items():
        app.add_route(path, endpoint(handler), methods=methods, include_in_schema=False)
    for prefix in ("/smsoutbox", "/smsinbox"):
        app.add_route(prefix + "/{rest:path}", unknown, methods=methods, include_in_schema=False)
