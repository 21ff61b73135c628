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
- idle: between an answer and the next request's first bytes, uvicorn's own keep-alive
  timeout (``timeout_keep_alive``), after which the connection is closed without a word,
  as uvicorn does; kept by the same timer instead of one uvicorn makes per request.

``max_connections`` caps open connections: a new connection beyond it first evicts the
oldest one still waiting for its headers (a stalled client, not a request being served), and
is refused (closed at once) when there is none.

One write per answer: uvicorn writes a response's status line and headers when the
application sends ``http.response.start``, and the body in a second write when it sends
``http.response.body``: two ``send`` system calls and two packets per answer, for the client
two reads (issue 15: ``write`` under uvloop's ``UVStream__try_write`` was a fifth of the loop
thread's samples on a one-number send, py-spy --native). :func:`answer_in_one_write` keeps
the head and writes it with the first body write, the same bytes in one call; a head that
no body write follows (a HEAD request, an application that raises after starting its
answer, a close) is written on its own right after, before anything else of that
connection, as before.
"""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

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
        self._timer: asyncio.TimerHandle | None = None
        self._phase = ""  # "headers", "body" or "" (none running)
        self._phase_since = 0.0
        self._deadline = 0.0  # of the current phase, in loop time
        self._answering: RequestResponseCycle | None = None  # the cycle made to answer in one write

    # ---- the deadline of the current phase ------------------------------------------
    # One timer per connection, moved lazily: a phase only records its deadline, and the
    # timer, when it fires before the deadline it finds, waits again until then. A request
    # answered in time costs no timer at all (a TimerHandle made and cancelled per phase,
    # two a request, was ~2 % of a one-number send's CPU, issue 15); a connection's timer
    # fires at most once per header timeout while it is busy.
    def _arm(self, phase: str, seconds: float) -> None:
        now = self.loop.time()
        self._phase, self._phase_since = phase, now
        deadline = self._deadline = now + seconds
        timer = self._timer
        if timer is None:
            self._timer = self.loop.call_at(deadline, self._check)
        elif timer.when() > deadline:  # a shorter phase than the one the timer waits for
            timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check)

    def _disarm(self) -> None:
        self._phase = ""

    def _stop_timer(self) -> None:
        self._phase = ""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if not self._phase:
            return  # no phase running: the next one arms the timer again
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check)
            return
        self._expired()

    def _expired(self) -> None:
        phase, self._phase = self._phase, ""
        if phase == "idle":  # uvicorn's timeout_keep_alive_handler: closed without a word
            if not self.transport.is_closing():
                self.transport.close()
            return
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
        oldest._stop_timer()
        oldest.connections.discard(oldest)
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "headers":  # a kept-alive connection's next request starts now
            self._arm("headers", self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._arm("body", self.body_timeout_s)
        super().on_headers_complete()
        cycle = self.cycle
        # uvicorn builds a new cycle here (and starts its task later, in a loop turn of its
        # own, or queues it behind a pipelined one): it answers in one write.
        if cycle is not None and cycle is not self._answering:
            self._answering = cycle
            answer_in_one_write(cycle)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # ---- uvicorn's keep-alive wait as a phase of the same timer ------------------------
    # uvicorn arms a TimerHandle (call_later) for the keep-alive timeout after every answer
    # and cancels it when the next bytes arrive: under uvloop a libuv timer made, started,
    # stopped and closed per request (issue 15). Here the wait between requests is the
    # phase "idle" of the connection's one timer: the same timeout, the same silent close.
    def _unset_keepalive_if_required(self) -> None:
        if self._phase == "idle":  # bytes came (or the connection ended): no longer idle
            self._phase = ""
        super()._unset_keepalive_if_required()  # a timer of uvicorn's, if it armed one

    def on_response_complete(self) -> None:
        # uvicorn 0.54's own (httptools_impl.HttpToolsProtocol.on_response_complete), but
        # for the keep-alive timer; tests/cli/test_http_guard.py pins the two side by side.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        # Unpause data reads if needed.
        self.flow.resume_reading()
        # Unblock any pipelined events. If there are none, wait for the next request.
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._arm("idle", self.timeout_keep_alive)


def answer_in_one_write(cycle: RequestResponseCycle) -> None:
    """Make ``cycle`` answer in one write (see the module docstring): its ``send``, which
    uvicorn hands the application when the cycle's task starts, becomes ours. An attribute
    of the instance, not a subclass swapped in: assigning ``__class__`` turns the object's
    inline attributes into a dict of its own, a microsecond a request (CPython 3.11)."""
    cycle._simgate_kept = None  # type: ignore[attr-defined]
    cycle.send = types.MethodType(_send_in_one_write, cycle)  # type: ignore[method-assign]


async def _send_in_one_write(self: RequestResponseCycle, message: Any) -> None:
    kept: _KeptHead | None = self._simgate_kept  # type: ignore[attr-defined]
    if kept is None:
        if message["type"] != "http.response.start" or self.response_started:
            await RequestResponseCycle.send(self, message)
            return
        transport = self.transport
        kept = _KeptHead(transport)
        self.transport = kept  # type: ignore[assignment]
        try:
            await RequestResponseCycle.send(self, message)  # the head, into ``kept``
        except BaseException:
            self.transport = transport
            kept.flush()
            raise
        if kept.head is None:  # nothing kept (a client gone): as before
            self.transport = transport
            return
        self._simgate_kept = kept  # type: ignore[attr-defined]
        return
    # The message after the head: its write carries the head along.
    try:
        await RequestResponseCycle.send(self, message)
    finally:
        self._simgate_kept = None  # type: ignore[attr-defined]
        self.transport = kept.transport
        if not self.disconnected:
            kept.flush()  # when that message wrote nothing (a HEAD request's body)


class _KeptHead:
    """The connection's transport while a response head waits for its body (above): the
    first write is the head, kept; the next one goes out with it."""

    __slots__ = ("head", "taking", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.head: bytes | None = None
        self.taking = True

    def write(self, data: bytes) -> None:
        if self.taking:
            self.taking = False
            self.head = data
            return
        head = self.head
        if head is not None:
            self.head = None
            data = head + data
        self.transport.write(data)

    def flush(self) -> None:
        head, self.head = self.head, None
        self.taking = False
        if head is not None and not self.transport.is_closing():
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


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
