"""The simulated voice line: calls that ring, answer, fail and press keys by configurable ratios.

Every call follows a :class:`CallPlan` fixed by (seed, line name, call id, attempt), so a run is
reproducible whatever the order of the dials, and a redial (the same call id dialled again,
spec §1.11 ``recallCount``) draws a fresh plan. The line name is part of the draw so that a
redial moved to another line with the same seed does not repeat the first attempt.

What a plan does, as events (lines/voice.py; SIP codes as in domain/calls.py, RFC 3261 §21)::

    answered      setup ─▶ RINGING ─ring─▶ ANSWERED ─▶ DTMF? ... PLAYED? ─▶ ENDED 200
    no answer     setup ─▶ RINGING ─────── (until the caller hangs up) ──▶ ENDED 487
    busy          setup ─▶ ENDED 486 (no RINGING: the network answers Busy Here at once)
    unreachable   setup ─▶ ENDED 480 (no RINGING)

An answered callee stays until the caller hangs up (after PLAYED, or at maxDuration), unless
it hangs up first (``early_hangup_ratio``: ENDED 200 with ``by_remote``). Time only passes
through the injected clock, so :class:`simgate.testing.clock.FakeClock` drives every call.

The caller's reaction to an event takes no time on the call's clock: the audio starts at the
latest event the caller has read (the answer), however late the caller gets to ``play``. On
the system clock that gap is the dispatcher's few microseconds; on a fake clock stepped in
seconds it is the step (the clock moved on before the caller's task ran), which no real line
has: a play started at the step's end could let a callee's hang-up due after the audio's end
overtake it, and the call would outlast its audio.

:class:`PlannedCall` is the one call implementation: the named fakes in testing/voice_lines.py
run their scripts through it too, so the sim and the fakes cannot drift apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.domain.calls import (
    SIP_BUSY,
    SIP_CANCELLED,
    SIP_OK,
    SIP_SERVICE_UNAVAILABLE,
    SIP_UNAVAILABLE,
    Audio,
    sip_reason,
)
from simgate.lines import journal_file
from simgate.lines.voice import CallEvent, CallEventKind, CallRequest
from simgate.settings import SimVoiceLineSettings

# A callee that is not 7-15 digits (lines/voice.py CallRequest) cannot be dialled.
SIP_ADDRESS_INCOMPLETE = 484
# Redial counters kept per line; beyond this the oldest call ids are forgotten (a forgotten
# call id starts again at attempt 0: a repeated plan, never an error).
ATTEMPTS_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What one attempt of a call will do; times in milliseconds.

    ``fail_code`` set: ENDED with it ``setup_ms`` after the dial, no RINGING.
    Otherwise RINGING after ``setup_ms``; ``ring_ms`` None = rings until the caller hangs up,
    else ANSWERED ``ring_ms`` after RINGING. After the answer, the key ``dtmf`` (if any) is
    pressed at ``dtmf_ms`` and the callee hangs up at ``hangup_ms`` (if set); a key due at or
    before the callee's hang-up is still reported.
    """

    setup_ms: int
    fail_code: int | None = None
    ring_ms: int | None = None
    dtmf: str = ""
    dtmf_ms: int = 0
    hangup_ms: int | None = None

    def __post_init__(self) -> None:
        times = (self.setup_ms, self.ring_ms or 0, self.dtmf_ms, self.hangup_ms or 0)
        if min(times) < 0:
            raise ValueError(f"negative time in {self}")
        if len(self.dtmf) > 1:
            raise ValueError(f"one DTMF key at most, got {self.dtmf!r}")

    @property
    def outcome(self) -> str:
        """``answered``, ``no answer``, or the failure's SIP reason (``busy``, ...)."""
        if self.fail_code is not None:
            return sip_reason(self.fail_code)
        return "no answer" if self.ring_ms is None else "answered"

    @property
    def answers(self) -> bool:
        return self.fail_code is None and self.ring_ms is not None


