"""One call attempt's policy as a table: events in, commands out (spec §1.11-§1.12, §7).

No I/O and no clock: the dispatcher (dispatch/calls.py) feeds what the line reports, plus
:class:`Deadline` when the wake-up the flow asked for has come, each with the time it was
read (``now_ms``); it carries out the commands the flow answers with. Timers are commands
too (:class:`RequestWakeup`, the latest one replaces the earlier), so every rule is here:
maxRingingTime (cancel, 487), maxDuration after the answer, ``loopCount`` plays, DTMF capture,
the redial of an unanswered attempt per recallCount / recallInterval, the charge, and 402 for
an account that can no longer pay the first billing step::

    NEW ──Start──▶ DIALLING ──Dialled──▶ RINGING ───Answered───▶ TALKING
     │                │                    │                       │
     │ Unfunded       │ DialFailed         │ Deadline              │ Played, or Deadline
     │ (402)          │ (503)              ▼ (maxRingingTime)      ▼ (maxDuration)
     │                │                CANCELLING ──Answered──▶ HANGING_UP
     │                │                    │ Ended, or Deadline    │ Ended, or Deadline
     ▼                ▼                    ▼ (the hang-up's grace) ▼ (the hang-up's grace)
    DONE ◀──────────────────────────────────────────────────────────

Ended leads to DONE from every live phase; :data:`TABLE` below is the whole truth.

Every attempt ends with exactly one :class:`Finish` (the last attempt: charged and pushed) or
:class:`Redial` (busy, no answer or unreachable with recalls left: only the last attempt is
final, spec §1.11). A call whose worker died mid-call is not a flow: the store reaps its
expired lease as SIP 500 "call lost", never dialled again (store/calls.py ``reap``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from simgate.domain.billing import first_step_cost, voice_charge
from simgate.domain.calls import (
    SIP_CANCELLED,
    SIP_OK,
    SIP_PAYMENT_REQUIRED,
    SIP_SERVICE_UNAVAILABLE,
    CallResult,
    LeasedCall,
    VoiceCharge,
    sip_reason,
)

__all__ = [
    "DTMF_MAX",
    "HANGUP_GRACE_MS",
    "REDIAL_CODES",
    "TABLE",
    "Answered",
    "CallFlow",
    "Command",
    "Deadline",
    "Dial",
    "DialFailed",
    "Dialled",
    "Dtmf",
    "Ended",
    "Finish",
    "FlowError",
    "FlowEvent",
    "Hangup",
    "Phase",
    "Play",
    "Played",
    "Redial",
    "RequestWakeup",
    "Ringing",
    "Start",
    "Unfunded",
    "unfunded",
]

HANGUP_GRACE_MS = 10_000  # a line that does not confirm our hang-up in this long is given up on
DTMF_MAX = 32  # keys kept per attempt (the record's column width)
# Redial only when nobody answered (spec §1.11 "recall"): busy, no answer, unreachable.
REDIAL_CODES = frozenset({408, 480, 486, 487, 503, 603})


class Phase(enum.IntEnum):
    # An IntEnum for its hash: the table is looked up once per event.
    NEW = 0
    DIALLING = 1  # Dial sent, the line has not taken the call yet
    RINGING = 2  # placed, not answered (180/183 or not yet)
    TALKING = 3  # answered, the audio plays
    CANCELLING = 4  # we hung up at maxRingingTime, nobody answered
    HANGING_UP = 5  # we hung up after the audio or at maxDuration
    DONE = 6


# ---- events (in) ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Start:
    """Place the call on ``line`` now."""

    line: str


@dataclass(frozen=True, slots=True)
class Unfunded:
    """The account cannot pay the first billing step: end with 402, undialled."""


@dataclass(frozen=True, slots=True)
class Dialled:
    """The line took the call; its events follow."""


@dataclass(frozen=True, slots=True)
class DialFailed:
    """The line raised on dial (a driver bug): the attempt ends as 503."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ringing:
    at_ms: int


