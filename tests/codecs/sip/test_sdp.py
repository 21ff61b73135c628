"""Our SDP offer and reading answers (RFC 4566, RFC 3264; RFC 4317 §2.1's answer)."""

from __future__ import annotations

import pytest

from simgate.codecs.sip.sdp import MediaAnswer, SdpError, offer, parse_answer

# RFC 4317 §2.1: Bob's answer keeps PCMU for audio (and one video codec we ignore).
RFC4317_BOB = b"""v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s=
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 49170 RTP/AVP 32
a=rtpmap:32 MPV/90000
"""


def test_rfc_4317_answer() -> None:
    got = parse_answer(RFC4317_BOB, offered=("PCMU", "PCMA"))
    assert got == MediaAnswer("host.biloxi.example.com", 49174, "PCMU", 0, None)


def test_the_answerers_order_and_its_telephone_event_type() -> None:
    body = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 8 0 96\r\nc=IN IP4 10.0.0.2\r\n"
        b"a=rtpmap:96 telephone-event/8000\r\n"
    )
    got = parse_answer(body, offered=("PCMU", "PCMA"))
    assert got == MediaAnswer("10.0.0.2", 4000, "PCMA", 8, 96)  # media-level c= wins


@pytest.mark.parametrize(
    "body",
    [
        b"v=0\r\nc=IN IP4 1.2.3.4\r\n",  # no audio
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n",  # rejected stream
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18\r\n",  # G.729 only
        b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n",  # no address
    ],
)
def test_unusable_answers(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_answer(body, offered=("PCMU", "PCMA"))


def test_our_offer() -> None:
    text = offer(address="127.0.0.1", port=20000, codecs=("PCMA",), session_id=5).decode()
    assert "m=audio 20000 RTP/AVP 8 101\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    assert "a=ptime:20\r\n" in text
    assert "c=IN IP4 127.0.0.1\r\n" in text
    # what we offer we can read back as an answer
    assert parse_answer(text.encode(), offered=("PCMA",)).event_pt == 101
