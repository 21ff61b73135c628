"""What a deliver_sm carries: receipts as part reports, and incoming SMS reassembled (pure).

Receipt status (SMPP v3.4 Appendix B ``stat:`` / §5.2.28 message_state) is mapped into the
0..255 TP-Status space the store and the Dinstar dialect use (TS 23.040 §9.2.3.15), so a
receipt from an SMSC reads like a report from a SIM port: 0 delivered, 0x41.. failures.
ENROUTE and ACCEPTD are intermediate notifications: acknowledged, not reported.

Concatenated incoming SMS (TS 23.040 §9.2.3.24.1/.8 UDH, SMPP §5.3.2.22-24 SAR TLVs) are
kept per (source, destination, reference, total) until every part is there, in any order,
or until the reassembly timeout, after which the parts that did arrive are delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simgate.codecs.gsm7 import decode_septets
from simgate.codecs.smpp import DataSm, DeliverSm, DeliveryReceipt, EsmClass, MessageState
from simgate.codecs.udh import UdhError, parse_udh

__all__ = [
    "Assembled",
    "Reassembler",
    "decode_text",
    "receipt_status",
]

DELIVERED = 0
# TS 23.040 §9.2.3.15 permanent-error values, by receipt state.
_FAILURE_CODE: dict[MessageState, int] = {
    MessageState.UNDELIVERABLE: 0x41,  # incompatible destination / undeliverable
    MessageState.REJECTED: 0x42,  # connection rejected by SME
    MessageState.EXPIRED: 0x46,  # SM validity period expired
    MessageState.DELETED: 0x48,  # SM deleted by SC administration
    MessageState.UNKNOWN: 0x40,  # remote procedure error (nothing better known)
}
_INTERMEDIATE = frozenset({MessageState.ENROUTE, MessageState.ACCEPTED})


def receipt_status(receipt: DeliveryReceipt) -> int | None:
    """0 delivered, a failure code, or None for an intermediate (not final) receipt.

    A receipt whose ``stat`` is missing or unrecognised counts as delivered only when its
    ``dlvrd`` count is positive and ``err`` is zero, else as an unknown failure (0x40).
    """
    state = receipt.state
    if state is MessageState.DELIVERED:
        return DELIVERED
    if state in _INTERMEDIATE:
        return None
    if state is not None:
        return _FAILURE_CODE[state]
    if receipt.dlvrd and not receipt.error_code:
        return DELIVERED
    return 0x40


def decode_text(data: bytes, data_coding: int) -> str:
    """Text of a short message by data_coding (§5.2.19); never raises.

    0 (and 1, IA5/ASCII) as GSM-7 septets, 8 as UCS-2 (UTF-16-BE), 3 as Latin-1; the
    8-bit binary codings (2, 4) and anything unknown are shown as Latin-1 rather than lost.
    """
    coding = data_coding & 0xFF
    if coding in (0, 1, 0xF0) and not any(b > 0x7F for b in data):
        return decode_septets(data)
    if coding == 8 or coding & 0xEC == 0x08:  # also DCS "general group, UCS2" forms
        return data[: len(data) // 2 * 2].decode("utf-16-be", errors="replace")
    return data.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Assembled:
    sender: str
    recipient: str
    text: str
    parts: int  # parts that arrived (== total unless it timed out)


@dataclass(frozen=True, slots=True)
class _Key:
    sender: str
    recipient: str
    ref: int
    total: int


@dataclass(slots=True)
class _Pending:
    data_coding: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)


def _concat_info(pdu: DeliverSm | DataSm) -> tuple[int, int, int, bytes] | None:
    """(ref, total, seq, body) of a concatenated part, or None for a whole message."""
    body = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    body = body or pdu.tlvs.message_payload or b""
    if pdu.esm_class & EsmClass.UDHI:
        try:
            info, rest = parse_udh(body)
        except UdhError:
            return None
        if info is not None and info.total > 1:
            return info.ref, info.total, info.seq, rest
        return 0, 1, 1, rest
    tlvs = pdu.tlvs
    ref, total, seq = tlvs.sar_msg_ref_num, tlvs.sar_total_segments, tlvs.sar_segment_seqnum
    if ref is not None and total is not None and seq is not None and 1 <= seq <= total > 1:
        return ref, total, seq, body
    return None


class Reassembler:
    """Collects concatenated parts; ``now`` is in seconds (any monotonic base)."""

    def __init__(self, timeout: float, max_pending: int = 10_000) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[_Key, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, pdu: DeliverSm | DataSm, now: float) -> Assembled | None:
        """The finished message when ``pdu`` completes one (or is a whole message)."""
        info = _concat_info(pdu)
        if info is None or info[1] == 1:
            body = info[3] if info is not None else _body(pdu)
            text = decode_text(body, pdu.data_coding)
            return Assembled(pdu.source_addr, pdu.destination_addr, text, 1)
        ref, total, seq, body = info
        key = _Key(pdu.source_addr, pdu.destination_addr, ref, total)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:  # a flood of never-ending parts
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                del self._pending[oldest]
            pending = self._pending[key] = _Pending(pdu.data_coding, now)
        pending.parts.setdefault(seq, body)  # a redelivered part is the same part
        if len(pending.parts) < total:
            return None
        del self._pending[key]
        return _assemble(key, pending)

    def expired(self, now: float) -> list[Assembled]:
        """Messages whose parts stopped coming: what arrived, in order."""
        late = [k for k, p in self._pending.items() if now - p.started >= self.timeout]
        return [_assemble(k, self._pending.pop(k)) for k in late]

    def pending_keys(self) -> Iterable[tuple[str, int, int]]:
        return ((k.sender, k.ref, k.total) for k in self._pending)


def _body(pdu: DeliverSm | DataSm) -> bytes:
    body = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    return body or pdu.tlvs.message_payload or b""


def _assemble(key: _Key, pending: _Pending) -> Assembled:
    data = b"".join(pending.parts[s] for s in sorted(pending.parts))
    text = decode_text(data, pending.data_coding)
    return Assembled(key.sender, key.recipient, text, len(pending.parts))
