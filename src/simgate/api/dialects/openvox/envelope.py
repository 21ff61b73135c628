"""The OpenVox envelope (spec §3.2, §7): a JSON POST in, ``{uri, code, msg, data}`` out.

Request fields sit at the top level or inside a ``data`` object (§7: accept both). Field
readers raise :class:`BadRequest` with a message naming the field, so every malformed request
gets a 400 saying what is wrong. Numbers sent as digit strings (``"1"``) are accepted where an
int is documented, because PHP and shell clients send them that way; anything else of the
wrong type is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from simgate.errors import InvalidInput

MAX_INT = 2**53  # anything larger is not a page number, port or flag


class BadRequest(InvalidInput):
    """A request the dialect cannot parse (mapped to code 400)."""


class Fields:
    """The request's fields with typed readers (credentials included)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._v = values

    def has(self, name: str) -> bool:
        return self._v.get(name) is not None

    def raw(self, name: str) -> Any:
        return self._v.get(name)

    def string(self, name: str, *, required: bool = False, max_len: int = 1024) -> str | None:
        value = self._v.get(name)
        if value is None:
            if required:
                raise BadRequest(f"{name} is required")
            return None
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        if len(value) > max_len:
            raise BadRequest(f"{name} is too long: {len(value)} characters (at most {max_len})")
        if "\x00" in value:
            raise BadRequest(f"{name} contains a NUL character")  # PostgreSQL text cannot hold it
        return value

    def integer(self, name: str, *, default: int | None = None) -> int | None:
        value = self._v.get(name)
        if value is None or value == "":
            return default
        return as_int(name, value)


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        number = int(value.strip())
    else:
        raise BadRequest(f"{name} must be an integer")
    if abs(number) > MAX_INT:
        raise BadRequest(f"{name} is out of range")
    return number


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (without reading it all) one larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body is too large (at most {limit} bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body is too large (at most {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_fields(body: bytes) -> Fields:
    if not body.strip():
        raise BadRequest("request body is empty: send a JSON object with username and password")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    inner = doc.get("data")
    if inner is None or inner == []:  # an empty array is what some clients send for "no data"
        return Fields(doc)
    if not isinstance(inner, dict):
        raise BadRequest("data must be a JSON object")
    merged = {k: v for k, v in doc.items() if k != "data"}
    merged.update(inner)  # fields inside data win over the same names at the top level
    return Fields(merged)


def respond(uri: str, code: int, msg: str, data: list[Any]) -> Response:
    """Every answer has HTTP status 200; the outcome is ``code`` (§7), never an HTTP 500."""
    body = orjson.dumps({"uri": uri, "code": code, "msg": msg, "data": data})
    return Response(body, status_code=200, media_type="application/json")
