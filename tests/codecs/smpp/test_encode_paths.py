"""The encode fast paths (issue 15): one join per PDU, header numbered without a copy.

The oracle is each field kind's checked ``encode`` (the declarations' own rules), joined
the plain way: the per-type appenders must give the same bytes and the same errors.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp import SmppEncodeError, SubmitSm, Ton
from simgate.codecs.smpp.codec import encode, layout
from simgate.codecs.smpp.pdus import Pdu, numbered
from simgate.codecs.smpp.window import Window
from tests.support.examples import examples

from .strategies import any_pdu


def _plain(pdu: Pdu, sequence: int) -> bytes:
    body = b"".join(kind.encode(getattr(pdu, n), n) for n, kind in layout(type(pdu)))
    body += pdu.tlvs.encode()
    head = (16 + len(body), pdu.COMMAND_ID, pdu.command_status, sequence)
    return struct.pack(">IIII", *head) + body


@settings(max_examples=examples(300), deadline=None)
@given(pdu=any_pdu, sequence=st.integers(1, 0x7FFF_FFFF))
def test_fast_encode_gives_the_checked_fields_bytes(pdu: Pdu, sequence: int) -> None:
    assert encode(pdu) == _plain(pdu, pdu.sequence_number)
    assert encode(pdu, sequence_number=sequence) == _plain(pdu, sequence)


@settings(max_examples=examples(100), deadline=None)
@given(pdu=any_pdu, sequence=st.integers(1, 0x7FFF_FFFF))
def test_numbered_is_replace_without_init(pdu: Pdu, sequence: int) -> None:
    clone = numbered(pdu, sequence)
    assert clone == dataclasses.replace(pdu, sequence_number=sequence)
    assert type(clone) is type(pdu)
    assert pdu.sequence_number != sequence or clone is not pdu


def test_enum_bool_and_bytearray_values_encode_like_plain_ones() -> None:
    plain = SubmitSm(source_addr_ton=5, registered_delivery=1, short_message=b"hi")
    odd = SubmitSm(
        source_addr_ton=Ton.ALPHANUMERIC,
        registered_delivery=True,
        short_message=bytearray(b"hi"),  # type: ignore[arg-type]  # what callers pass
    )
    assert encode(odd) == encode(plain)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"esm_class": 256}, "esm_class: 256 does not fit in 1 octet(s)"),
        ({"esm_class": -1}, "esm_class: -1 does not fit in 1 octet(s)"),
        ({"esm_class": "1"}, "esm_class: expected int, got str"),
        ({"source_addr": "x" * 21}, "source_addr: 22 octets with NUL, max 21"),
        ({"source_addr": "a\x00b"}, "source_addr: NUL inside a C-octet string"),
        ({"source_addr": "é" * 3}, None),  # latin-1 is allowed: the checked path takes it
        ({"validity_period": "1"}, "validity_period: length 1 not in [0, 16]"),
        ({"short_message": b"x" * 255}, "short_message: 255 octets, max 254"),
        ({"short_message": "text"}, "short_message: expected bytes, got str"),
    ],
)
def test_values_off_the_fast_path_keep_their_checks(
    fields: dict[str, object], message: str | None
) -> None:
    pdu = SubmitSm(**fields)  # type: ignore[arg-type]
    if message is None:
        assert encode(pdu) == _plain(pdu, 0)
        return
    with pytest.raises(SmppEncodeError) as err:
        encode(pdu)
    assert str(err.value) == message


def test_window_counts_outstanding_requests_without_keepalives() -> None:
    window = Window(3)
    for auto in (False, True, False):
        window.add(SubmitSm(sequence_number=window.next_sequence()), 0.0, 1.0, auto=auto)
    assert window.outstanding == 2
    assert window.pop(2) is not None  # the keepalive: not counted
    assert window.outstanding == 2
    window.add(SubmitSm(sequence_number=window.next_sequence()), 5.0, 1.0)
    assert [p.request.sequence_number for p in window.pop_expired(1.0)] == [1, 3]
    assert window.outstanding == 1
    assert window.pop(99) is None
    window.clear()
    assert window.outstanding == 0
    assert window.has_room()
