"""Mounting the Dinstar gateway API: auth, input, the error table and the envelope.

Each endpoint is ``handler(gateway, call) -> (error_code, fields)``; this module does the
rest once: 401 + challenges (spec §2.1), reading the JSON body or the query string, mapping
simgate's errors with the one table in ``envelope``, and never answering 500 (spec §7).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from simgate.api import http
from simgate.api.dialects.dinstar import device, sms
from simgate.api.dialects.dinstar import envelope as env
from simgate.api.dialects.dinstar.auth import Denied
from simgate.api.dialects.dinstar.context import Call, Gateway, Handler, build_gateway
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.errors import AccountLocked, InvalidInput, ServiceError
from simgate.services.container import Services

log = logging.getLogger(__name__)


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _params(request: Request, limit: int) -> Mapping[str, Any]:
    """The JSON object of a POST, else the query string (spec §2.1)."""
    try:
        body = await http.read_body(request, limit)
    except http.BadContentLength as exc:
        raise InvalidInput(str(exc)) from None
    if body.strip():
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidInput("body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object")
        return {**request.query_params, **data}
    return dict(request.query_params)


def route(g: Gateway, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    sn = g.cfg.sn
    edge = g.services.settings.http

    async def endpoint(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        uri = (raw + (b"?" + query if query else b"")).decode("latin-1")
        who = await g.auth.authenticate(
            method=request.method,
            uri=uri,
            header=request.headers.get("authorization"),
            ip=http.client_ip(request, edge.trusted_proxies),
        )
        if isinstance(who, Denied):
            return await _unauthorized(g, who)
        try:
            params = await _params(request, edge.max_body_bytes)
            account = await g.account(who.account_id)
            if account.locked:  # every call, reads too (issue 14 item 8; itniotech's -13)
                raise AccountLocked("account is locked")
            code, fields = await handler(g, Call(who, account, params))
        except http.BodyTooLarge:
            return _json(env.envelope(sn, env.TOO_LARGE, error_msg="request body too large"))
        except ServiceError as exc:
            return _json(env.envelope(sn, env.error_code(exc), error_msg=str(exc)))
        except Exception:  # the envelope's "500 other errors": logged, never an HTTP 500
            log.exception("dinstar %s failed", request.url.path)
            return _json(env.envelope(sn, env.OTHER, error_msg="internal error"))
        return _json(env.envelope(sn, code, **fields))

    return endpoint


async def _unauthorized(g: Gateway, denied: Denied) -> Response:
    resp = _json(env.envelope(g.cfg.sn, 401, error_msg="authentication required"), 401)
    for value in await g.auth.challenges(stale=denied.stale):
        resp.headers.append("WWW-Authenticate", value)
    return resp


def mount(app: FastAPI, services: Services, cfg: DinstarSettings) -> None:
    g = build_gateway(services, cfg)
    table: dict[str, Handler] = {
        "send_sms": sms.send_sms,
        "query_sms_result": sms.query_sms_result,
        "query_sms_deliver_status": sms.query_sms_deliver_status,
        "query_incoming_sms": sms.query_incoming_sms,
        "query_sms_in_queue": sms.query_sms_in_queue,
        # The moucester Python client calls this path (spec §2.6): real clients win (§7).
        "query_sms_queue": sms.query_sms_in_queue,
        "stop_sms": sms.stop_sms,
        "get_port_info": device.get_port_info,
        "set_port_info": device.set_port_info,
        "send_ussd": device.send_ussd,
        "query_ussd_reply": device.query_ussd_reply,
    }
    for name, handler in table.items():
        # Clients differ in GET vs POST for the same call (spec §2.5, §2.6): accept both.
        app.add_api_route(
            f"/api/{name}",
            route(g, handler),
            methods=["GET", "POST"],
            include_in_schema=False,
        )
