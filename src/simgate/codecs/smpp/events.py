"""Events returned by :class:`~simgate.codecs.smpp.session.SmppSession`, and its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from simgate.codecs.smpp.codec import MAX_PDU_LENGTH
from simgate.codecs.smpp.constants import CommandId
from simgate.codecs.smpp.pdus import Pdu
from simgate.codecs.smpp.states import Role, State


@dataclass(frozen=True, slots=True)
class SessionConfig:
    role: Role = Role.ESME
    #: Outstanding application requests allowed at once (keepalives not counted).
    window_size: int = 10
    #: Seconds to wait for a response before ResponseTimeout.
    response_timeout: float = 30.0
    #: Send enquire_link after this many seconds without receiving anything while
    #: bound; None disables keepalives.
    enquire_link_interval: float | None = 30.0
    max_pdu_length: int = MAX_PDU_LENGTH
    #: Decode PDUs strictly (spec maximum lengths); default lenient.
    strict: bool = False

    def __post_init__(self) -> None:
        if self.window_size < 1:
            raise ValueError("window_size must be >= 1")
        if self.response_timeout <= 0:
            raise ValueError("response_timeout must be > 0")
        if self.enquire_link_interval is not None and self.enquire_link_interval <= 0:
            raise ValueError("enquire_link_interval must be > 0 or None")


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request the application must handle; answer it with
    ``session.send(make_response(event.pdu, ...))`` unless it has no response
    (outbind, alert_notification)."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response (or generic_nack) to one of our requests."""

    request: Pdu
    response: Pdu
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.response.ok and self.response.COMMAND_ID is not CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True)
class ResponseTimeout:
    """No response within ``response_timeout``; the sequence number is released.
    The request may or may not have been processed by the peer."""

    request: Pdu


@dataclass(frozen=True, slots=True)
class RequestAborted:
    """The session closed (unbind, lost link) with this request unanswered."""

    request: Pdu
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Something the peer did wrong. Non-fatal ones were already dealt with (e.g.
    generic_nack queued); ``fatal`` means the session is CLOSED."""

    reason: str
    status: int | None = None
    sequence_number: int | None = None
    fatal: bool = False


Event: TypeAlias = (
    StateChanged
    | RequestReceived
    | ResponseReceived
    | ResponseTimeout
    | RequestAborted
    | ProtocolError
)
