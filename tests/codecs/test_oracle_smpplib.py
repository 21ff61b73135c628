"""Cross-check against ``smpplib.gsm`` (smpplib 2.2.4): 7-bit detection and parts.

smpplib's ``make_parts`` returns SMPP short_message bytes: one unpacked septet per octet
for data_coding 0, UTF-16-BE for 8, with an 8-bit-reference UDH (random ref) when the
text needs more than one part. That is what ``encode_parts`` produces by default, so the
bytes are directly comparable once we reuse smpplib's ref.

Documented differences (each shown explicitly below):

* its table (a copy of a StackOverflow answer) has "`" at 0x5F where TS 23.038 §6.2.1
  has "§", so "`" is sent as "§" and "§" is refused; it has no form feed (ESC 0x0A,
  §6.2.1.1); and it accepts a literal U+001B;
* it cuts the septets/octets every 153 septets / 134 octets blindly, so it can split an
  escape pair or a surrogate pair across parts (its own FIXME says so).
"""

from __future__ import annotations

import functools

import pytest
import smpplib.consts
import smpplib.gsm
from hypothesis import given

from simgate.codecs.gsm7 import GSM7_CHARS, decode_septets, encode_septets, is_gsm7
from simgate.codecs.segments import Encoding, choose_encoding, part_count, split
from simgate.codecs.udh import encode_parts
from tests.codecs.strategies import (
    gsm7_boundary_text,
    gsm7_text,
    ucs2_boundary_text,
    unicode_text,
)

SMPPLIB_EXTRA = frozenset({"`", "\x1b"})
SMPPLIB_MISSING = frozenset({"§", "\x0c"})
# Our model of which texts smpplib sends as data_coding 0.
SMPPLIB_GSM = (GSM7_CHARS - SMPPLIB_MISSING) | SMPPLIB_EXTRA


def _smpplib_accepts(ch: str) -> bool:
    try:
        smpplib.gsm.gsm_encode(ch)
    except UnicodeError:
        return False
    return True


@functools.cache
def _smpplib_bmp_set() -> frozenset[str]:
    return frozenset(chr(c) for c in range(0x10000) if _smpplib_accepts(chr(c)))


def test_character_set_differences() -> None:
    theirs = _smpplib_bmp_set()
    assert theirs - GSM7_CHARS == SMPPLIB_EXTRA
    assert GSM7_CHARS - theirs == SMPPLIB_MISSING
    # "`" goes out as 0x5F, which every handset shows as "§": a silent substitution.
    assert smpplib.gsm.gsm_encode("`") == b"\x5f"
    assert decode_septets(b"\x5f") == "§"
    assert not is_gsm7("`")
    assert encode_septets("§") == b"\x5f"
    assert encode_septets("\x0c") == b"\x1b\x0a"


@given(unicode_text | gsm7_text)
def test_seven_bit_detection(text: str) -> None:
    _, coding, _ = smpplib.gsm.make_parts(text)
    smpplib_gsm = SMPPLIB_GSM.issuperset(text)
    assert coding == (smpplib.consts.SMPP_ENCODING_DEFAULT if smpplib_gsm else 8)
    if not set(text) & (SMPPLIB_EXTRA | SMPPLIB_MISSING):
        assert coding == choose_encoding(text)


def _compare(text: str, encoding: Encoding, lead: set[int], unit: int) -> None:
    """smpplib's parts equal ours unless smpplib cut a 2-unit sequence in half."""
    theirs, coding, _ = smpplib.gsm.make_parts(text, encoding=int(encoding))
    assert coding == encoding
    ref = theirs[0][3] if len(theirs) > 1 else 0
    ours = encode_parts(text, encoding, ref=ref)
    payloads = [p[6:] for p in theirs] if len(theirs) > 1 else theirs
    cut = [p for p in payloads[:-1] if p[-unit] in lead]
    if not cut:
        assert ours == theirs
        assert part_count(text, encoding) == len(theirs)
    else:
        # smpplib split an escape / surrogate pair: one of its parts ends with the lead
        # unit, which ours never do.
        own = ours if len(ours) == 1 else [p[6:] for p in ours]
        assert all(p[-unit] not in lead for p in own[:-1])
        assert len(ours) >= len(theirs)


@given(gsm7_text | gsm7_boundary_text)
def test_gsm7_parts(text: str) -> None:
    text = text.replace("§", "$").replace("\x0c", "\n")  # outside smpplib's table
    _compare(text, Encoding.GSM7, {0x1B}, 1)


@given(unicode_text | ucs2_boundary_text)
def test_ucs2_parts(text: str) -> None:
    _compare(text, Encoding.UCS2, set(range(0xD8, 0xDC)), 2)


def test_smpplib_splits_escape_pair() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, ESC is septet 153
    theirs, _, _ = smpplib.gsm.make_parts(text)
    assert len(theirs) == 2
    assert theirs[0][-1] == 0x1B  # part 1 ends with a lone ESC ...
    assert theirs[1][6] == 0x65  # ... part 2 starts with 0x65, shown alone as "e"
    assert decode_septets(theirs[1][6:7]) == "e"
    # Ours keeps "€" whole, at the price of a third part.
    assert split(text, Encoding.GSM7) == ["a" * 152, "€" + "a" * 151, "a"]


def test_smpplib_splits_surrogate_pair() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10
    theirs, coding, _ = smpplib.gsm.make_parts(text)
    assert coding == 8
    assert theirs[0][-2:] == b"\xd8\x3d"  # high surrogate ends part 1
    assert theirs[1][6:8] == b"\xde\x00"  # low surrogate starts part 2
    with pytest.raises(UnicodeDecodeError):
        theirs[0][6:].decode("utf-16-be")
    assert split(text, Encoding.UCS2) == ["ж" * 66, "😀" + "ж" * 10]
