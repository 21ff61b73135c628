"""One SMPP bind: a TCP (or TLS) connection driving a sans-IO ESME session.

The bind owns bytes and timers only: it reconnects with exponential backoff, keeps the
session ticking (response timeouts, enquire_link), turns our submit_sm into a future that
resolves with the response, and hands every deliver_sm/data_sm to the line, answering it
with the status the line returns, i.e. only after the line has committed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import socket
import ssl
from typing import Protocol

from simgate.clock import Clock
from simgate.codecs.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandStatus,
    Event,
    Pdu,
    ProtocolError,
    RequestAborted,
    RequestReceived,
    ResponseReceived,
    ResponseTimeout,
    Role,
    SessionConfig,
    SmppError,
    SmppSession,
    Unbind,
    make_response,
)
from simgate.settings import SmppLineSettings

log = logging.getLogger(__name__)

__all__ = ["Bind", "BindKind", "LinkLost", "ResponseTimedOut"]


#: Queued bytes that are written at once instead of at the end of the loop iteration.
FLUSH_BYTES = 1024


class BindKind(enum.Enum):
    TRX = "transceiver"
    TX = "transmitter"
    RX = "receiver"

    @property
    def sends(self) -> bool:
        return self is not BindKind.RX


_BIND_PDU = {BindKind.TRX: BindTransceiver, BindKind.TX: BindTransmitter, BindKind.RX: BindReceiver}


class ResponseTimedOut(Exception):
    """The request was written but no response came in time (it may have been taken)."""


class LinkLost(Exception):
    """The connection closed with the request written and unanswered."""


class BindHandler(Protocol):
    def bound(self, bind: Bind) -> None: ...

    def unbound(self, bind: Bind) -> None: ...

    async def request(self, bind: Bind, pdu: Pdu) -> int: ...


class Bind:
    def __init__(
        self,
        *,
        name: str,
        kind: BindKind,
        cfg: SmppLineSettings,
        clock: Clock,
        handler: BindHandler,
    ) -> None:
        self.name = name
        self.kind = kind
        self.cfg = cfg
        self.clock = clock
        self.handler = handler
        self.bound = False
        self.inflight = 0  # submit slots the line has reserved on this bind
        self.connects = 0  # successful binds so far (tests and logs)
        self._session: SmppSession | None = None
        self._transport: asyncio.Transport | None = None
        self._futures: dict[int, asyncio.Future[Pdu]] = {}
        self._bind_seq: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._was_bound = False
        self._gone = asyncio.Event()  # set when a connection has ended
        self._out: list[bytes] = []  # PDUs waiting for the end of this loop iteration
        self._out_size = 0

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self.bound and self._session is not None and self._transport is not None:
            with contextlib.suppress(SmppError, OSError, RuntimeError):
                self._write(self._session.send(Unbind(), self._now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def _now(self) -> float:
        return self.clock.now_ms() / 1000

    async def _run(self) -> None:
        delay = self.cfg.reconnect_min
        while not self._stopping:
            try:
                await self._connection()
            except (OSError, TimeoutError, SmppError) as exc:
                log.warning("smpp %s: %s: %s", self.name, type(exc).__name__, exc)
            if self.connects and self._was_bound:
                delay = self.cfg.reconnect_min
            if self._stopping:
                return
            await self.clock.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.cfg.reconnect_max)

    # ---- one connection ----------------------------------------------------------------
    async def _connection(self) -> None:
        self._was_bound = False
        loop = asyncio.get_running_loop()
        ctx = _tls_context(self.cfg) if self.cfg.tls else None
        session = SmppSession(
            SessionConfig(
                role=Role.ESME,
                window_size=self.cfg.window,
                response_timeout=self.cfg.response_timeout,
                enquire_link_interval=self.cfg.enquire_link_interval,
            ),
            now=self._now(),
        )
        ended: asyncio.Future[None] = loop.create_future()
        transport, _ = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(self, session, ended), self.cfg.host, self.cfg.port, ssl=ctx
            ),
            timeout=self.cfg.response_timeout,
        )
        self._session, self._transport = session, transport
        self._out, self._out_size = [], 0  # nothing of an older connection goes out on this one
        self._gone.clear()
        ticker = asyncio.create_task(self._tick(session))
        try:
            pdu = _BIND_PDU[self.kind](
                system_id=self.cfg.system_id,
                password=self.cfg.password,
                system_type=self.cfg.system_type,
            )
            data = session.send(pdu, self._now())
            self._bind_seq = int.from_bytes(data[12:16], "big")
            self._write(data)
            await ended
        finally:
            ticker.cancel()
            was_bound = self.bound
            self.bound = False
            if not session.closed:
                self._handle(session.connection_lost(self._now()))
            self._fail_all(LinkLost("connection closed"))
            transport.close()
            self._gone.set()
            if was_bound:
                self.handler.unbound(self)

    def _on_data(self, session: SmppSession, data: bytes) -> None:
        self._handle(session.receive_data(data, self._now()))
        self._flush()

    async def _tick(self, session: SmppSession) -> None:
        while not session.closed:
            deadline = session.next_deadline()
            now = self._now()
            wait = 0.25 if deadline is None else min(0.25, max(deadline - now, 0.0))
            await self.clock.sleep(max(wait, 0.005))
            self._handle(session.tick(self._now()))
            self._flush()
            if session.closed and self._transport is not None:
                self._transport.close()  # connection_lost ends the connection

    def _flush(self) -> None:
        if self._session is not None:
            data = self._session.data_to_send()
            if data:
                self._write(data)

    def _write(self, data: bytes) -> None:
        """Queue bytes; they go out once per loop iteration (one syscall for a burst of
        submit_sm instead of one each), or as soon as a few PDUs are queued, so the SMSC
        works on the first ones while the rest of a burst is still being encoded."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._write_out)
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= FLUSH_BYTES:
            self._write_out()

    def _write_out(self) -> None:
        """One writelines (one writev) for the queued PDUs: they are not copied into a
        buffer of ours first."""
        chunks, self._out, self._out_size = self._out, [], 0
        transport = self._transport
        if chunks and transport is not None and not transport.is_closing():
            transport.writelines(chunks)

    def _handle(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, ResponseReceived):
                self._on_response(ev.request.sequence_number, ev.response, ev.ok)
            elif isinstance(ev, ResponseTimeout):
                self._on_failure(ev.request.sequence_number, ResponseTimedOut("no response"))
            elif isinstance(ev, RequestAborted):
                self._on_failure(ev.request.sequence_number, LinkLost(ev.reason))
            elif isinstance(ev, RequestReceived):
                task = asyncio.create_task(self._answer(ev.pdu))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(ev, ProtocolError):
                log.warning("smpp %s: protocol error: %s", self.name, ev.reason)

    def _on_response(self, sequence: int, response: Pdu, ok: bool) -> None:
        if sequence == self._bind_seq:
            self._bind_seq = None
            if ok:
                self.bound = True
                self._was_bound = True
                self.connects += 1
                log.info("smpp %s: bound as %s", self.name, self.kind.value)
                self.handler.bound(self)
            else:
                log.warning("smpp %s: bind refused, status %#x", self.name, response.command_status)
            return
        fut = self._futures.pop(sequence, None)
        if fut is not None and not fut.done():
            fut.set_result(response)

    def _on_failure(self, sequence: int, exc: Exception) -> None:
        if sequence == self._bind_seq:
            self._bind_seq = None
            return
        fut = self._futures.pop(sequence, None)
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _fail_all(self, exc: Exception) -> None:
        futures, self._futures = self._futures, {}
        for fut in futures.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _answer(self, pdu: Pdu) -> None:
        try:
            status = await self.handler.request(self, pdu)
        except Exception:
            log.exception("smpp %s: handling %s failed", self.name, pdu.COMMAND_ID.name)
            status = CommandStatus.ESME_RX_T_APPN  # temporary: the SMSC delivers it again
        session = self._session
        if session is None or session.closed:
            return  # unanswered: the SMSC redelivers it on the next bind
        if pdu.sequence_number in session.awaiting_our_response:
            with contextlib.suppress(SmppError, ValueError, RuntimeError):
                self._write(session.send(make_response(pdu, status), self._now()))

    # ---- submitting --------------------------------------------------------------------
    def send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Write ``pdu`` now; the future gets its response, or ResponseTimedOut/LinkLost.

        Raises SmppError when the bind cannot take it (not bound, window full): then
        nothing was written.
        """
        session, transport = self._session, self._transport
        if not self.bound or session is None or transport is None or transport.is_closing():
            raise _NotWritten("bind not ready")
        data = session.send(pdu, self._now())
        fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._futures[int.from_bytes(data[12:16], "big")] = fut
        self._write(data)
        return fut


class _NotWritten(SmppError):
    pass


class _Protocol(asyncio.Protocol):
    """Feeds received bytes straight into the session (no reader task in between)."""

    def __init__(self, bind: Bind, session: SmppSession, ended: asyncio.Future[None]) -> None:
        self.bind, self.session, self.ended = bind, session, ended
        self.quick_ack: _QuickAck | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.quick_ack = _QuickAck.of(transport)

    def data_received(self, data: bytes) -> None:
        if self.quick_ack is not None:
            self.quick_ack.now()
        self.bind._on_data(self.session, data)
        if self.session.closed and not self.ended.done():
            self.ended.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class _QuickAck:
    """Acknowledge received segments at once instead of after the delayed-ACK timer.

    Why (issue 15, measured with bench/smpp_throughput.py): many SMSCs leave Nagle's
    algorithm on (node's sockets do by default). Such an SMSC sends its first submit_sm_resp
    and holds the next ones until that segment is acknowledged; our kernel delays the ACK
    until we write again, so the SMSC's answers and our submits alternate instead of
    overlapping, and the window of 64 is half empty: 0.57 of the bare client against the npm
    ``smpp`` SMSC. Linux clears TCP_QUICKACK again by itself (tcp(7)), so it is set after
    every read; one setsockopt per read, not per PDU. Elsewhere (no TCP_QUICKACK) a no-op.
    """

    __slots__ = ("_option", "_sock")

    def __init__(self, sock: socket.socket, option: int) -> None:
        self._sock, self._option = sock, option

    @classmethod
    def of(cls, transport: asyncio.BaseTransport) -> _QuickAck | None:
        sock = transport.get_extra_info("socket")
        if _TCP_QUICKACK is None or sock is None or sock.family == socket.AF_UNIX:
            return None
        return cls(sock, _TCP_QUICKACK)

    def now(self) -> None:
        with contextlib.suppress(OSError):  # closing: nothing left to acknowledge
            self._sock.setsockopt(socket.IPPROTO_TCP, self._option, 1)


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def _tls_context(cfg: SmppLineSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.tls_ca_file)
    if not cfg.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
