"""The router's ``default`` (no route matched): the 404 the exception handler would send,
sent directly.

Starlette's ``Router.not_found`` raises ``HTTPException(404)`` inside an application, so the
application's handler for it answers; with FastAPI's own handler (the one simgate keeps:
api/app.py registers none for HTTPException or 404) that is ``{"detail":"Not Found"}`` with
status 404. Raising it unwinds the middleware stack to ``ExceptionMiddleware`` (~15 % of a
404's CPU in issue 15's profile). :func:`default` sends that same answer when the handler
that would run is FastAPI's, and raises as before when the application has its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What FastAPI's http_exception_handler answers for HTTPException(404), rendered once.
_ANSWER = JSONResponse({"detail": HTTPException(404).detail}, status_code=404)
_START: Message = {
    "type": "http.response.start",
    "status": _ANSWER.status_code,
    "headers": _ANSWER.raw_headers,
}
_BODY: Message = {"type": "http.response.body", "body": bytes(_ANSWER.body)}
# Where ExceptionMiddleware puts its handlers for the code below it (starlette/middleware/
# exceptions.py, read by starlette/_exception_handler.py).
_HANDLERS_KEY = "starlette.exception_handlers"


def default(router: Router) -> ASGIApp:
    """The ``default`` for ``router``: FastAPI's 404 sent directly, else ``not_found``."""
    fallback = router.not_found

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_fastapis_404(scope.get(_HANDLERS_KEY)):
            # Fresh messages: a server may keep what it is given (the headers list is
            # the shared one, which nothing along the way changes).
            await send(dict(_START))
            await send(dict(_BODY))
            return
        await fallback(scope, receive, send)

    return answer


def _is_fastapis_404(handlers: Any) -> bool:
    """Whether ExceptionMiddleware would answer HTTPException(404) with FastAPI's handler:
    a handler for the status wins, then the first class of the exception's MRO with one
    (starlette/_exception_handler.py ``_lookup_exception_handler``)."""
    if not isinstance(handlers, tuple) or len(handlers) != 2:
        return False
    by_class, by_status = handlers
    if not isinstance(by_class, Mapping) or not isinstance(by_status, Mapping):
        return False
    if 404 in by_status:
        return False
    for cls in HTTPException.__mro__:
        if cls in by_class:
            return by_class[cls] is http_exception_handler
    return False
