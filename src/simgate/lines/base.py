"""The line interface: what every driver (sim, smpp, modem, sip) offers the dispatcher."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from simgate.codecs.segments import Encoding
from simgate.domain.queue import ReportHint


class Capability(enum.StrEnum):
    SMS = "sms"
    REPORTS = "reports"  # delivery reports come back
    INBOUND = "inbound"  # incoming SMS come in
    USSD = "ussd"
    PORT_CONTROL = "port_control"  # ports can be locked/unlocked/reset
    # The line calls ``SubmitRequest.on_write`` right before a message can leave (nothing
    # awaited in between), so a crash journal knows which of a batch may have reached it.
    WRITE_MARKS = "write_marks"


@dataclass(frozen=True, slots=True)
class PortInfo:
    index: int  # 0-based, as Dinstar numbers its ports (spec §2.1)
    name: str
    imsi: str
    iccid: str
    number: str
    signal: int  # 0..31, as AT+CSQ reports it (3GPP TS 27.007 §8.5)
    registered: bool
    operator: str = ""
    locked: bool = False
    # Modem lines (lines/modem): the module's IMEI, the Dinstar registration state name
    # (spec §2.8: REGISTER_OK, PIN_REQUIRE, ...; "" = derive from ``registered``), and
    # whether the port is blocked after repeated failures (smstools' blocking).
    imei: str = ""
    reg: str = ""
    blocked: bool = False

    @property
    def usable(self) -> bool:
        return self.registered and not self.locked and not self.blocked


class Outcome(enum.Enum):
    OK = "ok"  # the line took it; part_refs identify the parts for reports
    RETRY = "retry"  # not now (throttled, queue full, port busy): try again later
    REJECTED = "rejected"  # refused for good before it left (bad destination, barred)
    UNKNOWN = "unknown"  # sent, but no answer: it may or may not have left (never resend)


class SubmitRequest(NamedTuple):
    """One message for a line to submit (a NamedTuple, as SubmitResult: the dispatcher builds
    one per message, domain/queue.py)."""

    message_id: int
    port: int
    sender: str
    recipient: str
    text: str
    encoding: Encoding
    parts: int
    report_requested: bool
    lease_seq: int = 0  # which lease of the message this is: a line that can, names it in a
    # report's hint (ReportHint), so the report finds the message without the part row
    # Called with message_id just before the message is written (lines with WRITE_MARKS).
    # A field like the others now (it was left out of the dataclass's == and repr): no
    # code compares or logs requests.
    on_write: Callable[[int], None] | None = None


class SubmitResult(NamedTuple):
    """A line's answer to one submit (a NamedTuple, not a frozen dataclass: one is built per
    message, and the dataclass cost 3.5 times as much to build, domain/queue.py)."""

    outcome: Outcome
    part_refs: tuple[str, ...] = ()
    first_ref: int | None = None  # TP-MR of the first part (Dinstar ref_id, spec §2.3)
    error_code: int | None = None
    error_text: str | None = None
    retry_after_s: float | None = None


class LineReport(NamedTuple):
    """A delivery report for one part, identified by the ref the line gave at submit (a
    NamedTuple, as SubmitResult: one is built per part)."""

    line_ref: str
    status_code: int  # 0 delivered, else a failure code (0..255 style, as Dinstar shows)
    done_ms: int
    # What the line remembers of the submit (message, lease, part): lets the report settle a
    # message whose submit was never recorded (README "Crash safety"). None when unknown.
    hint: ReportHint | None = None


@dataclass(frozen=True, slots=True)
class IncomingSms:
    port: int
    sender: str
    recipient: str
    text: str
    received_ms: int
    smsc: str = ""
    parts: int = 1


@dataclass(frozen=True, slots=True)
class IncomingPart:
    """One part of a concatenated incoming SMS (TS 23.040 §9.2.3.24.1/.8 UDH, SMPP SAR TLVs).

    Parts of one message share (port, sender, recipient, ref, total); ``data`` is the user
    data without its header, decoded only once every part is there (codecs.text.join_parts).
    """

    port: int
    sender: str
    recipient: str
    ref: int  # the concatenation reference (8 or 16 bits)
    total: int
    seq: int  # 1..total
    data_coding: int  # SMPP data_coding, or the TP-DCS of a modem (codecs.text)
    data: bytes
    received_ms: int
    smsc: str = ""


class InboundSink(Protocol):
    """Where a line hands what arrives; each call returns once it is committed."""

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None: ...

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None: ...

    async def incoming_parts(self, line: str, parts: Sequence[IncomingPart]) -> None:
        """Keep ``parts`` durably; a part that completes its message stores the whole SMS
        in the same commit. Raises :class:`~simgate.errors.Busy` when the line has too many
        messages waiting for parts (a flood): the line refuses the part for now."""
        ...

    async def expire_parts(self, line: str, *, started_before_ms: int) -> None:
        """Store, as they are, the messages whose first part came before the time given
        and whose other parts never came (the line's reassembly timeout)."""
        ...

    async def port_changed(self, line: str, port: int, up: bool) -> None: ...


class Line(Protocol):
    name: str
    capabilities: frozenset[Capability]
    # True when only one worker may drive the line at a time (owned through a lease row).
    exclusive: bool
    # Messages per minute per port; 0 = unlimited (SIM cards get barred when they go faster).
    port_rate_per_minute: int

    def ports(self) -> Sequence[PortInfo]: ...

    async def start(self, sink: InboundSink) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, request: SubmitRequest) -> SubmitResult: ...


# ---- optional abilities (a line declares them in ``capabilities`` and implements these) ----


# Called once with the ids of a batch's messages just before they may leave (one journal
# write per batch, dispatch/journal.py), instead of ``SubmitRequest.on_write`` per message.
BatchMarks = Callable[[Sequence[int]], None]


@runtime_checkable
class BatchLine(Protocol):
    """A line that can take a whole batch in one call (issue 15: the dispatcher's cost per
    message). ``batches`` says whether it does so now: a line whose submits each wait (a
    latency, a window, a port) keeps the one-by-one path, where a message leaves when its
    own submit does. Lines without it (SMPP, modem) go one by one as ever."""

    @property
    def batches(self) -> bool: ...

    async def submit_batch(
        self, requests: Sequence[SubmitRequest], *, on_write: BatchMarks | None
    ) -> list[SubmitResult]:
        """The answers, in the order of ``requests``; ``on_write`` is called with the ids
        that may leave before any of them does (their ``on_write`` fields are not used)."""
        ...


class UssdStatus(enum.Enum):
    """What a port did with a USSD request (Dinstar per-port codes 200/486/503, spec §2.7)."""

    SENT = "sent"
    BUSY = "busy"  # the port is in the middle of something else (an SMS, a call)
    NOT_REGISTERED = "not_registered"


@dataclass(frozen=True, slots=True)
class UssdResult:
    status: UssdStatus
    reply: str | None = None  # the network's answer, when it came within the request


@runtime_checkable
class UssdLine(Protocol):
    """A line whose ports can send USSD strings (Capability.USSD)."""

    async def send_ussd(self, port: int, text: str) -> UssdResult: ...

    async def cancel_ussd(self, port: int) -> UssdResult: ...


class PortAction(enum.Enum):
    RESET = "reset"
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    LOCK = "lock"  # stop using the port for traffic
    UNLOCK = "unlock"


@runtime_checkable
class PortControlLine(Protocol):
    """A line whose ports can be reset, powered and locked (Capability.PORT_CONTROL)."""

    async def control_port(self, port: int, action: PortAction) -> bool: ...
