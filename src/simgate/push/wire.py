"""One push as an HTTP/1.1 exchange, straight on an httpcore connection pool.

Why not ``httpx.AsyncClient.send``: for a push the client's layers do nothing we use (no
auth, no redirects: we never follow them, no cookies: a push is stateless) and they were most
of the sender's cost per push. Measured with bench/push_throughput.py's receiver on the same
machine, in one run: a POST through a client costs ~2.8x the CPU of the same POST handed to
the pool directly (the client re-parses the URL, merges default headers, wraps the response
and fills a cookie jar per request), and the engine stayed under the issue 15 target of 0.8
of plain httpx while it went through one. Here each distinct URL is parsed once (by httpx's
own parser, so IDNA hosts and percent-encoding are what httpx would send) and a request is a
list of header bytes.

What reaches the receiver is what httpx sent before, less the client's ``Accept-Encoding``
and ``Connection: keep-alive`` (we never decode a body, and HTTP/1.1 keeps the connection
alive without it): ``Host``, ``Accept``, ``User-Agent`` (the push's own headers may override
either), the push's headers, then ``Content-Length``. Timeouts are httpx's: ``connect`` for the
connection, the total for each read, write and pool wait; the sender bounds the whole attempt
as well (push/sender.py).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import httpcore
import httpx

from simgate.push.settings import PushSettings

USER_AGENT = "simgate-push/1"
MAX_URLS = 1024  # distinct push URLs whose parse is kept (most endpoints have one or two)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # an empty body still says length 0


class BadHeader(Exception):
    """A push header that cannot go on the wire (not ASCII): resending would not help."""


@dataclass(frozen=True, slots=True)
class _Origin:
    url: httpcore.URL
    host: bytes  # the Host header: the URL's netloc (port only when not the default)


@dataclass(frozen=True, slots=True)
class Exchange:
    status: int
    retry_after: str | None


class Wire:
    """Builds push requests (each URL parsed once) and runs them on a given pool."""

    def __init__(self, cfg: PushSettings) -> None:
        total = cfg.total_timeout_seconds
        self._timeout = {
            "connect": cfg.connect_timeout_seconds,
            "read": total,
            "write": total,
            "pool": total,
        }
        self._max_response = cfg.max_response_bytes
        self._origins: OrderedDict[str, _Origin] = OrderedDict()

    def _origin(self, url: str) -> _Origin:
        origin = self._origins.get(url)
        if origin is not None:
            self._origins.move_to_end(url)
            return origin
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise httpcore.UnsupportedProtocol(str(exc)) from None
        origin = _Origin(
            httpcore.URL(
                scheme=parsed.raw_scheme,
                host=parsed.raw_host,
                port=parsed.port,
                target=parsed.raw_path,
            ),
            parsed.netloc,
        )
        self._origins[url] = origin
        if len(self._origins) > MAX_URLS:
            self._origins.popitem(last=False)
        return origin

    def request(
        self, *, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> httpcore.Request:
        """The request as httpx would have built it (module docstring); raises
        :class:`BadHeader` or httpcore.UnsupportedProtocol for what cannot be sent."""
        origin = self._origin(url)
        given = {name.lower() for name in headers}
        raw: list[tuple[bytes, bytes]] = []
        if "host" not in given:
            raw.append((b"Host", origin.host))
        if "accept" not in given:
            raw.append((b"Accept", b"*/*"))
        if "user-agent" not in given:
            raw.append((b"User-Agent", USER_AGENT.encode()))
        try:
            raw += [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]
        except UnicodeEncodeError as exc:
            raise BadHeader(f"push header is not ASCII: {exc}") from None
        content = body or b""
        if "content-length" not in given and (content or method in _BODY_METHODS):
            raw.append((b"Content-Length", str(len(content)).encode()))
        return httpcore.Request(
            method.encode("ascii"),
            origin.url,
            headers=raw,
            content=content,
            extensions={"timeout": self._timeout},
        )

    async def exchange(
        self, pool: httpcore.AsyncConnectionPool, request: httpcore.Request
    ) -> Exchange:
        """Send ``request``, drain the answer (up to ``max_response_bytes``, so the
        connection can be kept), and return its status and Retry-After."""
        response = await pool.handle_async_request(request)
        try:
            seen = 0
            async for chunk in response.aiter_stream():
                seen += len(chunk)
                if seen > self._max_response:
                    break
        finally:
            await response.aclose()
        retry_after = None
        for name, value in response.headers:
            if name.lower() == b"retry-after":
                retry_after = value.decode("latin-1")
                break
        return Exchange(response.status, retry_after)
