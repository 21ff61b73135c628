"""The one table from simgate's error tree to OpenVox codes (spec §7, "OpenVox family").

§7 allows 400 (bad request), 401 (bad credentials), 404 (unknown uri) and 500 (internal),
with ``msg`` saying what is wrong. The most specific class wins (the table is walked along
the exception's MRO). The exception's own text is the ``msg``: services word it for people.
"""

from __future__ import annotations

from simgate import errors as e

BAD_REQUEST = 400
UNAUTHORIZED = 401
NOT_FOUND = 404
INTERNAL = 500

CODES: dict[type[BaseException], int] = {
    e.AuthError: UNAUTHORIZED,
    e.AccessDenied: UNAUTHORIZED,
    e.AccountLocked: UNAUTHORIZED,
    e.InvalidInput: BAD_REQUEST,  # InvalidNumber, ContentEmpty, ContentTooLong, TooManyNumbers
    e.InsufficientBalance: BAD_REQUEST,
    e.NoPricing: BAD_REQUEST,
    e.NoRoute: BAD_REQUEST,
    e.NotFound: NOT_FOUND,
    e.StoreError: INTERNAL,
}


def code_for(exc: BaseException) -> int | None:
    """The OpenVox code for a known error, None for an unexpected one (a bug: log it)."""
    for cls in type(exc).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return None


def message_for(exc: BaseException) -> str:
    if isinstance(exc, e.StoreError):
        return "database unavailable, try again"  # no connection details to clients
    return str(exc) or type(exc).__name__
