"""Optional parameters (TLVs, SMPP v3.4 section 5.3).

A PDU carries a :class:`Tlvs`: the ordered tuple of raw ``Tlv(tag, value)`` exactly as
on the wire (so unknown and vendor TLVs are re-encoded unchanged, order and
duplicates included), plus typed access to the tags simgate uses through
:class:`TlvKey` objects (``tlvs.get(MESSAGE_PAYLOAD)``) or properties
(``tlvs.message_payload``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from simgate.codecs.smpp.constants import MessageState
from simgate.codecs.smpp.errors import SmppEncodeError
from simgate.codecs.smpp.tlv_types import (
    CStringCodec,
    IntCodec,
    NetworkErrorCode,
    NetworkErrorCodec,
    OctetsCodec,
    TlvCodec,
    TlvTag,
)

T = TypeVar("T")


@dataclass(frozen=True)
class TlvKey(Generic[T]):
    """A tag with a typed value codec, e.g. ``SAR_MSG_REF_NUM: TlvKey[int]``."""

    tag: TlvTag
    codec: TlvCodec[T]

    @property
    def name(self) -> str:
        return self.tag.name.lower()


MESSAGE_PAYLOAD = TlvKey(TlvTag.MESSAGE_PAYLOAD, OctetsCodec())
SAR_MSG_REF_NUM = TlvKey(TlvTag.SAR_MSG_REF_NUM, IntCodec(2))
SAR_TOTAL_SEGMENTS = TlvKey(TlvTag.SAR_TOTAL_SEGMENTS, IntCodec(1))
SAR_SEGMENT_SEQNUM = TlvKey(TlvTag.SAR_SEGMENT_SEQNUM, IntCodec(1))
RECEIPTED_MESSAGE_ID = TlvKey(TlvTag.RECEIPTED_MESSAGE_ID, CStringCodec(65))
MESSAGE_STATE = TlvKey(TlvTag.MESSAGE_STATE, IntCodec(1))
NETWORK_ERROR_CODE = TlvKey(TlvTag.NETWORK_ERROR_CODE, NetworkErrorCodec())
USER_MESSAGE_REFERENCE = TlvKey(TlvTag.USER_MESSAGE_REFERENCE, IntCodec(2))
SC_INTERFACE_VERSION = TlvKey(TlvTag.SC_INTERFACE_VERSION, IntCodec(1))
SOURCE_PORT = TlvKey(TlvTag.SOURCE_PORT, IntCodec(2))
DESTINATION_PORT = TlvKey(TlvTag.DESTINATION_PORT, IntCodec(2))
PAYLOAD_TYPE = TlvKey(TlvTag.PAYLOAD_TYPE, IntCodec(1))
MORE_MESSAGES_TO_SEND = TlvKey(TlvTag.MORE_MESSAGES_TO_SEND, IntCodec(1))
MS_AVAILABILITY_STATUS = TlvKey(TlvTag.MS_AVAILABILITY_STATUS, IntCodec(1))
DELIVERY_FAILURE_REASON = TlvKey(TlvTag.DELIVERY_FAILURE_REASON, IntCodec(1))
ADDITIONAL_STATUS_INFO_TEXT = TlvKey(TlvTag.ADDITIONAL_STATUS_INFO_TEXT, CStringCodec(256))
QOS_TIME_TO_LIVE = TlvKey(TlvTag.QOS_TIME_TO_LIVE, IntCodec(4))

#: Tags with a typed codec; values under these tags are validated.
TYPED_KEYS: dict[int, TlvKey[Any]] = {
    k.tag: k
    for k in (
        MESSAGE_PAYLOAD,
        SAR_MSG_REF_NUM,
        SAR_TOTAL_SEGMENTS,
        SAR_SEGMENT_SEQNUM,
        RECEIPTED_MESSAGE_ID,
        MESSAGE_STATE,
        NETWORK_ERROR_CODE,
        USER_MESSAGE_REFERENCE,
        SC_INTERFACE_VERSION,
        SOURCE_PORT,
        DESTINATION_PORT,
        PAYLOAD_TYPE,
        MORE_MESSAGES_TO_SEND,
        MS_AVAILABILITY_STATUS,
        DELIVERY_FAILURE_REASON,
        ADDITIONAL_STATUS_INFO_TEXT,
        QOS_TIME_TO_LIVE,
    )
}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter as on the wire: tag and raw value octets."""

    tag: int
    value: bytes

    def problem(self) -> str | None:
        if not 0 <= self.tag <= 0xFFFF:
            return f"tag {self.tag:#x} out of range"
        if len(self.value) > 0xFFFF:
            return f"tag {self.tag:#06x}: value longer than 65535 octets"
        key = TYPED_KEYS.get(self.tag)
        problem = key.codec.problem(self.value) if key else None
        return f"{key.name} ({self.tag:#06x}): {problem}" if key and problem else None

    def encode(self) -> bytes:
        return self.tag.to_bytes(2, "big") + len(self.value).to_bytes(2, "big") + self.value


