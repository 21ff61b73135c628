"""One outgoing call as a sans-IO state machine: SIP messages, our hang-up and timers in,
messages to send, timers to set and call events out (RFC 3261 §9, §13, §15, §17.1).

The driver (lines/sip/call.py) feeds :class:`Dial` once, every message of the call, our
:class:`Hangup`, and :class:`TimerFired` when a timer it was told to start runs out; it
carries out the actions. Timers are actions too, so every rule is in :data:`TABLE`::

    INVITING ──1xx──▶ PROCEEDING ──2xx: ACK──▶ ANSWERED ──Hangup: BYE──▶ BYEING
       │  401/407: ACK, INVITE with digest (once)   │  far BYE: 200 OK     │ its answer, or
       │  300-699: ACK ─────────────────────────────┼──────────────────────┴─ bye timeout
       │  invite timeout (Timer B): 408             ▼                          ▼
       └─Hangup─▶ CANCELLING (CANCEL once a 1xx came, §9.1) ── 487 / timeout ─▶ ENDED

Resending (UDP only): the INVITE until a provisional answer (Timer A, T1 doubling), a BYE or
CANCEL until its final answer (Timer E, capped at T2). A 2xx retransmitted after our ACK is
ACKed again (§13.2.2.4).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from simgate.codecs.sip import dtmf_info, sdp
from simgate.codecs.sip.dialog import OutgoingDialog, reply
from simgate.codecs.sip.digest import DigestError
from simgate.codecs.sip.message import SipMessage, SipRequest, SipResponse

T1 = 0.5  # §17.1.1.1: round-trip estimate, the first resend interval
T2 = 4.0  # the cap of non-INVITE resend intervals (§17.1.2.2)
HANGUP_WAIT_S = 8.0  # a BYE / CANCEL unanswered this long: the call is over anyway
SIP_OK = 200
SIP_TIMEOUT = 408
SIP_CANCELLED = 487
SIP_NOT_ACCEPTABLE = 488  # the answer's SDP has no codec of ours (§21.4.26)

# Timer names (the driver keeps one handle per name; starting one replaces it).
INVITE_RESEND, INVITE_TIMEOUT = "invite-resend", "invite-timeout"
HANGUP_RESEND, HANGUP_TIMEOUT = "hangup-resend", "hangup-timeout"


class Phase(enum.IntEnum):
    INVITING = 0  # INVITE sent, nothing heard yet
    PROCEEDING = 1  # a provisional answer came
    ANSWERED = 2  # 2xx, ACKed: the call is up
    CANCELLING = 3  # we hung up before the answer
    BYEING = 4  # we sent BYE
    ENDED = 5


# ---- events in --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Dial:
    pass


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str


@dataclass(frozen=True, slots=True)
class Received:
    msg: SipMessage


Event = Dial | Hangup | TimerFired | Received


# ---- actions out ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Send:
    msg: SipMessage


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class StopTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Ringing:
    pass


@dataclass(frozen=True, slots=True)
class Answered:
    media: sdp.MediaAnswer


@dataclass(frozen=True, slots=True)
class Key:
    digit: str


@dataclass(frozen=True, slots=True)
class Ended:
    code: int
    by_remote: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """Something the operator must see (a refused login, an unusable answer)."""

    text: str


Action = Send | StartTimer | StopTimer | Ringing | Answered | Key | Ended | Log


@dataclass(frozen=True, slots=True)
class UacSettings:
    codecs: tuple[str, ...]
    dtmf: str  # "rfc4733" | "info" | "both"
    username: str = ""
    password: str = ""
    reliable: bool = False  # TCP: nothing is resent
    invite_timeout_s: float = 32.0  # Timer B = 64*T1


@dataclass
class UacCall:
    dialog: OutgoingDialog
    offer: bytes
    cfg: UacSettings
    phase: Phase = Phase.INVITING
    authed: bool = False
    rang: bool = False
    cancel_sent: bool = False
    end_code: int = SIP_OK  # what our BYE ends the call with (488 after a bad answer)
    resend_s: dict[str, float] = field(default_factory=dict)
    hangup_request: SipRequest | None = None  # the BYE or CANCEL being resent

    def handle(self, event: Event) -> list[Action]:
        kind: type[Event] | tuple[str, int | str] = type(event)
        if isinstance(event, Received):
            msg = event.msg
            if _stale(msg, self.dialog.invite_cseq):  # an earlier INVITE's answer, resent
                return [Send(self.dialog.ack(msg))] if _final(msg) else []  # type: ignore[arg-type]
            kind = _message_kind(msg)
        elif isinstance(event, TimerFired):
            kind = ("timer", event.name)
        cell = TABLE.get((self.phase, kind))
        if cell is None:
            return self._default(event)
        action, to = cell
        out = action(self, event)
        if self.phase is not Phase.ENDED:  # an action may have ended the call itself
            self.phase = to if to is not None else self.phase
        return out

    # ---- the INVITE ------------------------------------------------------------------
    def _dial(self, e: Event) -> list[Action]:
        return self._send_invite(self.dialog.invite(self.offer))

    def _send_invite(self, invite: SipRequest) -> list[Action]:
        out: list[Action] = [Send(invite), StartTimer(INVITE_TIMEOUT, self.cfg.invite_timeout_s)]
        if not self.cfg.reliable:
            self.resend_s[INVITE_RESEND] = T1
            out.append(StartTimer(INVITE_RESEND, T1))
        return out

    def _resend_invite(self, e: Event) -> list[Action]:
        last = self.dialog.last_invite
        interval = self.resend_s.get(INVITE_RESEND, T1) * 2  # Timer A doubles (§17.1.1.2)
        self.resend_s[INVITE_RESEND] = interval
        return [Send(last), StartTimer(INVITE_RESEND, interval)] if last is not None else []

    def _provisional(self, e: Event) -> list[Action]:
        resp = _response(e)
        out: list[Action] = [StopTimer(INVITE_RESEND)]
        if resp.status in (180, 183) and not self.rang:
            self.rang = True  # early media (183 with SDP) is not played (issue 17)
            out.append(Ringing())
        return out

    def _provisional_cancelling(self, e: Event) -> list[Action]:
        out = self._provisional(e)
        if not self.cancel_sent:  # the hang-up came before any answer (§9.1)
            out += self._send_hangup(self.dialog.cancel(), cancel=True)
        return out

    def _answered(self, e: Event) -> list[Action]:
        resp = _response(e)
        self.dialog.established(resp)
        out: list[Action] = [StopTimer(INVITE_RESEND), StopTimer(INVITE_TIMEOUT)]
        out.append(Send(self.dialog.ack(resp)))
        try:
            media = sdp.parse_answer(resp.body, offered=self.cfg.codecs)
        except sdp.SdpError as exc:
            self.end_code = SIP_NOT_ACCEPTABLE
            self.phase = Phase.BYEING
            return [*out, Log(f"unusable SDP answer: {exc}"), *self._bye()]
        self.phase = Phase.ANSWERED
        return [*out, Answered(media)]

    def _answered_cancelling(self, e: Event) -> list[Action]:
        """Answered as our CANCEL crossed it: the call is up; end it with a BYE at once."""
        out = self._answered(e)
        if self.phase is Phase.ANSWERED:
            self.phase = Phase.BYEING
            out += self._bye()
        return out

    def _failed(self, e: Event) -> list[Action]:
        resp = _response(e)
        out: list[Action] = [
            StopTimer(INVITE_RESEND),
            StopTimer(INVITE_TIMEOUT),
            Send(self.dialog.ack(resp)),
        ]
        if resp.status in (401, 407):
            again = self._challenge(resp)
            if isinstance(again, SipRequest):
                self.phase = Phase.INVITING
                return [*out, *self._send_invite(again)]
            out.append(Log(again))
        return [*out, *self._end(resp.status, by_remote=True, reason=resp.reason)]

    def _failed_cancelling(self, e: Event) -> list[Action]:
        resp = _response(e)
        out: list[Action] = [StopTimer(INVITE_RESEND), StopTimer(INVITE_TIMEOUT)]
        out.append(Send(self.dialog.ack(resp)))
        # A 487 to our CANCEL (or any failure meanwhile) ends a call we hung up.
        return [*out, *self._end(resp.status, by_remote=False, reason=resp.reason)]

    def _challenge(self, resp: SipResponse) -> SipRequest | str:
        """A new INVITE answering a 401/407, or why we cannot."""
        cfg = self.cfg
        if self.authed:
            return (
                f"the trunk refused our credentials for user {cfg.username!r} (SIP {resp.status})"
            )
        if not cfg.username:
            return f"the trunk asks for authentication (SIP {resp.status}); set username/password"
        try:
            auth = self.dialog.authorize(resp, username=cfg.username, password=cfg.password)
        except DigestError as exc:
            return f"cannot answer the trunk's challenge: {exc}"
        self.authed = True
        return self.dialog.invite(self.offer, auth=auth)

    def _invite_timeout(self, e: Event) -> list[Action]:
        """Timer B: no final answer (§17.1.1.2); CANCEL a call that rang (§9.1)."""
        out: list[Action] = [StopTimer(INVITE_RESEND)]
        if self.phase is Phase.PROCEEDING:
            out.append(Send(self.dialog.cancel()))
        return [*out, *self._end(SIP_TIMEOUT, by_remote=True)]

    def _give_up_cancel(self, e: Event) -> list[Action]:
        return self._end(SIP_CANCELLED, by_remote=False)

    # ---- hanging up ------------------------------------------------------------------
    def _hangup_before_answer(self, e: Event) -> list[Action]:
        if self.phase is Phase.PROCEEDING:
            return self._send_hangup(self.dialog.cancel(), cancel=True)
        # CANCEL only after a provisional answer (§9.1); a far end silent that long is given
        # up on (the line's slot and RTP port are not held for the whole of Timer B).
        return [StartTimer(HANGUP_TIMEOUT, HANGUP_WAIT_S)]

    def _hangup_answered(self, e: Event) -> list[Action]:
        return self._bye()

    def _bye(self) -> list[Action]:
        return self._send_hangup(self.dialog.bye(), cancel=False)

    def _send_hangup(self, req: SipRequest, *, cancel: bool) -> list[Action]:
        self.cancel_sent = self.cancel_sent or cancel
        self.hangup_request = req
        out: list[Action] = [Send(req), StartTimer(HANGUP_TIMEOUT, HANGUP_WAIT_S)]
        if not self.cfg.reliable:
            self.resend_s[HANGUP_RESEND] = T1
            out.append(StartTimer(HANGUP_RESEND, T1))
        return out

    def _resend_hangup(self, e: Event) -> list[Action]:
        if self.hangup_request is None:
            return []
        interval = min(self.resend_s.get(HANGUP_RESEND, T1) * 2, T2)  # Timer E (§17.1.2.2)
        self.resend_s[HANGUP_RESEND] = interval
        return [Send(self.hangup_request), StartTimer(HANGUP_RESEND, interval)]

    def _bye_answered(self, e: Event) -> list[Action]:
        return self._end(self.end_code, by_remote=False, reason=_reason(self.end_code))

    def _cancel_answered(self, e: Event) -> list[Action]:
        # The CANCEL's own answer: stop resending it; the INVITE's 487 ends the call.
        return [StopTimer(HANGUP_RESEND)]

    # ---- the far end's requests --------------------------------------------------------
    def _far_bye(self, e: Event) -> list[Action]:
        req = _request(e)
        ok: list[Action] = [Send(reply(req, 200, "OK", local_tag=self.dialog.local_tag))]
        return [*ok, *self._end(SIP_OK, by_remote=True)]

    def _info(self, e: Event) -> list[Action]:
        req = _request(e)
        out: list[Action] = [Send(reply(req, 200, "OK", local_tag=self.dialog.local_tag))]
        if self.cfg.dtmf in ("info", "both"):
            key = dtmf_info.key_of(req.get("content-type"), req.body)
            if key:
                out.append(Key(key))
        return out

    def _default(self, e: Event) -> list[Action]:
        """What no cell covers: retransmissions and requests outside the call's flow."""
        if not isinstance(e, Received):
            return []
        msg = e.msg
        if isinstance(msg, SipResponse):
            method = msg.cseq[1]
            if method == "INVITE" and msg.status >= 200 and self.phase is not Phase.INVITING:
                return [Send(self.dialog.ack(msg))]  # a retransmitted final answer: ACK again
            return []
        assert isinstance(msg, SipRequest)
        tag = self.dialog.local_tag
        if msg.method == "ACK":
            return []
        if msg.method in ("OPTIONS", "INFO") or (msg.method == "BYE"):
            return [Send(reply(msg, 200, "OK", local_tag=tag))]
        if msg.method == "INVITE":  # a re-INVITE: the session stays as it is (§14.2)
            ok = reply(msg, 200, "OK", local_tag=tag)
            ok.headers += [
                ("Contact", f"<{self.dialog.contact}>"),
                ("Content-Type", "application/sdp"),
            ]
            ok.body = self.offer
            return [Send(ok)]
        return [Send(reply(msg, 405, "Method Not Allowed", local_tag=tag))]

    def _end(self, code: int, *, by_remote: bool, reason: str = "") -> list[Action]:
        self.phase = Phase.ENDED
        stops = [
            StopTimer(n) for n in (INVITE_RESEND, INVITE_TIMEOUT, HANGUP_RESEND, HANGUP_TIMEOUT)
        ]
        return [*stops, Ended(code, by_remote, reason)]