@dataclass(frozen=True, slots=True)
class Answered:
    at_ms: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    at_ms: int
    digit: str


@dataclass(frozen=True, slots=True)
class Played:
    """Every loop of the audio has been played."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Ended:
    at_ms: int
    sip_code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Deadline:
    """The last :class:`RequestWakeup` has come."""


FlowEvent = (
    Start | Unfunded | Dialled | DialFailed | Ringing | Answered | Dtmf | Played | Ended | Deadline
)


# ---- commands (out) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Dial:
    callee: str
    caller: str  # displayNum, "" = the line's own number
    attempt: int  # 0 = the first dial, n = the n-th redial


@dataclass(frozen=True, slots=True)
class Play:
    loops: int


@dataclass(frozen=True, slots=True)
class Hangup:
    """CANCEL before the answer, BYE after (the line knows which); Ended follows."""


@dataclass(frozen=True, slots=True)
class RequestWakeup:
    """Feed :class:`Deadline` at ``at_ms`` unless an event comes first; replaces the last."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The attempt is the call's last: record it and charge it."""

    result: CallResult
    charge: VoiceCharge


@dataclass(frozen=True, slots=True)
class Redial:
    """Unanswered with recalls left: keep the result, queue the call again at ``at_ms``."""

    result: CallResult
    at_ms: int


Command = Dial | Play | Hangup | RequestWakeup | Finish | Redial


class FlowError(Exception):
    """An event the flow's phase does not allow (a driver or dispatcher bug)."""