@dataclass(frozen=True, slots=True)
class Tlvs:
    """Ordered optional parameters. Values under typed tags are validated on
    construction (ValueError/SmppEncodeError), so typed getters never fail."""

    items: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        for item in self.items:
            problem = item.problem()
            if problem:
                raise SmppEncodeError(problem)

    @classmethod
    def build(
        cls,
        *,
        message_payload: bytes | None = None,
        sar_msg_ref_num: int | None = None,
        sar_total_segments: int | None = None,
        sar_segment_seqnum: int | None = None,
        receipted_message_id: str | None = None,
        message_state: int | None = None,
        network_error_code: NetworkErrorCode | None = None,
        user_message_reference: int | None = None,
        sc_interface_version: int | None = None,
        extra: Iterable[Tlv] = (),
    ) -> Tlvs:
        """Typed construction; None values are left out, ``extra`` is appended."""
        pairs: list[tuple[TlvKey[Any], object]] = [
            (MESSAGE_PAYLOAD, message_payload),
            (SAR_MSG_REF_NUM, sar_msg_ref_num),
            (SAR_TOTAL_SEGMENTS, sar_total_segments),
            (SAR_SEGMENT_SEQNUM, sar_segment_seqnum),
            (RECEIPTED_MESSAGE_ID, receipted_message_id),
            (MESSAGE_STATE, message_state),
            (NETWORK_ERROR_CODE, network_error_code),
            (USER_MESSAGE_REFERENCE, user_message_reference),
            (SC_INTERFACE_VERSION, sc_interface_version),
        ]
        items = [Tlv(k.tag, k.codec.encode(v)) for k, v in pairs if v is not None]
        return cls((*items, *extra))

    def raw(self, tag: int) -> bytes | None:
        """Raw value of the first TLV with ``tag``."""
        return next((t.value for t in self.items if t.tag == tag), None)

    def get(self, key: TlvKey[T]) -> T | None:
        raw = self.raw(key.tag)
        return None if raw is None else key.codec.decode(raw)

    def with_value(self, key: TlvKey[T], value: T) -> Tlvs:
        """Copy with ``key`` set (replacing the first same-tag TLV, else appended)."""
        new = Tlv(key.tag, key.codec.encode(value))
        if key.tag not in self:
            return Tlvs((*self.items, new))
        index = next(i for i, t in enumerate(self.items) if t.tag == key.tag)
        return Tlvs((*self.items[:index], new, *self.items[index + 1 :]))

    def without(self, tag: int) -> Tlvs:
        return Tlvs(tuple(t for t in self.items if t.tag != tag))

    def encode(self) -> bytes:
        return b"".join(t.encode() for t in self.items)

    @property
    def unknown(self) -> tuple[Tlv, ...]:
        """TLVs whose tag is not defined by SMPP v3.4 (vendor specific etc.)."""
        known = set(TlvTag)
        return tuple(t for t in self.items if t.tag not in known)

    def __iter__(self) -> Iterator[Tlv]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, tag: object) -> bool:
        return any(t.tag == tag for t in self.items)

    @property
    def message_payload(self) -> bytes | None:
        return self.get(MESSAGE_PAYLOAD)

    @property
    def sar_msg_ref_num(self) -> int | None:
        return self.get(SAR_MSG_REF_NUM)

    @property
    def sar_total_segments(self) -> int | None:
        return self.get(SAR_TOTAL_SEGMENTS)

    @property
    def sar_segment_seqnum(self) -> int | None:
        return self.get(SAR_SEGMENT_SEQNUM)

    @property
    def receipted_message_id(self) -> str | None:
        return self.get(RECEIPTED_MESSAGE_ID)

    @property
    def network_error_code(self) -> NetworkErrorCode | None:
        return self.get(NETWORK_ERROR_CODE)

    @property
    def user_message_reference(self) -> int | None:
        return self.get(USER_MESSAGE_REFERENCE)

    @property
    def sc_interface_version(self) -> int | None:
        return self.get(SC_INTERFACE_VERSION)

    @property
    def message_state(self) -> MessageState | int | None:
        value = self.get(MESSAGE_STATE)
        if value is None:
            return None
        try:
            return MessageState(value)
        except ValueError:
            return value


EMPTY_TLVS = Tlvs()
