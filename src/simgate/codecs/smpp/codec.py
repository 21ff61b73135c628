"""Encode/decode PDUs from their declarations in :mod:`~simgate.codecs.smpp.pdus`."""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from typing import Any, Final

from simgate.codecs.smpp.constants import (
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
    as_status,
)
from simgate.codecs.smpp.errors import SmppDecodeError, SmppEncodeError
from simgate.codecs.smpp.fields import (
    TEXT_ENCODING,
    Appender,
    CString,
    FieldKind,
    Reader,
    body_layout,
)
from simgate.codecs.smpp.pdus import PDU_TYPES, GenericNack, Pdu, SubmitSmResp
from simgate.codecs.smpp.tlvs import EMPTY_TLVS, Tlv, Tlvs

HEADER_LENGTH: Final = 16
#: Largest PDU we accept; SMPP has no limit but a v3.4 PDU with a full
#: message_payload (64 KiB max TLV) fits.
MAX_PDU_LENGTH: Final = 65_536 + HEADER_LENGTH


_LAYOUTS: dict[type[Pdu], tuple[tuple[str, FieldKind], ...]] = {}


def layout(cls: type[Pdu]) -> tuple[tuple[str, FieldKind], ...]:
    """Mandatory parameters of ``cls`` in wire order."""
    try:
        return _LAYOUTS[cls]
    except KeyError:
        return _LAYOUTS.setdefault(cls, body_layout(cls))


_HEADER: Final = struct.Struct(">IIII")


def _id_max() -> int:
    """message_id's declared maximum (with its NUL) in submit_sm_resp."""
    (kind,) = (kind for name, kind in layout(SubmitSmResp) if name == "message_id")
    assert isinstance(kind, CString)
    return kind.max_len


_SUBMIT_SM_RESP_ID_MAX: Final = _id_max()


class _Encoder:
    """The mandatory parameters of one PDU type as one attribute fetch and a list of
    appenders, built once per type (the declarations are walked once, not per PDU)."""

    __slots__ = ("appenders", "values")

    def __init__(self, cls: type[Pdu]) -> None:
        names = [name for name, _ in layout(cls)]
        self.appenders: tuple[Appender, ...] = tuple(
            kind.appender(name) for name, kind in layout(cls)
        )
        fetch = operator.attrgetter(*names) if names else None
        if fetch is None:
            self.values: Callable[[Pdu], tuple[object, ...]] = lambda pdu: ()
        elif len(names) == 1:
            self.values = lambda pdu: (fetch(pdu),)
        else:
            self.values = fetch


_ENCODERS: dict[type[Pdu], _Encoder] = {}


def encode(pdu: Pdu, *, sequence_number: int | None = None) -> bytes:
    """Serialise ``pdu`` (header, mandatory parameters, TLVs). Raises SmppEncodeError.

    ``sequence_number`` replaces the PDU's own in the header (the session numbers a
    request without copying it first). The pieces are gathered in one list and joined
    once, the header packed in front when the length is known: one bytes object per PDU.
    """
    sequence = pdu.sequence_number if sequence_number is None else sequence_number
    if not 0 <= sequence <= 0xFFFF_FFFF:
        raise SmppEncodeError(f"sequence_number {sequence} out of range")
    if not 0 <= pdu.command_status <= 0xFFFF_FFFF:
        raise SmppEncodeError(f"command_status {pdu.command_status} out of range")
    cls = type(pdu)
    encoder = _ENCODERS.get(cls) or _ENCODERS.setdefault(cls, _Encoder(cls))
    out: list[bytes] = [b""]  # the header's place
    for value, append in zip(encoder.values(pdu), encoder.appenders, strict=True):
        append(value, out)
    tlvs = pdu.tlvs
    if tlvs.items:
        if getattr(pdu, "short_message", b"") and tlvs.raw(0x0424) is not None:
            raise SmppEncodeError("short_message and message_payload are mutually exclusive")
        for tlv in tlvs:
            problem = tlv.problem()
            if problem:
                raise SmppEncodeError(problem)
        out.append(tlvs.encode())
    length = HEADER_LENGTH + sum(map(len, out))
    out[0] = _HEADER.pack(length, pdu.COMMAND_ID, pdu.command_status, sequence)
    return b"".join(out)