# ---- the flow -------------------------------------------------------------------------------
@dataclass
class CallFlow:
    """One attempt of ``call``; ``audio_ms`` is one play of its audio, ``max_call_s`` the talk
    cap when the request set no maxDuration."""

    call: LeasedCall
    audio_ms: int
    max_call_s: int
    phase: Phase = Phase.NEW
    line: str = ""
    call_ms: int = 0
    ringing_ms: int | None = None
    answer_ms: int | None = None
    hung_up_ms: int | None = None  # when we hung up (the call ends there for billing)
    wake_ms: int | None = None  # the deadline last requested
    dtmf: list[str] = field(default_factory=list)
    ending: Finish | Redial | None = None

    def handle(self, event: FlowEvent, *, now_ms: int) -> list[Command]:
        cell = TABLE.get((self.phase, type(event)))
        if cell is None:
            raise FlowError(f"{type(event).__name__} in phase {self.phase.name}")
        commands = cell.action(self, event, now_ms)
        self.phase = cell.to
        return commands

    # ---- actions (one per kind of table cell) ----------------------------------------------
    def _start(self, e: Start, now_ms: int) -> list[Command]:
        self.line = e.line
        self.call_ms = now_ms
        c = self.call
        return [Dial(callee=c.callee, caller=c.display_num, attempt=c.recalls_done)]

    def _refuse(self, e: Unfunded, now_ms: int) -> list[Command]:
        self.call_ms = now_ms
        return self._end(SIP_PAYMENT_REQUIRED, "", at_ms=now_ms, now_ms=now_ms)

    def _dialled(self, e: Dialled, now_ms: int) -> list[Command]:
        return self._wake(self.call_ms + self.call.max_ringing_s * 1000)

    def _dial_failed(self, e: DialFailed, now_ms: int) -> list[Command]:
        return self._end(SIP_SERVICE_UNAVAILABLE, e.reason, at_ms=now_ms, now_ms=now_ms)

    def _ringing(self, e: Ringing, now_ms: int) -> list[Command]:
        self.ringing_ms = self.ringing_ms or e.at_ms
        return []

    def _answer(self, e: Answered, now_ms: int) -> list[Command]:
        self._note_answer(e)
        talk_cap_s = self.call.max_duration_s or self.max_call_s
        return [Play(self.call.loop_count), *self._wake(e.at_ms + talk_cap_s * 1000)]

    def _answer_late(self, e: Answered, now_ms: int) -> list[Command]:
        """Answered as we hung up: the audio starts, but our hang-up and its grace stand."""
        self._note_answer(e)
        return [Play(self.call.loop_count)]

    def _note_answer(self, e: Answered) -> None:
        self.answer_ms = e.at_ms
        self.ringing_ms = self.ringing_ms or e.at_ms

    def _key(self, e: Dtmf, now_ms: int) -> list[Command]:
        if len(self.dtmf) < DTMF_MAX:
            self.dtmf.append(e.digit)
        return []

    def _played(self, e: Played, now_ms: int) -> list[Command]:
        # The audio ended: so did the call, for billing. Never later than the audio itself
        # after the answer: a slow start of the playback is not the customer's talk time.
        length = self.call.loop_count * self.audio_ms
        answered = self.answer_ms if self.answer_ms is not None else e.at_ms
        return self._hang_up(min(e.at_ms, answered + length))

    def _ignore(self, e: FlowEvent, now_ms: int) -> list[Command]:
        return []

    def _limit(self, e: Deadline, now_ms: int) -> list[Command]:
        # The call ends for billing at the limit itself: the line's CANCEL/BYE round trip (or
        # a late wake-up of the dispatcher) is not talk time (§1.11 maxDuration).
        assert self.wake_ms is not None
        return self._hang_up(min(self.wake_ms, now_ms))

    def _hang_up(self, at_ms: int) -> list[Command]:
        self.hung_up_ms = at_ms
        return [Hangup(), *self._wake(at_ms + HANGUP_GRACE_MS)]

    def _ended(self, e: Ended, now_ms: int) -> list[Command]:
        at = e.at_ms if self.hung_up_ms is None else min(e.at_ms, self.hung_up_ms)
        return self._end(e.sip_code, e.reason, at_ms=at, now_ms=now_ms)

    def _ended_cancelled(self, e: Ended, now_ms: int) -> list[Command]:
        """Whatever the line says about a call we cancelled unanswered, it was no answer."""
        assert self.hung_up_ms is not None
        at = min(e.at_ms, self.hung_up_ms)
        return self._end(SIP_CANCELLED, "no answer", at_ms=at, now_ms=now_ms)

    def _give_up(self, e: Deadline, now_ms: int) -> list[Command]:
        """The line never confirmed our hang-up: end the call ourselves, at the hang-up."""
        assert self.hung_up_ms is not None
        code = SIP_OK if self.answer_ms is not None else SIP_CANCELLED
        return self._end(code, "", at_ms=self.hung_up_ms, now_ms=now_ms)

    def _wake(self, at_ms: int) -> list[Command]:
        self.wake_ms = at_ms
        return [RequestWakeup(at_ms)]

    def _end(self, code: int, reason: str, *, at_ms: int, now_ms: int) -> list[Command]:
        answered = self.answer_ms is not None
        if answered:
            code = SIP_OK  # an established call is 200 whoever hung up (spec §7)
        result = CallResult(
            call_id=self.call.id,
            line=self.line,
            call_ms=self.call_ms,
            ringing_ms=self.ringing_ms,
            answer_ms=self.answer_ms,
            hangup_ms=max(at_ms, self.answer_ms or self.call_ms),
            sip_code=code,
            reason=(reason or sip_reason(code)) if not answered else "success",
            dtmf="".join(self.dtmf) if answered else "",
        )
        c, p = self.call, self.call.pricing
        ending: Finish | Redial
        if not result.answered and code in REDIAL_CODES and c.recalls_done < c.recall_count:
            ending = Redial(result, at_ms=now_ms + c.recall_interval_s * 1000)
        else:
            charge = voice_charge(
                answered=result.answered,
                duration_s=result.duration_s,
                rate_micros=p.rate_micros,
                bill_period=p.bill_period,
                currency=p.currency,
                quote_exchange_micros=p.quote_exchange_micros,
            )
            ending = Finish(result, charge)
        self.ending = ending
        self.wake_ms = None
        return [ending]


