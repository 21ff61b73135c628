"""The AT engine: finals, prompt, URCs apart from answers, echo, timeouts (codecs/at.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.codecs.at import (
    AtBusy,
    AtEngine,
    ErrorKind,
    Noise,
    Response,
    Timeout,
    Urc,
)


def engine_with(command: str, *, payload: bytes | None = None) -> AtEngine:
    e = AtEngine()
    e.send(command, now_ms=0, timeout_ms=1000, payload=payload)
    assert e.data_to_send() == command.encode() + b"\r"
    return e


def test_ok_with_information_lines() -> None:
    e = engine_with("AT+CGSN")
    assert e.receive_data(b"\r\n356938035643809\r\n\r\nOK\r\n") == [
        Response("AT+CGSN", ("356938035643809",), "OK")
    ]
    assert not e.busy


@pytest.mark.parametrize(
    ("wire", "kind", "code"),
    [
        (b"\r\nERROR\r\n", ErrorKind.ERROR, None),
        (b"\r\n+CME ERROR: 10\r\n", ErrorKind.CME, 10),
        (b"\r\n+CMS ERROR: 500\r\n", ErrorKind.CMS, 500),
        (b"\r\n+CMS ERROR: unknown error\r\n", ErrorKind.CMS, None),
        (b"\r\nCOMMAND NOT SUPPORT\r\n", ErrorKind.ERROR, None),
    ],
)
def test_error_finals(wire: bytes, kind: ErrorKind, code: int | None) -> None:
    (r,) = engine_with("AT+CPIN?").receive_data(wire)
    assert isinstance(r, Response)
    assert r.kind is kind
    assert r.code == code
    assert not r.ok


def test_urc_that_the_command_asked_for_is_an_answer() -> None:
    e = engine_with("AT+CREG?")
    (r,) = e.receive_data(b"\r\n+CREG: 0,1\r\n\r\nOK\r\n")
    assert isinstance(r, Response)
    assert r.value("+CREG") == "0,1"


def test_urcs_and_vendor_noise_mixed_into_an_answer() -> None:
    e = engine_with("AT+CSQ")
    events = e.receive_data(
        b'\r\n^RSSI:14\r\n\r\n+CMTI: "SM",3\r\n+CSQ: 20,99\r\n^BOOT:1,0,0,0,3\r\n\r\nOK\r\n'
    )
    assert events == [
        Urc("^RSSI", "14"),
        Urc("+CMTI", '"SM",3'),
        Urc("^BOOT", "1,0,0,0,3"),
        Response("AT+CSQ", ("+CSQ: 20,99",), "OK"),
    ]


def test_two_line_urcs_carry_their_pdu() -> None:
    e = AtEngine()
    events = e.receive_data(b"\r\n+CMT: ,24\r\n0791AB\r\n\r\n+CDS: 25\r\n07912143\r\n")
    assert events == [Urc("+CMT", ",24", "0791AB"), Urc("+CDS", "25", "07912143")]


def test_echo_is_dropped_and_unasked_lines_are_noise() -> None:
    e = engine_with("ATE0")
    assert e.receive_data(b"ATE0\r\r\nOK\r\n") == [Response("ATE0", (), "OK")]
    assert e.receive_data(b"\r\nsome junk\r\n") == [Noise("some junk")]


def test_prompt_writes_the_pdu_and_ctrl_z() -> None:
    e = engine_with("AT+CMGS=23", payload=b"0011AA")
    assert e.receive_data(b"\r\n> ") == []
    assert e.data_to_send() == b"0011AA\x1a"
    (r,) = e.receive_data(b"\r\n+CMGS: 17\r\n\r\nOK\r\n")
    assert isinstance(r, Response)
    assert r.value("+CMGS") == "17"


def test_prompt_split_across_reads() -> None:
    e = engine_with("AT+CMGS=23", payload=b"00")
    e.receive_data(b"\r")
    e.receive_data(b"\n>")
    assert e.data_to_send() == b"00\x1a"


def test_error_instead_of_prompt_writes_nothing() -> None:
    e = engine_with("AT+CMGS=23", payload=b"00")
    (r,) = e.receive_data(b"\r\n+CMS ERROR: 304\r\n")
    assert isinstance(r, Response)
    assert r.code == 304
    assert e.data_to_send() == b""


def test_one_command_at_a_time() -> None:
    e = engine_with("AT")
    with pytest.raises(AtBusy):
        e.send("AT+CSQ", now_ms=0, timeout_ms=10)


def test_timeout_on_the_clock() -> None:
    e = engine_with("AT+CSQ")
    e.receive_data(b"+CSQ: 1,1\r\n")
    assert e.tick(999) == []
    assert e.tick(1000) == [Timeout("AT+CSQ", ("+CSQ: 1,1",))]
    assert not e.busy
    e.send("AT", now_ms=1000, timeout_ms=5)  # the next command may go


def test_overlong_garbage_is_cut() -> None:
    e = AtEngine()
    (n,) = e.receive_data(b"x" * 5000)
    assert isinstance(n, Noise)
    assert len(n.line) == 4096


@given(st.binary(max_size=300), st.lists(st.integers(1, 20), max_size=20))
def test_any_bytes_any_split_same_events(data: bytes, cuts: list[int]) -> None:
    """Framing does not depend on how reads split the stream, and never raises."""
    whole = engine_with("AT+CSQ").receive_data(data)
    e = engine_with("AT+CSQ")
    split: list[object] = []
    pos = 0
    for n in cuts:
        split.extend(e.receive_data(data[pos : pos + n]))
        pos += n
    split.extend(e.receive_data(data[pos:]))
    assert split == whole


def test_payload_pending_until_the_prompt() -> None:
    e = engine_with("AT+CMGS=23", payload=b"00")
    assert e.payload_pending
    e.receive_data(b"\r\n> ")
    assert not e.payload_pending
    assert not engine_with("AT").payload_pending
