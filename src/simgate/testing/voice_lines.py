"""A shipped fake for the voice-line seam: callees with named, scripted behaviours.

::

    line = ScriptedVoiceLine("v", clock=clock, calls_per_second=100, max_concurrent=5)
    line.answers("8613800000001", after_s=2, dtmf="1", dtmf_after_s=3)
    line.busy("8613800000002").rings_forever("8613800000003")
    line.fails_then_answers("8613800000004", failures=2)   # for redial tests
    line.unreachable()                                    # every other callee: 480

Calls act out their script through :class:`simgate.lines.sim_voice.PlannedCall`, the same
clock-driven call the simulated line uses, so timing works the same under FakeClock. The line
records what the dispatcher did: ``dials``, ``plays``, ``hangups`` and ``peak_concurrent`` (the
most calls up at once, to check pacing). Nothing here sleeps for real: time belongs to the
test's clock (design principle 6: named fakes, no mocks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.domain.calls import (
    SIP_BUSY,
    SIP_CANCELLED,
    SIP_SERVICE_UNAVAILABLE,
    SIP_UNAVAILABLE,
    Audio,
)
from simgate.lines.sim_voice import CallPlan, PlannedCall
from simgate.lines.voice import CallRequest

# A script turns "the n-th dial of this callee" (0 = first) into the plan that dial follows.
Script = Callable[[int], CallPlan]

_DTMF_KEYS = frozenset("0123456789*#ABCD")


def _ms(seconds: float, what: str) -> int:
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {seconds}")
    return round(seconds * 1000)


@dataclass(frozen=True, slots=True)
class Play:
    call_id: int
    duration_ms: int
    loops: int


class ScriptedCall(PlannedCall):
    """A planned call that tells its line about plays and the caller's hang-ups."""

    def __init__(
        self, line: ScriptedVoiceLine, request: CallRequest, plan: CallPlan, clock: Clock
    ) -> None:
        super().__init__(request, plan, clock, line._ended)
        self._line = line

    async def play(self, audio: Audio, loops: int) -> None:
        up = self.ended is None
        await super().play(audio, loops)  # a misuse raises here and is not recorded
        if up:
            self._line.plays.append(Play(self.request.call_id, audio.duration_ms, loops))

    async def hangup(self) -> None:
        if self.ended is None:
            self._line.hangups.append((self.request.call_id, self._line.clock.now_ms()))
        await super().hangup()


