"""The requests of one outgoing call (RFC 3261 §9.1, §12.1.2, §13.2.2.4, §17.1.1.3)."""

from __future__ import annotations

import itertools

from simgate.codecs.sip.dialog import OutgoingDialog, reply
from simgate.codecs.sip.message import SipRequest, SipResponse, header_params, parse


def dialog() -> OutgoingDialog:
    counter = itertools.count(1)
    return OutgoingDialog(
        call_id="c1@h",
        local_uri="sip:me@trunk",
        remote_uri="sip:8613800138000@trunk",
        contact="sip:me@10.0.0.1:5062;transport=udp",
        via_host="10.0.0.1:5062",
        token=lambda: f"t{next(counter)}",
    )


def answer(req: SipRequest, status: int, **headers: str) -> SipResponse:
    base = reply(req, status, "X", local_tag="far")
    base.headers += [(k.replace("_", "-"), v) for k, v in headers.items()]
    parsed = parse(base.encode())
    assert isinstance(parsed, SipResponse)
    return parsed


def test_invite_and_cancel_share_the_transaction() -> None:
    d = dialog()
    invite = d.invite(b"sdp")
    cancel = d.cancel()
    assert invite.get("via") == cancel.get("via")  # same branch (§9.1)
    assert (invite.cseq, cancel.cseq) == ((1, "INVITE"), (1, "CANCEL"))
    assert cancel.uri == invite.uri
    assert "tag" not in header_params(cancel.get("to"))
    assert header_params(invite.get("from"))["tag"] == "t1"


def test_a_failure_is_acked_in_the_invites_transaction() -> None:
    d = dialog()
    invite = d.invite(b"sdp")
    ack = d.ack(answer(invite, 486))
    assert ack.get("via") == invite.get("via")
    assert header_params(ack.get("to"))["tag"] == "far"
    assert ack.cseq == (1, "ACK")


def test_a_2xx_makes_the_dialog_ack_and_bye_follow_it() -> None:
    d = dialog()
    invite = d.invite(b"sdp")
    ok = answer(
        invite, 200, Contact="<sip:bob@10.9.9.9:5080>", Record_Route="<sip:p1;lr>, <sip:p2;lr>"
    )
    d.established(ok)
    ack = d.ack(ok)
    assert ack.uri == "sip:bob@10.9.9.9:5080"  # the far end's Contact (§12.1.2)
    assert ack.get("via") != invite.get("via")  # a new transaction (§13.2.2.4)
    assert ack.get_all("route") == ["<sip:p2;lr>", "<sip:p1;lr>"]  # reversed record-route
    bye = d.bye()
    assert bye.cseq == (2, "BYE")
    assert bye.uri == ack.uri
    assert header_params(bye.get("to"))["tag"] == "far"


def test_a_407_is_answered_with_proxy_authorization_and_a_new_cseq() -> None:
    d = dialog()
    invite = d.invite(b"sdp")
    challenge = answer(invite, 407, Proxy_Authenticate='Digest realm="r", nonce="n", qop="auth"')
    name, value = d.authorize(challenge, username="u", password="p")
    again = d.invite(b"sdp", auth=(name, value))
    assert name == "Proxy-Authorization"
    assert "nc=00000001" in value
    assert again.cseq == (2, "INVITE")
    assert again.get("proxy-authorization") == value


def test_our_reply_copies_the_request_and_tags_to() -> None:
    req = parse(
        b"BYE sip:me@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP far;branch=z9hG4bKx\r\n"
        b"From: <sip:b@far>;tag=far\r\nTo: <sip:me@trunk>\r\nCall-ID: c1@h\r\nCSeq: 7 BYE\r\n\r\n"
    )
    assert isinstance(req, SipRequest)
    ok = reply(req, 200, "OK", local_tag="mine")
    assert ok.get("via") == "SIP/2.0/UDP far;branch=z9hG4bKx"
    assert ok.get("cseq") == "7 BYE"
    assert header_params(ok.get("to"))["tag"] == "mine"
