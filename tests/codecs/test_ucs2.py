"""UCS-2 as UTF-16-BE (TS 23.038 §5 DCS "UCS2", SMPP data_coding 8)."""

from __future__ import annotations

import pytest
from hypothesis import given

from simgate.codecs.ucs2 import Ucs2Error, decode_ucs2, encode_ucs2, ucs2_units
from tests.codecs.strategies import unicode_text


@pytest.mark.parametrize(
    ("text", "hex_", "units"),
    [
        ("", "", 0),
        ("A", "0041", 1),
        ("жж", "04360436", 2),
        ("€", "20AC", 1),
        # U+1F600 -> surrogate pair D83D DE00 (RFC 2781 §2.1), counts 2 units
        ("😀", "D83DDE00", 2),
        ("a😀b", "0061D83DDE000062", 4),
        ("\ufeff", "FEFF", 1),  # no BOM handling: U+FEFF is just a character
    ],
)
def test_vectors(text: str, hex_: str, units: int) -> None:
    assert encode_ucs2(text).hex().upper() == hex_
    assert decode_ucs2(bytes.fromhex(hex_)) == text
    assert ucs2_units(text) == units


def test_bom_is_not_stripped() -> None:
    assert decode_ucs2(b"\xfe\xff\x00A") == "\ufeffA"


@pytest.mark.parametrize("text", ["\ud83d", "a\ude00", "\ude00\ud83d"])
def test_lone_surrogates_rejected(text: str) -> None:
    with pytest.raises(Ucs2Error):
        encode_ucs2(text)
    with pytest.raises(Ucs2Error):
        ucs2_units(text)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00",  # odd length
        b"\x00A\x00",
        b"\xd8\x3d",  # high surrogate with no low one
        b"\xd8\x3d\x00A",  # high surrogate followed by a BMP unit
        b"\xde\x00\xd8\x3d",  # low before high
    ],
)
def test_decode_strict(data: bytes) -> None:
    with pytest.raises(Ucs2Error):
        decode_ucs2(data)


def test_ucs2error_is_valueerror() -> None:
    assert issubclass(Ucs2Error, ValueError)


@given(unicode_text)
def test_round_trip(text: str) -> None:
    data = encode_ucs2(text)
    assert decode_ucs2(data) == text
    assert ucs2_units(text) == len(data) // 2
    assert ucs2_units(text) == len(text) + sum(1 for c in text if ord(c) > 0xFFFF)