def _reason(code: int) -> str:
    return "no common codec" if code == SIP_NOT_ACCEPTABLE else ""


def _stale(msg: SipMessage, invite_cseq: int) -> bool:
    """An answer to an INVITE of ours other than the latest (one a challenge replaced)."""
    if not isinstance(msg, SipResponse):
        return False
    number, method = msg.cseq
    return method == "INVITE" and number != invite_cseq


def _final(msg: SipMessage) -> bool:
    return isinstance(msg, SipResponse) and msg.status >= 200


def _response(e: Event) -> SipResponse:
    assert isinstance(e, Received)
    assert isinstance(e.msg, SipResponse)
    return e.msg


def _request(e: Event) -> SipRequest:
    assert isinstance(e, Received)
    assert isinstance(e.msg, SipRequest)
    return e.msg


# Received messages are keyed by what they are: ("INVITE", 1) a provisional answer to our
# INVITE, ("INVITE", 2) a 2xx, ("INVITE", 3) a failure (3xx-6xx); ("BYE", 0) etc. a request
# of the far end; ("answer", method) the final answer to our BYE or CANCEL.
def _message_kind(msg: SipMessage) -> tuple[str, int | str]:
    if isinstance(msg, SipRequest):
        return (msg.method, 0)
    resp = cast(SipResponse, msg)
    method = resp.cseq[1]
    if method == "INVITE":
        return ("INVITE", 1 if resp.status < 200 else 2 if resp.status < 300 else 3)
    return ("answer-" + method, 1 if resp.status < 200 else 2)


