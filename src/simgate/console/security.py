"""Who may see and do what in the console: session cookie, CSRF token, roles, account scope,
login throttling.

- The session cookie holds a random token (the database keeps its hash, services/
  console_auth.py); it is HttpOnly (no script reads it), SameSite=Strict (no other site's
  page sends it) and Secure when the console is reached over TLS.
- Every POST carries the session's CSRF token in a form field (or the ``X-CSRF-Token``
  header htmx sends), compared in constant time: SameSite alone does not cover old browsers
  or a sibling subdomain (OWASP CSRF Prevention Cheat Sheet, "Synchronizer Token Pattern").
- Failed logins count per (username, address) and per address with the dialects'
  :class:`LoginLimiter`; a locked pair or address gets 429 until its window passes.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from fastapi import Request

from simgate.services.console_auth import ConsoleSession

COOKIE = "simgate_console"
FORM_LIMIT = 64 * 1024  # the largest console form is a push URL or a rate: far below this
LOGIN_PER_USER = 5
LOGIN_PER_ADDRESS = 50
LOGIN_WINDOW_S = 900.0


class Refused(Exception):
    """A request the console answers without running it: ``status`` and why."""

    def __init__(self, status: int, reason: str, *, location: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.location = location


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as one value per field (the first)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > FORM_LIMIT):
        raise Refused(413, "the form is too large")
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise Refused(413, "the form is too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form could not be read") from None
    return {k: v[0] for k, v in fields.items()}


def check_csrf(request: Request, session: ConsoleSession, form: dict[str, str]) -> None:
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Refused(403, "the form's security token is missing or stale: reload the page")


def require_admin(session: ConsoleSession) -> None:
    if not session.user.can_act:
        raise Refused(403, "a viewer can read but not change anything")


def require_operator(session: ConsoleSession) -> None:
    """Pages of the whole gateway (pushes, lines): not for an account's user. 404, like a
    record of another account, so the scope tells nothing."""
    if session.user.account_id is not None:
        raise Refused(404, "no such page")


def scope(session: ConsoleSession) -> int | None:
    return session.user.account_id


def in_scope(session: ConsoleSession, account_id: int) -> None:
    if session.user.account_id is not None and session.user.account_id != account_id:
        raise Refused(404, "not found")


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"
