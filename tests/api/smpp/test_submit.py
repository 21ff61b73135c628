"""Reading submit_sm/data_sm: text codings, long-message headers, and the refusal statuses."""

from __future__ import annotations

import pytest

from simgate.api.smpp.submit import ESME_RINVDCS, Concat, Piece, Refused, read_submit
from simgate.codecs.segments import Encoding
from simgate.codecs.smpp import CommandStatus, DataSm, EsmClass, SubmitSm, Tlvs
from simgate.codecs.udh import build_concat_udh


def _piece(pdu: SubmitSm | DataSm) -> Piece:
    result = read_submit(pdu)
    assert isinstance(result, Piece), result
    return result


def _status(pdu: SubmitSm | DataSm) -> int:
    result = read_submit(pdu)
    assert isinstance(result, Refused), result
    return result.status


def test_plain_submit() -> None:
    p = _piece(SubmitSm(source_addr="Acme", destination_addr="447700900123", short_message=b"hi"))
    assert (p.sender, p.to, p.body, p.concat, p.report) == (
        "Acme",
        "447700900123",
        b"hi",
        None,
        False,
    )
    assert p.encoding is None


@pytest.mark.parametrize(("flag", "report"), [(0, False), (1, True), (2, True), (3, False)])
def test_registered_delivery_final_receipt_bits(flag: int, report: bool) -> None:
    pdu = SubmitSm(destination_addr="1", short_message=b"x", registered_delivery=flag)
    assert _piece(pdu).report is report


@pytest.mark.parametrize(
    ("coding", "encoding"), [(0, None), (1, None), (3, Encoding.LATIN1), (8, Encoding.UCS2)]
)
def test_text_codings(coding: int, encoding: Encoding | None) -> None:
    pdu = SubmitSm(destination_addr="1", data_coding=coding, short_message=b"\x00x")
    assert _piece(pdu).encoding == encoding


def test_udh_and_sar_and_payload() -> None:
    udh = SubmitSm(
        destination_addr="1",
        esm_class=EsmClass.UDHI,
        short_message=build_concat_udh(9, 3, 2, wide=False) + b"body",
    )
    assert _piece(udh).concat == Concat(9, 3, 2)
    assert _piece(udh).body == b"body"
    sar = SubmitSm(
        destination_addr="1",
        short_message=b"b",
        tlvs=Tlvs.build(sar_msg_ref_num=500, sar_total_segments=2, sar_segment_seqnum=1),
    )
    assert _piece(sar).concat == Concat(500, 2, 1)
    payload = DataSm(destination_addr="1", tlvs=Tlvs.build(message_payload=b"x" * 1000))
    assert _piece(payload).body == b"x" * 1000


def test_refusals() -> None:
    assert (
        _status(SubmitSm(destination_addr="", short_message=b"x")) == CommandStatus.ESME_RINVDSTADR
    )
    assert _status(SubmitSm(destination_addr="1" * 21, short_message=b"x")) == 0x0B
    long_alpha = SubmitSm(
        destination_addr="1", source_addr="ABCDEFGHIJKL", source_addr_ton=5, short_message=b"x"
    )
    assert _status(long_alpha) == CommandStatus.ESME_RINVSRCADR
    assert (
        _status(SubmitSm(destination_addr="1", data_coding=4, short_message=b"x")) == ESME_RINVDCS
    )
    bad_udh = SubmitSm(destination_addr="1", esm_class=EsmClass.UDHI, short_message=b"\x09\x00")
    assert _status(bad_udh) == CommandStatus.ESME_RINVESMCLASS
    both = SubmitSm(destination_addr="1", short_message=b"x", tlvs=Tlvs.build(message_payload=b"y"))
    assert _status(both) == CommandStatus.ESME_RINVPARLEN
    bad_time = SubmitSm(destination_addr="1", short_message=b"x", validity_period="tomorrow")
    assert _status(bad_time) == CommandStatus.ESME_RINVEXPIRY
    ok_time = SubmitSm(destination_addr="1", short_message=b"x", validity_period="000001000000000R")
    assert isinstance(read_submit(ok_time), Piece)
