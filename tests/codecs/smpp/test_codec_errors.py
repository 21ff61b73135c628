"""Specific decode/encode failures carry the right reason and command_status."""

from __future__ import annotations

import pytest

from simgate.codecs.smpp import (
    CommandId,
    CommandStatus,
    DataSm,
    GenericNack,
    Outbind,
    SmppDecodeError,
    SmppEncodeError,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Tlvs,
    decode,
    encode,
    make_response,
    response_type,
)


def header(length: int, command_id: int, status: int = 0, sequence: int = 0x2A) -> bytes:
    return b"".join(x.to_bytes(4, "big") for x in (length, command_id, status, sequence))


def with_length(body: bytes, command_id: int) -> bytes:
    return header(16 + len(body), command_id) + body


SUBMIT_BODY = bytes(16) + b"\x00"  # every field empty/zero, sm_length 0


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (b"", CommandStatus.ESME_RINVCMDLEN, "truncated header"),
        (header(16, 0x15)[:15], CommandStatus.ESME_RINVCMDLEN, "truncated header"),
        (header(17, 0x15), CommandStatus.ESME_RINVCMDLEN, "command_length 17 but 16"),
        (header(16, 0x15) + b"\x00", CommandStatus.ESME_RINVCMDLEN, "command_length 16 but 17"),
        (header(16, 0x99), CommandStatus.ESME_RINVCMDID, "unsupported command_id 0x00000099"),
        (header(16, CommandId.SUBMIT_MULTI), CommandStatus.ESME_RINVCMDID, "unsupported"),
        (with_length(b"abc", 0x02), CommandStatus.ESME_RINVCMDLEN, "system_id: C-octet string"),
        (with_length(b"\x00" * 3, 0x02), CommandStatus.ESME_RINVCMDLEN, "interface_version"),
        (
            with_length(SUBMIT_BODY[:-1] + b"\x05ab", 0x04),
            CommandStatus.ESME_RINVMSGLEN,
            "short_message: need 5 octets, 2 left",
        ),
        (
            with_length(SUBMIT_BODY + b"\x04\x24\x00", 0x04),
            CommandStatus.ESME_RINVOPTPARSTREAM,
            "3 stray octets",
        ),
        (
            with_length(SUBMIT_BODY + b"\x04\x24\x00\x09abc", 0x04),
            CommandStatus.ESME_RINVOPTPARSTREAM,
            "TLV 0x0424 value: need 9 octets",
        ),
        (
            with_length(SUBMIT_BODY + b"\x04\x27\x00\x02\x00\x02", 0x04),
            CommandStatus.ESME_RINVPARLEN,
            "message_state (0x0427): length 2, expected 1",
        ),
        (
            with_length(SUBMIT_BODY + b"\x04\x23\x00\x02\x03\x00", 0x04),
            CommandStatus.ESME_RINVPARLEN,
            "network_error_code",
        ),
        (
            with_length(SUBMIT_BODY + b"\x00\x1e\x00\x04a\x00b\x00", 0x04),
            CommandStatus.ESME_RINVPARLEN,
            "NUL inside",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_decode_errors(data: bytes, status: CommandStatus, fragment: str) -> None:
    with pytest.raises(SmppDecodeError) as info:
        decode(data)
    assert info.value.status is status
    assert fragment in info.value.reason
    if len(data) >= 16:
        assert info.value.sequence_number == 0x2A
        assert info.value.command_id == int.from_bytes(data[4:8], "big")


def test_lenient_and_strict_decoding() -> None:
    long_id = "x" * 17  # 18 octets with NUL, spec max 16
    # system_id, password "", system_type "", interface_version, ton, npi, range "".
    body = long_id.encode() + b"\x00" + b"\x00\x00\x34\x00\x00\x00"
    wire = with_length(body, CommandId.BIND_TRANSMITTER)
    assert decode(wire).system_id == long_id  # type: ignore[attr-defined]
    with pytest.raises(SmppDecodeError) as info:
        decode(wire, strict=True)
    assert info.value.status is CommandStatus.ESME_RINVPARLEN
    assert "system_id: 18 octets with NUL, max 16" in info.value.reason

    # 10 octets up to priority_flag, schedule_delivery_time "2401", then 6 octets.
    odd_time = with_length(bytes(10) + b"2401\x00" + bytes(6), CommandId.SUBMIT_SM)
    assert decode(odd_time).schedule_delivery_time == "2401"  # type: ignore[attr-defined]
    with pytest.raises(SmppDecodeError, match="length 4 not in"):
        decode(odd_time, strict=True)

    empty_ok_resp = header(16, CommandId.SUBMIT_SM_RESP)
    assert decode(empty_ok_resp) == SubmitSmResp(sequence_number=0x2A)
    with pytest.raises(SmppDecodeError):
        decode(empty_ok_resp, strict=True)


def test_latin1_text_round_trips_every_octet() -> None:
    text = "".join(chr(c) for c in range(1, 21))
    pdu = DataSm(source_addr=text + "\xff\xe9")
    assert decode(encode(pdu)) == pdu


@pytest.mark.parametrize(
    ("pdu", "fragment"),
    [
        (SubmitSm(source_addr="x" * 21), "source_addr: 22 octets with NUL, max 21"),
        (SubmitSm(source_addr="a\x00b"), "NUL inside"),
        (SubmitSm(source_addr="☃"), "not encodable"),
        (SubmitSm(esm_class=256), "esm_class: 256 does not fit"),
        (SubmitSm(esm_class=-1), "does not fit"),
        (SubmitSm(short_message=b"x" * 255), "short_message: 255 octets, max 254"),
        (SubmitSm(validity_period="2401"), "validity_period: length 4"),
        (SubmitSm(sequence_number=1 << 32), "sequence_number"),
        (SubmitSm(command_status=-1), "command_status"),
        (
            SubmitSm(short_message=b"x", tlvs=Tlvs.build(message_payload=b"y")),
            "mutually exclusive",
        ),
        (SubmitSm(source_addr=5), "source_addr: expected str"),  # type: ignore[arg-type]
        (SubmitSm(short_message="hi"), "expected bytes"),  # type: ignore[arg-type]
        (SubmitSm(esm_class="1"), "expected int"),  # type: ignore[arg-type]
    ],
)
def test_encode_errors(pdu: SubmitSm, fragment: str) -> None:
    with pytest.raises(SmppEncodeError, match=fragment.replace("(", r"\(")):
        encode(pdu)


def test_invalid_typed_tlvs_are_rejected_on_construction() -> None:
    with pytest.raises(SmppEncodeError, match="sar_msg_ref_num"):
        Tlvs((Tlv(0x020C, b"\x01"),))
    with pytest.raises(SmppEncodeError, match="out of range"):
        Tlvs((Tlv(0x10000, b""),))
    with pytest.raises(SmppEncodeError, match="65535"):
        Tlvs((Tlv(0x1400, bytes(65536)),))
    with pytest.raises(SmppEncodeError):
        Tlvs.build(sar_total_segments=256)
    with pytest.raises(SmppEncodeError):
        Tlvs.build(receipted_message_id="x" * 65)


def test_make_response() -> None:
    request = SubmitSm(sequence_number=12)
    response = make_response(request, message_id="abc")
    assert response == SubmitSmResp(sequence_number=12, message_id="abc")
    nack = make_response(request, CommandStatus.ESME_RTHROTTLED)
    assert nack.command_status == CommandStatus.ESME_RTHROTTLED
    assert response_type(CommandId.OUTBIND) is None
    assert response_type(CommandId.ENQUIRE_LINK_RESP) is None
    with pytest.raises(ValueError, match="OUTBIND has no response"):
        make_response(Outbind())
    with pytest.raises(ValueError, match="GENERIC_NACK"):
        make_response(GenericNack())
