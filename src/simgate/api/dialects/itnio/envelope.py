"""The itniotech envelope: HTTP 200 with ``status`` (String) and ``reason`` (spec §1.1, §7).

One table maps the error tree to vendor codes (§1.2); SMS and voice endpoints share it.
Bodies are read with a hard size cap and parsed strictly (UTF-8, a JSON object), so bad
input becomes ``-22`` and never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request, Response

from simgate.api import http
from simgate.errors import (
    AccessDenied,
    AccountLocked,
    AlreadyExists,
    AuthError,
    ContentEmpty,
    ContentTooLong,
    InsufficientBalance,
    InvalidInput,
    InvalidMedia,
    InvalidNumber,
    NoPricing,
    NoRoute,
    NotFound,
    OutOfRange,
    ServiceError,
    StorageFull,
    StoreError,
    TooManyNumbers,
)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/json;charset=UTF-8"

# Vendor wording (spec §1.2; -16 from the itniotech page's own example).
REASONS: dict[int, str] = {
    0: "success",
    -1: "authentication error",
    -2: "IP access limited",
    -3: "sensitive characters in content",
    -4: "content empty",
    -5: "content too long",
    -6: "content does not match a template",
    -7: "too many numbers",
    -8: "number empty",
    -9: "abnormal number",
    -10: "insufficient balance",
    -11: "incorrect time format",
    -12: "platform bulk submission failure",
    -13: "user locked",
    -14: "field empty or query id abnormal",
    -15: "query too frequently",
    -16: "timestamp expires",
    -17: "template empty",
    -18: "port program unusual",
    -19: "confirm SMS pricing with the business team",
    # Codes of the voice and number pages (spec §1.2, "extra codes").
    -20: "data already exists",
    -21: "data validation exception",
    -22: "parameter exception",
    -23: "data caps reached",
    -25: "out of time range",
    -26: "getting fee failed",
}

# The one table from the error tree to codes; the first matching class wins, so the more
# specific classes come first.
ERROR_CODES: tuple[tuple[type[Exception], int], ...] = (
    (InvalidNumber, -9),
    (ContentEmpty, -4),
    (ContentTooLong, -5),
    (TooManyNumbers, -7),
    (InvalidMedia, -21),
    (OutOfRange, -25),
    (InvalidInput, -22),
    (AlreadyExists, -20),
    (AuthError, -1),
    (AccessDenied, -2),
    (AccountLocked, -13),
    (InsufficientBalance, -10),
    (NoPricing, -19),
    (NoRoute, -18),
    (NotFound, -14),
    (StoreError, -18),
)


class ItnioError(Exception):
    """A refusal in the dialect's own terms: rendered as ``{"status": code, "reason"}``."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(detail or REASONS.get(code, "error"))
        self.code = code
        self.detail = detail


def code_for(exc: Exception, table: tuple[tuple[type[Exception], int], ...] = ERROR_CODES) -> int:
    """The code of ``exc`` by ``table`` (voice endpoints pass their own, see voice.py)."""
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    return -18


async def enveloped(
    produce: Callable[[], Awaitable[bytes]],
    table: tuple[tuple[type[Exception], int], ...] = ERROR_CODES,
) -> bytes:
    """Run a handler's body; every outcome becomes an envelope, never a 500 (§7)."""
    try:
        return await produce()
    except Exception as exc:
        return refusal(exc, table)


def refusal(exc: Exception, table: tuple[tuple[type[Exception], int], ...] = ERROR_CODES) -> bytes:
    """The envelope of a handler's failure ``exc`` (:func:`enveloped`); call it inside the
    ``except`` that caught ``exc``: an unexpected error is logged with its traceback. A client
    that went away (:class:`~simgate.api.http.ClientGone`) is raised again: nobody to answer,
    and api/app.py logs it as one line."""
    if isinstance(exc, ItnioError):
        return error_body(exc.code, exc.detail)
    if isinstance(exc, (ServiceError, StoreError)):
        # Store errors may hold connection details; a full storage says only that (item 13).
        hidden = isinstance(exc, StoreError) and not isinstance(exc, StorageFull)
        return error_body(code_for(exc, table), "" if hidden else str(exc))
    if isinstance(exc, http.ClientGone):
        raise exc
    log.exception("itnio: unexpected error")
    return error_body(-18)


def reason(code: int, detail: str = "") -> str:
    base = REASONS.get(code, "error")
    return f"{base}: {detail}" if detail else base


def dumps(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


_CONTENT_TYPE = (b"content-type", MEDIA_TYPE.encode("latin-1"))


class EnvelopeResponse(Response):
    """An envelope's 200 (spec §7), its two headers as Starlette's ``Response`` would build
    them (content-length, then the media type, which has its charset), without the generic
    render and header merging on every answer (issue 15: ~1 % of a one-number sendSms)."""

    media_type = MEDIA_TYPE

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")), _CONTENT_TYPE]


def json_response(body: bytes) -> Response:
    # Always HTTP 200: clients read the outcome from `status` (spec §7).
    return EnvelopeResponse(body)


def ok_body(**fields: Any) -> bytes:
    return dumps({"status": "0", "reason": "success", **fields})


def error_body(code: int, detail: str = "") -> bytes:
    return dumps({"status": str(code), "reason": reason(code, detail)})


def error_response(exc: ItnioError) -> Response:
    return json_response(error_body(exc.code, exc.detail))


# ---- request bodies -----------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    """The raw body (api/http.py); too large or a bad Content-Length is -22."""
    try:
        return await http.read_body(request, limit)
    except http.BodyRefused as exc:
        raise ItnioError(-22, str(exc)) from None


def parse_object(body: bytes) -> dict[str, Any]:
    """A JSON object from strict UTF-8; anything else is -22 (never a 500)."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses what is not UTF-8, so a body it parsed is UTF-8: the separate
        # check is only needed to tell which refusal this is.
        try:
            body.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ItnioError(-22, "body is not UTF-8") from None
        raise ItnioError(-22, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ItnioError(-22, "body must be a JSON object")
    return data


def text_field(
    data: dict[str, Any], name: str, *, empty_code: int | None = -14, max_len: int | None = None
) -> str:
    """A String field (the vendor types them as String): None/"" → ``empty_code``."""
    value = data.get(name)
    if value is None or value == "":
        if empty_code is not None:
            raise ItnioError(empty_code, f"{name} is empty")
        return ""
    if not isinstance(value, str):
        raise ItnioError(-22, f"{name} must be a String")
    if "\x00" in value:
        raise ItnioError(-22, f"{name} contains a NUL character")
    if max_len is not None and len(value) > max_len:
        raise ItnioError(-22, f"{name} longer than {max_len} characters")
    return value


def int_field(
    data: dict[str, Any], name: str, *, default: int | None = None, lo: int = 0, hi: int = 2**31
) -> int:
    """An Int field; numeric strings are accepted too (query strings carry only text)."""
    value = data.get(name)
    if value is None or value == "":
        if default is None:
            raise ItnioError(-14, f"{name} is empty")
        return default
    if isinstance(value, bool):
        raise ItnioError(-22, f"{name} must be an Int")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
            raise ItnioError(-22, f"{name} must be an Int")
        value = int(text)
    if not isinstance(value, int):
        raise ItnioError(-22, f"{name} must be an Int")
    if not lo <= value <= hi:
        raise ItnioError(-22, f"{name} must be between {lo} and {hi}")
    return value