def decode_header(data: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number)."""
    if len(data) < HEADER_LENGTH:
        raise SmppDecodeError(
            f"truncated header: {len(data)} octets", status=CommandStatus.ESME_RINVCMDLEN
        )
    a, b, c, d = _HEADER.unpack_from(data)
    return a, b, c, d


def decode(data: bytes, *, strict: bool = False) -> Pdu:
    """Parse exactly one PDU. Any problem raises :class:`SmppDecodeError`.

    Lenient by default about what peers get wrong in practice: C-octet strings
    longer than the spec maximum, time strings of odd lengths, error responses
    without a body. ``strict=True`` rejects those too (ESME_RINVPARLEN).
    """
    data = bytes(data)
    length, command_id, status, sequence = decode_header(data)
    if length != len(data):
        raise SmppDecodeError(
            f"command_length {length} but {len(data)} octets",
            status=CommandStatus.ESME_RINVCMDLEN,
            command_id=command_id,
            sequence_number=sequence,
        )
    cls = PDU_TYPES.get(command_id)
    if cls is None:
        raise SmppDecodeError(
            f"unsupported command_id {command_id:#010x}",
            status=CommandStatus.ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=sequence,
        )
    if command_id == CommandId.SUBMIT_SM_RESP and data.find(b"\x00", HEADER_LENGTH) == length - 1:
        # The answer to every message sent: its one C-octet string ends the PDU (no TLVs),
        # so it is read without the generic walk. Same result as below, same strict limit.
        message_id = data[HEADER_LENGTH:-1]
        if not strict or len(message_id) < _SUBMIT_SM_RESP_ID_MAX:
            return SubmitSmResp(
                sequence_number=sequence,
                command_status=as_status(status),
                message_id=message_id.decode(TEXT_ENCODING),
            )
    header: dict[str, Any] = {"sequence_number": sequence, "command_status": as_status(status)}
    if len(data) == HEADER_LENGTH and command_id & RESPONSE_BIT and (status or not strict):
        # Error responses omit their body (e.g. v3.4 4.4.2); some SMSCs omit it always.
        return cls(**header)
    reader = Reader(data, HEADER_LENGTH, command_id=command_id, sequence_number=sequence)
    fields: dict[str, Any] = {name: kind.decode(reader, name, strict) for name, kind in layout(cls)}
    return cls(**header, **fields, tlvs=_decode_tlvs(reader))


def _decode_tlvs(reader: Reader) -> Tlvs:
    if not reader.remaining:
        return EMPTY_TLVS
    items: list[Tlv] = []
    bad = CommandStatus.ESME_RINVOPTPARSTREAM
    while reader.remaining:
        if reader.remaining < 4:
            raise reader.error(f"{reader.remaining} stray octets after the TLVs", bad)
        tag = reader.uint(2, "tag")
        size = reader.uint(2, "length")
        tlv = Tlv(tag, reader.take(size, f"TLV {tag:#06x} value", bad))
        problem = tlv.problem()
        if problem:
            raise reader.error(problem, CommandStatus.ESME_RINVPARLEN)
        items.append(tlv)
    return Tlvs(tuple(items))


def response_type(command_id: CommandId) -> type[Pdu] | None:
    """PDU class answering ``command_id`` (None: no response, e.g. outbind)."""
    response_id = command_id.response_id
    return None if response_id is None else PDU_TYPES.get(response_id)


def make_response(request: Pdu, status: int = CommandStatus.ESME_ROK, **fields: Any) -> Pdu:
    """The response to ``request`` with its sequence number, e.g.
    ``make_response(submit, message_id="abc")``. ValueError for PDUs that have no
    response (responses, outbind, alert_notification)."""
    cls = response_type(request.COMMAND_ID)
    if cls is None:
        raise ValueError(f"{request.COMMAND_ID.name} has no response PDU")
    return cls(sequence_number=request.sequence_number, command_status=status, **fields)


def generic_nack(status: int, sequence_number: int = 0) -> bytes:
    return encode(GenericNack(sequence_number=sequence_number, command_status=status))
