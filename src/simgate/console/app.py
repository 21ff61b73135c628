"""Mounts the console on the API's application: templates, static files, routes, errors.

Every console route runs inside :class:`ConsoleRoute`, which turns a refusal (no session,
bad CSRF token, a viewer acting, another account's id) and a service's refusal (NotFound,
InvalidInput...) into a page with the right status: never a 500 for bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from simgate.api.auth import LoginLimiter
from simgate.console import (
    pages_accounts,
    pages_auth,
    pages_lines,
    pages_messages,
    pages_overview,
    pages_pushes,
    views,
)
from simgate.console.context import PREFIX, Console
from simgate.console.security import (
    COOKIE,
    LOGIN_PER_ADDRESS,
    LOGIN_PER_USER,
    LOGIN_WINDOW_S,
    Refused,
)
from simgate.errors import InvalidInput, NotFound, ServiceError
from simgate.services.container import Services

HERE = Path(__file__).resolve().parent


_STATUS_OF: dict[type[ServiceError], int] = {NotFound: 404, InvalidInput: 400}


def _route_class(console: Console) -> type[APIRoute]:
    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await inner(request)
                except Refused as exc:
                    if exc.location is not None:
                        return RedirectResponse(exc.location, status_code=exc.status)
                    return await _error_page(console, request, exc.status, exc.reason)
                except ServiceError as exc:
                    status = next((s for t, s in _STATUS_OF.items() if isinstance(exc, t)), 409)
                    return await _error_page(console, request, status, str(exc))

            return handler

    return ConsoleRoute


async def _error_page(console: Console, request: Request, status: int, reason: str) -> Response:
    token = request.cookies.get(COOKIE, "")
    session = await console.services.console_auth.session(token) if token else None
    return console.render(request, session, "error.html", status=status, reason=reason)


def mount_console(app: FastAPI, services: Services) -> None:
    """Serve the console under /console on ``app``."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(views.FILTERS)
    console = Console(
        services=services,
        env=env,
        limiter=LoginLimiter(
            services.clock,
            per_user=LOGIN_PER_USER,
            per_address=LOGIN_PER_ADDRESS,
            window_s=LOGIN_WINDOW_S,
        ),
        trusted_proxies=tuple(services.settings.http.trusted_proxies),
    )
    router = APIRouter(prefix=PREFIX, route_class=_route_class(console), include_in_schema=False)
    for module in (
        pages_auth,
        pages_overview,
        pages_lines,
        pages_messages,
        pages_pushes,
        pages_accounts,
    ):
        module.add_routes(router, console)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
