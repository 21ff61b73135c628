"""G.711 against the standard's values and CPython's audioop (an independent implementation,
used here as an oracle only), with Hypothesis properties."""

from __future__ import annotations

import struct
import warnings

from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # audioop: deprecated in 3.11
    import audioop


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def linear(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def test_ulaw_golden_values() -> None:
    # G.711 Table 2a: code 0xFF and 0x7F are the two zeros; 0x80 / 0x00 the loudest
    # (±8031 on the 14-bit scale, ×4 = ±32124 on 16 bits).
    assert linear(g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00]))) == [0, 0, 32124, -32124]
    assert g711.ulaw_encode(pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])


def test_alaw_golden_values() -> None:
    # G.711 Table 1a: the even bits are inverted on the wire; 0xD5 / 0x55 are the smallest
    # steps (±8 on 16 bits), 0xAA / 0x2A the loudest (±32256).
    assert linear(g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]
    assert g711.alaw_encode(pcm(0, 32767, -32768)) == bytes([0xD5, 0xAA, 0x2A])


def test_every_sample_encodes_as_audioop_does() -> None:
    every = struct.pack("<65536h", *range(-32768, 32768))
    assert g711.ulaw_encode(every) == audioop.lin2ulaw(every, 2)
    assert g711.alaw_encode(every) == audioop.lin2alaw(every, 2)


def test_every_code_decodes_as_audioop_does() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes) == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes) == audioop.alaw2lin(codes, 2)


@given(st.binary(max_size=400))
def test_a_decoded_code_encodes_back_to_itself(codes: bytes) -> None:
    # Every code but µ-law's negative zero (0x7F decodes to 0, which encodes as 0xFF).
    assert g711.alaw_encode(g711.alaw_decode(codes)) == codes
    expected = codes.replace(b"\x7f", b"\xff")
    assert g711.ulaw_encode(g711.ulaw_decode(codes)) == expected


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_the_round_trip_error_stays_within_the_segment_step(samples: list[int]) -> None:
    pairs = ((g711.ulaw_decode, g711.ulaw_encode), (g711.alaw_decode, g711.alaw_encode))
    for decode, encode in pairs:
        back = linear(decode(encode(pcm(*samples))))
        for x, y in zip(samples, back, strict=True):
            # Logarithmic: the step grows with the segment, about 1/16 of the level.
            assert abs(x - y) <= abs(x) // 16 + 16
