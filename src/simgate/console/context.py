"""What every console page handler gets: the services, the templates, the login limiter,
and the session, form and rendering helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from simgate.api.auth import LoginLimiter
from simgate.api.http import client_ip
from simgate.console import views
from simgate.console.security import COOKIE, Refused, check_csrf, read_form
from simgate.services.console_auth import ConsoleSession
from simgate.services.container import Services

PREFIX = "/console"


@dataclass
class Console:
    services: Services
    env: Environment
    limiter: LoginLimiter
    trusted_proxies: tuple[str, ...] = field(default=())

    def address(self, request: Request) -> str:
        return client_ip(request, self.trusted_proxies)

    async def session(self, request: Request) -> ConsoleSession:
        """The request's session; without one a page redirects to the login, an htmx
        fragment or a form post gets 401."""
        token = request.cookies.get(COOKIE, "")
        found = await self.services.console_auth.session(token) if token else None
        if found is None:
            if request.method == "GET" and "hx-request" not in request.headers:
                raise Refused(303, "log in first", location=f"{PREFIX}/login")
            raise Refused(401, "log in first")
        return found

    async def acting(self, request: Request) -> tuple[ConsoleSession, dict[str, str]]:
        """A POST's session and form, the CSRF token checked."""
        session = await self.session(request)
        form = await read_form(request)
        check_csrf(request, session, form)
        return session, form

    def render(
        self,
        request: Request,
        session: ConsoleSession | None,
        template: str,
        *,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        tz = session.user.timezone if session else "UTC"
        html = self.env.get_template(template).render(
            session=session,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            tz=tz,
            when=lambda ms: views.when(ms, tz),
            path=request.url.path,
            prefix=PREFIX,
            **values,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)


# The console's pages are never framed, never cached, and load nothing from elsewhere.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
