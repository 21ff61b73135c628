from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp import (
    DeliverSm,
    DeliveryReceipt,
    MessageState,
    SubmitSm,
    Tlvs,
    decode,
    extract_receipt,
    format_receipt,
    id_candidates,
    ids_match,
    normalize_message_id,
    parse_receipt,
)
from simgate.codecs.smpp.receipt import ReceiptParseError, try_parse_receipt
from tests.support.examples import examples
from tests.support.smpp_vectors import SMPPLIB_TEST_DELIVER_SM_1, SMPPLIB_TEST_DELIVER_SM_2

# (label, text, expected receipt)
REAL_WORLD = [
    (
        "SMPP v3.4 Appendix B layout",
        "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 "
        "stat:DELIVRD err:000 text:Hello world",
        DeliveryReceipt(
            id="0123456789",
            sub=1,
            dlvrd=1,
            submit_date=datetime(2006, 10, 19, 10, 18),
            done_date=datetime(2006, 10, 19, 10, 18),
            stat="DELIVRD",
            err="000",
            text="Hello world",
        ),
    ),
    (
        "12-digit dates with seconds, empty text (smpplib test capture)",
        "id:795920026 sub:001 dlvrd:001 submit date:200319131913 done date:200319131913 "
        "stat:DELIVRD err:000 text:",
        DeliveryReceipt(
            id="795920026",
            sub=1,
            dlvrd=1,
            submit_date=datetime(2020, 3, 19, 13, 19, 13),
            done_date=datetime(2020, 3, 19, 13, 19, 13),
            stat="DELIVRD",
            err="000",
            text="",
        ),
    ),
    (
        "upper-case keys, hex id, alphanumeric error (Huawei/ZTE style)",
        "ID:7F3A9C21 SUB:001 DLVRD:000 SUBMIT DATE:2401011200 DONE DATE:2401011201 "
        "STAT:UNDELIV ERR:0B1 TEXT:Your code is 1234",
        DeliveryReceipt(
            id="7F3A9C21",
            sub=1,
            dlvrd=0,
            submit_date=datetime(2024, 1, 1, 12, 0),
            done_date=datetime(2024, 1, 1, 12, 1),
            stat="UNDELIV",
            err="0B1",
            text="Your code is 1234",
        ),
    ),
    (
        "underscored date keys, capitalised Text, UUID id",
        "id:5f1c1c1e-0a3b-4c1e-9a1e-1c1e0a3b4c1e sub:001 dlvrd:001 "
        "submit_date:2312312359 done_date:2401010000 stat:EXPIRED err:027 Text:Happy new",
        DeliveryReceipt(
            id="5f1c1c1e-0a3b-4c1e-9a1e-1c1e0a3b4c1e",
            sub=1,
            dlvrd=1,
            submit_date=datetime(2023, 12, 31, 23, 59),
            done_date=datetime(2024, 1, 1, 0, 0),
            stat="EXPIRED",
            err="027",
            text="Happy new",
        ),
    ),
    (
        "minimal (Kannel-like fake receipt), missing fields",
        "id:abc123 stat:REJECTD err:001",
        DeliveryReceipt(id="abc123", stat="REJECTD", err="001"),
    ),
    (
        "text containing key-like words, trailing NUL",
        "id:42 sub:001 dlvrd:001 submit date:2401011200 done date:2401011200 stat:DELIVRD "
        "err:000 text:id:9 stat:FAKE err:1\x00",
        DeliveryReceipt(
            id="42",
            sub=1,
            dlvrd=1,
            submit_date=datetime(2024, 1, 1, 12, 0),
            done_date=datetime(2024, 1, 1, 12, 0),
            stat="DELIVRD",
            err="000",
            text="id:9 stat:FAKE err:1",
        ),
    ),
    (
        "14-digit dates, invalid month, odd spacing",
        "id: 1001  sub:1 dlvrd:1 submit date:20240102030405 done date:2413011200 "
        "stat: ACCEPTD err:0",
        DeliveryReceipt(
            id="1001",
            sub=1,
            dlvrd=1,
            submit_date=datetime(2024, 1, 2, 3, 4, 5),
            done_date=None,
            stat="ACCEPTD",
            err="0",
        ),
    ),
]


@pytest.mark.parametrize(("label", "text", "expected"), REAL_WORLD, ids=[r[0] for r in REAL_WORLD])
def test_real_world_receipts(label: str, text: str, expected: DeliveryReceipt) -> None:
    assert parse_receipt(text) == expected
    assert parse_receipt(text.encode("latin-1")) == expected


def test_receipt_properties() -> None:
    receipt = parse_receipt(REAL_WORLD[2][1])
    assert receipt.state is MessageState.UNDELIVERABLE
    assert receipt.error_code == 0xB1
    assert parse_receipt("id:1 err:034").error_code == 34
    assert parse_receipt("id:1 stat:WEIRD").state is None
    assert parse_receipt("id:1").error_code is None


@pytest.mark.parametrize("text", ["", "hello", "stat:DELIVRD err:000", "id: sub:001", "valid:1"])
def test_not_a_receipt(text: str) -> None:
    with pytest.raises(ReceiptParseError):
        parse_receipt(text)
    assert try_parse_receipt(text) is None


def test_format_spec_layout() -> None:
    receipt = REAL_WORLD[0][2]
    assert format_receipt(receipt) == REAL_WORLD[0][1]
    assert "submit date:061019101800 " in format_receipt(receipt, seconds=True)


