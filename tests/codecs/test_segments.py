"""Encoding choice and splitting into parts (TS 23.040 §9.2.3.16, §9.2.3.24; TS 23.038)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs.gsm7 import Gsm7Error, septet_count
from simgate.codecs.segments import (
    Encoding,
    Segmentation,
    choose_encoding,
    part_capacity,
    part_count,
    segment,
    split,
)
from simgate.codecs.ucs2 import ucs2_units
from tests.codecs.strategies import gsm7_boundary_text, gsm7_text, ucs2_boundary_text, unicode_text


def test_encoding_values() -> None:
    # SMPP v3.4 §5.2.19 data_coding; TS 23.038 §4 DCS 0x00 / 0x08 for GSM7 / UCS2.
    assert int(Encoding.GSM7) == 0
    assert int(Encoding.LATIN1) == 3
    assert int(Encoding.UCS2) == 8


@pytest.mark.parametrize(
    ("encoding", "single", "narrow", "wide"),
    [
        (Encoding.GSM7, 160, 153, 152),
        (Encoding.UCS2, 70, 67, 66),
        (Encoding.LATIN1, 140, 134, 133),
    ],
)
def test_capacities(encoding: Encoding, single: int, narrow: int, wide: int) -> None:
    assert part_capacity(encoding, multipart=False) == single
    assert part_capacity(encoding, multipart=True) == narrow
    assert part_capacity(encoding, multipart=True, wide=True) == wide


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Encoding.GSM7),
        ("Hello @ £5 {ok}", Encoding.GSM7),
        ("Ça coûte 5€", Encoding.UCS2),  # û is not GSM-7
        ("Çà é", Encoding.GSM7),
        ("garçon", Encoding.UCS2),  # small ç is not in the default alphabet
        ("Привет", Encoding.UCS2),
        ("hi 😀", Encoding.UCS2),
        ("esc\x1b", Encoding.UCS2),
    ],
)
def test_choose_encoding(text: str, expected: Encoding) -> None:
    assert choose_encoding(text) is expected


def test_choose_encoding_prefer() -> None:
    assert choose_encoding("hello", prefer=Encoding.UCS2) is Encoding.UCS2
    assert choose_encoding("hello", prefer=Encoding.GSM7) is Encoding.GSM7
    assert choose_encoding("garçon", prefer=Encoding.LATIN1) is Encoding.LATIN1
    with pytest.raises(Gsm7Error, match="U\\+0436"):
        choose_encoding("жук", prefer=Encoding.GSM7)
    with pytest.raises(ValueError, match="8859-1"):
        choose_encoding("жук", prefer=Encoding.LATIN1)


def _sizes(parts: list[str], encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [septet_count(p) for p in parts]
    if encoding is Encoding.UCS2:
        return [ucs2_units(p) for p in parts]
    return [len(p) for p in parts]


@pytest.mark.parametrize(
    ("text", "encoding", "sizes"),
    [
        ("", Encoding.GSM7, [0]),
        ("a" * 160, Encoding.GSM7, [160]),
        ("a" * 161, Encoding.GSM7, [153, 8]),
        ("a" * 306, Encoding.GSM7, [153, 153]),
        ("a" * 307, Encoding.GSM7, [153, 153, 1]),
        ("a" * 158 + "€", Encoding.GSM7, [160]),  # 160 septets, single part
        ("a" * 159 + "€", Encoding.GSM7, [153, 8]),  # 161 septets
        ("€" * 80, Encoding.GSM7, [160]),
        ("€" * 81, Encoding.GSM7, [152, 10]),  # 153 is odd: each part loses one septet
        ("ж" * 70, Encoding.UCS2, [70]),
        ("ж" * 71, Encoding.UCS2, [67, 4]),
        ("ж" * 134, Encoding.UCS2, [67, 67]),
        ("ж" * 135, Encoding.UCS2, [67, 67, 1]),
        ("😀" * 35, Encoding.UCS2, [70]),
        ("😀" * 36, Encoding.UCS2, [66, 6]),  # 67 is odd: a pair never straddles
        ("a" * 70, Encoding.UCS2, [70]),  # forced UCS-2 of an ASCII text
        ("é" * 140, Encoding.LATIN1, [140]),
        ("é" * 141, Encoding.LATIN1, [134, 7]),
    ],
)
def test_split_sizes(text: str, encoding: Encoding, sizes: list[int]) -> None:
    parts = split(text, encoding)
    assert _sizes(parts, encoding) == sizes
    assert "".join(parts) == text
    assert part_count(text, encoding) == len(sizes)


def test_escape_at_septet_153_moves_to_next_part() -> None:
    # 152 plain chars then '€': its ESC would be septet 153 (1-based) and its code septet
    # 154, so it cannot stay in part 1 (TS 23.038 §6.2.1.1 pairs must not be separated).
    text = "a" * 152 + "€" + "b" * 10
    parts = split(text, Encoding.GSM7)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert _sizes(parts, Encoding.GSM7) == [152, 12]
    assert part_count(text, Encoding.GSM7) == 2


def test_escape_ending_exactly_at_153_stays() -> None:
    text = "a" * 151 + "€" + "b" * 10  # '€' occupies septets 152-153
    assert split(text, Encoding.GSM7) == ["a" * 151 + "€", "b" * 10]


def test_escape_shift_can_add_a_part() -> None:
    # 306 septets would be exactly 2 x 153, but the pushed '€' makes the tail spill.
    text = "a" * 152 + "€" + "a" * 152
    assert septet_count(text) == 306
    assert _sizes(split(text, Encoding.GSM7), Encoding.GSM7) == [152, 153, 1]
    assert part_count(text, Encoding.GSM7) == 3


def test_emoji_at_unit_67_moves_to_next_part() -> None:
    # 66 BMP chars then an emoji: its high surrogate would be unit 67, its low unit 68.
    text = "ж" * 66 + "😀" + "ж" * 10
    parts = split(text, Encoding.UCS2)
    assert parts == ["ж" * 66, "😀" + "ж" * 10]
    assert part_count(text, Encoding.UCS2) == 2
    text2 = "ж" * 65 + "😀" + "ж" * 10  # emoji fills units 66-67 exactly
    assert split(text2, Encoding.UCS2) == ["ж" * 65 + "😀", "ж" * 10]


@pytest.mark.parametrize(
    ("text", "encoding", "sizes"),
    [
        ("a" * 161, Encoding.GSM7, [152, 9]),
        ("a" * 151 + "€" + "b" * 10, Encoding.GSM7, [151, 12]),  # ESC would be septet 152
        ("ж" * 71, Encoding.UCS2, [66, 5]),
        ("ж" * 65 + "😀" + "ж" * 5, Encoding.UCS2, [65, 7]),
        ("é" * 141, Encoding.LATIN1, [133, 8]),
    ],
)
def test_split_wide(text: str, encoding: Encoding, sizes: list[int]) -> None:
    # 16-bit reference UDH is one octet longer (TS 23.040 §9.2.3.24.8).
    parts = split(text, encoding, wide=True)
    assert _sizes(parts, encoding) == sizes
    assert part_count(text, encoding, wide=True) == len(sizes)


def test_split_rejects_unencodable() -> None:
    with pytest.raises(Gsm7Error):
        split("жук", Encoding.GSM7)
    with pytest.raises(Gsm7Error):
        part_count("жук" * 100, Encoding.GSM7)
    with pytest.raises(ValueError, match="8859-1"):
        split("жук", Encoding.LATIN1)
    with pytest.raises(ValueError, match="8859-1"):
        part_count("жук", Encoding.LATIN1)


def test_segment() -> None:
    seg = segment("a" * 161)
    assert seg == Segmentation(Encoding.GSM7, ("a" * 153, "a" * 8))
    assert seg.count == 2
    assert segment("hi", prefer=Encoding.UCS2) == Segmentation(Encoding.UCS2, ("hi",))
    assert segment("ж" * 67, wide=True).parts == ("ж" * 67,)  # still a single part
    assert segment("ж" * 71, wide=True).parts == ("ж" * 66, "ж" * 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seg.parts = ()  # type: ignore[misc]


def _check_split(text: str, encoding: Encoding, *, wide: bool) -> None:
    parts = split(text, encoding, wide=wide)
    assert "".join(parts) == text
    assert part_count(text, encoding, wide=wide) == len(parts)
    sizes = _sizes(parts, encoding)
    if len(parts) == 1:
        assert sizes[0] <= part_capacity(encoding, multipart=False)
        return
    cap = part_capacity(encoding, multipart=True, wide=wide)
    assert sum(sizes) > part_capacity(encoding, multipart=False)
    assert all(0 < s <= cap for s in sizes)
    # Greedy: a non-final part is only short when the next char is a 2-unit char that
    # did not fit (escape pair / surrogate pair).
    for part, size, nxt in zip(parts, sizes, parts[1:], strict=False):
        assert part
        if size < cap:
            assert size == cap - 1
            assert _sizes([nxt[0]], encoding) == [2]


@given(gsm7_text | gsm7_boundary_text, st.booleans())
def test_split_gsm7_properties(text: str, wide: bool) -> None:
    _check_split(text, Encoding.GSM7, wide=wide)


@given(unicode_text | ucs2_boundary_text, st.booleans())
def test_split_ucs2_properties(text: str, wide: bool) -> None:
    _check_split(text, Encoding.UCS2, wide=wide)


@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=600), st.booleans())
def test_split_latin1_properties(text: str, wide: bool) -> None:
    _check_split(text, Encoding.LATIN1, wide=wide)


@given(unicode_text | gsm7_boundary_text)
def test_segment_properties(text: str) -> None:
    seg = segment(text)
    assert seg.encoding is choose_encoding(text)
    assert "".join(seg.parts) == text
    assert seg.count == part_count(text, seg.encoding)


def test_bare_int_data_coding_is_accepted_and_checked() -> None:
    # Values straight from an SMPP PDU are plain ints: they must get the same checks.
    with pytest.raises(Gsm7Error):
        choose_encoding("жук", prefer=0)  # type: ignore[arg-type]
    assert choose_encoding("hi", prefer=8) is Encoding.UCS2  # type: ignore[arg-type]
    assert split("a" * 161, 0) == ["a" * 153, "a" * 8]  # type: ignore[arg-type]
    assert part_count("ж" * 71, 8) == 2  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid Encoding"):
        split("hi", 4)  # type: ignore[arg-type]
