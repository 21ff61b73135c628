"""A submit_sm or data_sm read into what simgate accepts (pure; SMPP v3.4 §4.4.1, §4.7.1).

Answers with the status a real SMSC gives for what is wrong with it (§5.1.3): an empty or
over-long destination ESME_RINVDSTADR, an alphanumeric source over 11 characters
ESME_RINVSRCADR, a data_coding we cannot turn into text ESME_RINVDCS (SMPP 5.0 §4.7.5; v3.4
has no such code), a broken UDH ESME_RINVESMCLASS, both short_message and message_payload
ESME_RINVPARLEN (§5.3.2.32: mutually exclusive), a malformed time ESME_RINVEXPIRY /
ESME_RINVSCHED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
_TIME = re.compile(r"^\d{12}[0-9]\d{2}[+\-R]$")


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


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str


def read_submit(pdu: SubmitSm | DataSm) -> Piece | Refused:
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
    if isinstance(pdu, SubmitSm):
        for value, status in (
            (pdu.validity_period, CommandStatus.ESME_RINVEXPIRY),
            (pdu.schedule_delivery_time, CommandStatus.ESME_RINVSCHED),
        ):
            if value and not _TIME.match(value):
                return Refused(status, f"time {value!r} is not YYMMDDhhmmsstnnp")
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
        report=(pdu.registered_delivery & 0x03) in (1, 2),
        encoding=CODINGS[coding],
    )
