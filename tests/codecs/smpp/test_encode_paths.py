"""The codec's fast paths (issue 15): one join per PDU, header numbered without a copy,
submit_sm_resp read without the generic walk.

The oracle is each field kind's checked ``encode`` (the declarations' own rules), joined
the plain way: the per-type appenders must give the same bytes and the same errors.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp import (
    CommandStatus,
    SmppDecodeError,
    SmppEncodeError,
    SubmitSm,
    SubmitSmResp,
    Tlvs,
    Ton,
)
from simgate.codecs.smpp.codec import decode, encode, layout
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


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("size", [0, 1, 64, 65, 200])
def test_submit_sm_resp_fast_decode_keeps_the_generic_rules(size: int, strict: bool) -> None:
    # submit_sm_resp is read without the generic walk; message_id is at most 65 octets with
    # its NUL, which only strict decoding enforces (ESME_RINVPARLEN).
    body = b"a" * size + b"\x00"  # built by hand: encode refuses an id over the limit
    wire = struct.pack(">IIII", 16 + len(body), 0x80000004, 0, 7) + body
    if strict and size > 64:
        with pytest.raises(SmppDecodeError) as err:
            decode(wire, strict=True)
        assert err.value.status == CommandStatus.ESME_RINVPARLEN
        return
    assert decode(wire, strict=strict) == SubmitSmResp(sequence_number=7, message_id="a" * size)


def test_submit_sm_resp_with_tlvs_or_a_second_nul_takes_the_generic_path() -> None:
    with_tlv = SubmitSmResp(
        sequence_number=3, message_id="ab", tlvs=Tlvs.build(sc_interface_version=0x34)
    )
    assert decode(encode(with_tlv)) == with_tlv
    odd = encode(SubmitSmResp(sequence_number=3, message_id="ab"))[:-1] + b"\x00\x00"
    odd = (len(odd)).to_bytes(4, "big") + odd[4:]
    with pytest.raises(SmppDecodeError):  # "ab" then one stray octet: not a TLV
        decode(odd)
