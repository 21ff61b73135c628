"""Time limits and a connection cap for uvicorn's HTTP connections (``[http]`` settings).

uvicorn closes an idle keep-alive connection, but a client that connects and then sends its
request line, headers or body slowly (or never) holds the connection and its memory for as
long as it likes: 600 such connections were held 90 s and more (issue 14 item 11, slowloris).
uvicorn has no header or body timeout, so this subclass of its httptools protocol (the one
``uvicorn[standard]`` runs) keeps one timer per connection, for the phase it is in:

- headers: from the connection's start, or from a kept-alive connection's next first byte,
  the request line and headers must arrive within ``header_timeout_seconds``; else the
  client gets ``408`` and the connection is closed;
- body: from the end of the headers, the whole body must arrive within
  ``body_timeout_seconds`` (a total, not an idle time: a client trickling a byte now and
  then is stopped as well); else the connection is closed, and the application, if it was
  reading the body, hears that the client is gone (api/http.py ``ClientGone``).

``max_connections`` caps open connections: a new connection beyond it first evicts the
oldest one still waiting for its headers (a stalled client, not a request being served), and
is refused (closed at once) when there is none.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from simgate.settings import HttpSettings

log = logging.getLogger(__name__)

_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\n"
    b"connection: close\r\n\r\n"
    b"request timeout\n"
)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a connection cap."""

    header_timeout_s = 15.0
    body_timeout_s = 120.0
    max_connections = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""  # "headers", "body" or "" (none running)
        self._phase_since = 0.0

    # ---- the deadline of the current phase ------------------------------------------
    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase, self._phase_since = phase, self.loop.time()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _expired(self) -> None:
        self._deadline = None
        phase, self._phase = self._phase, ""
        if self.transport is None or self.transport.is_closing():
            return
        peer = self.client[0] if self.client else "?"
        log.info("closing a connection from %s: %s not received in time", peer, phase)
        if phase == "headers" and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_TIMEOUT_408)
        self.transport.close()  # connection_lost tells a running request the client is gone

    # ---- uvicorn's hooks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_a_stalled_one():
            self.connections.discard(self)
            transport.close()
            return
        self._arm("headers", self.header_timeout_s)

    def _evict_a_stalled_one(self) -> bool:
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedProtocol) and c is not self and c._phase == "headers"
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._phase_since)
        oldest._disarm()
        oldest.connections.discard(oldest)
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "headers":  # a kept-alive connection's next request starts now
            self._arm("headers", self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._arm("body", self.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def guarded_protocol(cfg: HttpSettings) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's ``http=`` with the limits of ``cfg``."""
    return type(
        "SimgateHttpProtocol",
        (GuardedProtocol,),
        {
            "header_timeout_s": cfg.header_timeout_seconds,
            "body_timeout_s": cfg.body_timeout_seconds,
            "max_connections": cfg.max_connections,
        },
    )
