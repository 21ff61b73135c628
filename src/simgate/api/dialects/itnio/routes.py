"""Mounting the itniotech dialect: one authenticator and one replay guard for SMS and voice.

Errors raised before a handler runs (authentication) render as the envelope through the
application's exception handler; handlers envelope their own outcomes.

Requests are dispatched by plain Starlette routes (:func:`plain_routes`): FastAPI's route
layers (its included router's matching, dependency solving, query parsing, an exit stack)
cost ~16 % of the event loop's time on a one-number sendSms (issue 15, py-spy) and do
nothing for handlers that take the bare Request and return a Response. The FastAPI routers
are still included, behind the plain routes that shadow every one of their paths, so the
OpenAPI document stays what it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from simgate.api.dialects.itnio.auth import Authenticator
from simgate.api.dialects.itnio.envelope import ItnioError, error_response
from simgate.api.dialects.itnio.replay import ReplayGuard
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.api.dialects.itnio.sms import SmsApi
from simgate.api.dialects.itnio.voice import VoiceApi
from simgate.api.http import SelfAnswering
from simgate.services.container import Services

Endpoint = Callable[[Request], Awaitable[Response]]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ItnioError)
    return error_response(exc)


def mount(app: FastAPI, services: Services, cfg: ItnioSettings) -> None:
    app.add_exception_handler(ItnioError, _refused)
    auth = Authenticator(services, cfg)
    guard = ReplayGuard(services.itnio, clock=services.clock, cfg=cfg)
    for router in (
        SmsApi(services, cfg, auth, guard).router(),
        VoiceApi(services, cfg, auth, guard).router(),
    ):
        app.router.routes.extend(plain_routes(router))  # first: they answer (module docstring)
        app.include_router(router)  # for the OpenAPI document


def plain_routes(router: APIRouter) -> list[Route]:
    """A plain route for each route of ``router``: same path and endpoint, which answers
    its methods and refuses the others itself (:class:`_Endpoint`)."""
    out: list[Route] = []
    for api_route in router.routes:
        assert isinstance(api_route, APIRoute), api_route
        methods = api_route.methods
        assert methods, api_route.path  # every route of the dialect names its methods
        # Every method: the route matches fully whatever the method, so the application
        # may hand an exact path's requests to the endpoint straight (api/app.py).
        endpoint = _Endpoint(api_route.endpoint, methods)
        out.append(Route(api_route.path, endpoint, include_in_schema=False))
        # Starlette adds HEAD to a GET route, FastAPI does not: a HEAD stays a 405.
    return out


class _Endpoint(SelfAnswering):
    """An endpoint as an ASGI app of every method, so the route calls it without wrapping it
    per request, and the application's direct lane for exact paths may call it without
    Starlette's layers (api/http.py ``SelfAnswering``; issue 15, ~7 % of an OpenVox send's
    CPU). Its outcomes are its own answers: a refusal before the handler (authentication)
    is answered here as the application's ItnioError handler answers it, and a method the
    route does not serve is the 405 a Starlette route of ``methods`` gives (its
    HTTPException with the same Allow header, answered by the application's handler for
    it, as through the layers)."""

    __slots__ = ("_allow", "endpoint", "methods")

    def __init__(self, endpoint: Endpoint, methods: set[str]) -> None:
        self.endpoint = endpoint
        self.methods = set(methods)
        self._allow = ", ".join(self.methods)  # starlette.routing.Route.handle's header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self.methods:
            raise HTTPException(status_code=405, headers={"Allow": self._allow})
        try:
            response = await self.endpoint(Request(scope, receive))
        except ItnioError as exc:
            response = error_response(exc)
        await response(scope, receive, send)
