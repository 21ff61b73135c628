"""TLV tags (SMPP v3.4 section 5.3.2) and the codecs of typed TLV values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from simgate.codecs.smpp.errors import SmppEncodeError
from simgate.codecs.smpp.fields import TEXT_ENCODING

T = TypeVar("T")


class TlvTag(enum.IntEnum):
    """Every optional parameter tag defined by SMPP v3.4 (section 5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class NetworkErrorCode(NamedTuple):
    """network_error_code (0x0423): network type (1 ANSI-136, 2 IS-95, 3 GSM) and a
    2-octet network specific error code."""

    network_type: int
    error_code: int


class TlvCodec(Protocol[T]):
    def encode(self, value: T) -> bytes: ...

    def decode(self, raw: bytes) -> T: ...

    def problem(self, raw: bytes) -> str | None:
        """Why ``raw`` is not a valid value, or None."""


@dataclass(frozen=True, slots=True)
class IntCodec:
    size: int

    def encode(self, value: int) -> bytes:
        if not 0 <= value < 1 << (8 * self.size):
            raise SmppEncodeError(f"{value} does not fit in {self.size} octet(s)")
        return value.to_bytes(self.size, "big")

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, "big")

    def problem(self, raw: bytes) -> str | None:
        return None if len(raw) == self.size else f"length {len(raw)}, expected {self.size}"


@dataclass(frozen=True, slots=True)
class CStringCodec:
    """C-octet string TLV. Decoding tolerates a missing NUL (seen in the wild for
    receipted_message_id); ``max_len`` (NUL included) is enforced when encoding."""

    max_len: int

    def encode(self, value: str) -> bytes:
        raw = value.encode(TEXT_ENCODING) + b"\x00"
        if len(raw) > self.max_len or b"\x00" in raw[:-1]:
            raise SmppEncodeError(f"{value!r}: not a C-octet string of <= {self.max_len}")
        return raw

    def decode(self, raw: bytes) -> str:
        return raw.removesuffix(b"\x00").decode(TEXT_ENCODING)

    def problem(self, raw: bytes) -> str | None:
        return "NUL inside a C-octet string" if b"\x00" in raw[:-1] else None


@dataclass(frozen=True, slots=True)
class OctetsCodec:
    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, raw: bytes) -> bytes:
        return raw

    def problem(self, raw: bytes) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class NetworkErrorCodec:
    def encode(self, value: NetworkErrorCode) -> bytes:
        network_type, error_code = value
        if not (0 <= network_type <= 0xFF and 0 <= error_code <= 0xFFFF):
            raise SmppEncodeError(f"network_error_code out of range: {value}")
        return bytes([network_type]) + error_code.to_bytes(2, "big")

    def decode(self, raw: bytes) -> NetworkErrorCode:
        return NetworkErrorCode(raw[0], int.from_bytes(raw[1:3], "big"))

    def problem(self, raw: bytes) -> str | None:
        return None if len(raw) == 3 else f"length {len(raw)}, expected 3"
