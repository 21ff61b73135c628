"""G.711 µ-law and A-law (ITU-T G.711 §3-4): 16-bit linear PCM ⇄ 8-bit telephone samples.

Pure and table driven: each decoder is a 256-entry table built once from the standard's
segment formula, each encoder a 65536-entry table indexed by the unsigned 16-bit sample, so a
20 ms packet (160 samples) costs 160 lookups. Linear audio is signed 16-bit little-endian, as
:class:`simgate.domain.calls.Audio` holds it.
"""

from __future__ import annotations

import array
import sys

_BIAS = 0x84  # µ-law bias (G.711 Table 2a): 33 on the 14-bit scale, 132 on the 16-bit one
_CLIP14 = 8158  # + 33 = 8191, the top of segment 8 (G.711 Table 2a): louder samples clip


def _ulaw_encode_one(sample: int) -> int:
    # µ-law codes 14-bit samples: the two low bits go first (a floor shift, as the G.191
    # reference and CPython's audioop do, so -1..-4 is the first negative step, not zero).
    s14 = sample >> 2
    sign = 0x80 if s14 < 0 else 0
    magnitude = min(-s14 if s14 < 0 else s14, _CLIP14) + (_BIAS >> 2)
    exponent = magnitude.bit_length() - 6  # segment 0..7 (magnitude >= 33 has 6+ bits)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_one(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = (((code & 0x0F) << 3) + _BIAS) << exponent
    return _BIAS - magnitude if code & 0x80 else magnitude - _BIAS


def _alaw_encode_one(sample: int) -> int:
    # A-law works on 13-bit magnitudes; the even bits are inverted on the wire (0x55).
    sign = 0x80 if sample >= 0 else 0
    magnitude = (sample if sample >= 0 else -sample - 1) >> 3
    magnitude = min(magnitude, 0xFFF)
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5  # segment 1..7
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else (mantissa << 4) + 264 << exponent - 1
    return magnitude if code & 0x80 else -magnitude


def _encoder(one: object) -> bytes:
    assert callable(one)
    return bytes(one(u - 65536 if u >= 32768 else u) for u in range(65536))


def _decoder(one: object) -> array.array[int]:
    assert callable(one)
    return array.array("h", (one(c) for c in range(256)))


_ULAW_ENC = _encoder(_ulaw_encode_one)
_ALAW_ENC = _encoder(_alaw_encode_one)
_ULAW_DEC = _decoder(_ulaw_decode_one)
_ALAW_DEC = _decoder(_alaw_decode_one)


def _samples(pcm: bytes) -> array.array[int]:
    """Little-endian s16 bytes as unsigned 16-bit values (the encoder tables' index)."""
    samples = array.array("H", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def _linear(decoded: array.array[int]) -> bytes:
    if sys.byteorder != "little":
        decoded.byteswap()
    return decoded.tobytes()


def ulaw_encode(pcm: bytes) -> bytes:
    """s16le PCM → µ-law bytes (an odd trailing byte is dropped)."""
    table = _ULAW_ENC
    return bytes([table[s] for s in _samples(pcm)])


def alaw_encode(pcm: bytes) -> bytes:
    table = _ALAW_ENC
    return bytes([table[s] for s in _samples(pcm)])


def ulaw_decode(data: bytes) -> bytes:
    """µ-law bytes → s16le PCM."""
    table = _ULAW_DEC
    return _linear(array.array("h", [table[b] for b in data]))


def alaw_decode(data: bytes) -> bytes:
    table = _ALAW_DEC
    return _linear(array.array("h", [table[b] for b in data]))


# RTP static payload types (RFC 3551 §6): the codec names SDP and the settings use.
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
