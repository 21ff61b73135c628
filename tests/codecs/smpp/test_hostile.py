"""Hostile input: decode, the framer and the session only ever raise SmppDecodeError
(session: never raise) whatever bytes arrive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.codecs.smpp import (
    PDU_TYPES,
    PduFramer,
    Role,
    SessionConfig,
    SmppDecodeError,
    SmppSession,
    decode,
    encode,
)
from simgate.codecs.smpp.pdus import Pdu
from tests.support.examples import examples

from .strategies import any_pdu

FUZZ = settings(max_examples=examples(400), deadline=None)


def try_decode(data: bytes) -> Pdu | None:
    try:
        return decode(data)
    except SmppDecodeError as exc:
        error = exc
    assert error.reason  # every rejection says why
    return None


@FUZZ
@given(st.binary(max_size=300))
def test_decode_random_bytes(data: bytes) -> None:
    pdu = try_decode(data)
    if pdu is not None:  # rare, but then it must be faithful
        assert encode(pdu) == data


@FUZZ
@given(
    command_id=st.sampled_from(sorted(PDU_TYPES)) | st.integers(0, 0xFFFF_FFFF),
    status=st.integers(0, 0xFFFF_FFFF),
    body=st.binary(max_size=300),
)
def test_decode_valid_header_random_body(command_id: int, status: int, body: bytes) -> None:
    header = b"".join(x.to_bytes(4, "big") for x in (16 + len(body), command_id, status, 1))
    pdu = try_decode(header + body)
    if pdu is not None:
        assert command_id == pdu.COMMAND_ID
        assert encode(pdu) == header + body or not body


@FUZZ
@given(
    pdu=any_pdu,
    position=st.integers(0, 10_000),
    mutation=st.sampled_from(["flip", "truncate", "insert", "delete"]),
    byte=st.integers(0, 255),
    fix_length=st.booleans(),
)
def test_decode_mutated_pdus(
    pdu: Pdu, position: int, mutation: str, byte: int, fix_length: bool
) -> None:
    data = bytearray(encode(pdu))
    i = position % len(data)
    if mutation == "flip":
        data[i] ^= byte or 0xFF
    elif mutation == "truncate":
        del data[i:]
    elif mutation == "insert":
        data.insert(i, byte)
    else:
        del data[i]
    if fix_length and len(data) >= 4:
        data[:4] = len(data).to_bytes(4, "big")
    try_decode(bytes(data))


@FUZZ
@given(chunks=st.lists(st.binary(max_size=80), max_size=10))
def test_framer_random_chunks(chunks: list[bytes]) -> None:
    framer = PduFramer(max_length=1024)
    for chunk in chunks:
        try:
            frames = framer.feed(chunk)
        except SmppDecodeError as exc:
            error = exc
            break
        for frame in frames:
            assert 16 <= len(frame) <= 1024
            assert int.from_bytes(frame[:4], "big") == len(frame)
    else:
        return
    assert framer.error is error
    assert error.status == 2  # ESME_RINVCMDLEN


@settings(max_examples=examples(200), deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=120), max_size=8),
    role=st.sampled_from(Role),
    prefix=st.lists(any_pdu, max_size=3),
)
def test_session_never_raises_on_input(chunks: list[bytes], role: Role, prefix: list[Pdu]) -> None:
    session = SmppSession(SessionConfig(role=role))
    stream = [encode(p) for p in prefix] + chunks
    for i, chunk in enumerate(stream):
        session.receive_data(chunk, now=float(i))
        session.tick(float(i) + 0.5)
        out = session.data_to_send()
        # Whatever the session emits is itself well-formed SMPP.
        framer = PduFramer()
        for frame in framer.feed(out):
            assert decode(frame).is_response
        assert framer.buffered == 0
