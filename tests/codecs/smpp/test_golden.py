"""Golden vectors: known bytes -> expected fields, and fields -> the same bytes.

The vectors and their sources are in tests/support/smpp_vectors.py.
"""

from __future__ import annotations

import pytest

from simgate.codecs.smpp import (
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CommandStatus,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MessageState,
    NetworkErrorCode,
    Pdu,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Tlvs,
    Unbind,
    decode,
    encode,
)
from tests.support.smpp_vectors import (
    HAND_DELIVER_SM,
    SMPPLIB_BIND_TRANSCEIVER,
    SMPPLIB_SUBMIT_SM,
    SMPPLIB_SUBMIT_SM_RESP,
    SMPPLIB_TEST_DELIVER_SM_1,
    SMPPLIB_TEST_DELIVER_SM_2,
    SPEC_BIND_TRANSMITTER,
)


def test_spec_bind_transmitter_example() -> None:
    pdu = decode(SPEC_BIND_TRANSMITTER)
    assert pdu == BindTransmitter(
        sequence_number=1,
        system_id="SMPP3TEST",
        password="secret08",
        system_type="SUBMIT1",
        interface_version=0x00,
        addr_ton=1,
        addr_npi=1,
        address_range="",
    )
    assert encode(pdu) == SPEC_BIND_TRANSMITTER


def test_smpplib_real_receipt_with_tlvs() -> None:
    pdu = decode(SMPPLIB_TEST_DELIVER_SM_1)
    assert isinstance(pdu, DeliverSm)
    assert (pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr) == (1, 1, "31600000000")
    assert (pdu.dest_addr_ton, pdu.destination_addr) == (5, "XXX YYYY")
    assert pdu.esm_class == 0x04
    assert pdu.short_message == b""
    assert pdu.tlvs.receipted_message_id == "1d305b4c"
    assert pdu.tlvs.message_state is MessageState.DELIVERED
    payload = pdu.tlvs.message_payload
    assert payload is not None
    assert payload.startswith(b"id:0489708364 sub:001")
    assert [t.tag for t in pdu.tlvs] == [0x000E, 0x0006, 0x001E, 0x0427, 0x0424, 0x0426]
    assert encode(pdu) == SMPPLIB_TEST_DELIVER_SM_1


def test_smpplib_real_receipt_with_vendor_tlvs() -> None:
    pdu = decode(SMPPLIB_TEST_DELIVER_SM_2)
    assert isinstance(pdu, DeliverSm)
    assert pdu.sequence_number == 0x2F70C69A
    assert pdu.source_addr == "22549909028"
    assert pdu.destination_addr == ""
    assert pdu.short_message.startswith(b"iid:795920026"[1:])
    assert len(pdu.short_message) == 0x69
    assert pdu.tlvs.unknown == (Tlv(0x1403, b"(null)\x00"), Tlv(0x1402, b"612\x00"))
    assert encode(pdu) == SMPPLIB_TEST_DELIVER_SM_2


def test_smpplib_submit_sm_vector() -> None:
    expected = SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr="SIMGATE",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0x40,
        registered_delivery=1,
        data_coding=8,
        short_message=b"\x05\x00\x03\x2a\x02\x01\x00H\x00i",
        tlvs=Tlvs(
            (
                Tlv(0x0204, b"\x02\x01"),
                Tlv(0x020C, b"\x00\x2a"),
                Tlv(0x020E, b"\x02"),
                Tlv(0x020F, b"\x01"),
            )
        ),
    )
    pdu = decode(SMPPLIB_SUBMIT_SM)
    assert pdu == expected
    assert (pdu.tlvs.sar_msg_ref_num, pdu.tlvs.sar_total_segments) == (0x2A, 2)
    assert (pdu.tlvs.sar_segment_seqnum, pdu.tlvs.user_message_reference) == (1, 513)
    assert encode(expected) == SMPPLIB_SUBMIT_SM


@pytest.mark.parametrize(
    ("wire", "pdu"),
    [
        (
            SMPPLIB_BIND_TRANSCEIVER,
            BindTransceiver(sequence_number=1, system_id="simgate", password="s3cret"),
        ),
        (SMPPLIB_SUBMIT_SM_RESP, SubmitSmResp(sequence_number=7, message_id="1d305b4c")),
        # hand: header only.
        (bytes.fromhex("00000010000000150000000000000003"), EnquireLink(sequence_number=3)),
        (bytes.fromhex("00000010800000150000000000000003"), EnquireLinkResp(sequence_number=3)),
        (bytes.fromhex("00000010000000060000000000000009"), Unbind(sequence_number=9)),
        (
            bytes.fromhex("00000010800000000000000300000005"),
            GenericNack(sequence_number=5, command_status=CommandStatus.ESME_RINVCMDID),
        ),
        # hand: bind_transceiver_resp "SMSC" + sc_interface_version 0x34 TLV.
        (
            bytes.fromhex("0000001a800000090000000000000001534d5343000210000134"),
            BindTransceiverResp(
                sequence_number=1, system_id="SMSC", tlvs=Tlvs.build(sc_interface_version=0x34)
            ),
        ),
        # hand: submit_sm_resp throttled, with its (empty) body.
        (
            bytes.fromhex("0000001180000004000000580000000200"),
            SubmitSmResp(sequence_number=2, command_status=CommandStatus.ESME_RTHROTTLED),
        ),
        # hand: query_sm_resp id "42", final_date 16 chars, DELIVERED, error 0.
        (
            bytes.fromhex("00000026800000030000000000000004343200")
            + b"240101120000000+\x00"
            + bytes([2, 0]),
            QuerySmResp(
                sequence_number=4,
                message_id="42",
                final_date="240101120000000+",
                message_state=2,
            ),
        ),
        (
            HAND_DELIVER_SM,
            DeliverSm(
                sequence_number=0x10,
                esm_class=4,
                tlvs=Tlvs.build(
                    receipted_message_id="abc",
                    message_state=5,
                    network_error_code=NetworkErrorCode(3, 0x22),
                ),
            ),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Pdu) else "",
)
def test_vectors(wire: bytes, pdu: Pdu) -> None:
    assert decode(wire) == pdu
    assert encode(pdu) == wire


def test_deliver_sm_vector_typed_tlvs() -> None:
    pdu = decode(HAND_DELIVER_SM)
    assert pdu.tlvs.network_error_code == NetworkErrorCode(network_type=3, error_code=0x22)
    assert pdu.tlvs.receipted_message_id == "abc"
    assert pdu.tlvs.message_state is MessageState.UNDELIVERABLE


def test_error_response_without_body_decodes_with_defaults() -> None:
    # v3.4 §4.4.2: submit_sm_resp has no body when command_status is non-zero.
    pdu = decode(bytes.fromhex("00000010800000040000001400000009"))
    assert pdu == SubmitSmResp(sequence_number=9, command_status=CommandStatus.ESME_RMSGQFUL)
    assert pdu.status is CommandStatus.ESME_RMSGQFUL
    assert not pdu.ok


def test_unknown_status_code_is_kept_as_int() -> None:
    pdu = decode(bytes.fromhex("00000010800000040000040b00000009"))
    assert pdu.status == 0x40B
    assert not isinstance(pdu.status, CommandStatus)