# ---- the table: (phase, event) → action and the next phase ------------------------------------
_E = TypeVar("_E", bound=FlowEvent)


@dataclass(frozen=True, slots=True)
class Cell:
    action: Callable[[CallFlow, FlowEvent, int], list[Command]]
    to: Phase


def _cell(kind: type[_E], action: Callable[[CallFlow, _E, int], list[Command]], to: Phase) -> Cell:
    # ``kind`` is the event type of the cell's key, so ``handle`` only ever passes ``action``
    # an event of that type: the cast states it once here instead of a check per event.
    return Cell(cast(Callable[[CallFlow, FlowEvent, int], list[Command]], action), to)


P, F = Phase, CallFlow
_LIVE = (P.RINGING, P.TALKING, P.CANCELLING, P.HANGING_UP)
TABLE: dict[tuple[Phase, type[FlowEvent]], Cell] = {
    (P.NEW, Start): _cell(Start, F._start, P.DIALLING),
    (P.NEW, Unfunded): _cell(Unfunded, F._refuse, P.DONE),
    (P.DIALLING, Dialled): _cell(Dialled, F._dialled, P.RINGING),
    (P.DIALLING, DialFailed): _cell(DialFailed, F._dial_failed, P.DONE),
    # Line events, in every live phase (keys and ringing are noted whenever they come).
    **{(p, Ringing): _cell(Ringing, F._ringing, p) for p in _LIVE},
    **{(p, Dtmf): _cell(Dtmf, F._key, p) for p in _LIVE},
    (P.RINGING, Answered): _cell(Answered, F._answer, P.TALKING),
    (P.TALKING, Answered): _cell(Answered, F._answer, P.TALKING),  # a repeated 200: replays
    (P.CANCELLING, Answered): _cell(Answered, F._answer_late, P.HANGING_UP),
    (P.HANGING_UP, Answered): _cell(Answered, F._answer_late, P.HANGING_UP),
    (P.RINGING, Played): _cell(Played, F._played, P.HANGING_UP),
    (P.TALKING, Played): _cell(Played, F._played, P.HANGING_UP),
    (P.CANCELLING, Played): _cell(Played, F._ignore, P.CANCELLING),  # already hung up
    (P.HANGING_UP, Played): _cell(Played, F._ignore, P.HANGING_UP),
    (P.RINGING, Ended): _cell(Ended, F._ended, P.DONE),
    (P.TALKING, Ended): _cell(Ended, F._ended, P.DONE),
    (P.CANCELLING, Ended): _cell(Ended, F._ended_cancelled, P.DONE),
    (P.HANGING_UP, Ended): _cell(Ended, F._ended, P.DONE),
    # Timers: maxRingingTime, maxDuration, then the grace for the line's confirmation.
    (P.RINGING, Deadline): _cell(Deadline, F._limit, P.CANCELLING),
    (P.TALKING, Deadline): _cell(Deadline, F._limit, P.HANGING_UP),
    (P.CANCELLING, Deadline): _cell(Deadline, F._give_up, P.DONE),
    (P.HANGING_UP, Deadline): _cell(Deadline, F._give_up, P.DONE),
}
del P, F


def unfunded(calls: Sequence[LeasedCall], spendable: Mapping[int, int]) -> set[int]:
    """Ids of the calls whose account can no longer pay the first billing step (spec §1.11:
    checked at accept, but the balance may have gone since, e.g. by earlier calls of a big
    group). Checked per call in lease order, so a nearly empty account still places the calls
    it can pay for; ``spendable`` is each account's spendable micros."""
    left = dict(spendable)
    broke: set[int] = set()
    for call in calls:
        p = call.pricing
        need = max(1, first_step_cost(p.rate_micros, p.bill_period, p.quote_exchange_micros))
        if left.get(call.account_id, 0) < need:
            broke.add(call.id)
        else:
            left[call.account_id] = left.get(call.account_id, 0) - need
    return broke
