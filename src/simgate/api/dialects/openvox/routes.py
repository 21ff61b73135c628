"""Mounting the OpenVox dialect: the envelope, authentication and the error table.

Every answer is HTTP 200 with ``{uri, code, msg, data}`` (§7); a bug becomes code 500 with a
generic ``msg`` and a logged traceback, never an HTTP 500 or a traceback on the wire. Routes
are plain Starlette routes (no FastAPI body models: the dialect parses its own JSON so every
malformed body gets a 400 in its own format).

Other outcomes are in the envelope too (spec Amendments): a known uri accepts every HTTP
method (anything but POST is a 400 saying so, never a 405), and an unknown uri of the
dialect's namespaces is a 404 in the envelope. ``/smsoutbox`` and ``/smsinbox`` belong to
this dialect alone: catch-all routes answer there. ``/sms`` is shared with the itniotech
dialect (``/sms/sendSms``...), whose clients send their credentials in the ``Api-Key``,
``Timestamp`` and ``Sign`` headers on every call (§1.1) while OpenVox clients send theirs in
the JSON body (§3.2). So only a request no route matched reaches :func:`claim_unknown`,
which answers in the envelope unless the request carries itniotech's headers; an itniotech
path with a wrong method still matches that route and keeps its 405, and every other path
keeps the application's default 404.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from simgate.api import http
from simgate.api.auth import TtlCache
from simgate.api.dialects.openvox.auth import Authenticator, Caller
from simgate.api.dialects.openvox.endpoints import Handlers
from simgate.api.dialects.openvox.envelope import (
    INTERNAL,
    NOT_FOUND,
    BadRequest,
    Fields,
    Paged,
    code_for,
    message_for,
    parse_fields,
    read_body,
    respond,
)
from simgate.api.dialects.openvox.settings import OpenVoxSettings
from simgate.api.http import client_ip
from simgate.domain.accounts import Account
from simgate.errors import AccountLocked
from simgate.services.container import Services

log = logging.getLogger(__name__)

Handler = Callable[[Caller, Fields], Awaitable[list[Any] | Paged]]
Endpoint = Callable[[Request], Awaitable[Response]]

# Namespaces only this dialect serves, and the one it shares with itniotech (§1.1, §3.3).
OWN_PREFIXES = ("/smsoutbox", "/smsinbox")
SHARED_PREFIX = "/sms"
ITNIO_HEADERS = (b"api-key", b"timestamp", b"sign")
# The caller's account is read at most once a second per process (the login cache keeps a
# Caller for auth_cache_seconds): a lock takes effect within this, on every endpoint.
ACCOUNT_TTL_S = 1.0


def mount(app: FastAPI, services: Services, cfg: OpenVoxSettings) -> None:
    handlers = Handlers(services, cfg)
    auth = Authenticator(
        services,
        ttl_seconds=cfg.auth_cache_seconds,
        max_entries=cfg.auth_cache_entries,
        max_failures=cfg.login_failures,
        max_address_failures=cfg.login_failures_per_address,
        window_seconds=cfg.login_window_seconds,
    )
    limit = services.settings.http.max_body_bytes
    trusted = services.settings.http.trusted_proxies
    accounts: TtlCache[int, Account] = TtlCache(
        services.clock, ttl_s=ACCOUNT_TTL_S, epoch=services.accounts.epoch
    )

    async def current(caller: Caller) -> Caller:
        """The caller with its account as it is now; a locked account is refused on every
        endpoint, reads and push settings too (issue 14 item 8, like itniotech's -13)."""
        account_id = caller.account.id
        account = await accounts.get_or_load(
            account_id, lambda: services.accounts.get_account(account_id)
        )
        if account.locked:
            raise AccountLocked("account is locked")
        if account is caller.account:
            return caller
        # Built directly: dataclasses.replace looks up the fields on every call (issue 15).
        return Caller(caller.username, account, caller.operator)

    def endpoint(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            uri = http.request_path(request)
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
                data = await handler(await current(caller), fields)
            except http.ClientGone:
                raise  # nobody to answer; api/app.py logs it as one line
            except Exception as exc:
                code = code_for(exc)
                if code is None:
                    log.exception("openvox: unexpected error on %s", uri)
                    return respond(uri, INTERNAL, "internal error", [])
                return respond(uri, code, message_for(exc), [])
            return respond(uri, cfg.success_code, "success", data)

        return run

    async def unknown(request: Request) -> Response:
        path = http.request_path(request)
        return respond(path, NOT_FOUND, f"unknown uri {path}", [])

    routes: dict[str, Handler] = {
        "/sms/get_valid_spans": handlers.get_valid_spans,
        "/sms/send": handlers.send,
        "/smsoutbox/get": handlers.outbox_get,
        "/smsoutbox/get_config": handlers.get_config,
        "/smsoutbox/set_config": handlers.set_config,
        "/smsinbox/get": handlers.inbox_get,
    }
    for path, handler in routes.items():
        app.router.routes.append(Route(path, AnyMethod(endpoint(handler)), include_in_schema=False))
    for prefix in OWN_PREFIXES:
        for path in (prefix, prefix + "/{rest:path}"):
            app.router.routes.append(Route(path, AnyMethod(unknown), include_in_schema=False))
    claim_unknown(app, claims=is_openvox_unknown, answer=unknown)


class AnyMethod(http.SelfAnswering):
    """An endpoint as a plain ASGI app: Starlette then matches every HTTP method (for a
    function endpoint it would match GET alone, and answer other methods with a 405). Every
    outcome is an envelope it sends (``endpoint`` above), so the application may call it
    without its exception layers (api/http.py ``SelfAnswering``)."""

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def is_openvox_unknown(request: Request) -> bool:
    """Whether a request no route matched is this dialect's unknown uri (see above)."""
    path = http.request_path(request)
    if path != SHARED_PREFIX and not path.startswith(SHARED_PREFIX + "/"):
        return False
    # Request.headers' ``in``: the lowercased name against the scope's names as they are.
    return not any(name in ITNIO_HEADERS for name, _ in request.scope["headers"])


def claim_unknown(app: FastAPI, *, claims: Callable[[Request], bool], answer: Endpoint) -> None:
    """Answer with ``answer`` the requests no route matched that ``claims`` says are ours.

    The router calls its ``default`` app only when no route matched the path (a path matched
    with another method is that route's 405); the previous default still answers the rest.
    Every unmatched request passes here, a scanner's too: ``claims`` reads the scope, not a
    URL or a header map built for it (issue 15).
    """
    previous = app.router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            if claims(request):
                response = await answer(request)
                await response(scope, receive, send)
                return
        await previous(scope, receive, send)

    app.router.default = default
