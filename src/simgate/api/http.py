"""The HTTP edge every dialect shares: a size-capped body and the client's address.

Each dialect maps :class:`BodyRefused` to its own envelope (spec §7: no 500 for bad input);
nothing here knows a vendor format.
"""

from __future__ import annotations

import re
from typing import cast

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from simgate.domain.accounts import ip_in_any

# Longer digit strings are larger than any limit; int() of them would also be slow (and past
# 4300 digits a ValueError), so they are never converted.
_MAX_LENGTH_DIGITS = 18
_BEYOND_ANY_LIMIT = 10**18
# Kept in the scope's "state" dict, which every Request object of one request shares, even
# over a copied scope: what ``request.state`` keeps, without building a State object on each
# look (that cost more than the read, issue 15).
_BODY_KEY = "simgate_body"
_GONE_KEY = "simgate_client_gone"


class BodyRefused(Exception):
    """The request body cannot be read within the rules; ``str(exc)`` says why, for people."""


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BadContentLength(BodyRefused):
    def __init__(self) -> None:
        super().__init__("bad Content-Length")


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived.

    Nobody is left to answer, and it is no fault of ours (issue 14 item 10: a client hanging
    up is not an ERROR with a traceback): dialects let it pass their "unexpected error"
    catch-all, and the app logs it as one INFO line (api/app.py).
    """

    def __init__(self, received: int) -> None:
        super().__init__(f"client disconnected after {received} bytes of the body")
        self.received = received


class SelfAnswering:
    """An ASGI endpoint that answers every request itself, whatever its method: every outcome
    of its own (a refusal, a bug) is an answer it sends, and nothing escapes it but
    :class:`ClientGone`. api/app.py calls the one that serves an exact path straight from the
    application, without Starlette's exception layers around it (issue 15: they cost a
    one-number send ~7 % of the server's CPU, for outcomes such an endpoint never leaves to
    them)."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def declared_length(request: Request) -> int | None:
    """The Content-Length header as a number, None when absent.

    Every copy of the header must be the same plain ASCII number (RFC 9110 §8.6); a negative,
    non-numeric or conflicting value raises :class:`BadContentLength`. A value too long to be
    a real length comes back as a number past any limit, so it is simply too large.
    """
    text: str | None = None
    # The raw ASGI headers (names are lower case): no Headers object for one look-up.
    for name, value in request.scope["headers"]:
        if name == b"content-length":
            this = value.decode("latin-1").strip()
            if text is None:
                text = this
            elif this != text:
                raise BadContentLength()
    if text is None:
        return None
    if not text or not text.isascii() or not text.isdigit():
        raise BadContentLength()
    if len(text) > _MAX_LENGTH_DIGITS:
        return _BEYOND_ANY_LIMIT
    return int(text)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused past ``limit`` bytes before more than that is read.

    The body is kept with the request's state, so a second reader in the same request (a
    dependency, then the handler) gets the same bytes instead of an exhausted stream.
    """
    scope = request.scope
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    cached = state.get(_BODY_KEY)
    if cached is not None:
        if len(cached) > limit:
            raise BodyTooLarge(limit)
        return cast(bytes, cached)
    gone = state.get(_GONE_KEY)
    if gone is not None:
        raise gone  # a second reader: the stream is spent, the client still gone
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    # The ASGI messages read here, as ``request.stream()`` reads them, without an async
    # generator (its creation, the loop's first-iteration hook and its finaliser were a
    # fifth of this function's cost on a one-number send, issue 15).
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            request._is_disconnected = True  # as stream() records it
            exc = state[_GONE_KEY] = ClientGone(size)
            raise exc
    request._stream_consumed = True  # as stream() leaves it: a second stream() is refused
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    state[_BODY_KEY] = body
    return body


# A scope path that ``Request.url.path`` gives back as it is: printable ASCII, no ``?``,
# ``#`` or ``\`` (which Starlette's URL escapes), and not ``//`` first (which ``urlsplit``
# reads as a host when the URL has none).
_PLAIN_PATH = re.compile(r"/(?!/)[!-\"$->@-\[\]-~]*")


def request_path(request: Request) -> str:
    """``request.url.path``, without building the URL (~10 us a request, issue 15) when the
    scope's path is one it gives back unchanged; any other path (rare: a scanner's) is read
    from the URL itself, so the answer is always Starlette's."""
    path = request.scope["path"]
    if isinstance(path, str) and _PLAIN_PATH.fullmatch(path):
        return path
    return request.url.path


def client_ip(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address: the TCP peer, or behind trusted proxies the forwarded one.

    Only when the peer is one of ``trusted_proxies`` is ``X-Forwarded-For`` read: every copy
    of the header, in order, as one list of hops (each proxy appends the address it saw).
    Walking from the nearest hop outwards, the first address that is not a trusted proxy is
    the client; anything left of it may be forged by that client and is ignored.

    When every hop is trusted too, the request started inside the trusted network and each
    hop was written by a trusted proxy, so the leftmost hop is the true origin: that is the
    answer (not the peer, which would give every internal client the proxy's address). With
    no hops at all the peer is the answer.
    """
    # The scope's (host, port) as is: ``request.client`` builds an Address tuple each time.
    client = request.scope.get("client")
    peer = str(client[0]) if client else ""
    if not trusted_proxies or not ip_in_any(peer, trusted_proxies):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not ip_in_any(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer
