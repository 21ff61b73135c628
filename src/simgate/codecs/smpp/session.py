"""Sans-IO SMPP v3.4 session (no sockets, no clock: time comes in as ``now``).

The driver owns the connection and a monotonic clock:

* bytes read from the socket go to :meth:`SmppSession.receive_data`, which returns
  :mod:`events <simgate.codecs.smpp.events>`;
* :meth:`SmppSession.send` validates a PDU against role/state/window, assigns the
  sequence number of requests, and returns the bytes to write;
* the session answers enquire_link and unbind itself, sends generic_nack for
  undecodable PDUs, rejects requests not allowed in the current state, and sends
  enquire_link keepalives; those bytes accumulate in an outbox the driver drains
  with :meth:`SmppSession.data_to_send` after every call;
* :meth:`SmppSession.tick` must be called at :meth:`SmppSession.next_deadline` (or
  later) to expire responses and queue keepalives.

``now`` is optional on receive_data/send/connection_lost: when omitted, the last
``now`` the session saw is used.
"""

from __future__ import annotations

from simgate.codecs.smpp.codec import decode, encode, generic_nack, response_type
from simgate.codecs.smpp.constants import CommandId
from simgate.codecs.smpp.errors import SmppDecodeError, SmppSessionError, WindowFullError
from simgate.codecs.smpp.events import (
    Event,
    ProtocolError,
    RequestAborted,
    RequestReceived,
    ResponseReceived,
    ResponseTimeout,
    SessionConfig,
    StateChanged,
)
from simgate.codecs.smpp.framer import PduFramer
from simgate.codecs.smpp.pdus import EnquireLink, Pdu, numbered
from simgate.codecs.smpp.states import (
    BIND_OK,
    BIND_STARTED,
    BOUND,
    TRANSITIONS,
    Role,
    State,
    Trigger,
    allowed_states,
    rejection_status,
)
from simgate.codecs.smpp.window import MAX_SEQUENCE, Window

__all__ = ["MAX_SEQUENCE", "SmppSession"]


