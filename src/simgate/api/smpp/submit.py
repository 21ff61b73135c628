"""A submit_sm or data_sm read into what simgate accepts (pure; SMPP v3.4 §4.4.1, §4.7.1).

Answers with the status a real SMSC gives for what is wrong with it (§5.1.3): an empty or
over-long destination ESME_RINVDSTADR, an alphanumeric source over 11 characters
ESME_RINVSRCADR, a data_coding we cannot turn into text ESME_RINVDCS (SMPP 5.0 §4.7.5; v3.4
has no such code), a broken UDH ESME_RINVESMCLASS, both short_message and message_payload
ESME_RINVPARLEN (§5.3.2.32: mutually exclusive), a malformed time ESME_RINVEXPIRY /
ESME_RINVSCHED, a validity period already past ESME_RINVEXPIRY.

Times (§7.1.1) become epoch milliseconds here: absolute ``YYMMDDhhmmsstnnp`` with ``nn``
quarter hours ahead of (``+``) or behind (``-``) UTC, relative ``YYMMDDhhmmss000R`` counted
from now (a year 365 days, a month 30 days: §7.1.1.2 leaves the calendar to the SMSC). A
schedule in the past means "now", as SMSCs treat it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simgate.codecs.segments import Encoding
from simgate.codecs.smpp import CommandStatus, DataSm, EsmClass, SubmitSm
from simgate.codecs.udh import UdhError, parse_udh

ESME_RINVDCS = 0x0000_0104  # SMPP 5.0 "invalid data_coding scheme"

# data_coding (§5.2.19) → the encoding simgate sends the text in (None: choose, GSM-7 if
# it fits). 0 SMSC default alphabet, 1 IA5 (ASCII), 3 Latin-1, 8 UCS-2.
CODINGS: dict[int, Encoding | None] = {0: None, 1: None, 3: Encoding.LATIN1, 8: Encoding.UCS2}
ALPHANUMERIC_TON = 5
MAX_ALPHANUMERIC = 11  # GSM 03.40 alphanumeric originator: 11 characters
MAX_DIGITS = 20
# §7.1.1: YYMMDDhhmmsstnnp, p '+'/'-' (absolute, offset from UTC) or 'R' (relative).
_TIME = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+\-R])$")
# §5.2.17 registered_delivery bits 1..0: 1 a receipt on success or failure, 2 on failure only.
RECEIPT_ANY = 1
RECEIPT_ON_FAILURE = 2


class BadTime(ValueError):
    pass


def smpp_time_ms(text: str, *, now_ms: int) -> int | None:
    """An SMPP time (§7.1.1) as epoch ms; None for the empty field ("none given").
    Raises BadTime when it is not one."""
    if not text:
        return None
    m = _TIME.match(text)
    if m is None:
        raise BadTime(f"time {text!r} is not YYMMDDhhmmsstnnp")
    yy, mo, dd, hh, mi, ss, tenths, nn = (int(g) for g in m.groups()[:8])
    kind = m.group(9)
    if kind == "R":
        span = timedelta(days=yy * 365 + mo * 30 + dd, hours=hh, minutes=mi, seconds=ss)
        return now_ms + int(span.total_seconds()) * 1000
    try:
        local = datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * 100_000, tzinfo=UTC)
    except ValueError as exc:
        raise BadTime(f"time {text!r}: {exc}") from None
    if nn > 48:  # quarter hours: at most 12 hours either way
        raise BadTime(f"time {text!r}: UTC offset {nn} quarter hours")
    offset = timedelta(minutes=15 * nn)
    utc = local - offset if kind == "+" else local + offset
    return int(utc.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Concat:
    """Which part of a long message this is: from the UDH (8/16-bit ref) or SAR TLVs."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class Piece:
    sender: str
    to: str
    data_coding: int
    body: bytes  # user data, UDH removed
    concat: Concat | None
    report: bool  # registered_delivery asks for a final receipt (§5.2.17 bits 1..0)
    encoding: Encoding | None
    failure_only: bool = False  # registered_delivery 2: a receipt only if it fails
    not_before_ms: int | None = None  # schedule_delivery_time
    valid_until_ms: int | None = None  # validity_period


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


def read_submit(pdu: SubmitSm | DataSm, *, now_ms: int) -> Piece | Refused:
    to = pdu.destination_addr.strip()
    if not to or len(to) > MAX_DIGITS:
        return Refused(CommandStatus.ESME_RINVDSTADR, "destination address missing or too long")
    sender = pdu.source_addr.strip()
    if pdu.source_addr_ton == ALPHANUMERIC_TON and len(sender) > MAX_ALPHANUMERIC:
        return Refused(CommandStatus.ESME_RINVSRCADR, "alphanumeric source over 11 characters")
    if len(sender) > MAX_DIGITS:
        return Refused(CommandStatus.ESME_RINVSRCADR, "source address too long")
    coding = pdu.data_coding
    if coding not in CODINGS:
        return Refused(ESME_RINVDCS, f"data_coding {coding} is not text simgate can send")
    not_before: int | None = None
    valid_until: int | None = None
    if isinstance(pdu, SubmitSm):
        try:
            valid_until = smpp_time_ms(pdu.validity_period, now_ms=now_ms)
        except BadTime as exc:
            return Refused(CommandStatus.ESME_RINVEXPIRY, str(exc))
        try:
            not_before = smpp_time_ms(pdu.schedule_delivery_time, now_ms=now_ms)
        except BadTime as exc:
            return Refused(CommandStatus.ESME_RINVSCHED, str(exc))
        if not_before is not None and not_before <= now_ms:
            not_before = None  # a time already past: send now
        if valid_until is not None and valid_until <= max(now_ms, not_before or 0):
            return Refused(CommandStatus.ESME_RINVEXPIRY, "validity ends before it could be sent")
    short = getattr(pdu, "short_message", b"")
    payload = pdu.tlvs.message_payload
    if short and payload is not None:
        return Refused(CommandStatus.ESME_RINVPARLEN, "short_message and message_payload")
    body = payload if payload is not None else short
    concat: Concat | None = None
    if pdu.esm_class & EsmClass.UDHI:
        try:
            info, body = parse_udh(body)
        except UdhError as exc:
            return Refused(CommandStatus.ESME_RINVESMCLASS, f"bad UDH: {exc}")
        if info is not None and info.total > 1:
            concat = Concat(info.ref, info.total, info.seq)
    else:
        total, seq = pdu.tlvs.sar_total_segments, pdu.tlvs.sar_segment_seqnum
        ref = pdu.tlvs.sar_msg_ref_num
        if total and seq and ref is not None and total > 1 and 1 <= seq <= total:
            concat = Concat(ref, total, seq)
    return Piece(
        sender=sender,
        to=to,
        data_coding=coding,
        body=body,
        concat=concat,
        report=(pdu.registered_delivery & 0x03) in (RECEIPT_ANY, RECEIPT_ON_FAILURE),
        encoding=CODINGS[coding],
        failure_only=(pdu.registered_delivery & 0x03) == RECEIPT_ON_FAILURE,
        not_before_ms=not_before,
        valid_until_ms=valid_until,
    )
