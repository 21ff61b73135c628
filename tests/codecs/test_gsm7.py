"""GSM 7-bit alphabet and septet packing (3GPP TS 23.038 §6.1.2.1, §6.2.1, §6.2.1.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs.gsm7 import (
    EXTENSION_CHARS,
    GSM7_CHARS,
    Gsm7Error,
    decode_septets,
    encode_septets,
    is_gsm7,
    pack_septets,
    septet_count,
    unpack_septets,
)
from tests.codecs.strategies import (
    GSM7_BASIC_CHARS,
    GSM7_EXT_CHARS,
    fill_bits,
    gsm7_text,
    septets,
)

# Packed GSM-7 golden vectors (no UDH, fill_bits=0).
PACKED_VECTORS = [
    # dreamfabric.com "SMS and the PDU format", also smspdudecoder's GSM.encode docstring
    ("hellohello", "E8329BFD4697D9EC37"),
    # classic SMS-DELIVER tutorial text, also smspdudecoder's GSM.decode docstring
    ("How are you?", "C8F71D14969741F977FD07"),
    # extension char (ESC 0x65) in the middle; smspdudecoder's GSM.encode docstring
    ("2 € par mois", "32D0A60C8287E5A0F63B3D07"),
    # 7 septets = 49 bits: 7 octets whose last 7 bits are zero (TS 23.038 §6.1.2.3.1 case,
    # no CR padding applied); smspdudecoder's GSM.encode docstring
    ("1234567", "31D98C56B3DD00"),
    # classic PDU-mode tutorial vector (SMS-SUBMIT example user data)
    (
        "It is easy to send text messages.",
        "493A283D0795C3F33C88FE06CDCB6E32885EC6D341EDF27C1E3E97E72E",
    ),
]


@pytest.mark.parametrize(("text", "packed_hex"), PACKED_VECTORS)
def test_packed_golden_vectors(text: str, packed_hex: str) -> None:
    septs = encode_septets(text)
    assert pack_septets(septs).hex().upper() == packed_hex
    assert unpack_septets(bytes.fromhex(packed_hex), len(septs)) == septs
    assert decode_septets(septs) == text


def test_table_matches_spec_layout() -> None:
    # TS 23.038 §6.2.1: code = index in the table, ESC (0x1B) removed from the string.
    codes = [c for c in range(128) if c != 0x1B]
    assert encode_septets(GSM7_BASIC_CHARS) == bytes(codes)
    assert frozenset(GSM7_BASIC_CHARS + GSM7_EXT_CHARS) == GSM7_CHARS
    assert frozenset(GSM7_EXT_CHARS) == EXTENSION_CHARS


@pytest.mark.parametrize(
    ("char", "septs"),
    [
        ("@", b"\x00"),  # 0x00, not 0x40
        ("£", b"\x01"),
        ("$", b"\x02"),
        ("¤", b"\x24"),  # currency sign sits where ASCII has "$"
        ("¡", b"\x40"),
        ("§", b"\x5f"),
        ("¿", b"\x60"),
        ("Ç", b"\x09"),  # capital C cedilla per the §6.2.1 table
        ("Δ", b"\x10"),  # U+0394 GREEK CAPITAL DELTA, not U+2206
        ("Ω", b"\x15"),  # U+03A9, not U+2126 OHM SIGN
        ("\n", b"\x0a"),
        ("\r", b"\x0d"),
        ("\x0c", b"\x1b\x0a"),  # §6.2.1.1 page break / form feed
        ("^", b"\x1b\x14"),
        ("{", b"\x1b\x28"),
        ("}", b"\x1b\x29"),
        ("\\", b"\x1b\x2f"),
        ("[", b"\x1b\x3c"),
        ("~", b"\x1b\x3d"),
        ("]", b"\x1b\x3e"),
        ("|", b"\x1b\x40"),
        ("€", b"\x1b\x65"),
    ],
)
def test_single_char_codes(char: str, septs: bytes) -> None:
    assert encode_septets(char) == septs
    assert decode_septets(septs) == char
    assert septet_count(char) == len(septs)


@pytest.mark.parametrize(
    "char",
    [
        "\x1b",  # 0x1B is the escape code, not a character: a literal ESC is not GSM-7
        "ç",  # U+00E7: only capital Ç is in the table; no lossy folding
        "á",
        "`",  # U+0060: 0x60 is ¿ (some libraries wrongly put ` at 0x5F)
        "ÿ",
        "\t",
        "ж",
        "😀",
        "\u2206",  # INCREMENT looks like Δ but is not the table's U+0394
    ],
)
def test_not_gsm7(char: str) -> None:
    assert not is_gsm7(char)
    assert not is_gsm7("abc" + char)
    with pytest.raises(Gsm7Error, match=f"U\\+{ord(char):04X}"):
        encode_septets("abc" + char)
    with pytest.raises(Gsm7Error):
        septet_count(char)


def test_gsm7error_is_valueerror() -> None:
    assert issubclass(Gsm7Error, ValueError)


def test_septet_count() -> None:
    assert septet_count("") == 0
    assert septet_count("hello") == 5
    assert septet_count("a{b}") == 6  # 1 + 2 + 1 + 2
    assert septet_count("€" * 80) == 160
    assert is_gsm7("")


def test_decode_rejects_non_septets() -> None:
    with pytest.raises(Gsm7Error, match="0x80"):
        decode_septets(b"ab\x80")


def test_decode_undefined_escape_lenient_per_spec() -> None:
    # TS 23.038 §6.2.1.1: an undefined ESC sequence shows the main-table character; ESC ESC
    # (reserved for another extension table) shows a space.
    assert decode_septets(b"\x1b\x41") == "A"
    assert decode_septets(b"\x1b\x00x") == "@x"
    assert decode_septets(b"a\x1b\x1bb") == "a b"
    assert decode_septets(b"ab\x1b") == "ab "  # dangling ESC (not defined by the spec)


@pytest.mark.parametrize("data", [b"\x1b\x41", b"a\x1b\x1bb", b"ab\x1b"])
def test_decode_undefined_escape_strict(data: bytes) -> None:
    with pytest.raises(Gsm7Error):
        decode_septets(data, strict=True)


def test_pack_with_fill_bits_by_hand() -> None:
    # 'a' = 0x61 = 1100001b. One fill bit (TS 23.040 §9.2.3.24, after a 6-octet UDH):
    # bit 0 is fill, bits 1..7 the septet -> 11000010b = 0xC2.
    assert pack_septets(b"\x61", fill_bits=1) == b"\xc2"
    # Six fill bits: bits 6..7 get the two low septet bits (01), the next octet the rest.
    assert pack_septets(b"\x61", fill_bits=6) == bytes([0x40, 0x18])
    assert unpack_septets(bytes([0x40, 0x18]), 1, fill_bits=6) == b"\x61"


def test_pack_edges() -> None:
    assert pack_septets(b"") == b""
    # A lone fill bit still occupies an octet: TP-UDL septets -> ceil(bits / 8) octets.
    assert pack_septets(b"", fill_bits=1) == b"\x00"
    assert unpack_septets(b"", 0) == b""
    # Eight '@' (0x00) fit in 7 octets: the octet count alone cannot tell 7 from 8
    # septets, which is why unpack takes the TP-UDL count (§6.1.2.3.1).
    packed = pack_septets(b"\x00" * 7)
    assert len(packed) == 7
    assert unpack_septets(packed, 7) == b"\x00" * 7
    assert unpack_septets(packed, 8) == b"\x00" * 8


@pytest.mark.parametrize("bad", [-1, 7, 8])
def test_fill_bits_range(bad: int) -> None:
    with pytest.raises(ValueError, match="fill_bits"):
        pack_septets(b"a", fill_bits=bad)
    with pytest.raises(ValueError, match="fill_bits"):
        unpack_septets(b"a", 1, fill_bits=bad)


def test_pack_rejects_octets() -> None:
    with pytest.raises(Gsm7Error):
        pack_septets(b"\x80")


def test_unpack_needs_enough_data() -> None:
    with pytest.raises(Gsm7Error):
        unpack_septets(b"\x00" * 7, 9)
    with pytest.raises(Gsm7Error):
        unpack_septets(b"\x00", 1, fill_bits=2)  # 2 + 7 bits > 8
    with pytest.raises(ValueError, match="count"):
        unpack_septets(b"", -1)


def _reference_pack(septs: bytes, fill: int) -> bytes:
    """Bit-string model of §6.1.2.1.1: septets laid LSB-first after ``fill`` zero bits."""
    bits = "0" * fill + "".join(format(s, "07b")[::-1] for s in septs)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))


@given(septets, fill_bits)
def test_pack_matches_bit_model_and_round_trips(septs: bytes, fill: int) -> None:
    packed = pack_septets(septs, fill_bits=fill)
    assert packed == _reference_pack(septs, fill)
    assert len(packed) == (fill + 7 * len(septs) + 7) // 8
    assert unpack_septets(packed, len(septs), fill_bits=fill) == septs


@given(gsm7_text)
def test_round_trip_text(text: str) -> None:
    septs = encode_septets(text)
    assert is_gsm7(text)
    assert len(septs) == septet_count(text)
    assert max(septs, default=0) <= 0x7F
    assert decode_septets(septs) == text
    assert decode_septets(septs, strict=True) == text


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)))
def test_decode_any_septets_never_crashes_lenient(data: bytes) -> None:
    text = decode_septets(data)
    assert is_gsm7(text)
    # every output char stems from 1 or 2 input septets
    assert len(data) // 2 <= len(text) <= len(data)
