"""The Dinstar envelope, its one error table, and typed readers for request fields.

Every API outcome is HTTP 200 with ``error_code`` in the body (spec §2.1, §7); only
authentication uses HTTP 401. Input arrives as a JSON object (POST) or as query parameters
(GET, arrays comma-separated: ``port=1,2,3``); the readers accept both spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simgate.errors import (
    AccessDenied,
    AccountLocked,
    ContentEmpty,
    ContentTooLong,
    InsufficientBalance,
    InvalidInput,
    NoPricing,
    NoRoute,
    NotFound,
    ServiceError,
    TooManyNumbers,
)

OK = 200
ACCEPTED = 202
BAD_REQUEST = 400
NOT_FOUND = 404
TOO_LARGE = 413
OTHER = 500
NO_PORT = 550

# The one table (errors.py → error_code). Most specific class first; the rest is "500 other".
ERROR_CODES: tuple[tuple[type[ServiceError], int], ...] = (
    (TooManyNumbers, TOO_LARGE),
    (ContentTooLong, TOO_LARGE),
    (ContentEmpty, BAD_REQUEST),
    (InvalidInput, BAD_REQUEST),
    (NoRoute, NO_PORT),
    (NotFound, NOT_FOUND),
    (AccountLocked, OTHER),
    (AccessDenied, OTHER),
    (InsufficientBalance, OTHER),
    (NoPricing, OTHER),
)


def error_code(exc: ServiceError) -> int:
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return OTHER


def envelope(sn: str, code: int, **fields: Any) -> dict[str, Any]:
    return {"error_code": code, "sn": sn, **fields}


# ---- readers (raise InvalidInput → 400; TooManyNumbers → 413) ---------------------------
Params = Mapping[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_int(p: Params, name: str, *, lo: int, hi: int, default: int | None = None) -> int | None:
    v = p.get(name)
    if v is None or v == "":
        return default
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v) < 20:
        v = int(v)
    if not _is_int(v) or not lo <= v <= hi:
        raise InvalidInput(f"{name} must be an integer {lo}..{hi}")
    return int(v)


def read_int_list(
    p: Params, name: str, *, lo: int, hi: int, max_items: int = 1024
) -> list[int] | None:
    """A JSON array of ints, or a comma list in a query (``port=1,2``); None when absent."""
    v = p.get(name)
    if v is None:
        return None
    if isinstance(v, str):
        items: list[Any] = [s.strip() for s in v.split(",") if s.strip()]
        if len(items) > max_items:
            raise InvalidInput(f"{name}: too many items")
        if not all(s.isdigit() and len(s) < 12 for s in items):
            raise InvalidInput(f"{name} must be integers {lo}..{hi}")
        items = [int(s) for s in items]
    elif isinstance(v, list):
        items = v
    elif _is_int(v):
        items = [v]
    else:
        raise InvalidInput(f"{name} must be an array of integers")
    if len(items) > max_items:
        raise InvalidInput(f"{name}: too many items")
    if not all(_is_int(i) and lo <= i <= hi for i in items):
        raise InvalidInput(f"{name} must be integers {lo}..{hi}")
    return [int(i) for i in items]


def read_str(
    p: Params, name: str, *, required: bool = False, max_bytes: int | None = None
) -> str | None:
    v = p.get(name)
    if v is None:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not isinstance(v, str):
        raise InvalidInput(f"{name} must be a string")
    if max_bytes is not None and len(v.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInput(f"{name} is longer than {max_bytes} bytes")
    return v


def read_numbers(p: Params, name: str, *, max_items: int, max_bytes: int = 24) -> list[str] | None:
    """Destination numbers: strings of at most 24 bytes (spec §2.3); > max_items → 413."""
    v = p.get(name)
    if v is None:
        return None
    items: Any = [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v
    if not isinstance(items, list):
        raise InvalidInput(f"{name} must be an array of strings")
    if len(items) > max_items:
        raise TooManyNumbers(f"{name}: more than {max_items} numbers")
    for item in items:
        if not isinstance(item, str) or not item or len(item.encode()) > max_bytes:
            raise InvalidInput(f"{name}: each number is a string of 1..{max_bytes} bytes")
    return [str(i) for i in items]


def read_bool(p: Params, name: str, *, default: bool) -> bool:
    v = p.get(name)
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    raise InvalidInput(f"{name} must be true or false")
