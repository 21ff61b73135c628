"""Property tests: every PDU type survives encode -> decode unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp.codec import decode, encode, layout
from simgate.codecs.smpp.pdus import PDU_TYPES, Pdu
from simgate.codecs.smpp.tlv_types import TlvTag
from tests.support.examples import examples

from .strategies import pdu_strategy

ALL_TYPES = sorted(PDU_TYPES.values(), key=lambda c: c.COMMAND_ID)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdu_strategy(cls))
    wire = encode(pdu)
    assert int.from_bytes(wire[:4], "big") == len(wire)
    assert int.from_bytes(wire[4:8], "big") == cls.COMMAND_ID
    assert int.from_bytes(wire[12:16], "big") == pdu.sequence_number
    decoded = decode(wire)
    assert type(decoded) is cls
    assert decoded == pdu
    # Everything encode() produces is also valid under strict decoding.
    assert decode(wire, strict=True) == pdu
    assert encode(decoded) == wire


def test_every_command_with_a_body_declares_fields() -> None:
    # A guard against a declaration silently losing its fields (e.g. a typo in
    # the helper), which would make the round trip above vacuous.
    with_body = {name for name, cls in ((c.__name__, c) for c in ALL_TYPES) if layout(cls)}
    assert with_body == {
        "BindTransmitter",
        "BindReceiver",
        "BindTransceiver",
        "BindTransmitterResp",
        "BindReceiverResp",
        "BindTransceiverResp",
        "Outbind",
        "SubmitSm",
        "SubmitSmResp",
        "DeliverSm",
        "DeliverSmResp",
        "DataSm",
        "DataSmResp",
        "QuerySm",
        "QuerySmResp",
        "CancelSm",
        "ReplaceSm",
        "AlertNotification",
    }
    assert [name for name, _ in layout(PDU_TYPES[0x04])][-3:] == [
        "data_coding",
        "sm_default_msg_id",
        "short_message",
    ]


@settings(max_examples=examples(200), deadline=None)
@given(
    pdu=pdu_strategy(PDU_TYPES[0x04]),
    garbage_tlv=st.binary(min_size=1, max_size=8),
)
def test_unknown_tlv_bytes_are_reencoded_unchanged(pdu: Pdu, garbage_tlv: bytes) -> None:
    # Append a vendor TLV directly on the wire and check it survives verbatim.
    vendor = (0x1403).to_bytes(2, "big") + len(garbage_tlv).to_bytes(2, "big") + garbage_tlv
    wire = encode(pdu)
    patched = (len(wire) + len(vendor)).to_bytes(4, "big") + wire[4:] + vendor
    decoded = decode(patched)
    assert decoded.tlvs.raw(0x1403) == garbage_tlv
    assert decoded.tlvs.unknown[-1].value == garbage_tlv
    assert encode(decoded) == patched
    assert TlvTag.MESSAGE_PAYLOAD not in decoded.tlvs
