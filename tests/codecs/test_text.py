"""The text of incoming user data by data coding, and of a message joined from its parts."""

from __future__ import annotations

from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.text import decode_text, join_parts


def test_decode_text_never_raises() -> None:
    assert decode_text(b"\x00\x41\xd8", 8) == "A"
    assert decode_text(b"caf\xe9", 0) == "café"  # not septets: shown as Latin-1
    assert decode_text(b"\x80", 4) == "\x80"


def test_parts_are_joined_before_decoding_so_a_split_surrogate_pair_survives() -> None:
    data = "ok 😀".encode("utf-16-be")  # the emoji is a surrogate pair: 4 bytes
    first, second = data[:-2], data[-2:]  # cut between its two halves
    assert join_parts([(8, first), (8, second)]) == "ok 😀"
    assert decode_text(first, 8) + decode_text(second, 8) != "ok 😀"  # why they are joined


def test_gsm7_parts_join_into_one_text() -> None:
    assert join_parts([(0, encode_septets("Hello ")), (0, encode_septets("{world}"))]) == (
        "Hello {world}"
    )


def test_parts_of_mixed_codings_are_decoded_one_by_one() -> None:
    assert join_parts([(0, encode_septets("abc")), (8, "жж".encode("utf-16-be"))]) == "abcжж"