class PlannedCall:
    """A :class:`simgate.lines.voice.Call` that acts out a :class:`CallPlan`.

    One driver task per call waits through the plan; ``play`` adds one more task only when the
    audio has a length. Both are cancelled (and awaited by ``hangup``) when the call ends, so
    nothing outlives a call. ``on_end`` is told once, when ENDED is queued.
    """

    def __init__(
        self,
        request: CallRequest,
        plan: CallPlan,
        clock: Clock,
        on_end: Callable[[PlannedCall], None] | None = None,
    ) -> None:
        self.request = request
        self.plan = plan
        self._clock = clock
        self._on_end = on_end
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._driver: asyncio.Task[None] | None = None
        self._player: asyncio.Task[None] | None = None
        self._played = False
        self.answer_ms: int | None = None
        self.ended: CallEvent | None = None
        self._drained = False
        self._read_ms = 0  # the time of the latest event the caller took from events()

    # ---- the Call protocol ------------------------------------------------------------
    async def events(self) -> AsyncIterator[CallEvent]:
        if self._drained:
            return
        while True:
            event = await self._queue.get()
            self._read_ms = event.at_ms
            if event.kind is CallEventKind.ENDED:
                self._drained = True
                yield event
                return
            yield event

    async def play(self, audio: Audio, loops: int) -> None:
        if loops < 1:
            raise ValueError(f"loops must be at least 1, got {loops}")
        if self.ended is not None:
            return  # the callee hung up before the dispatcher saw it: nothing to play to
        if self.answer_ms is None:
            raise RuntimeError(f"call {self.request.call_id}: play before ANSWERED")
        if self._played or self._player is not None:
            raise RuntimeError(f"call {self.request.call_id}: play called twice")
        # From the answer the caller reacts to (module docstring), never before the answer.
        due_ms = max(self._read_ms, self.answer_ms) + loops * audio.duration_ms
        if due_ms <= self._clock.now_ms():
            self._played = True
            self._emit(CallEventKind.PLAYED)
            return
        self._player = asyncio.create_task(
            self._play_until(due_ms), name=f"call-{self.request.call_id}-play"
        )
        await asyncio.sleep(0)  # the player's wait is set before play returns (see start)

    async def hangup(self) -> None:
        if self.ended is not None:
            return
        # BYE after the answer (a normal 200 call), CANCEL before it (487 Request Terminated).
        code = SIP_OK if self.answer_ms is not None else SIP_CANCELLED
        pending = self._finish(code, by_remote=False)
        if pending:
            await asyncio.wait(pending)

    # ---- driving the plan ---------------------------------------------------------------
    async def start(self) -> None:
        """Begin acting out the plan from now (the dial); returns once the first wait is set.

        A failure with no setup time ends the call at once, without a task.
        """
        plan = self.plan
        if plan.fail_code is not None and plan.setup_ms == 0:
            self._finish(plan.fail_code, by_remote=True)
            return
        dial_ms = self._clock.now_ms()
        self._driver = asyncio.create_task(
            self._drive(dial_ms), name=f"call-{self.request.call_id}"
        )
        # Let the driver start its first wait now: a fake clock advanced right after the dial
        # must find it (deadlines are absolute, so a real clock loses nothing either way).
        await asyncio.sleep(0)

    async def _drive(self, dial_ms: int) -> None:
        plan = self.plan
        ring_at = dial_ms + plan.setup_ms
        await self._until(ring_at)
        if plan.fail_code is not None:
            self._finish(plan.fail_code, by_remote=True)
            return
        self._emit(CallEventKind.RINGING)
        if plan.ring_ms is None:
            return  # rings until the caller gives up (maxRingingTime) and hangs up
        await self._until(ring_at + plan.ring_ms)
        answer_ms = self.answer_ms = self._clock.now_ms()
        self._emit(CallEventKind.ANSWERED)
        key_first = plan.hangup_ms is None or plan.dtmf_ms <= plan.hangup_ms
        if plan.dtmf and key_first:
            await self._until(answer_ms + plan.dtmf_ms)
            self._emit(CallEventKind.DTMF, digit=plan.dtmf)
        if plan.hangup_ms is not None:
            await self._until(answer_ms + plan.hangup_ms)
            self._finish(SIP_OK, by_remote=True)

    async def _play_until(self, due_ms: int) -> None:
        await self._until(due_ms)
        self._played = True
        self._emit(CallEventKind.PLAYED)

    async def _until(self, due_ms: int) -> None:
        # Loop rather than trust one sleep: a clock may wake a little early (a fake clock
        # rounds to whole ms), and no event may carry a time before its due time.
        while (left_ms := due_ms - self._clock.now_ms()) > 0:
            await self._clock.sleep(left_ms / 1000)

    def _emit(self, kind: CallEventKind, *, digit: str = "") -> None:
        if self.ended is None:
            self._queue.put_nowait(CallEvent(kind, self._clock.now_ms(), digit=digit))

    def _finish(self, code: int, *, by_remote: bool) -> list[asyncio.Task[None]]:
        """Queue ENDED and cancel the call's tasks; returns those still to be awaited."""
        event = CallEvent(
            CallEventKind.ENDED,
            self._clock.now_ms(),
            sip_code=code,
            reason=sip_reason(code),
            by_remote=by_remote,
        )
        self.ended = event
        self._queue.put_nowait(event)
        current = asyncio.current_task()
        pending: list[asyncio.Task[None]] = []
        for task in (self._driver, self._player):
            if task is not None and task is not current and not task.done():
                task.cancel()
                pending.append(task)
        if self._on_end is not None:
            self._on_end(self)
        return pending

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The call's tasks that have not finished (tests check that none outlive a call)."""
        return tuple(t for t in (self._driver, self._player) if t is not None and not t.done())