_ID = st.text(st.sampled_from("0123456789abcdefABCDEF-"), min_size=1, max_size=20)
_DATE = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@settings(max_examples=examples(200), deadline=None)
@given(
    receipt=st.builds(
        DeliveryReceipt,
        id=_ID,
        sub=st.none() | st.integers(0, 999),
        dlvrd=st.none() | st.integers(0, 999),
        submit_date=st.none() | _DATE,
        done_date=st.none() | _DATE,
        stat=st.none() | st.sampled_from([s.stat for s in MessageState]),
        err=st.none() | st.text("0123456789ABC", min_size=1, max_size=3),
        text=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), max_size=20),
    ),
    seconds=st.booleans(),
)
def test_format_parse_round_trip(receipt: DeliveryReceipt, seconds: bool) -> None:
    def truncate(d: datetime | None) -> datetime | None:
        return None if d is None else d.replace(microsecond=0, second=d.second if seconds else 0)

    expected = DeliveryReceipt(
        id=receipt.id,
        sub=receipt.sub,
        dlvrd=receipt.dlvrd,
        submit_date=truncate(receipt.submit_date),
        done_date=truncate(receipt.done_date),
        stat=receipt.stat,
        err=receipt.err,
        text=receipt.text,
    )
    assert parse_receipt(format_receipt(receipt, seconds=seconds)) == expected


def test_extract_receipt_from_smpplib_captures() -> None:
    # Receipt in message_payload, id in decimal while the TLV carries hex.
    first = decode(SMPPLIB_TEST_DELIVER_SM_1)
    assert isinstance(first, DeliverSm)
    receipt = extract_receipt(first)
    assert receipt is not None
    assert receipt.id == "0489708364"
    assert receipt.state is MessageState.DELIVERED
    assert first.tlvs.receipted_message_id == "1d305b4c"
    assert ids_match(receipt.id, first.tlvs.receipted_message_id)
    # Receipt in short_message, 12-digit dates.
    second = decode(SMPPLIB_TEST_DELIVER_SM_2)
    assert isinstance(second, DeliverSm)
    receipt = extract_receipt(second)
    assert receipt is not None
    assert receipt.id == "795920026"
    assert receipt.done_date == datetime(2020, 3, 19, 13, 19, 13)


def test_extract_receipt_fallbacks() -> None:
    assert extract_receipt(DeliverSm(esm_class=0, short_message=b"id:1 stat:DELIVRD")) is None
    tlv_only = DeliverSm(
        esm_class=0x04,
        short_message=b"garbage",
        tlvs=Tlvs.build(receipted_message_id="ab12", message_state=MessageState.REJECTED),
    )
    assert extract_receipt(tlv_only) == DeliveryReceipt(id="ab12", stat="REJECTD")
    no_stat = DeliverSm(
        esm_class=0x04,
        short_message=b"id:ab12 err:000",
        tlvs=Tlvs.build(message_state=MessageState.DELIVERED),
    )
    receipt = extract_receipt(no_stat)
    assert receipt is not None
    assert receipt.state is MessageState.DELIVERED
    assert extract_receipt(DeliverSm(esm_class=0x04, short_message=b"nothing")) is None
    assert not isinstance(SubmitSm(), DeliverSm)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("00A1b", "a1b"),
        ("a1B", "a1b"),
        ("0042", "42"),
        ("000", "0"),
        (" 1D305B4C\x00", "1d305b4c"),
        ("5F1C-ABCD", "5f1c-abcd"),
        ("0x1f", "0x1f"),  # not all hex digits: only trimmed/lower-cased
    ],
)
def test_normalize_message_id(raw: str, normal: str) -> None:
    assert normalize_message_id(raw) == normal


def test_id_candidates() -> None:
    assert id_candidates("0489708364") == {"489708364", "1d305b4c", str(0x489708364)}
    assert id_candidates("1D305B4C") == {"1d305b4c", "489708364"}
    assert id_candidates("uuid-1") == {"uuid-1"}
    assert ids_match("0489708364", "1D305B4C")
    assert ids_match("1d305b4c", "489708364")
    assert ids_match("0001d305b4c", "1D305B4C")
    assert not ids_match("1d305b4c", "1d305b4d")
    assert not ids_match("uuid-1", "uuid-2")


@settings(max_examples=examples(300), deadline=None)
@given(
    value=st.integers(0, 2**64),
    zeros=st.integers(0, 3),
    upper=st.booleans(),
)
def test_hex_and_decimal_spellings_of_a_number_match(value: int, zeros: int, upper: bool) -> None:
    hex_id = "0" * zeros + (format(value, "X") if upper else format(value, "x"))
    dec_id = "0" * zeros + str(value)
    assert ids_match(hex_id, dec_id)
    assert ids_match(dec_id, hex_id)
    assert normalize_message_id(hex_id) in id_candidates(dec_id)
    assert normalize_message_id(hex_id.lower()) == normalize_message_id(hex_id.upper())


@settings(max_examples=examples(300), deadline=None)
@given(
    a=st.text("0123456789abcdefXYZ-", max_size=12), b=st.text("0123456789abcdefXYZ-", max_size=12)
)
def test_ids_match_is_symmetric_and_reflexive(a: str, b: str) -> None:
    assert ids_match(a, a)
    assert ids_match(a, b) == ids_match(b, a)
