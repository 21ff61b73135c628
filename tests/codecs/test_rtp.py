"""RTP header encode/decode (RFC 3550 §5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs.rtp import RtpError, RtpPacket, decode


def test_a_known_header_byte_by_byte() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=1, payload=b"\xff", marker=True
    )
    assert packet.encode() == bytes.fromhex("80801234deadbeef00000001ff")


@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=200),
    st.booleans(),
)
def test_round_trip(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker)
    assert decode(packet.encode()) == packet


def test_csrcs_extension_and_padding_are_skipped() -> None:
    # V=2 P=1 X=1 CC=1; one CSRC; an extension of one word; 3 bytes of padding.
    data = (
        bytes.fromhex("b100000100000002000000030000000abede0001cafebabe") + b"hi" + b"\x00\x00\x03"
    )
    packet = decode(data)
    assert (packet.sequence, packet.timestamp, packet.ssrc, packet.payload) == (1, 2, 3, b"hi")


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, bytes.fromhex("40000001000000020000000300")])
def test_not_rtp_is_an_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        decode(data)
