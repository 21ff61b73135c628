"""Concatenation User Data Header (TS 23.040 §9.2.3.24, .24.1, .24.8)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs.gsm7 import decode_septets, encode_septets, pack_septets, unpack_septets
from simgate.codecs.segments import Encoding, split
from simgate.codecs.ucs2 import decode_ucs2
from simgate.codecs.udh import (
    UdhError,
    UdhInfo,
    build_concat_udh,
    encode_parts,
    fill_bits_for,
    parse_udh,
)
from tests.codecs.strategies import gsm7_boundary_text, gsm7_text, ucs2_boundary_text


def test_build_8bit() -> None:
    # §9.2.3.24.1: UDHL=05, IEI=00, IEDL=03, ref, total, seq
    assert build_concat_udh(0x42, 3, 1, wide=False) == bytes.fromhex("050003420301")
    assert build_concat_udh(0, 255, 255, wide=False) == bytes.fromhex("050003 00 FF FF")


def test_build_16bit() -> None:
    # §9.2.3.24.8: UDHL=06, IEI=08, IEDL=04, ref (big-endian), total, seq
    assert build_concat_udh(0x1234, 3, 2, wide=True) == bytes.fromhex("060804 1234 03 02")
    assert build_concat_udh(0x00FF, 2, 1, wide=True) == bytes.fromhex("060804 00FF 02 01")


@pytest.mark.parametrize(
    ("ref", "total", "seq", "wide"),
    [
        (256, 2, 1, False),
        (-1, 2, 1, False),
        (0x10000, 2, 1, True),
        (1, 0, 0, False),  # total 0 would make the receiver ignore the IE
        (1, 256, 1, False),
        (1, 2, 0, False),
        (1, 2, 3, False),
    ],
)
def test_build_rejects(ref: int, total: int, seq: int, wide: bool) -> None:
    with pytest.raises(ValueError, match="must be in"):
        build_concat_udh(ref, total, seq, wide=wide)


def test_parse_8bit_and_16bit() -> None:
    assert parse_udh(bytes.fromhex("050003420301") + b"hi") == (
        UdhInfo(ref=0x42, total=3, seq=1, wide=False),
        b"hi",
    )
    assert parse_udh(bytes.fromhex("0608041234030200")) == (
        UdhInfo(ref=0x1234, total=3, seq=2, wide=True),
        b"\x00",
    )


def test_parse_skips_unknown_ies() -> None:
    # WAP-push style header: IEI 05 (16-bit application ports, §9.2.3.24.4) 0B84/23F0, then
    # an 8-bit concat IE; UDHL = 11.
    data = bytes.fromhex("0B 0504 0B84 23F0 0003 AA 02 01") + b"payload"
    assert parse_udh(data) == (UdhInfo(0xAA, 2, 1, wide=False), b"payload")
    # No concatenation IE at all: info is None, the rest is still returned.
    assert parse_udh(bytes.fromhex("06 0504 0B84 23F0") + b"x") == (None, b"x")
    # Empty header (UDHL 0) is legal.
    assert parse_udh(b"\x00abc") == (None, b"abc")


@pytest.mark.parametrize(
    "header",
    [
        "050003AA0000",  # total 0
        "050003AA0200",  # seq 0
        "050003AA0203",  # seq > total
        "0400 02 AA02",  # IEI 00 with the wrong IEDL
        "050803 AA0201",  # IEI 08 with the wrong IEDL
    ],
)
def test_parse_ignores_unusable_concat_ie(header: str) -> None:
    # §9.2.3.24.1: zero or seq > total -> the receiving entity ignores the whole IE.
    assert parse_udh(bytes.fromhex(header) + b"z") == (None, b"z")


def test_parse_duplicate_concat_last_wins() -> None:
    # §9.2.3.24: a duplicated non-repeatable IE -> the last occurrence is used.
    data = bytes.fromhex("0A 0003 01 02 01 0003 07 03 02")
    assert parse_udh(data) == (UdhInfo(7, 3, 2, wide=False), b"")


@pytest.mark.parametrize(
    "data",
    [
        "",  # no UDHL
        "05000342",  # UDHL beyond data
        "0300050102",  # IE length 5 runs past a 3-octet header
        "040001AA05FF",  # 1-octet IE, then an IE header cut by the UDHL
        "0100",  # single octet: IEI without IEDL
    ],
)
def test_parse_malformed(data: str) -> None:
    with pytest.raises(UdhError):
        parse_udh(bytes.fromhex(data))


def test_fill_bits_for() -> None:
    assert fill_bits_for(0) == 0
    assert fill_bits_for(6) == 1  # 8-bit concat: 48 bits + 1 = 7 septets
    assert fill_bits_for(7) == 0  # 16-bit concat: 56 bits = 8 septets
    assert fill_bits_for(12) == 2  # WAP ports + concat: 96 bits + 2 = 14 septets
    assert all((n * 8 + fill_bits_for(n)) % 7 == 0 for n in range(141))
    assert all(0 <= fill_bits_for(n) <= 6 for n in range(141))
    with pytest.raises(ValueError, match=">= 0"):
        fill_bits_for(-1)


def test_encode_parts_single_has_no_udh() -> None:
    assert encode_parts("hello", Encoding.GSM7, ref=1) == [b"hello"]
    assert encode_parts("hello", Encoding.GSM7, ref=1, packed=True) == [bytes.fromhex("E8329BFD06")]
    assert encode_parts("hé", Encoding.UCS2, ref=1) == [b"\x00h\x00\xe9"]
    assert encode_parts("hé", Encoding.LATIN1, ref=1) == [b"h\xe9"]
    assert encode_parts("", Encoding.GSM7, ref=0) == [b""]


def test_encode_parts_gsm7_unpacked() -> None:
    parts = encode_parts("a" * 152 + "€" + "b" * 10, Encoding.GSM7, ref=0x42)
    assert parts == [
        bytes.fromhex("050003420201") + b"a" * 152,
        bytes.fromhex("050003420202") + b"\x1b\x65" + b"b" * 10,
    ]


def test_encode_parts_gsm7_packed_fill_bit() -> None:
    parts = encode_parts("a" * 161, Encoding.GSM7, ref=7, packed=True)
    assert len(parts) == 2
    udh = bytes.fromhex("050003070201")
    assert parts[0].startswith(udh)
    # 1 fill bit then 153 septets: 1 + 1071 = 1072 bits = 134 octets -> 140 with the UDH.
    assert len(parts[0]) == 140
    assert parts[0][6] == 0xC2  # ('a' << 1) with the fill bit 0, see test_gsm7
    assert parts[0][6:] == pack_septets(b"a" * 153, fill_bits=1)
    assert parts[1] == bytes.fromhex("050003070202") + pack_septets(b"a" * 8, fill_bits=1)


def test_encode_parts_wide() -> None:
    parts = encode_parts("ж" * 71, Encoding.UCS2, ref=0xBEEF, wide=True)
    assert parts == [
        bytes.fromhex("060804BEEF0201") + ("ж" * 66).encode("utf-16-be"),
        bytes.fromhex("060804BEEF0202") + ("ж" * 5).encode("utf-16-be"),
    ]
    assert all(len(p) <= 140 for p in parts)
    # 16-bit ref UDH is 7 octets: no fill bits, 152 septets = 133 octets.
    gsm = encode_parts("a" * 161, Encoding.GSM7, ref=0x0102, wide=True, packed=True)
    assert gsm[0] == bytes.fromhex("060804010202 01") + pack_septets(b"a" * 152)
    assert len(gsm[0]) == 140


def test_encode_parts_ref_validation() -> None:
    with pytest.raises(ValueError, match="ref"):
        encode_parts("hi", Encoding.GSM7, ref=256)
    with pytest.raises(ValueError, match="ref"):
        encode_parts("hi", Encoding.GSM7, ref=-1, wide=True)
    assert encode_parts("a" * 161, Encoding.GSM7, ref=300, wide=True)[0][:5] == bytes.fromhex(
        "060804012C"
    )


def test_encode_parts_max_255() -> None:
    assert len(encode_parts("a" * (153 * 255), Encoding.GSM7, ref=1)) == 255
    with pytest.raises(ValueError, match="256 parts"):
        encode_parts("a" * (153 * 255 + 1), Encoding.GSM7, ref=1)


def _udh_septets(udh_len: int) -> int:
    return math.ceil(udh_len * 8 / 7)


@given(gsm7_text | gsm7_boundary_text, st.integers(0, 255), st.booleans())
def test_gsm7_parts_round_trip(text: str, ref: int, packed: bool) -> None:
    raw = encode_parts(text, Encoding.GSM7, ref=ref, packed=packed)
    texts = split(text, Encoding.GSM7)
    assert len(raw) == len(texts)
    decoded: list[str] = []
    for seq, (data, expected) in enumerate(zip(raw, texts, strict=True), start=1):
        n = len(encode_septets(expected))
        if len(raw) == 1:
            payload, fill = data, 0
        else:
            info, payload = parse_udh(data)
            assert info == UdhInfo(ref, len(raw), seq, wide=False)
            fill = fill_bits_for(data[0] + 1)
            # The whole user data fits 140 octets / 160 septets (TS 23.040 §9.2.3.16).
            assert _udh_septets(data[0] + 1) + n <= 160
        septs = unpack_septets(payload, n, fill_bits=fill) if packed else payload
        if packed:
            assert len(data) <= 140
        decoded.append(decode_septets(septs, strict=True))
    assert decoded == texts


@given(ucs2_boundary_text, st.integers(0, 0xFFFF), st.booleans())
def test_ucs2_parts_round_trip(text: str, ref: int, wide: bool) -> None:
    ref = ref if wide else ref & 0xFF
    raw = encode_parts(text, Encoding.UCS2, ref=ref, wide=wide)
    out = []
    for seq, data in enumerate(raw, start=1):
        assert len(data) <= 140
        if len(raw) == 1:
            out.append(decode_ucs2(data))
            continue
        info, payload = parse_udh(data)
        assert info == UdhInfo(ref, len(raw), seq, wide=wide)
        out.append(decode_ucs2(payload))  # strict: a split surrogate pair would raise
    assert "".join(out) == text
