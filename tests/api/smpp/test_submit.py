"""Reading submit_sm/data_sm: text codings, long-message headers, and the refusal statuses."""

from __future__ import annotations

import pytest

from simgate.api.smpp.submit import (
    ESME_RINVDCS,
    BadTime,
    Concat,
    Piece,
    Refused,
    read_submit,
    smpp_time_ms,
)
from simgate.codecs.segments import Encoding
from simgate.codecs.smpp import CommandStatus, DataSm, EsmClass, SubmitSm, Tlvs
from simgate.codecs.udh import build_concat_udh

# 2026-12-03 12:00:00 UTC
NOW = 1_796_299_200_000


def _piece(pdu: SubmitSm | DataSm) -> Piece:
    result = read_submit(pdu, now_ms=NOW)
    assert isinstance(result, Piece), result
    return result


def _status(pdu: SubmitSm | DataSm) -> int:
    result = read_submit(pdu, now_ms=NOW)
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
    assert isinstance(read_submit(ok_time, now_ms=NOW), Piece)


def test_registered_delivery_2_is_failure_only() -> None:
    rd = [
        _piece(SubmitSm(destination_addr="1", short_message=b"x", registered_delivery=f))
        for f in (1, 2, 0x11, 0x12)
    ]
    assert [p.failure_only for p in rd] == [False, True, False, True]
    assert all(p.report for p in rd)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("261203120000000+", NOW),  # UTC
        ("261203140000008+", NOW),  # 14:00 two hours (8 quarters) ahead of UTC
        ("261203100000008-", NOW),  # 10:00 two hours behind UTC
        ("261203120000500+", NOW + 500),  # tenths of a second
        ("000001023000000R", NOW + (86_400 + 2 * 3600 + 30 * 60) * 1000),  # relative
        ("010100000000000R", NOW + (365 + 30) * 86_400_000),  # a year 365 d, a month 30 d
    ],
)
def test_smpp_times_absolute_and_relative(text: str, expected: int | None) -> None:
    assert smpp_time_ms(text, now_ms=NOW) == expected


@pytest.mark.parametrize("text", ["261303120000000+", "261203120000049+", "2612031200000+"])
def test_bad_smpp_times(text: str) -> None:
    with pytest.raises(BadTime):
        smpp_time_ms(text, now_ms=NOW)


def test_schedule_and_validity_are_applied_to_the_piece() -> None:
    p = _piece(
        SubmitSm(
            destination_addr="1",
            short_message=b"x",
            schedule_delivery_time="000000010000000R",
            validity_period="000000020000000R",
        )
    )
    assert (p.not_before_ms, p.valid_until_ms) == (NOW + 3_600_000, NOW + 7_200_000)
    past = _piece(
        SubmitSm(
            destination_addr="1", short_message=b"x", schedule_delivery_time="200101000000000+"
        )
    )
    assert past.not_before_ms is None  # already past: now
    plain = _piece(SubmitSm(destination_addr="1", short_message=b"x"))
    assert (plain.not_before_ms, plain.valid_until_ms) == (None, None)


def test_validity_that_ends_before_sending_is_refused() -> None:
    over = SubmitSm(destination_addr="1", short_message=b"x", validity_period="200101000000000+")
    assert _status(over) == CommandStatus.ESME_RINVEXPIRY
    after_schedule = SubmitSm(
        destination_addr="1",
        short_message=b"x",
        schedule_delivery_time="000000020000000R",
        validity_period="000000010000000R",
    )
    assert _status(after_schedule) == CommandStatus.ESME_RINVEXPIRY
    bad_month = SubmitSm(
        destination_addr="1", short_message=b"x", schedule_delivery_time="261303120000000+"
    )
    assert _status(bad_month) == CommandStatus.ESME_RINVSCHED
