from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp import (
    CommandStatus,
    EnquireLink,
    PduFramer,
    SmppDecodeError,
    SubmitSm,
    encode,
)
from simgate.codecs.smpp.pdus import Pdu
from tests.support.examples import examples

from .strategies import any_pdu


@settings(max_examples=examples(200), deadline=None)
@given(pdus=st.lists(any_pdu, min_size=1, max_size=6), cuts=st.lists(st.integers(0, 5000)))
def test_split_anywhere_yields_the_same_pdus(pdus: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in pdus)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    framer = PduFramer()
    frames: list[bytes] = []
    for start, end in itertools.pairwise(points):
        frames += framer.feed(stream[start:end])
    assert frames == [encode(p) for p in pdus]
    assert framer.buffered == 0


def test_partial_pdu_is_buffered() -> None:
    wire = encode(SubmitSm(sequence_number=1, short_message=b"hello"))
    framer = PduFramer()
    assert framer.feed(wire[:3]) == []
    assert framer.feed(wire[3:20]) == []
    assert framer.buffered == 20
    assert framer.feed(wire[20:]) == [wire]


@pytest.mark.parametrize("length", [0, 1, 15, 1025, 0xFFFF_FFFF])
def test_absurd_command_length_is_rejected_and_sticky(length: int) -> None:
    framer = PduFramer(max_length=1024)
    bad = length.to_bytes(4, "big") + bytes.fromhex("00000004000000000000002a")
    with pytest.raises(SmppDecodeError) as info:
        framer.feed(bad)
    assert info.value.status is CommandStatus.ESME_RINVCMDLEN
    assert info.value.sequence_number == 0x2A
    assert info.value.command_id == 4
    with pytest.raises(SmppDecodeError):
        framer.feed(encode(EnquireLink(sequence_number=1)))


def test_bad_length_with_short_header_has_no_sequence() -> None:
    with pytest.raises(SmppDecodeError) as info:
        PduFramer().feed(b"\x00\x00\x00\x05")
    assert info.value.sequence_number is None


def test_good_pdus_before_a_bad_header_are_returned_first() -> None:
    good = encode(EnquireLink(sequence_number=1))
    framer = PduFramer()
    assert framer.feed(good + b"\x00\x00\x00\x02") == [good]
    assert framer.error is not None
    with pytest.raises(SmppDecodeError):
        framer.feed(b"")


def test_max_length_bounds() -> None:
    with pytest.raises(ValueError, match="max_length"):
        PduFramer(max_length=15)
    exactly = encode(SubmitSm(short_message=b"x" * 10))
    assert PduFramer(max_length=len(exactly)).feed(exactly) == [exactly]
    with pytest.raises(SmppDecodeError):
        PduFramer(max_length=len(exactly) - 1).feed(exactly)