Handler = Callable[[UacCall, Event], list[Action]]
P, U = Phase, UacCall
PROVISIONAL, SUCCESS, FAILURE = ("INVITE", 1), ("INVITE", 2), ("INVITE", 3)
_UNANSWERED = (P.INVITING, P.PROCEEDING)
_UP = (P.ANSWERED, P.BYEING)


def _timer(name: str) -> tuple[str, str]:
    return ("timer", name)


TABLE: dict[tuple[Phase, type[Event] | tuple[str, int | str]], tuple[Handler, Phase | None]] = {
    (P.INVITING, Dial): (U._dial, None),
    # The INVITE is resent until a provisional answer, also while a hang-up waits for one.
    (P.INVITING, _timer(INVITE_RESEND)): (U._resend_invite, None),
    (P.CANCELLING, _timer(INVITE_RESEND)): (U._resend_invite, None),
    **{(p, _timer(INVITE_TIMEOUT)): (U._invite_timeout, None) for p in _UNANSWERED},
    (P.INVITING, PROVISIONAL): (U._provisional, P.PROCEEDING),
    (P.PROCEEDING, PROVISIONAL): (U._provisional, P.PROCEEDING),
    **{(p, SUCCESS): (U._answered, None) for p in _UNANSWERED},
    **{(p, FAILURE): (U._failed, None) for p in _UNANSWERED},
    **{(p, Hangup): (U._hangup_before_answer, P.CANCELLING) for p in _UNANSWERED},
    (P.CANCELLING, PROVISIONAL): (U._provisional_cancelling, None),
    (P.CANCELLING, SUCCESS): (U._answered_cancelling, None),
    (P.CANCELLING, FAILURE): (U._failed_cancelling, None),
    (P.CANCELLING, ("answer-CANCEL", 2)): (U._cancel_answered, None),
    (P.CANCELLING, _timer(HANGUP_RESEND)): (U._resend_hangup, None),
    (P.CANCELLING, _timer(HANGUP_TIMEOUT)): (U._give_up_cancel, None),
    (P.CANCELLING, _timer(INVITE_TIMEOUT)): (U._give_up_cancel, None),
    (P.ANSWERED, Hangup): (U._hangup_answered, P.BYEING),
    **{(p, ("BYE", 0)): (U._far_bye, None) for p in _UP},
    (P.ANSWERED, ("INFO", 0)): (U._info, None),
    (P.BYEING, ("answer-BYE", 2)): (U._bye_answered, None),
    (P.BYEING, _timer(HANGUP_RESEND)): (U._resend_hangup, None),
    (P.BYEING, _timer(HANGUP_TIMEOUT)): (U._bye_answered, None),  # unanswered: over anyway
}
del P, U
