"""RTP fixed header (RFC 3550 §5.1): encode and decode, no extensions sent.

Decoding accepts CSRC lists, a header extension and padding (§5.1, §5.3.1) and hands back
the payload alone; anything shorter than its own header is a :class:`RtpError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 2
HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC


class RtpError(ValueError):
    """Not an RTP packet (RFC 3550 §5.1)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int  # 16 bits, wraps
    timestamp: int  # 32 bits, wraps
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        return (
            HEADER.pack(
                VERSION << 6,
                (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
            + self.payload
        )


def decode(data: bytes) -> RtpPacket:
    if len(data) < HEADER.size:
        raise RtpError(f"RTP packet of {len(data)} bytes is shorter than its header")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    end = len(data)
    if first & 0x20:  # padding: the last byte counts the padding bytes (§5.1 P)
        end -= data[-1]
    start = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words (§5.3.1)
        if len(data) < start + 4:
            raise RtpError("RTP header extension cut short")
        (words,) = struct.unpack_from("!H", data, start + 2)
        start += 4 + 4 * words
    if start > end:
        raise RtpError("RTP header longer than the packet")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[start:end]),
        marker=bool(second & 0x80),
    )
