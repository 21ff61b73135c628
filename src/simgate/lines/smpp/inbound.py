"""What a deliver_sm carries: receipts as part reports, incoming SMS and their parts (pure).

Receipt status (SMPP v3.4 Appendix B ``stat:`` / §5.2.28 message_state) is mapped into the
0..255 TP-Status space the store and the Dinstar dialect use (TS 23.040 §9.2.3.15), so a
receipt from an SMSC reads like a report from a SIM port: 0 delivered, 0x41.. failures.
ENROUTE and ACCEPTD are intermediate notifications: acknowledged, not reported.

A part of a concatenated incoming SMS (TS 23.040 §9.2.3.24.1/.8 UDH, SMPP §5.3.2.22-24 SAR
TLVs) is handed on as an :class:`~simgate.lines.base.IncomingPart`: the sink keeps it durably
and reassembles (services/inbound.py), so the line holds nothing a restart could lose.
"""

from __future__ import annotations

from simgate.codecs.smpp import DataSm, DeliverSm, DeliveryReceipt, EsmClass, MessageState
from simgate.codecs.text import decode_text
from simgate.codecs.udh import UdhError, parse_udh
from simgate.lines.base import IncomingPart, IncomingSms

__all__ = ["incoming_of", "receipt_status"]

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


def incoming_of(
    pdu: DeliverSm | DataSm, *, received_ms: int, smsc: str
) -> IncomingSms | IncomingPart:
    """The incoming SMS a deliver_sm/data_sm carries, or the part of one it carries."""
    info = _concat_info(pdu)
    if info is None or info[1] == 1:
        body = info[3] if info is not None else _body(pdu)
        text = decode_text(body, pdu.data_coding)
        return IncomingSms(
            port=0,
            sender=pdu.source_addr,
            recipient=pdu.destination_addr,
            text=text,
            received_ms=received_ms,
            smsc=smsc,
        )
    ref, total, seq, body = info
    return IncomingPart(
        port=0,
        sender=pdu.source_addr,
        recipient=pdu.destination_addr,
        ref=ref,
        total=total,
        seq=seq,
        data_coding=pdu.data_coding,
        data=body,
        received_ms=received_ms,
        smsc=smsc,
    )


def _body(pdu: DeliverSm | DataSm) -> bytes:
    body = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    return body or pdu.tlvs.message_payload or b""