class SmppSession:
    """One SMPP connection, as an ESME (client, default) or an SMSC (server).

    >>> from simgate.codecs.smpp import BindTransceiver, Role, SessionConfig, SmppSession
    >>> esme = SmppSession(SessionConfig(role=Role.ESME, window_size=10))
    >>> wire = esme.send(BindTransceiver(system_id="user", password="pw"), now=0.0)
    >>> esme.state
    <State.BINDING: 'binding'>
    """

    def __init__(self, config: SessionConfig | None = None, *, now: float = 0.0) -> None:
        self.config = config or SessionConfig()
        self._state = State.OPEN
        self._framer = PduFramer(self.config.max_pdu_length)
        self._outbox = bytearray()
        self._window = Window(self.config.window_size)
        self._inbound: dict[int, CommandId] = {}  # requests the application must answer
        self._now = now
        self._last_rx = now

    # --- inspection -------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        """CLOSED: flush :meth:`data_to_send`, then close the connection."""
        return self._state is State.CLOSED

    @property
    def role(self) -> Role:
        return self.config.role

    @property
    def outstanding(self) -> int:
        """Application requests awaiting a response."""
        return self._window.outstanding

    @property
    def awaiting_our_response(self) -> frozenset[int]:
        """Sequence numbers of received requests the application has not answered."""
        return frozenset(self._inbound)

    def can_send(self) -> bool:
        """The session is not closed and the window has room for one more request."""
        return not self.closed and self._window.has_room()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do (None: nothing scheduled)."""
        if self.closed:
            return None
        deadlines = (self._window.earliest_deadline(), self._keepalive_due_at())
        return min((d for d in deadlines if d is not None), default=None)

    def data_to_send(self) -> bytes:
        """Drain bytes the session produced by itself (auto-answers, keepalives,
        generic_nacks). Call after receive_data/tick."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    # --- input ------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> list[Event]:
        now = self._clock(now)
        events: list[Event] = []
        if self.closed:
            return events
        if data:
            self._last_rx = now
        try:
            frames = self._framer.feed(data)
        except SmppDecodeError:
            frames = []
        for frame in frames:
            if self.closed:
                break
            self._handle_frame(frame, now, events)
        error = self._framer.error
        if error is not None and not self.closed:
            self._outbox += generic_nack(error.status, error.sequence_number or 0)
            events.append(
                ProtocolError(error.reason, error.status, error.sequence_number, fatal=True)
            )
            self._fire(Trigger.LINK_LOST, events, f"unusable stream: {error.reason}")
        return events

    def tick(self, now: float) -> list[Event]:
        """Expire responses whose deadline passed; queue an enquire_link when idle."""
        now = self._clock(now)
        events: list[Event] = []
        if self.closed:
            return events
        for pending in self._window.pop_expired(now):
            if self.closed:
                break
            events.append(ResponseTimeout(pending.request))
            if pending.request.COMMAND_ID is CommandId.ENQUIRE_LINK:
                self._fire(Trigger.LINK_LOST, events, "enquire_link timed out")
            else:
                self._settle(pending.request.COMMAND_ID, False, events)
        keepalive = self._keepalive_due_at()
        if keepalive is not None and keepalive <= now:
            request = EnquireLink(sequence_number=self._window.next_sequence())
            self._outbox += encode(request)
            self._window.add(request, now, self.config.response_timeout, auto=True)
        return events

    def connection_lost(self, now: float | None = None) -> list[Event]:
        """The transport closed: CLOSED, every outstanding request aborted."""
        self._clock(now)
        events: list[Event] = []
        self._fire(Trigger.LINK_LOST, events, "connection lost")
        return events

    # --- output -----------------------------------------------------------------

    def send(self, pdu: Pdu, now: float | None = None) -> bytes:
        """Validate ``pdu`` and return its bytes. Requests get the next sequence
        number (the one in ``pdu`` is ignored); responses must answer a request
        received earlier (``make_response`` copies its sequence number).

        Raises SmppSessionError (not allowed for this role/state, nothing to
        answer), WindowFullError, SmppEncodeError. State changes caused by send
        (bind, unbind, bind_resp) are visible in :attr:`state`, not as events.
        """
        now = self._clock(now)
        if self.closed:
            raise SmppSessionError("session is closed")
        if pdu.is_response:
            return self._send_response(pdu)
        command_id = pdu.COMMAND_ID
        states = allowed_states(command_id, self.role)
        if states is None:
            raise SmppSessionError(f"an {self.role.name} does not send {command_id.name}")
        if self._state not in states:
            raise SmppSessionError(f"{command_id.name} not allowed in state {self._state.name}")
        tracked = response_type(command_id) is not None  # not outbind/alert_notification
        if tracked and not self.can_send():
            raise WindowFullError(f"{self.outstanding} requests outstanding")
        sequence = self._window.next_sequence()
        data = encode(pdu, sequence_number=sequence)  # encoded before anything changes
        if not tracked:
            self._window.skip_sequence()
            return data
        # The window and the events keep the request as numbered on the wire.
        self._window.add(numbered(pdu, sequence), now, self.config.response_timeout)
        ignored: list[Event] = []
        if command_id in BIND_STARTED:
            self._fire(BIND_STARTED[command_id], ignored)
        elif command_id is CommandId.UNBIND:
            self._fire(Trigger.UNBIND_SENT, ignored)
        return data

    def _send_response(self, pdu: Pdu) -> bytes:
        sequence = pdu.sequence_number
        request_id = self._inbound.get(sequence)
        is_nack = pdu.COMMAND_ID is CommandId.GENERIC_NACK
        if not is_nack and (request_id is None or request_id.response_id != pdu.COMMAND_ID):
            raise SmppSessionError(
                f"{pdu.COMMAND_ID.name} #{sequence} answers no request awaiting a response"
            )
        data = encode(pdu)
        self._inbound.pop(sequence, None)
        if request_id in BIND_OK:
            self._settle(request_id, pdu.ok and not is_nack, [])
        return data

    # --- incoming PDUs ----------------------------------------------------------

    def _handle_frame(self, frame: bytes, now: float, events: list[Event]) -> None:
        try:
            pdu = decode(frame, strict=self.config.strict)
        except SmppDecodeError as exc:
            self._on_undecodable(exc, events)
            return
        if pdu.is_response:
            self._on_response(pdu, now, events)
        else:
            self._on_request(pdu, events)

    def _on_undecodable(self, exc: SmppDecodeError, events: list[Event]) -> None:
        sequence = exc.sequence_number
        events.append(ProtocolError(f"undecodable PDU: {exc.reason}", exc.status, sequence))
        if exc.command_id is not None and exc.command_id & 0x8000_0000:
            # Never nack a response; fail the request it answers, if any.
            pending = self._window.pop(sequence)
            if pending is not None:
                events.append(RequestAborted(pending.request, f"bad response: {exc.reason}"))
                self._settle(pending.request.COMMAND_ID, False, events)
            return
        self._outbox += generic_nack(exc.status, sequence or 0)

    def _on_response(self, pdu: Pdu, now: float, events: list[Event]) -> None:
        sequence = pdu.sequence_number
        pending = self._window.get(sequence)
        if pending is None:
            events.append(
                ProtocolError(f"unexpected {pdu.COMMAND_ID.name} #{sequence}", None, sequence)
            )
            return
        request_id = pending.request.COMMAND_ID
        is_nack = pdu.COMMAND_ID is CommandId.GENERIC_NACK
        if not is_nack and request_id.response_id != pdu.COMMAND_ID:
            reason = f"{pdu.COMMAND_ID.name} #{sequence} does not answer {request_id.name}"
            events.append(ProtocolError(reason, None, sequence))
            return
        self._window.pop(sequence)
        if not pending.auto:
            events.append(ResponseReceived(pending.request, pdu, now - pending.sent_at))
        self._settle(request_id, pdu.ok and not is_nack, events)

    def _on_request(self, pdu: Pdu, events: list[Event]) -> None:
        command_id = pdu.COMMAND_ID
        status = rejection_status(command_id, self.role, self._state)
        if status is None:
            self._accept(pdu, events)
            return
        answer = response_type(command_id)
        if answer is not None:
            self._outbox += encode(
                answer(sequence_number=pdu.sequence_number, command_status=status)
            )
        reason = f"{command_id.name} refused in state {self._state.name} ({status.name})"
        events.append(ProtocolError(reason, status if answer else None, pdu.sequence_number))

    def _accept(self, pdu: Pdu, events: list[Event]) -> None:
        command_id = pdu.COMMAND_ID
        answer = response_type(command_id)
        if answer is not None and command_id in (CommandId.ENQUIRE_LINK, CommandId.UNBIND):
            self._outbox += encode(answer(sequence_number=pdu.sequence_number))
            if command_id is CommandId.UNBIND:
                self._fire(Trigger.UNBIND_RECEIVED, events, "unbind received")
            return
        if answer is not None:
            self._inbound[pdu.sequence_number] = command_id
        events.append(RequestReceived(pdu))
        if command_id in BIND_STARTED:
            self._fire(BIND_STARTED[command_id], events)

    # --- helpers ----------------------------------------------------------------

    def _clock(self, now: float | None) -> float:
        if now is not None:
            self._now = now
        return self._now

    def _keepalive_due_at(self) -> float | None:
        interval = self.config.enquire_link_interval
        if interval is None or self._state not in BOUND:
            return None
        if self._window.has_enquire_link():
            return None
        return self._last_rx + interval

    def _settle(self, request_id: CommandId, ok: bool, events: list[Event]) -> None:
        """State effect of a bind/unbind exchange ending (answered, nacked, timed out)."""
        if request_id in BIND_OK:
            self._fire(BIND_OK[request_id] if ok else Trigger.BIND_FAILED, events)
        elif request_id is CommandId.UNBIND:
            self._fire(Trigger.UNBIND_DONE, events, "unbound")

    def _fire(self, trigger: Trigger, events: list[Event], reason: str = "") -> None:
        new = TRANSITIONS.get((self._state, trigger))
        if new is None or new is self._state:
            return
        old, self._state = self._state, new
        events.append(StateChanged(old, new))
        if new is State.CLOSED:
            for pending in self._window.clear():
                if not pending.auto:
                    events.append(RequestAborted(pending.request, reason or "closed"))
            self._inbound.clear()
