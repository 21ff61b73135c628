"""The outgoing call's state machine (codecs/sip/uac.py): messages and timers in, actions out,
no sockets and no clock: every timer is an event the test fires itself."""

from __future__ import annotations

import itertools

from simgate.codecs.sip import sdp, uac
from simgate.codecs.sip.dialog import OutgoingDialog, reply
from simgate.codecs.sip.message import SipRequest, SipResponse, parse
from simgate.codecs.sip.uac import (
    HANGUP_RESEND,
    HANGUP_TIMEOUT,
    INVITE_RESEND,
    INVITE_TIMEOUT,
    Answered,
    Ended,
    Key,
    Log,
    Received,
    Ringing,
    Send,
    StartTimer,
    StopTimer,
    TimerFired,
)

ANSWER_SDP = sdp.offer(address="10.9.9.9", port=4000, codecs=("PCMA",), session_id=1)


def machine(**cfg: object) -> uac.UacCall:
    counter = itertools.count(1)
    dialog = OutgoingDialog(
        call_id="c1@h",
        local_uri="sip:me@trunk",
        remote_uri="sip:8613800138000@trunk",
        contact="sip:me@10.0.0.1:5062",
        via_host="10.0.0.1:5062",
        token=lambda: f"t{next(counter)}",
    )
    settings = uac.UacSettings(**{"codecs": ("PCMU", "PCMA"), "dtmf": "both", **cfg})  # type: ignore[arg-type]
    return uac.UacCall(dialog=dialog, offer=b"offer", cfg=settings)


def sent(actions: list[uac.Action]) -> list[str]:
    """What was sent, as start lines (``INVITE``, ``ACK``, ``200``...)."""
    out = []
    for a in actions:
        if isinstance(a, Send):
            msg = a.msg
            out.append(msg.method if isinstance(msg, SipRequest) else str(msg.status))  # type: ignore[attr-defined]
    return out


def others(actions: list[uac.Action]) -> list[uac.Action]:
    return [a for a in actions if not isinstance(a, Send | StopTimer)]


def answer(m: uac.UacCall, status: int, *, body: bytes = b"", **headers: str) -> Received:
    """The far end's answer to our latest INVITE (or ``of`` request)."""
    req = m.dialog.last_invite
    assert req is not None
    return answer_to(req, status, body=body, **headers)


def answer_to(req: SipRequest, status: int, *, body: bytes = b"", **headers: str) -> Received:
    resp = reply(req, status, "Reason", local_tag="far")
    resp.headers += [(k.replace("_", "-"), v) for k, v in headers.items()]
    resp.headers.append(("Contact", "<sip:far@10.9.9.9>"))
    resp.body = body
    parsed = parse(resp.encode())
    assert isinstance(parsed, SipResponse)
    return Received(parsed)


def far_request(m: uac.UacCall, method: str, body: bytes = b"", ctype: str = "") -> Received:
    text = (
        (
            f"{method} sip:me@10.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP far;branch=z9hG4bKf\r\n"
            f"From: <sip:x@trunk>;tag=far\r\nTo: <sip:me@trunk>;tag={m.dialog.local_tag}\r\n"
            f"Call-ID: c1@h\r\nCSeq: 9 {method}\r\n"
            + (f"Content-Type: {ctype}\r\n" if ctype else "")
        ).encode()
        + b"\r\n"
        + body
    )
    req = parse(text)
    assert isinstance(req, SipRequest)
    return Received(req)


def test_an_answered_call_from_invite_to_bye() -> None:
    m = machine()
    out = m.handle(uac.Dial())
    assert sent(out) == ["INVITE"]
    assert others(out) == [StartTimer(INVITE_TIMEOUT, 32.0), StartTimer(INVITE_RESEND, 0.5)]
    # Timer A: resent, the interval doubling (RFC 3261 §17.1.1.2)
    out = m.handle(TimerFired(INVITE_RESEND))
    assert (sent(out), others(out)) == (["INVITE"], [StartTimer(INVITE_RESEND, 1.0)])
    assert StopTimer(INVITE_RESEND) in m.handle(answer(m, 100))
    assert others(m.handle(answer(m, 180))) == [Ringing()]
    assert others(m.handle(answer(m, 183))) == []  # rings once
    out = m.handle(answer(m, 200, body=ANSWER_SDP, Content_Type="application/sdp"))
    assert sent(out) == ["ACK"]
    assert others(out) == [Answered(sdp.MediaAnswer("10.9.9.9", 4000, "PCMA", 8, 101))]
    assert sent(m.handle(answer(m, 200, body=ANSWER_SDP))) == ["ACK"]  # a resent 2xx
    out = m.handle(uac.Hangup())
    assert sent(out) == ["BYE"]
    bye = out[0].msg  # type: ignore[union-attr]
    assert isinstance(bye, SipRequest)
    assert bye.uri == "sip:far@10.9.9.9"
    out = m.handle(answer_to(bye, 200))
    assert others(out) == [Ended(200, by_remote=False, reason="")]
    assert m.phase is uac.Phase.ENDED


