"""Login and logout.

The login form has no session yet, so its CSRF token is a double-submit cookie: GET /login
sets a random ``login_csrf`` cookie and puts the same value in the form; POST /login
refuses a form whose value differs (a page elsewhere cannot read our cookie to copy it).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from simgate.console.context import PREFIX, Console
from simgate.console.security import COOKIE, Refused, is_tls, read_form
from simgate.services.console_auth import SESSION_SECONDS

LOGIN_COOKIE = "simgate_console_login"


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/login")
    async def login_page(request: Request) -> Response:
        return _login_form(console, request, status=200, error="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        sent = form.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Refused(403, "the login form is stale: reload the page")
        username, password = form.get("username", ""), form.get("password", "")
        where = console.address(request)
        if console.limiter.blocked(username, where):
            return _login_form(
                console, request, status=429, error="Too many failed logins: try again later."
            )
        user = await console.services.console_auth.authenticate(username, password)
        if user is None:
            console.limiter.fail(username, where)
            return _login_form(console, request, status=401, error="Wrong username or password.")
        token, _ = await console.services.console_auth.open_session(user)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=is_tls(request),
        )
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await console.acting(request)
        await console.services.console_auth.close_session(request.cookies.get(COOKIE, ""))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response


def _login_form(console: Console, request: Request, *, status: int, error: str) -> Response:
    token = secrets.token_urlsafe(24)
    response = console.render(
        request, None, "login.html", status=status, login_csrf=token, error=error
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_tls(request),
    )
    return response
