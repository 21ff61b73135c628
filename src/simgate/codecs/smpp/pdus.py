"""SMPP v3.4 PDUs declared as data.

Each PDU is a frozen dataclass; its mandatory parameters are the dataclass fields
built with :mod:`~simgate.codecs.smpp.fields` helpers, in wire order, with the
maximum lengths of the spec tables (section 4). The length prefix of an octet
string (``sm_length``) is not a field: it is derived from ``short_message``.
Header fields (``sequence_number``, ``command_status``) and the optional ``tlvs``
live on the :class:`Pdu` base. All fields are keyword-only and default to
zero/empty, so ``SubmitSm(destination_addr="4477...", short_message=b"hi")`` works.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from simgate.codecs.smpp.constants import (
    SMPP_VERSION_34,
    CommandId,
    CommandStatus,
    as_status,
)
from simgate.codecs.smpp.fields import cstring, int1, octets, time_string
from simgate.codecs.smpp.tlvs import EMPTY_TLVS, Tlvs


@dataclass(frozen=True, kw_only=True, slots=True)
class Pdu:
    """Header + optional parameters common to every PDU."""

    COMMAND_ID: ClassVar[CommandId]

    sequence_number: int = 0
    command_status: int = CommandStatus.ESME_ROK
    tlvs: Tlvs = EMPTY_TLVS

    @property
    def command_id(self) -> CommandId:
        return self.COMMAND_ID

    @property
    def is_response(self) -> bool:
        return self.COMMAND_ID.is_response

    @property
    def status(self) -> CommandStatus | int:
        return as_status(self.command_status)

    @property
    def ok(self) -> bool:
        return self.command_status == CommandStatus.ESME_ROK


P = TypeVar("P", bound=Pdu)

_FIELD_GETTERS: dict[type[Pdu], tuple[tuple[str, ...], Callable[[Pdu], tuple[object, ...]]]] = {}


def numbered(pdu: P, sequence_number: int) -> P:
    """``pdu`` with ``sequence_number``: what ``dataclasses.replace`` gives, without running
    ``__init__`` and its checks again (every field is already valid and immutable), so the
    session's per-request copy costs one attribute fetch and a few slot writes."""
    cls = type(pdu)
    known = _FIELD_GETTERS.get(cls)
    if known is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        known = _FIELD_GETTERS.setdefault(cls, (names, operator.attrgetter(*names)))
    names, values = known
    clone = object.__new__(cls)
    for name, value in zip(names, values(pdu), strict=True):
        object.__setattr__(clone, name, value)
    object.__setattr__(clone, "sequence_number", sequence_number)
    return clone


# --- session management -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Bind(Pdu):
    system_id: str = cstring(16)
    password: str = cstring(9)
    system_type: str = cstring(13)
    interface_version: int = int1(SMPP_VERSION_34)
    addr_ton: int = int1()
    addr_npi: int = int1()
    address_range: str = cstring(41)


@dataclass(frozen=True, kw_only=True, slots=True)
class BindTransmitter(_Bind):
    COMMAND_ID = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, kw_only=True, slots=True)
class BindReceiver(_Bind):
    COMMAND_ID = CommandId.BIND_RECEIVER


@dataclass(frozen=True, kw_only=True, slots=True)
class BindTransceiver(_Bind):
    COMMAND_ID = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, kw_only=True, slots=True)
class _BindResp(Pdu):
    """Optional TLV: sc_interface_version."""

    system_id: str = cstring(16)


@dataclass(frozen=True, kw_only=True, slots=True)
class BindTransmitterResp(_BindResp):
    COMMAND_ID = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class BindReceiverResp(_BindResp):
    COMMAND_ID = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class BindTransceiverResp(_BindResp):
    COMMAND_ID = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class Outbind(Pdu):
    COMMAND_ID = CommandId.OUTBIND
    system_id: str = cstring(16)
    password: str = cstring(9)


@dataclass(frozen=True, kw_only=True, slots=True)
class Unbind(Pdu):
    COMMAND_ID = CommandId.UNBIND


@dataclass(frozen=True, kw_only=True, slots=True)
class UnbindResp(Pdu):
    COMMAND_ID = CommandId.UNBIND_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class EnquireLink(Pdu):
    COMMAND_ID = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, kw_only=True, slots=True)