def test_over_tcp_nothing_is_resent() -> None:
    m = machine(reliable=True)
    assert others(m.handle(uac.Dial())) == [StartTimer(INVITE_TIMEOUT, 32.0)]


def test_a_challenge_is_answered_once() -> None:
    m = machine(username="alice", password="secret")
    m.handle(uac.Dial())
    out = m.handle(answer(m, 401, WWW_Authenticate='Digest realm="r", nonce="n"'))
    assert sent(out) == ["ACK", "INVITE"]
    again = m.dialog.last_invite
    assert again is not None
    assert again.get("authorization").startswith('Digest username="alice"')
    assert m.phase is uac.Phase.INVITING
    out = m.handle(answer(m, 401, WWW_Authenticate='Digest realm="r", nonce="n2"'))
    assert sent(out) == ["ACK"]
    assert others(out)[0] == Log("the trunk refused our credentials for user 'alice' (SIP 401)")
    assert others(out)[-1] == Ended(401, by_remote=True, reason="Reason")


def test_a_challenge_without_credentials_ends_the_call_with_a_clear_log() -> None:
    m = machine()
    m.handle(uac.Dial())
    out = others(m.handle(answer(m, 407, Proxy_Authenticate='Digest realm="r", nonce="n"')))
    assert isinstance(out[0], Log)
    assert "set username/password" in out[0].text
    assert out[-1] == Ended(407, by_remote=True, reason="Reason")


def test_a_hang_up_before_any_answer_waits_for_a_provisional_then_cancels() -> None:
    m = machine()
    m.handle(uac.Dial())
    out = m.handle(uac.Hangup())
    assert sent(out) == []  # no CANCEL before a provisional (§9.1)
    assert out == [StartTimer(HANGUP_TIMEOUT, 8.0)]  # but not a wait for Timer B
    assert sent(m.handle(TimerFired(INVITE_RESEND))) == ["INVITE"]  # still resent meanwhile
    out = m.handle(answer(m, 180))
    assert sent(out) == ["CANCEL"]
    assert StartTimer(HANGUP_RESEND, 0.5) in out
    assert sent(m.handle(TimerFired(HANGUP_RESEND))) == ["CANCEL"]  # Timer E
    assert others(m.handle(answer_to(m.dialog.cancel(), 200))) == []  # the CANCEL's own 200
    out = m.handle(answer(m, 487))
    assert sent(out) == ["ACK"]
    assert others(out) == [Ended(487, by_remote=False, reason="Reason")]


def test_the_invite_timeout_ends_with_408_and_cancels_a_ringing_call() -> None:
    m = machine()
    m.handle(uac.Dial())
    m.handle(answer(m, 180))
    out = m.handle(TimerFired(INVITE_TIMEOUT))
    assert sent(out) == ["CANCEL"]
    assert others(out) == [Ended(408, by_remote=True, reason="")]


def test_failures_end_with_their_code() -> None:
    for code in (404, 480, 486, 503, 603):
        m = machine()
        m.handle(uac.Dial())
        out = m.handle(answer(m, code))
        assert sent(out) == ["ACK"]
        assert others(out) == [Ended(code, by_remote=True, reason="Reason")]


def test_far_end_requests_keys_and_bye() -> None:
    m = machine(dtmf="info")
    m.handle(uac.Dial())
    m.handle(answer(m, 200, body=ANSWER_SDP))
    out = m.handle(
        far_request(m, "INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")
    )
    assert (sent(out), others(out)) == (["200"], [Key("5")])
    assert sent(m.handle(far_request(m, "OPTIONS"))) == ["200"]
    assert sent(m.handle(far_request(m, "SUBSCRIBE"))) == ["405"]
    out = m.handle(far_request(m, "BYE"))
    assert (sent(out), others(out)) == (["200"], [Ended(200, by_remote=True, reason="")])


def test_info_keys_are_not_taken_when_the_line_wants_rfc4733_only() -> None:
    m = machine(dtmf="rfc4733")
    m.handle(uac.Dial())
    m.handle(answer(m, 200, body=ANSWER_SDP))
    out = m.handle(far_request(m, "INFO", b"Signal=5\r\n", "application/dtmf-relay"))
    assert (sent(out), others(out)) == (["200"], [])


def test_an_answer_without_a_common_codec_is_hung_up_with_488() -> None:
    m = machine(codecs=("PCMU",))
    m.handle(uac.Dial())
    out = m.handle(answer(m, 200, body=ANSWER_SDP))  # PCMA only
    assert sent(out) == ["ACK", "BYE"]
    assert isinstance(others(out)[0], Log)
    out = m.handle(TimerFired(HANGUP_TIMEOUT))  # the BYE is never answered
    assert others(out) == [Ended(488, by_remote=False, reason="no common codec")]


def test_a_far_end_silent_after_our_early_hang_up_is_given_up_on() -> None:
    m = machine()
    m.handle(uac.Dial())
    m.handle(uac.Hangup())
    out = m.handle(TimerFired(HANGUP_TIMEOUT))
    assert others(out) == [Ended(487, by_remote=False, reason="")]
