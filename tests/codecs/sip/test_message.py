"""SIP message parsing and serialising (RFC 3261 §7, §20, §24.2 example)."""

from __future__ import annotations

import pytest

from simgate.codecs.sip.message import (
    SipError,
    SipRequest,
    SipResponse,
    StreamFramer,
    addr_uri,
    header_params,
    parse,
)

# RFC 3261 §24.2 F1 (Alice's INVITE through the atlanta.com proxy), without its SDP body.
F1 = (
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.com>\r\n"
    b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_the_rfc_3261_invite() -> None:
    msg = parse(F1)
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri) == ("INVITE", "sip:bob@biloxi.com")
    assert msg.cseq == (314159, "INVITE")
    assert msg.call_id == "a84b4c76e66710"
    assert header_params(msg.get("from")) == {"tag": "1928301774"}
    assert header_params(msg.get("via"))["branch"] == "z9hG4bKnashds8"
    assert addr_uri(msg.get("contact")) == "sip:alice@pc33.atlanta.com"
    assert msg.body == b"v=0\n"
    assert parse(msg.encode()) == msg  # serialise, parse: the same message


def test_compact_forms_folding_and_lists() -> None:
    # RFC 3261 §7.3.3 compact names, a folded header (§7.3.1), two Vias in one line.
    raw = (
        b"SIP/2.0 180 Ringing\r\n"
        b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,"
        b" SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n"
        b'i: abc@host\r\nf: <sip:a@x>;tag=1\r\nt: "Bob, B" <sip:b@y>\r\n ;tag=2\r\n'
        b"CSeq: 1 INVITE\r\nl: 0\r\n\r\n"
    )
    msg = parse(raw)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert msg.call_id == "abc@host"
    assert len(msg.get_all("via")) == 2
    assert header_params(msg.get("to")) == {"tag": "2"}
    assert addr_uri(msg.get("to")) == "sip:b@y"


@pytest.mark.parametrize(
    "raw",
    [b"", b"HELLO\r\n\r\n", b"SIP/2.0 OK\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nNoColon\r\n\r\n"],
)
def test_garbage_is_a_sip_error(raw: bytes) -> None:
    with pytest.raises(SipError):
        parse(raw)


def test_a_tcp_stream_is_cut_by_content_length() -> None:
    framer = StreamFramer()
    two = F1 + b"\r\n" + F1  # a keep-alive CRLF between them
    assert framer.feed(two[:50]) == []
    frames = framer.feed(two[50:])
    assert frames == [F1, F1]
