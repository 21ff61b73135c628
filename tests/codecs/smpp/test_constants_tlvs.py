from __future__ import annotations

import pytest
from smpplib import command_codes as smpplib_codes
from smpplib import consts as smpplib_consts

from simgate.codecs.smpp import (
    CommandId,
    CommandStatus,
    MessageState,
    NetworkErrorCode,
    StatusClass,
    Tlv,
    Tlvs,
    TlvTag,
    classify_status,
    decode,
    encode,
    is_retryable,
    is_throttling,
)
from simgate.codecs.smpp.pdus import DeliverSm
from simgate.codecs.smpp.tlvs import MESSAGE_STATE, SAR_MSG_REF_NUM, SOURCE_PORT


def test_command_status_table_matches_smpplib() -> None:
    theirs = {
        name.removeprefix("SMPP_"): value
        for name, value in vars(smpplib_consts).items()
        if name.startswith("SMPP_ESME_")
    }
    ours = {s.name: int(s) for s in CommandStatus}
    assert ours == theirs
    assert len(ours) == 48


def test_command_ids_match_smpplib() -> None:
    ours = {c.name.lower(): int(c) for c in CommandId}
    assert ours == smpplib_codes.commands


def test_tlv_tags_match_smpplib() -> None:
    ours = {t.name.lower(): int(t) for t in TlvTag}
    assert ours == smpplib_consts.OPTIONAL_PARAMS


def test_command_id_helpers() -> None:
    assert CommandId.SUBMIT_SM.response_id is CommandId.SUBMIT_SM_RESP
    assert CommandId.SUBMIT_SM_RESP.request_id is CommandId.SUBMIT_SM
    assert CommandId.OUTBIND.response_id is None
    assert CommandId.ALERT_NOTIFICATION.response_id is None
    assert CommandId.GENERIC_NACK.request_id is None
    assert CommandId.SUBMIT_SM.request_id is None
    assert CommandId.DATA_SM_RESP.is_response
    assert not CommandId.DATA_SM.is_response


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (CommandStatus.ESME_ROK, StatusClass.OK),
        (CommandStatus.ESME_RMSGQFUL, StatusClass.RETRYABLE),
        (CommandStatus.ESME_RTHROTTLED, StatusClass.RETRYABLE),
        (CommandStatus.ESME_RSYSERR, StatusClass.RETRYABLE),
        (CommandStatus.ESME_RX_T_APPN, StatusClass.RETRYABLE),
        (CommandStatus.ESME_RINVBNDSTS, StatusClass.RETRYABLE),
        (CommandStatus.ESME_RX_P_APPN, StatusClass.PERMANENT),
        (CommandStatus.ESME_RX_R_APPN, StatusClass.PERMANENT),
        (CommandStatus.ESME_RINVDSTADR, StatusClass.PERMANENT),
        (CommandStatus.ESME_RINVSRCADR, StatusClass.PERMANENT),
        (CommandStatus.ESME_RSUBMITFAIL, StatusClass.PERMANENT),
        (CommandStatus.ESME_RINVMSGLEN, StatusClass.PERMANENT),
        (0x400, StatusClass.PERMANENT),  # vendor specific
    ],
)
def test_classify_status(status: int, expected: StatusClass) -> None:
    assert classify_status(status) is expected
    assert is_retryable(status) == (expected is StatusClass.RETRYABLE)


def test_status_classification_overrides_and_throttling() -> None:
    assert is_retryable(0x400, extra_retryable={0x400})
    assert not is_retryable(0x401, extra_retryable={0x400})
    assert is_throttling(CommandStatus.ESME_RTHROTTLED)
    assert is_throttling(CommandStatus.ESME_RMSGQFUL)
    assert not is_throttling(CommandStatus.ESME_RSYSERR)


def test_message_state_stat_abbreviations() -> None:
    assert [s.stat for s in MessageState] == [
        "ENROUTE",
        "DELIVRD",
        "EXPIRED",
        "DELETED",
        "UNDELIV",
        "ACCEPTD",
        "UNKNOWN",
        "REJECTD",
    ]
    assert [int(s) for s in MessageState] == list(range(1, 9))
    assert MessageState.from_stat("delivrd") is MessageState.DELIVERED
    assert MessageState.from_stat(" UNDELIVERABLE ") is MessageState.UNDELIVERABLE
    assert MessageState.from_stat("FAILED") is None
    assert not MessageState.ENROUTE.is_final
    assert MessageState.REJECTED.is_final


def test_typed_tlv_access() -> None:
    tlvs = Tlvs.build(
        message_payload=b"\x00\x01",
        sar_msg_ref_num=0x1234,
        sar_total_segments=3,
        sar_segment_seqnum=2,
        receipted_message_id="abc",
        message_state=MessageState.EXPIRED,
        network_error_code=NetworkErrorCode(3, 0x0101),
        user_message_reference=7,
        sc_interface_version=0x34,
        extra=[Tlv(0x1401, b"vendor")],
    )
    assert tlvs.message_payload == b"\x00\x01"
    assert tlvs.sar_msg_ref_num == 0x1234
    assert tlvs.sar_total_segments == 3
    assert tlvs.sar_segment_seqnum == 2
    assert tlvs.receipted_message_id == "abc"
    assert tlvs.message_state is MessageState.EXPIRED
    assert tlvs.network_error_code == NetworkErrorCode(3, 0x0101)
    assert tlvs.user_message_reference == 7
    assert tlvs.sc_interface_version == 0x34
    assert tlvs.unknown == (Tlv(0x1401, b"vendor"),)
    assert tlvs.raw(TlvTag.SAR_MSG_REF_NUM) == b"\x12\x34"
    assert tlvs.raw(TlvTag.NETWORK_ERROR_CODE) == b"\x03\x01\x01"
    assert tlvs.raw(TlvTag.RECEIPTED_MESSAGE_ID) == b"abc\x00"
    assert len(tlvs) == 10
    assert TlvTag.MESSAGE_PAYLOAD in tlvs
    assert tlvs.get(SOURCE_PORT) is None


def test_tlv_edit_helpers_keep_order() -> None:
    tlvs = Tlvs.build(sar_msg_ref_num=1, sar_total_segments=2)
    replaced = tlvs.with_value(SAR_MSG_REF_NUM, 9)
    assert [t.tag for t in replaced] == [TlvTag.SAR_MSG_REF_NUM, TlvTag.SAR_TOTAL_SEGMENTS]
    assert replaced.sar_msg_ref_num == 9
    appended = tlvs.with_value(SOURCE_PORT, 2775)
    assert [t.tag for t in appended][-1] == TlvTag.SOURCE_PORT
    assert appended.without(TlvTag.SAR_MSG_REF_NUM).sar_msg_ref_num is None
    assert not Tlvs()


def test_tolerated_oddities_in_received_tlvs() -> None:
    # receipted_message_id without its NUL, and an out-of-table message_state.
    tlvs = Tlvs((Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"7f3a"), Tlv(TlvTag.MESSAGE_STATE, b"\x09")))
    pdu = DeliverSm(tlvs=tlvs)
    decoded = decode(encode(pdu))
    assert decoded.tlvs.receipted_message_id == "7f3a"
    assert decoded.tlvs.message_state == 9
    assert decoded.tlvs.get(MESSAGE_STATE) == 9
    assert encode(decoded) == encode(pdu)
