"""Pure parts of the SMPP line: addresses, receipt status, id matching, incoming parts, settings."""

from __future__ import annotations

import pytest

from simgate.codecs.smpp import DeliverSm, DeliveryReceipt, EsmClass, Tlvs
from simgate.codecs.udh import build_concat_udh
from simgate.errors import ConfigError
from simgate.lines.base import IncomingPart, IncomingSms
from simgate.lines.smpp.inbound import incoming_of, receipt_status
from simgate.lines.smpp.outbound import source_address
from simgate.lines.smpp.receipts import ReceiptMatcher
from simgate.settings import SmppLineSettings, load_settings


def _cfg(**kw: object) -> SmppLineSettings:
    return SmppLineSettings.model_validate({"system_id": "x", **kw})


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("", (0, 0, "")),
        ("MyShop", (5, 0, "MyShop")),
        ("A very long sender", (5, 0, "A very long")),
        ("12345", (3, 0, "12345")),
        ("+12345", (1, 1, "12345")),
        ("8613800138000", (1, 1, "8613800138000")),
    ],
)
def test_source_address_follows_the_sender_shape(
    sender: str, expected: tuple[int, int, str]
) -> None:
    a = source_address(sender, _cfg())
    assert (a.ton, a.npi, a.addr) == expected


def test_short_code_ton_npi_is_configurable() -> None:
    a = source_address("5555", _cfg(short_code_ton=0, short_code_npi=1))
    assert (a.ton, a.npi) == (0, 1)


@pytest.mark.parametrize(
    ("stat", "dlvrd", "err", "code"),
    [
        ("DELIVRD", 1, "000", 0),
        ("UNDELIV", 0, "001", 0x41),
        ("REJECTD", 0, "001", 0x42),
        ("EXPIRED", 0, "000", 0x46),
        ("DELETED", 0, "000", 0x48),
        ("UNKNOWN", 0, "000", 0x40),
        ("ENROUTE", 0, "000", None),
        ("ACCEPTD", 0, "000", None),
        (None, 1, "000", 0),
        ("weird", 0, "007", 0x40),
    ],
)
def test_receipt_status(stat: str | None, dlvrd: int, err: str, code: int | None) -> None:
    assert receipt_status(DeliveryReceipt(id="1", stat=stat, dlvrd=dlvrd, err=err)) == code


def test_matcher_prefers_exact_and_never_confuses_two_hex_ids() -> None:
    m = ReceiptMatcher()
    m.remember("12")
    m.remember("18")
    assert m.known("18") == "18"  # exact first while nothing is learned
    m2 = ReceiptMatcher()
    m2.remember("12")  # hex 0x12 = decimal 18
    assert m2.known("0000000018") == "12"
    assert m2.learned == "receipt_decimal"
    m2.remember("18")  # another message, hex 0x18
    assert m2.known("18") == "12"  # decimal 18 is 0x12 once the line is known to do that
    assert m2.known("24") == "18"


def test_matcher_fixed_mode_and_fallback() -> None:
    m = ReceiptMatcher("receipt_hex")
    m.remember("255")
    assert m.known("FF") == "255"
    assert m.known("255") is None
    assert ReceiptMatcher().fallback(" 00AB ") == "ab"
    assert ReceiptMatcher("same").fallback("0042") == "42"


def test_matcher_is_bounded() -> None:
    m = ReceiptMatcher(capacity=3)
    for i in range(5):
        m.remember(str(i))
    assert len(m) == 3
    assert m.known("0") is None
    assert m.known("4") == "4"


def _part(seq: int, total: int, body: bytes, ref: int = 5) -> DeliverSm:
    return DeliverSm(
        source_addr="a", destination_addr="b", esm_class=EsmClass.UDHI,
        short_message=build_concat_udh(ref, total, seq, wide=False) + body,
    )  # fmt: skip


def test_a_concatenated_part_is_handed_on_as_a_part_with_its_raw_user_data() -> None:
    got = incoming_of(_part(2, 3, b"\x01\x02", ref=9), received_ms=7, smsc="smsc:1")
    assert got == IncomingPart(
        port=0, sender="a", recipient="b", ref=9, total=3, seq=2,
        data_coding=0, data=b"\x01\x02", received_ms=7, smsc="smsc:1",
    )  # fmt: skip


def test_sar_parts_carry_their_tlvs_and_ucs2_coding() -> None:
    tlvs = Tlvs.build(sar_msg_ref_num=0x1234, sar_total_segments=2, sar_segment_seqnum=1)
    pdu = DeliverSm(source_addr="a", destination_addr="b", data_coding=8,
                    short_message="hé".encode("utf-16-be"), tlvs=tlvs)  # fmt: skip
    got = incoming_of(pdu, received_ms=1, smsc="")
    assert isinstance(got, IncomingPart)
    assert (got.ref, got.total, got.seq, got.data_coding) == (0x1234, 2, 1, 8)
    assert got.data == "hé".encode("utf-16-be")


def test_a_udh_of_one_part_is_a_whole_message() -> None:
    got = incoming_of(_part(1, 1, b"\x48\x69"), received_ms=3, smsc="s")
    assert got == IncomingSms(port=0, sender="a", recipient="b", text="Hi", received_ms=3, smsc="s")


def test_sar_without_all_fields_is_a_whole_message() -> None:
    pdu = DeliverSm(
        source_addr="a",
        destination_addr="b",
        short_message=b"hi",
        tlvs=Tlvs.build(sar_msg_ref_num=1),
    )
    got = incoming_of(pdu, received_ms=0, smsc="")
    assert isinstance(got, IncomingSms)
    assert got.text == "hi"


def test_settings_union_and_validation() -> None:
    s = load_settings(
        None,
        overrides={
            "lines": {"a": {"ports": 2}, "b": {"driver": "smpp", "system_id": "u", "window": 8}},
            "routes": [{"prefix": "", "lines": ["b", "a"]}],
        },
    )
    assert type(s.lines["a"]).__name__ == "SimLineSettings"
    b = s.lines["b"]
    assert isinstance(b, SmppLineSettings)
    assert b.window == 8
    assert b.exclusive
    for bad in (
        {"driver": "smpp"},
        {"driver": "smpp", "system_id": "u", "transceivers": 0},
        {"driver": "x"},
    ):
        with pytest.raises(ConfigError):
            load_settings(None, overrides={"lines": {"b": bad}, "routes": [{"lines": ["b"]}]})
