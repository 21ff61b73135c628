"""One ESME connection: bytes in and out of the sans-IO session in the SMSC role.

An asyncio Protocol (no reader task per connection: a thousand idle sockets cost a thousand
small objects). Every request is answered: binds after the account check (a database error
refuses, never lets in), submit_sm/data_sm after the commit, query_sm and cancel_sm from the
store. Timers (issue 18 "Listener"): a connection that has not bound within the session-init
time is closed, as is a bound one silent for the inactivity time; the session sends
enquire_link when idle and fails a deliver_sm unanswered within the response time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from simgate.api.smpp.metrics import SmppMetrics
from simgate.api.smpp.submit import Piece, Refused, read_submit
from simgate.codecs.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    CommandStatus,
    DataSm,
    DeliverSm,
    Event,
    Pdu,
    ProtocolError,
    QuerySm,
    ReplaceSm,
    RequestAborted,
    RequestReceived,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    SmppError,
    SmppSession,
    SubmitSm,
    Tlvs,
    make_response,
)
from simgate.codecs.smpp.states import Role
from simgate.services.smpp_gateway import (
    SMPP_STATE,
    SmppGateway,
    format_message_id,
    parse_message_id,
)
from simgate.services.smpp_users import BindGrant, BindRefusal, SmppUser, SmppUserService
from simgate.settings import SmppServerSettings


class Listener(Protocol):
    """What a connection needs of the listener that owns it (api/smpp/listener.py)."""

    settings: SmppServerSettings
    users: SmppUserService
    gateway: SmppGateway
    metrics: SmppMetrics

    def admit(self, conn: SmppConnection) -> bool: ...
    def release(self, conn: SmppConnection) -> None: ...
    def may_bind(self, grant: BindGrant) -> bool: ...
    def bound(self, conn: SmppConnection) -> None: ...
    def delivered(self, conn: SmppConnection, row: int, *, ok: bool) -> None: ...
    def take_token(self, user: SmppUser, now: float) -> bool: ...
    def hold_part(self, conn: SmppConnection, pdu: SubmitSm | DataSm, piece: Piece) -> None: ...
    async def submit(self, conn: SmppConnection, pieces: list[Piece]) -> tuple[int, str]: ...


log = logging.getLogger(__name__)

SYSTEM_ID = "simgate"
_BIND_TYPE = {BindTransmitter: "tx", BindReceiver: "rx", BindTransceiver: "trx"}
_REFUSAL_STATUS = {
    BindRefusal.UNKNOWN_SYSTEM_ID: CommandStatus.ESME_RINVSYSID,
    BindRefusal.BAD_PASSWORD: CommandStatus.ESME_RINVPASWD,
    BindRefusal.ADDRESS_NOT_ALLOWED: CommandStatus.ESME_RBINDFAIL,
    BindRefusal.ACCOUNT_LOCKED: CommandStatus.ESME_RBINDFAIL,
    BindRefusal.TOO_MANY_BINDS: CommandStatus.ESME_RBINDFAIL,
}


class SmppConnection(asyncio.Protocol):
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        cfg = listener.settings
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        self.session = SmppSession(
            SessionConfig(
                role=Role.SMSC,
                window_size=cfg.deliver_window,
                response_timeout=cfg.response_seconds,
                enquire_link_interval=cfg.enquire_link_seconds,
                max_pdu_length=cfg.max_pdu_bytes,
            ),
            now=now,
        )
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.opened = now
        self.last_rx = now
        self.grant: BindGrant | None = None
        self.bind_type = ""
        self.bind_row: int | None = None
        self.handling = 0  # submit_sm/data_sm accepted into the window, not answered yet
        self.deliveries: dict[int, int] = {}  # our deliver_sm sequence -> outbox row id
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._closed = False

    # ---- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self.listener.admit(self):
            self.transport.abort()  # over the connection cap: the others keep their share
            self._closed = True
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        now = self.loop.time()
        self.last_rx = now
        self._handle(self.session.receive_data(data, now))
        self._flush()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.session.closed:
            self.session.connection_lost(self.loop.time())
        self._teardown()

    # ---- timers ----------------------------------------------------------------------
    def _deadline(self) -> float:
        cfg = self.listener.settings
        deadlines = [self.last_rx + cfg.inactivity_seconds]
        if self.grant is None:
            deadlines.append(self.opened + cfg.session_init_seconds)
        session = self.session.next_deadline()
        if session is not None:
            deadlines.append(session)
        return min(deadlines)

    def _arm(self) -> None:
        if self._closed:
            return
        at = self._deadline()
        if self._timer is not None and self._timer_at <= at:
            return  # the earlier timer re-arms itself when it fires
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        if self._closed:
            return
        now = self.loop.time()
        cfg = self.listener.settings
        if self.grant is None and now - self.opened >= cfg.session_init_seconds:
            log.info(
                "smpp: %s did not bind within %gs, closed", self.peer, cfg.session_init_seconds
            )
            self.close()
            return
        if now - self.last_rx >= cfg.inactivity_seconds:
            log.info("smpp: %s silent for %gs, closed", self.peer, cfg.inactivity_seconds)
            self.close()
            return
        self._handle(self.session.tick(now))
        self._flush()
        self._arm()

    # ---- output ----------------------------------------------------------------------
    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        if self.session.closed:
            self.close()
        else:
            self._arm()

    def respond(self, pdu: Pdu) -> None:
        """Answer a request; nothing when the session closed meanwhile."""
        if self._closed or self.session.closed:
            return
        try:
            data = self.session.send(pdu)
        except SmppError:
            return  # the request was aborted with the session
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            data = self.session.data_to_send()
            if data:
                self.transport.write(data)
            self.transport.close()
        self._teardown()

    def _teardown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()
        self.listener.release(self)

    # ---- events ----------------------------------------------------------------------
    def _handle(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, RequestReceived):
                self._on_request(ev.pdu)
            elif isinstance(ev, ResponseReceived):
                row = self.deliveries.pop(ev.request.sequence_number, None)
                if row is not None:
                    self.listener.delivered(self, row, ok=ev.ok)
            elif isinstance(ev, ResponseTimeout | RequestAborted):
                row = self.deliveries.pop(ev.request.sequence_number, None)
                if row is not None:
                    self.listener.delivered(self, row, ok=False)
            elif isinstance(ev, ProtocolError) and ev.fatal:
                log.info("smpp: %s sent an unusable stream: %s", self.peer, ev.reason)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_request(self, pdu: Pdu) -> None:
        if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            self._spawn(self._bind(pdu))
        elif isinstance(pdu, SubmitSm | DataSm):
            self._on_submit(pdu)
        elif isinstance(pdu, QuerySm):
            self._spawn(self._query(pdu))
        elif isinstance(pdu, CancelSm):
            self._spawn(self._cancel(pdu))
        elif isinstance(pdu, ReplaceSm):
            self.respond(make_response(pdu, CommandStatus.ESME_RREPLACEFAIL))
        else:  # what the session lets through and has a response: refuse it plainly
            # No response PDU (alert_notification from an ESME: not allowed anyway).
            with contextlib.suppress(ValueError):
                self.respond(make_response(pdu, CommandStatus.ESME_RINVCMDID))

    # ---- bind ------------------------------------------------------------------------
    async def _bind(self, pdu: BindTransmitter | BindReceiver | BindTransceiver) -> None:
        listener = self.listener
        bind_type = _BIND_TYPE[type(pdu)]
        wanted = listener.settings.system_type
        status: int = CommandStatus.ESME_ROK
        grant: BindGrant | BindRefusal | None = None
        if wanted and pdu.system_type != wanted:
            status = CommandStatus.ESME_RINVSYSTYP
        else:
            try:
                grant = await listener.users.check_bind(
                    system_id=pdu.system_id, password=pdu.password, address=self.peer
                )
            except Exception:  # an internal error refuses, never lets in
                log.exception("smpp: bind of %r from %s failed", pdu.system_id, self.peer)
                status = CommandStatus.ESME_RBINDFAIL
        if isinstance(grant, BindGrant) and not listener.may_bind(grant):
            grant = BindRefusal.TOO_MANY_BINDS
        if isinstance(grant, BindRefusal):
            status = _REFUSAL_STATUS[grant]
            log.warning(
                "smpp: bind refused: system_id=%r from %s (%s)",
                pdu.system_id,
                self.peer,
                grant.value,
            )
        if self._closed:
            return
        if status != CommandStatus.ESME_ROK or not isinstance(grant, BindGrant):
            self.respond(make_response(pdu, status))
            return
        self.grant, self.bind_type = grant, bind_type
        resp = make_response(pdu, system_id=SYSTEM_ID, tlvs=Tlvs.build(sc_interface_version=0x34))
        self.respond(resp)
        listener.bound(self)
        self._arm()

    # ---- submit ----------------------------------------------------------------------
    def _on_submit(self, pdu: SubmitSm | DataSm) -> None:
        grant = self.grant
        assert grant is not None  # the session refuses submits before a transmitter bind
        listener = self.listener
        if self.handling >= listener.settings.window:
            listener.metrics.count(grant.user.system_id, "window_full")
            self.respond(make_response(pdu, CommandStatus.ESME_RMSGQFUL))
            return
        if not listener.take_token(grant.user, self.loop.time()):
            listener.metrics.count(grant.user.system_id, "throttled")
            self.respond(make_response(pdu, CommandStatus.ESME_RTHROTTLED))
            return
        piece = read_submit(pdu, now_ms=listener.gateway.now_ms())
        if isinstance(piece, Refused):
            listener.metrics.count(grant.user.system_id, "refused")
            self.respond(make_response(pdu, piece.status))
            return
        self.handling += 1
        if piece.concat is not None:
            listener.hold_part(self, pdu, piece)
            return
        self._spawn(self._submit(pdu, [piece]))

    def answer_submit(self, pdu: SubmitSm | DataSm, status: int, message_id: str) -> None:
        """The answer of a held or handled submit (its window slot is freed)."""
        self.handling = max(0, self.handling - 1)
        if status == CommandStatus.ESME_ROK:
            self.respond(make_response(pdu, message_id=message_id))
        else:
            self.respond(make_response(pdu, status))

    async def _submit(self, pdu: SubmitSm | DataSm, pieces: list[Piece]) -> None:
        status, shown = await self.listener.submit(self, pieces)
        self.answer_submit(pdu, status, shown)

    # ---- query / cancel --------------------------------------------------------------
    async def _query(self, pdu: QuerySm) -> None:
        grant = self.grant
        assert grant is not None
        base = self.listener.settings.message_id_base
        mid = parse_message_id(pdu.message_id, base)
        record = None
        if mid is not None:
            try:
                record = await self.listener.gateway.find(
                    account_id=grant.account.id, message_id=mid
                )
            except Exception:
                log.exception("smpp: query_sm failed")
                self.respond(make_response(pdu, CommandStatus.ESME_RQUERYFAIL))
                return
        if record is None:
            self.respond(make_response(pdu, CommandStatus.ESME_RQUERYFAIL))
            return
        final = record.final_ms
        self.respond(
            make_response(
                pdu,
                message_id=format_message_id(record.id, base),
                final_date=_smpp_time(final) if final else "",
                message_state=SMPP_STATE[record.state],
                error_code=(record.status_code or 0) & 0xFF,
            )
        )

    async def _cancel(self, pdu: CancelSm) -> None:
        grant = self.grant
        assert grant is not None
        mid = parse_message_id(pdu.message_id, self.listener.settings.message_id_base)
        ok = False
        if mid is not None:
            try:
                ok = await self.listener.gateway.cancel(account_id=grant.account.id, message_id=mid)
            except Exception:
                log.exception("smpp: cancel_sm failed")
        self.respond(
            make_response(pdu, CommandStatus.ESME_ROK if ok else CommandStatus.ESME_RCANCELFAIL)
        )

    # ---- deliver_sm (receipts, incoming SMS) -----------------------------------------
    def can_deliver(self) -> bool:
        return (
            not self._closed
            and self.bind_type in ("rx", "trx")
            and self.session.can_send()
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def deliver(self, row_id: int, pdu: DeliverSm) -> bool:
        """Send one outbox row; False when the session cannot take it now."""
        try:
            data = self.session.send(pdu, self.loop.time())
        except SmppError:
            return False
        self.deliveries[int.from_bytes(data[12:16], "big")] = row_id
        assert self.transport is not None
        self.transport.write(data)
        self._arm()
        return True


def _smpp_time(ms: int) -> str:
    """Absolute time of §7.1.1 in UTC: YYMMDDhhmmss, tenths, quarter hours 00, "+"."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%y%m%d%H%M%S") + "000+"