def _units(seed: int, line: str, call_id: int, attempt: int) -> list[float]:
    """Eight uniform numbers in [0, 1) fixed by (seed, line, call id, attempt): one hash."""
    digest = hashlib.blake2b(f"{seed}:{line}:{call_id}:{attempt}".encode(), digest_size=64).digest()
    return [int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in range(0, 64, 8)]


def _pick_ms(unit: float, bounds: tuple[float, float]) -> int:
    """A whole number of ms, uniform over [min, max] seconds (both ends included)."""
    lo, hi = round(bounds[0] * 1000), round(bounds[1] * 1000)
    return lo + int(unit * (hi - lo + 1))


def _dialable(callee: str) -> bool:
    return callee.isascii() and callee.isdigit() and 7 <= len(callee) <= 15


class SimVoiceLine:
    """A :class:`simgate.lines.voice.VoiceLine` whose calls follow the settings' ratios.

    A dial beyond ``max_concurrent`` live calls, or before :meth:`start`, ends at once with 503
    (as a SIP trunk over its channel limit); a callee that is not 7-15 digits ends with 484.
    """

    def __init__(self, name: str, cfg: SimVoiceLineSettings, clock: Clock) -> None:
        self.name = name
        self.calls_per_second = cfg.calls_per_second
        self.max_concurrent = cfg.max_concurrent
        self._cfg = cfg
        self._clock = clock
        self._live: set[PlannedCall] = set()
        self._attempts: dict[int, int] = {}  # call id → dials so far (insertion order = age)
        self._running = False
        self.dialled = 0
        self._journal_fd: int | None = None

    def plan(self, call_id: int, attempt: int = 0) -> CallPlan:
        """The plan of ``call_id``'s ``attempt``-th dial on this line (0 = the first)."""
        cfg = self._cfg
        u = _units(cfg.seed, self.name, call_id, attempt)
        setup_ms = _pick_ms(u[1], cfg.setup_seconds)
        answer = cfg.answer_ratio
        busy = answer + cfg.busy_ratio
        unreachable = busy + cfg.unreachable_ratio
        if u[0] >= unreachable:
            return CallPlan(setup_ms)  # rings unanswered
        if u[0] >= busy:
            return CallPlan(setup_ms, fail_code=SIP_UNAVAILABLE)
        if u[0] >= answer:
            return CallPlan(setup_ms, fail_code=SIP_BUSY)
        presses = u[5] < cfg.dtmf_ratio
        keys = cfg.dtmf_keys
        return CallPlan(
            setup_ms,
            ring_ms=_pick_ms(u[2], cfg.ring_seconds),
            dtmf=keys[int(u[7] * len(keys))] if presses else "",
            dtmf_ms=_pick_ms(u[6], cfg.dtmf_seconds) if presses else 0,
            hangup_ms=(
                _pick_ms(u[4], cfg.early_hangup_seconds) if u[3] < cfg.early_hangup_ratio else None
            ),
        )

    def _next_attempt(self, call_id: int) -> int:
        attempt = self._attempts.pop(call_id, 0)
        self._attempts[call_id] = attempt + 1
        if len(self._attempts) > ATTEMPTS_KEPT:
            del self._attempts[next(iter(self._attempts))]
        return attempt

    @property
    def live_calls(self) -> int:
        return len(self._live)

    async def start(self) -> None:
        self._running = True
        if self._cfg.journal and self._journal_fd is None:
            self._journal_fd = journal_file.open_journal(self._cfg.journal)

    async def stop(self) -> None:
        self._running = False
        for call in list(self._live):
            await call.hangup()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    async def dial(self, request: CallRequest) -> PlannedCall:
        self.dialled += 1
        if not self._running or len(self._live) >= self.max_concurrent:
            plan = CallPlan(0, fail_code=SIP_SERVICE_UNAVAILABLE)
        elif not _dialable(request.callee):
            plan = CallPlan(0, fail_code=SIP_ADDRESS_INCOMPLETE)
        else:
            # The dispatcher's attempt number survives restarts; the line's own count covers a
            # caller that does not set it.
            attempt = max(request.attempt, self._next_attempt(request.call_id))
            plan = self.plan(request.call_id, attempt)
            if self._journal_fd is not None:  # the simulated network's memory of every dial
                journal_file.append(self._journal_fd, f"D {request.call_id} {attempt}\n")
        call = PlannedCall(request, plan, self._clock, self._live.discard)
        self._live.add(call)
        await call.start()
        return call
