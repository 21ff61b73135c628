"""REGISTER requests and the time a registrar grants (RFC 3261 §10.2)."""

from __future__ import annotations

import itertools

from simgate.codecs.sip.dialog import reply
from simgate.codecs.sip.message import SipResponse, parse
from simgate.codecs.sip.register import Registration


def registration() -> Registration:
    counter = itertools.count(1)
    return Registration(
        aor="sip:alice@trunk",
        registrar="sip:trunk",
        contact="sip:alice@10.0.0.1:5062",
        via_host="10.0.0.1:5062",
        expires=300,
        token=lambda: f"t{next(counter)}",
    )


def ok(req_text: bytes, *extra: tuple[str, str]) -> SipResponse:
    req = parse(req_text)
    assert not isinstance(req, SipResponse)
    resp = reply(req, 200, "OK", local_tag="r")
    resp.headers += list(extra)
    return resp


def test_requests_share_the_call_id_and_count_cseq() -> None:
    reg = registration()
    first, second = reg.request(), reg.request(expires=0)
    assert first.call_id == second.call_id == "t1@simgate"
    assert (first.cseq, second.cseq) == ((1, "REGISTER"), (2, "REGISTER"))
    assert (first.get("expires"), second.get("expires")) == ("300", "0")
    assert first.uri == "sip:trunk"
    assert first.get("to") == "<sip:alice@trunk>"


def test_the_granted_time_prefers_our_contacts_expires() -> None:
    reg = registration()
    text = reg.request().encode()
    by_contact = ok(text, ("Contact", "<sip:alice@10.0.0.1:5062>;expires=120"), ("Expires", "60"))
    assert reg.granted_seconds(by_contact) == 120
    assert reg.granted_seconds(ok(text, ("Expires", "60"))) == 60
    assert reg.granted_seconds(ok(text)) == 300  # nothing said: what we asked for


def test_a_challenge_is_answered_for_register() -> None:
    reg = registration()
    challenge = ok(reg.request().encode(), ("WWW-Authenticate", 'Digest realm="r", nonce="n"'))
    challenge.status = 401
    name, value = reg.authorize(challenge, username="alice", password="p")
    assert name == "Authorization"
    assert 'uri="sip:trunk"' in value
