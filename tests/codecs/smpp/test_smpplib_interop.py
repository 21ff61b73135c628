"""Differential tests against smpplib 2.2.4 (an independent SMPP v3.4 codec).

smpplib -> simgate: PDUs built and serialised by smpplib decode to the expected
fields and re-encode to the very same bytes. simgate -> smpplib: what we encode
parses in smpplib to the same field values.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smpplib import smpp as smpplib_smpp

from simgate.codecs.smpp import (
    AlertNotification,
    BindTransceiver,
    CommandStatus,
    DataSm,
    DeliverSm,
    EnquireLink,
    MessageState,
    NetworkErrorCode,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Tlvs,
    decode,
    encode,
)
from simgate.codecs.smpp.tlvs import MS_AVAILABILITY_STATUS
from tests.support.examples import examples
from tests.support.smpp_vectors import (
    SMPPLIB_BIND_TRANSCEIVER,
    SMPPLIB_SUBMIT_SM,
    SMPPLIB_SUBMIT_SM_RESP,
)


def smpplib_bytes(command: str, sequence: int, **params: Any) -> bytes:
    pdu = smpplib_smpp.make_pdu(command, sequence=sequence, **params)
    pdu.sequence = sequence  # make_pdu ignores the kwarg when a client is absent
    data: bytes = pdu.generate()
    return data


def smpplib_parse(data: bytes) -> Any:
    return smpplib_smpp.parse_pdu(data, sequence=0, allow_unknown_opt_params=True)


SUBMIT_PARAMS: dict[str, Any] = {
    "source_addr_ton": 5,
    "source_addr_npi": 0,
    "source_addr": "SIMGATE",
    "dest_addr_ton": 1,
    "dest_addr_npi": 1,
    "destination_addr": "447700900123",
    "esm_class": 0x40,
    "registered_delivery": 1,
    "data_coding": 8,
    "short_message": b"\x05\x00\x03\x2a\x02\x01\x00H\x00i",
    "sar_msg_ref_num": 0x2A,
    "sar_total_segments": 2,
    "sar_segment_seqnum": 1,
    "user_message_reference": 513,
}


def test_pinned_vectors_still_match_smpplib_output() -> None:
    assert smpplib_bytes("submit_sm", 7, **SUBMIT_PARAMS) == SMPPLIB_SUBMIT_SM
    assert (
        smpplib_bytes("bind_transceiver", 1, system_id="simgate", password="s3cret")
        == SMPPLIB_BIND_TRANSCEIVER
    )
    assert smpplib_bytes("submit_sm_resp", 7, message_id="1d305b4c") == SMPPLIB_SUBMIT_SM_RESP


def test_submit_sm_with_tlvs_from_smpplib() -> None:
    wire = smpplib_bytes("submit_sm", 11, **SUBMIT_PARAMS)
    pdu = decode(wire)
    assert isinstance(pdu, SubmitSm)
    assert pdu.sequence_number == 11
    assert pdu.destination_addr == "447700900123"
    assert pdu.short_message == SUBMIT_PARAMS["short_message"]
    assert pdu.tlvs.sar_msg_ref_num == 0x2A
    assert pdu.tlvs.user_message_reference == 513
    assert encode(pdu) == wire


def test_deliver_sm_receipt_from_smpplib() -> None:
    text = b"id:1d305b4c sub:001 dlvrd:001 submit date:2401011200 stat:DELIVRD err:000 text:Hi"
    wire = smpplib_bytes(
        "deliver_sm",
        0x10,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
        dest_addr_ton=5,
        destination_addr="SIMGATE",
        esm_class=4,
        short_message=text,
        receipted_message_id="1d305b4c",
        message_state=2,
        network_error_code=b"\x03\x00\x00",
    )
    pdu = decode(wire)
    assert isinstance(pdu, DeliverSm)
    assert pdu.short_message == text
    assert pdu.tlvs.receipted_message_id == "1d305b4c"
    assert pdu.tlvs.message_state is MessageState.DELIVERED
    assert pdu.tlvs.network_error_code == NetworkErrorCode(3, 0)
    assert encode(pdu) == wire


@pytest.mark.parametrize(
    ("command", "params", "expected"),
    [
        ("enquire_link", {}, EnquireLink(sequence_number=5)),
        (
            "bind_transceiver",
            {"system_id": "acme", "password": "pw", "system_type": "SMPP", "addr_ton": 1},
            BindTransceiver(
                sequence_number=5, system_id="acme", password="pw", system_type="SMPP", addr_ton=1
            ),
        ),
        (
            "query_sm",
            {"message_id": "abc123", "source_addr": "SIMGATE", "source_addr_ton": 5},
            QuerySm(
                sequence_number=5, message_id="abc123", source_addr="SIMGATE", source_addr_ton=5
            ),
        ),
        (
            "data_sm",
            {"destination_addr": "4477", "data_coding": 8, "message_payload": b"\x00H"},
            DataSm(
                sequence_number=5,
                destination_addr="4477",
                data_coding=8,
                tlvs=Tlvs.build(message_payload=b"\x00H"),
            ),
        ),
        (
            "alert_notification",
            {"source_addr": "4477", "esme_addr": "SIMGATE", "ms_availability_status": 0},
            AlertNotification(
                sequence_number=5,
                source_addr="4477",
                esme_addr="SIMGATE",
                tlvs=Tlvs().with_value(MS_AVAILABILITY_STATUS, 0),
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_decode_smpplib_output(command: str, params: dict[str, Any], expected: object) -> None:
    wire = smpplib_bytes(command, 5, **params)
    assert decode(wire) == expected
    assert encode(decode(wire)) == wire


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))


@settings(max_examples=examples(150), deadline=None)
@given(
    sequence=st.integers(1, 0x7FFF_FFFF),
    source=ascii_text.filter(lambda s: len(s) <= 20),
    destination=ascii_text.filter(lambda s: len(s) <= 20),
    ints=st.lists(st.integers(0, 255), min_size=9, max_size=9),
    message=st.binary(min_size=1, max_size=254),
    sar=st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255)),
    umr=st.none() | st.integers(0, 0xFFFF),
)
def test_random_submit_sm_smpplib_to_simgate_and_back(
    sequence: int,
    source: str,
    destination: str,
    ints: list[int],
    message: bytes,
    sar: tuple[int, int, int] | None,
    umr: int | None,
) -> None:
    names = (
        "source_addr_ton",
        "source_addr_npi",
        "dest_addr_ton",
        "dest_addr_npi",
        "esm_class",
        "protocol_id",
        "priority_flag",
        "registered_delivery",
        "data_coding",
    )
    values = dict(zip(names, ints, strict=True))
    tlv_params: dict[str, int] = {}
    if umr is not None:
        tlv_params["user_message_reference"] = umr
    if sar is not None:
        tlv_params |= dict(
            zip(("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum"), sar, strict=True)
        )
    wire = smpplib_bytes(
        "submit_sm",
        sequence,
        source_addr=source,
        destination_addr=destination,
        short_message=message,
        **values,
        **tlv_params,
    )
    ours = decode(wire)
    assert isinstance(ours, SubmitSm)
    assert ours.sequence_number == sequence
    assert (ours.source_addr, ours.destination_addr) == (source, destination)
    assert {n: getattr(ours, n) for n in names} == values
    assert ours.short_message == message
    assert ours.tlvs.user_message_reference == umr
    assert ours.tlvs.sar_msg_ref_num == (sar[0] if sar else None)
    assert encode(ours) == wire

    # And smpplib reads our encoding of the same message identically.
    theirs = smpplib_parse(encode(ours))
    assert theirs.command == "submit_sm"
    assert theirs.sequence == sequence
    assert theirs.source_addr == source.encode()
    assert theirs.destination_addr == destination.encode()
    assert theirs.short_message == message
    assert theirs.data_coding == values["data_coding"]
    assert theirs.user_message_reference == umr


def test_smpplib_parses_our_deliver_sm_receipt() -> None:
    pdu = DeliverSm(
        sequence_number=77,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="447700900123",
        destination_addr="SIMGATE",
        esm_class=4,
        short_message=b"id:abc sub:001 dlvrd:001 stat:UNDELIV err:034 text:",
        tlvs=Tlvs.build(
            receipted_message_id="abc",
            message_state=MessageState.UNDELIVERABLE,
            network_error_code=NetworkErrorCode(3, 34),
        ),
    )
    theirs = smpplib_parse(encode(pdu))
    assert theirs.command == "deliver_sm"
    assert theirs.sequence == 77
    assert theirs.source_addr == b"447700900123"
    assert theirs.esm_class == 4
    assert theirs.receipted_message_id == b"abc"
    assert theirs.message_state == 5
    assert theirs.network_error_code == b"\x03\x00\x22"


def test_smpplib_parses_our_bind_and_responses() -> None:
    bind = smpplib_parse(encode(BindTransceiver(sequence_number=1, system_id="u", password="p")))
    assert (bind.command, bind.system_id, bind.password, bind.interface_version) == (
        "bind_transceiver",
        b"u",
        b"p",
        0x34,
    )
    resp = smpplib_parse(
        encode(
            SubmitSmResp(
                sequence_number=9, message_id="x1", command_status=CommandStatus.ESME_RTHROTTLED
            )
        )
    )
    assert (resp.command, resp.sequence, resp.status, resp.message_id) == (
        "submit_sm_resp",
        9,
        CommandStatus.ESME_RTHROTTLED,
        b"x1",
    )