class EnquireLinkResp(Pdu):
    COMMAND_ID = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class GenericNack(Pdu):
    COMMAND_ID = CommandId.GENERIC_NACK


# --- messages -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _ShortMessage(Pdu):
    """submit_sm / deliver_sm body (sections 4.4.1, 4.6.1)."""

    service_type: str = cstring(6)
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(21)
    dest_addr_ton: int = int1()
    dest_addr_npi: int = int1()
    destination_addr: str = cstring(21)
    esm_class: int = int1()
    protocol_id: int = int1()
    priority_flag: int = int1()
    schedule_delivery_time: str = time_string()
    validity_period: str = time_string()
    registered_delivery: int = int1()
    replace_if_present_flag: int = int1()
    data_coding: int = int1()
    sm_default_msg_id: int = int1()
    short_message: bytes = octets("sm_length")


@dataclass(frozen=True, kw_only=True, slots=True)
class SubmitSm(_ShortMessage):
    COMMAND_ID = CommandId.SUBMIT_SM


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliverSm(_ShortMessage):
    COMMAND_ID = CommandId.DELIVER_SM


@dataclass(frozen=True, kw_only=True, slots=True)
class _MessageIdResp(Pdu):
    message_id: str = cstring(65)


@dataclass(frozen=True, kw_only=True, slots=True)
class SubmitSmResp(_MessageIdResp):
    COMMAND_ID = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliverSmResp(_MessageIdResp):
    """message_id is unused (empty) in v3.4."""

    COMMAND_ID = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSm(Pdu):
    """Section 4.7.1; addresses are up to 65 octets here."""

    COMMAND_ID = CommandId.DATA_SM
    service_type: str = cstring(6)
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(65)
    dest_addr_ton: int = int1()
    dest_addr_npi: int = int1()
    destination_addr: str = cstring(65)
    esm_class: int = int1()
    registered_delivery: int = int1()
    data_coding: int = int1()


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSmResp(_MessageIdResp):
    COMMAND_ID = CommandId.DATA_SM_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class QuerySm(Pdu):
    COMMAND_ID = CommandId.QUERY_SM
    message_id: str = cstring(65)
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(21)


@dataclass(frozen=True, kw_only=True, slots=True)
class QuerySmResp(Pdu):
    COMMAND_ID = CommandId.QUERY_SM_RESP
    message_id: str = cstring(65)
    final_date: str = time_string()
    message_state: int = int1()
    error_code: int = int1()


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelSm(Pdu):
    COMMAND_ID = CommandId.CANCEL_SM
    service_type: str = cstring(6)
    message_id: str = cstring(65)
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(21)
    dest_addr_ton: int = int1()
    dest_addr_npi: int = int1()
    destination_addr: str = cstring(21)


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelSmResp(Pdu):
    COMMAND_ID = CommandId.CANCEL_SM_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplaceSm(Pdu):
    COMMAND_ID = CommandId.REPLACE_SM
    message_id: str = cstring(65)
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(21)
    schedule_delivery_time: str = time_string()
    validity_period: str = time_string()
    registered_delivery: int = int1()
    sm_default_msg_id: int = int1()
    short_message: bytes = octets("sm_length")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplaceSmResp(Pdu):
    COMMAND_ID = CommandId.REPLACE_SM_RESP


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertNotification(Pdu):
    """Section 4.12.1; optional TLV ms_availability_status. No response."""

    COMMAND_ID = CommandId.ALERT_NOTIFICATION
    source_addr_ton: int = int1()
    source_addr_npi: int = int1()
    source_addr: str = cstring(65)
    esme_addr_ton: int = int1()
    esme_addr_npi: int = int1()
    esme_addr: str = cstring(65)


#: Every PDU type the codec knows, by command id. (submit_multi is not supported:
#: it decodes as ESME_RINVCMDID.)
PDU_TYPES: dict[int, type[Pdu]] = {
    cls.COMMAND_ID: cls
    for cls in (
        BindTransmitter,
        BindReceiver,
        BindTransceiver,
        BindTransmitterResp,
        BindReceiverResp,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        GenericNack,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
        AlertNotification,
    )
}
