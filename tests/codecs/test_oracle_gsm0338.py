"""Cross-check of the GSM-7 tables against the ``gsm0338`` codec (PyPI gsm0338 1.1.0).

gsm0338 builds its tables from the Unicode names of the TS 23.038 §6.2.1 / §6.2.1.1
characters, so it is an independent transcription of the same spec tables.
"""

from __future__ import annotations

import functools

import gsm0338
import pytest
from hypothesis import given

from simgate.codecs.gsm7 import GSM7_CHARS, decode_septets, encode_septets, is_gsm7
from tests.codecs.strategies import gsm7_text

CODEC = gsm0338.Codec()  # also registers "gsm03.38" with the codecs module on import


def _oracle_accepts(ch: str) -> bool:
    try:
        ch.encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _oracle_bmp_set() -> frozenset[str]:
    return frozenset(chr(c) for c in range(0x10000) if _oracle_accepts(chr(c)))


def test_same_character_set_except_literal_escape() -> None:
    oracle = _oracle_bmp_set()
    ours = frozenset(chr(c) for c in range(0x10000) if is_gsm7(chr(c)))
    assert ours == GSM7_CHARS
    # Documented difference: gsm0338 maps U+001B ESCAPE to code 0x1B. For us 0x1B is the
    # escape to the extension table (TS 23.038 §6.2.1), not a character: a literal ESC
    # sent as 0x1B would swallow the next septet on the handset.
    assert oracle - ours == {"\x1b"}
    assert ours - oracle == set()
    assert "\x1b".encode("gsm03.38") == b"\x1b"
    assert decode_septets(b"\x1ba") == "a"  # the handset's view (ESC + 0x61 undefined)


def test_every_code_decodes_identically() -> None:
    for code in range(0x80):
        if code == 0x1B:
            continue
        assert decode_septets(bytes([code])) == bytes([code]).decode("gsm03.38")
    for code in range(0x80):
        seq = bytes([0x1B, code])
        try:
            expected = seq.decode("gsm03.38")
        except UnicodeDecodeError:
            # Documented difference: gsm0338 rejects undefined extension codes; we apply
            # the TS 23.038 §6.2.1.1 receiving rule (main-table char, ESC ESC -> space),
            # and raise like gsm0338 only in strict mode.
            assert decode_septets(seq) == (" " if code == 0x1B else decode_septets(bytes([code])))
            with pytest.raises(ValueError, match="extension"):
                decode_septets(seq, strict=True)
        else:
            assert decode_septets(seq) == expected
            assert decode_septets(seq, strict=True) == expected


@given(gsm7_text)
def test_encode_decode_agree(text: str) -> None:
    septs = encode_septets(text)
    assert septs == text.encode("gsm03.38")
    assert CODEC.decode(septs)[0] == decode_septets(septs) == text