class ScriptedVoiceLine:
    """A :class:`simgate.lines.voice.VoiceLine` whose callees do what the test scripted.

    Behaviour methods take a callee, or none to set the default for unscripted callees (at
    first: answers at once). They return the line, so they chain. Times are seconds on the
    line's clock; ``setup_s`` is the wait from the dial to RINGING (or to the failure).
    Like the simulated line, a dial beyond ``max_concurrent`` live calls, or before
    :meth:`start`, ends at once with 503.
    """

    def __init__(
        self,
        name: str = "scripted-voice",
        *,
        clock: Clock,
        calls_per_second: float = 100.0,
        max_concurrent: int = 5,
    ) -> None:
        if not calls_per_second > 0 or max_concurrent < 1:
            raise ValueError("calls_per_second must be > 0 and max_concurrent >= 1")
        self.name = name
        self.calls_per_second = calls_per_second
        self.max_concurrent = max_concurrent
        self.clock = clock
        self._scripts: dict[str, Script] = {}
        self._default: Script = _answer_script(0, 0, "", 0, None)
        self._dials_to: dict[str, int] = {}
        self._live: set[PlannedCall] = set()
        self.started = False
        # What the dispatcher did, in order.
        self.dials: list[CallRequest] = []
        self.plays: list[Play] = []
        # (call id, at ms) each time our side ended a live call (hangup(), stop() too).
        self.hangups: list[tuple[int, int]] = []
        self.calls: list[ScriptedCall] = []  # every call placed, in dial order
        # Most calls up at once; a dial refused for being over max_concurrent counts too, so
        # ``peak_concurrent > max_concurrent`` means the dispatcher over-dialled.
        self.peak_concurrent = 0

    # ---- named behaviours ------------------------------------------------------------
    def answers(
        self,
        callee: str | None = None,
        *,
        after_s: float = 0.0,
        dtmf: str = "",
        dtmf_after_s: float = 0.0,
        hangs_up_after_s: float | None = None,
        setup_s: float = 0.0,
    ) -> ScriptedVoiceLine:
        """Rings, answers ``after_s`` after RINGING; presses ``dtmf`` ``dtmf_after_s`` after the
        answer; hangs up itself ``hangs_up_after_s`` after the answer (None = waits for us)."""
        if len(dtmf) > 1 or (dtmf and dtmf not in _DTMF_KEYS):
            raise ValueError(f"dtmf must be one key of 0-9*#A-D, got {dtmf!r}")
        script = _answer_script(
            _ms(setup_s, "setup_s"),
            _ms(after_s, "after_s"),
            dtmf,
            _ms(dtmf_after_s, "dtmf_after_s"),
            None if hangs_up_after_s is None else _ms(hangs_up_after_s, "hangs_up_after_s"),
        )
        return self._set(callee, script)

    def busy(self, callee: str | None = None, *, setup_s: float = 0.0) -> ScriptedVoiceLine:
        """Ends with 486 Busy Here after ``setup_s``, never ringing."""
        return self.fails(callee, SIP_BUSY, setup_s=setup_s)

    def unreachable(self, callee: str | None = None, *, setup_s: float = 0.0) -> ScriptedVoiceLine:
        """Ends with 480 Temporarily Unavailable after ``setup_s``, never ringing."""
        return self.fails(callee, SIP_UNAVAILABLE, setup_s=setup_s)

    def fails(
        self,
        callee: str | None = None,
        code: int = SIP_SERVICE_UNAVAILABLE,
        *,
        setup_s: float = 0.0,
    ) -> ScriptedVoiceLine:
        """Ends with SIP ``code`` (4xx-6xx) after ``setup_s``, never ringing."""
        if not 400 <= code <= 699:
            raise ValueError(f"a failing call ends with a 4xx-6xx code, got {code}")
        plan = CallPlan(_ms(setup_s, "setup_s"), fail_code=code)
        return self._set(callee, lambda n: plan)

    def rings_forever(
        self, callee: str | None = None, *, setup_s: float = 0.0
    ) -> ScriptedVoiceLine:
        """Rings until the caller hangs up (maxRingingTime): ENDED 487."""
        plan = CallPlan(_ms(setup_s, "setup_s"))
        return self._set(callee, lambda n: plan)

    def fails_then_answers(
        self,
        callee: str | None = None,
        *,
        failures: int = 1,
        code: int = SIP_BUSY,
        after_s: float = 0.0,
        setup_s: float = 0.0,
    ) -> ScriptedVoiceLine:
        """The first ``failures`` dials of the callee end with ``code``; later ones answer
        ``after_s`` after RINGING. ``code`` 487 means "rings until the caller hangs up"."""
        if failures < 0:
            raise ValueError(f"failures must be >= 0, got {failures}")
        setup_ms = _ms(setup_s, "setup_s")
        if code != SIP_CANCELLED and not 400 <= code <= 699:
            raise ValueError(f"a failing call ends with a 4xx-6xx code, got {code}")
        ringing = code == SIP_CANCELLED
        failing = CallPlan(setup_ms) if ringing else CallPlan(setup_ms, fail_code=code)
        answering = _answer_script(setup_ms, _ms(after_s, "after_s"), "", 0, None)
        return self._set(callee, lambda n: failing if n < failures else answering(n))

    def _set(self, callee: str | None, script: Script) -> ScriptedVoiceLine:
        if callee is None:
            self._default = script
        else:
            self._scripts[callee] = script
        return self

    # ---- the VoiceLine protocol --------------------------------------------------------
    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False
        for call in list(self._live):
            await call.hangup()

    async def dial(self, request: CallRequest) -> ScriptedCall:
        self.dials.append(request)
        if not self.started or len(self._live) >= self.max_concurrent:
            plan = CallPlan(0, fail_code=SIP_SERVICE_UNAVAILABLE)
        else:
            nth = self._dials_to.get(request.callee, 0)
            self._dials_to[request.callee] = nth + 1
            plan = self._scripts.get(request.callee, self._default)(nth)
        call = ScriptedCall(self, request, plan, self.clock)
        self.calls.append(call)
        self._live.add(call)
        self.peak_concurrent = max(self.peak_concurrent, len(self._live))
        await call.start()
        return call

    def _ended(self, call: PlannedCall) -> None:
        self._live.discard(call)

    @property
    def live_calls(self) -> int:
        return len(self._live)


def _answer_script(
    setup_ms: int, ring_ms: int, dtmf: str, dtmf_ms: int, hangup_ms: int | None
) -> Script:
    plan = CallPlan(setup_ms, ring_ms=ring_ms, dtmf=dtmf, dtmf_ms=dtmf_ms, hangup_ms=hangup_ms)
    return lambda n: plan
