"""The simulated voice line: ratios, determinism, event order and timing on a fake clock."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from simgate.domain.calls import Audio
from simgate.lines.sim_voice import PlannedCall, SimVoiceLine
from simgate.lines.voice import Call, CallEvent, CallEventKind, CallRequest, VoiceLine
from simgate.settings import SimVoiceLineSettings
from simgate.testing.clock import FakeClock

R = CallEventKind.RINGING
A = CallEventKind.ANSWERED
D = CallEventKind.DTMF
P = CallEventKind.PLAYED
E = CallEventKind.ENDED

BASE_ID = 2601010000000000000


def req(i: int, callee: str = "8613800138000") -> CallRequest:
    return CallRequest(BASE_ID + i, callee, "")


def audio(ms: int) -> Audio:
    return Audio(b"\0\0" * (Audio.RATE * ms // 1000))  # 16-bit mono samples


async def started(clock: FakeClock, name: str = "sim-voice", **cfg: Any) -> SimVoiceLine:
    line = SimVoiceLine(name, SimVoiceLineSettings.model_validate(cfg), clock)
    await line.start()
    return line


async def collect(call: Call) -> list[CallEvent]:
    return [event async for event in call.events()]


class Listener:
    """Reads a call's events as they come, so a test can look between clock steps."""

    def __init__(self, call: Call) -> None:
        self.events: list[CallEvent] = []
        self.task = asyncio.create_task(self._read(call))

    async def _read(self, call: Call) -> None:
        async for event in call.events():
            self.events.append(event)

    @property
    def kinds(self) -> list[CallEventKind]:
        return [e.kind for e in self.events]


@dataclass
class Placed:
    request: CallRequest
    dial_ms: int
    events: list[CallEvent]

    @property
    def kinds(self) -> list[CallEventKind]:
        return [e.kind for e in self.events]

    def at(self, kind: CallEventKind) -> int:
        """ms from the dial to the first event of ``kind``."""
        return next(e.at_ms for e in self.events if e.kind is kind) - self.dial_ms

    @property
    def ended(self) -> CallEvent:
        assert self.events[-1].kind is E
        return self.events[-1]

    def shape(self) -> list[tuple[CallEventKind, int, str, int, bool]]:
        return [
            (e.kind, e.at_ms - self.dial_ms, e.digit, e.sip_code, e.by_remote) for e in self.events
        ]


async def run_many(
    n: int, *, order: list[int] | None = None, wait_s: float = 20, **cfg: Any
) -> dict[int, Placed]:
    """Dial ``n`` calls at one instant, let ``wait_s`` pass, stop the line (hanging up the rest)."""
    clock = FakeClock()
    cfg.setdefault("max_concurrent", 10_000)
    line = await started(clock, **cfg)
    placed: dict[int, tuple[CallRequest, asyncio.Task[list[CallEvent]]]] = {}
    for i in order if order is not None else range(n):
        call = await line.dial(req(i))
        placed[i] = (call.request, asyncio.create_task(collect(call)))
    await clock.advance(wait_s)
    await line.stop()
    start = FakeClock().now_ms()
    return {i: Placed(r, start, await task) for i, (r, task) in placed.items()}


def classify(p: Placed) -> str:
    if A in p.kinds:
        return "answered"
    if R in p.kinds:
        assert p.ended.sip_code == 487, p.events
        return "no answer"
    return {486: "busy", 480: "unreachable"}[p.ended.sip_code]


RATIOS: dict[str, Any] = {
    "answer_ratio": 0.5,
    "busy_ratio": 0.2,
    "unreachable_ratio": 0.1,
    "early_hangup_ratio": 0.2,
    "dtmf_ratio": 0.3,
    "dtmf_seconds": (1.0, 1.0),  # before any early hang-up, so every chosen key is heard
    "early_hangup_seconds": (2.0, 5.0),
}


async def test_outcomes_follow_the_ratios() -> None:
    n = 2000
    placed = await run_many(n, **RATIOS)
    counts = Counter(classify(p) for p in placed.values())
    expected = {"answered": 0.5, "busy": 0.2, "unreachable": 0.1, "no answer": 0.2}
    for outcome, share in expected.items():
        assert abs(counts[outcome] - share * n) < 0.05 * n, (outcome, counts)
    answered = [p for p in placed.values() if A in p.kinds]
    keys = sum(1 for p in answered if D in p.kinds)
    early = sum(1 for p in answered if p.ended.by_remote)
    assert abs(keys - 0.3 * len(answered)) < 0.05 * len(answered), keys
    assert abs(early - 0.2 * len(answered)) < 0.05 * len(answered), early


async def test_events_come_in_order_with_times_inside_the_configured_ranges() -> None:
    cfg: dict[str, Any] = {**RATIOS, "dtmf_seconds": (0.5, 3.0), "early_hangup_seconds": (1.0, 2.0)}
    placed = await run_many(600, **cfg)
    allowed = {
        ("busy", (E,)),
        ("unreachable", (E,)),
        ("no answer", (R, E)),
        ("answered", (R, A, E)),
        ("answered", (R, A, D, E)),
    }
    seen = set()
    for p in placed.values():
        shape = (classify(p), tuple(p.kinds))
        assert shape in allowed, p.events
        seen.add(shape)
        times = [e.at_ms for e in p.events]
        assert times == sorted(times)
        assert times[0] >= p.dial_ms
        first = p.at(R) if R in p.kinds else p.at(E)
        assert 200 <= first <= 1000  # setup_seconds (0.2, 1.0)
        if A in p.kinds:
            assert 2000 <= p.at(A) - p.at(R) <= 8000  # ring_seconds
            assert p.ended.sip_code == 200
            if p.ended.by_remote:
                assert 1000 <= p.at(E) - p.at(A) <= 2000  # early_hangup_seconds
            else:
                assert p.at(E) == 20_000  # still up when the line stopped
        if D in p.kinds:
            key = next(e for e in p.events if e.kind is D)
            assert key.digit in "0123456789"
            assert 500 <= p.at(D) - p.at(A) <= 3000
        if E in p.kinds and A not in p.kinds and R not in p.kinds:
            assert p.ended.by_remote
    assert seen == allowed  # every kind of call happened, so each check above ran


async def test_outcomes_are_a_function_of_seed_and_call_id_not_order() -> None:
    ids = list(range(300))
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    first = await run_many(300, **RATIOS)
    second = await run_many(300, order=shuffled, **RATIOS)
    assert {i: p.shape() for i, p in first.items()} == {i: p.shape() for i, p in second.items()}
    other = await run_many(300, seed=2, **RATIOS)
    differ = sum(1 for i in ids if first[i].shape() != other[i].shape())
    assert differ > 150  # times are drawn per call, so nearly every call differs


async def test_a_redial_draws_a_new_outcome() -> None:
    clock = FakeClock()
    line = await started(clock, answer_ratio=0.5, busy_ratio=0.5, setup_seconds=(0, 0))
    changed = 0
    for i in range(200):
        outcomes = []
        for attempt in range(2):
            call = await line.dial(req(i))
            assert isinstance(call, PlannedCall)
            assert call.plan == line.plan(BASE_ID + i, attempt)
            outcomes.append(call.plan.outcome)
            await call.hangup()
        changed += outcomes[0] != outcomes[1]
    assert 60 < changed < 140  # independent draws at 0.5 / 0.5 differ half the time
    # Another line with the same seed does not repeat this line's first attempts.
    twin = SimVoiceLine(
        "sim-voice-2", SimVoiceLineSettings(answer_ratio=0.5, busy_ratio=0.5), clock
    )
    same = sum(line.plan(BASE_ID + i).outcome == twin.plan(BASE_ID + i).outcome for i in range(200))
    assert same < 140


async def answered_call(clock: FakeClock, **cfg: Any) -> tuple[PlannedCall, Listener]:
    """A call answered just now: RINGING after 1 s, ANSWERED 3 s later."""
    base: dict[str, Any] = {
        "answer_ratio": 1.0,
        "busy_ratio": 0.0,
        "setup_seconds": (1, 1),
        "ring_seconds": (3, 3),
        "early_hangup_ratio": 0.0,
        "dtmf_ratio": 0.0,
    }
    line = await started(clock, **{**base, **cfg})
    call = await line.dial(req(1))
    assert isinstance(call, PlannedCall)
    listener = Listener(call)
    await clock.advance(4)
    assert listener.kinds == [R, A]
    assert listener.events[-1].at_ms == clock.now_ms()
    return call, listener


async def test_played_comes_after_loops_times_the_audio_and_our_hangup_ends_200() -> None:
    clock = FakeClock()
    call, listener = await answered_call(clock)
    answer_ms = clock.now_ms()
    await call.play(audio(1500), loops=3)
    await clock.advance(4.499)
    assert listener.kinds == [R, A]
    await clock.advance(0.001)
    assert listener.kinds == [R, A, P]
    assert listener.events[-1].at_ms == answer_ms + 4500
    await clock.advance(60)  # the callee stays on the line until we hang up
    assert listener.kinds == [R, A, P]
    await call.hangup()
    await listener.task
    ended = listener.events[-1]
    assert (ended.kind, ended.sip_code, ended.by_remote, ended.reason) == (E, 200, False, "success")
    assert ended.at_ms == answer_ms + 64_500
    assert call.tasks == ()


async def test_played_waits_for_every_millisecond_of_the_audio() -> None:
    clock = FakeClock()
    call, listener = await answered_call(clock)
    answer_ms = clock.now_ms()
    await call.play(audio(1001), loops=2)  # 2002 ms: not a whole number of seconds
    await clock.advance(2.001)
    assert listener.kinds == [R, A]
    await clock.advance(0.001)
    assert listener.kinds == [R, A, P]
    assert listener.events[-1].at_ms == answer_ms + 2002
    await call.hangup()


async def test_a_late_play_starts_at_the_answer_it_reacts_to() -> None:
    """The caller's task ran only after the clock stepped on (a fake clock's whole-second
    step): the audio still ends 2 s after the answer, before the callee's hang-up at 3 s, as
    on a real line where the caller plays within microseconds (the earliest end wins)."""
    clock = FakeClock()
    call, listener = await answered_call(clock, early_hangup_ratio=1.0, early_hangup_seconds=(3, 3))
    answer_ms = clock.now_ms()
    await clock.advance(1.5)  # the caller has read ANSWERED but not yet acted on it
    await call.play(audio(2000), loops=1)
    await clock.advance(0.499)
    assert listener.kinds == [R, A]
    await clock.advance(0.001)
    assert listener.kinds == [R, A, P]
    assert listener.events[-1].at_ms == answer_ms + 2000
    await clock.advance(1)  # this test does not hang up: the callee does, after the audio
    await listener.task
    assert listener.kinds == [R, A, P, E]
    assert listener.events[-1].at_ms == answer_ms + 3000


async def test_a_play_later_than_its_audio_is_played_at_once() -> None:
    clock = FakeClock()
    call, listener = await answered_call(clock, early_hangup_ratio=1.0, early_hangup_seconds=(3, 3))
    answer_ms = clock.now_ms()
    await clock.advance(2.5)
    await call.play(audio(2000), loops=1)
    await clock.advance(0)  # the listener's turn
    assert listener.kinds == [R, A, P]  # never after a later callee event
    assert listener.events[-1].at_ms == answer_ms + 2500  # no event before the time it is sent
    await call.hangup()
    await listener.task
    assert listener.kinds == [R, A, P, E]


async def test_hangup_before_the_answer_ends_487_and_is_idempotent() -> None:
    clock = FakeClock()
    start = clock.now_ms()
    line = await started(clock, answer_ratio=1.0, busy_ratio=0.0, setup_seconds=(1, 1))
    in_setup, ringing = await line.dial(req(1)), await line.dial(req(2))
    tasks = [asyncio.create_task(collect(c)) for c in (in_setup, ringing)]
    await clock.advance(0.5)
    await in_setup.hangup()
    await clock.advance(1)
    await ringing.hangup()
    await ringing.hangup()
    await clock.advance(30)
    first, second = [await t for t in tasks]
    assert [(e.kind, e.at_ms - start, e.sip_code, e.by_remote) for e in first] == [
        (E, 500, 487, False)
    ]
    assert [(e.kind, e.at_ms - start, e.sip_code) for e in second] == [(R, 1000, 0), (E, 1500, 487)]
    assert await collect(ringing) == []  # events() stays ended
    assert line.live_calls == 0


async def test_the_callee_may_hang_up_early_and_a_late_play_is_ignored() -> None:
    clock = FakeClock()
    call, listener = await answered_call(clock, early_hangup_ratio=1.0, early_hangup_seconds=(2, 2))
    answer_ms = clock.now_ms()
    await call.play(audio(5000), loops=1)
    await clock.advance(2)
    await listener.task
    assert listener.kinds == [R, A, E]
    ended = listener.events[-1]
    assert (ended.at_ms, ended.sip_code, ended.by_remote) == (answer_ms + 2000, 200, True)
    assert call.tasks == ()  # the pending play was cancelled with the call
    await call.play(audio(5000), loops=1)  # the dispatcher had not seen ENDED yet: no error
    await call.hangup()  # nor here
    await clock.advance(10)
    assert listener.kinds == [R, A, E]
    assert call.tasks == ()


async def test_dtmf_is_pressed_only_on_answered_calls_and_not_after_hanging_up() -> None:
    placed = await run_many(
        400, answer_ratio=0.5, busy_ratio=0.2, dtmf_ratio=1.0, dtmf_keys="*#7", early_hangup_ratio=0
    )
    for p in placed.values():
        assert (D in p.kinds) == (A in p.kinds), p.events
    digits = {e.digit for p in placed.values() for e in p.events if e.kind is D}
    assert digits == {"*", "#", "7"}
    # A key due after the callee hung up is never reported.
    hung = await run_many(
        100,
        answer_ratio=1.0,
        busy_ratio=0.0,
        dtmf_ratio=1.0,
        dtmf_seconds=(3, 4),
        early_hangup_ratio=1.0,
        early_hangup_seconds=(1, 2),
    )
    assert all(p.kinds == [R, A, E] and p.ended.by_remote for p in hung.values())


async def test_stop_ends_every_live_call_and_later_dials_fail_503() -> None:
    clock = FakeClock()
    line = await started(
        clock,
        answer_ratio=1.0,
        busy_ratio=0.0,
        setup_seconds=(1, 1),
        ring_seconds=(2, 2),
        early_hangup_ratio=0,
        dtmf_ratio=0,
    )
    talking = await line.dial(req(1))  # ringing at 1 s, answered at 3 s
    await clock.advance(1.5)
    ringing = await line.dial(req(2))  # ringing at 2.5 s
    await clock.advance(2)
    in_setup = await line.dial(req(3))
    listeners = [Listener(c) for c in (talking, ringing, in_setup)]
    await clock.advance(0)
    await talking.play(audio(10_000), 1)
    assert line.live_calls == 3
    await line.stop()
    for listener in listeners:
        await listener.task
    assert [listener.kinds for listener in listeners] == [[R, A, E], [R, E], [E]]
    ends = [(li.events[-1].sip_code, li.events[-1].by_remote) for li in listeners]
    assert ends == [(200, False), (487, False), (487, False)]
    assert line.live_calls == 0
    late = await line.dial(req(4))
    assert [(e.kind, e.sip_code) for e in await collect(late)] == [(E, 503)]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_no_task_outlives_its_call() -> None:
    await run_many(300, **RATIOS)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_over_max_concurrent_or_a_bad_callee_ends_at_once() -> None:
    clock = FakeClock()
    line = await started(clock, max_concurrent=2, answer_ratio=1.0, busy_ratio=0.0)
    first, second = await line.dial(req(1)), await line.dial(req(2))
    third = await line.dial(req(3))
    assert [(e.kind, e.sip_code, e.at_ms) for e in await collect(third)] == [
        (E, 503, clock.now_ms())
    ]
    await first.hangup()
    bad = await line.dial(req(4, callee="12ab"))
    assert [(e.kind, e.sip_code) for e in await collect(bad)] == [(E, 484)]
    await second.hangup()
    not_started = SimVoiceLine("cold", SimVoiceLineSettings(), clock)
    cold = await not_started.dial(req(5))
    assert [(e.kind, e.sip_code) for e in await collect(cold)] == [(E, 503)]


async def test_play_misuse_is_a_clear_error() -> None:
    clock = FakeClock()
    line = await started(clock, answer_ratio=1.0, busy_ratio=0.0, setup_seconds=(1, 1))
    call = await line.dial(req(1))
    with pytest.raises(RuntimeError, match="before ANSWERED"):
        await call.play(audio(100), 1)
    await clock.advance(10)
    with pytest.raises(ValueError, match="loops"):
        await call.play(audio(100), 0)
    await call.play(audio(100), 1)
    with pytest.raises(RuntimeError, match="twice"):
        await call.play(audio(100), 1)
    await line.stop()


async def test_zero_times_need_no_clock_at_all() -> None:
    """Benchmark mode: with every time at zero a call runs through without any sleeper."""
    clock = FakeClock()
    zero = (0.0, 0.0)
    line = await started(
        clock,
        answer_ratio=1.0,
        busy_ratio=0.0,
        setup_seconds=zero,
        ring_seconds=zero,
        early_hangup_ratio=0,
        dtmf_ratio=0,
    )
    call = await line.dial(req(1))
    events = call.events()
    assert [(await anext(events)).kind, (await anext(events)).kind] == [R, A]
    await call.play(Audio(b""), 1)
    assert (await anext(events)).kind is P
    await call.hangup()
    assert (await anext(events)).kind is E
    assert [e async for e in events] == []
    assert clock.sleepers == 0
    assert clock.now_ms() == FakeClock().now_ms()


def test_sim_line_and_call_satisfy_the_voice_protocols() -> None:
    line: VoiceLine = SimVoiceLine("s", SimVoiceLineSettings(), FakeClock())
    assert line.calls_per_second == 10.0
    assert line.max_concurrent == 30


@pytest.mark.parametrize("bad", [(0, math.inf), (2, 1), (-1, 1)])
def test_time_ranges_must_be_finite_and_ordered(bad: tuple[float, float]) -> None:
    with pytest.raises(ValidationError, match="setup_seconds"):
        SimVoiceLineSettings(setup_seconds=bad)


async def test_journal_records_every_dial_with_its_attempt(clock: FakeClock, tmp_path: Any) -> None:
    path = tmp_path / "dials.journal"
    line = await started(
        clock, journal=str(path), busy_ratio=1.0, answer_ratio=0.0, setup_seconds=(0, 0)
    )
    for request in (req(1), req(2), CallRequest(BASE_ID + 1, "8613800138000", "", attempt=3)):
        call = await line.dial(request)
        await collect(call)
    await line.stop()
    assert path.read_text(encoding="ascii").splitlines() == [
        f"D {BASE_ID + 1} 0",
        f"D {BASE_ID + 2} 0",
        f"D {BASE_ID + 1} 3",  # the dispatcher's attempt number wins over the line's count
    ]


async def test_a_dial_a_kill_cut_is_ended_not_glued_to_the_next_one(
    clock: FakeClock, tmp_path: Any
) -> None:
    path = tmp_path / "dials.journal"
    path.write_text(f"D {BASE_ID + 1} 0\nD {BASE_ID + 2}", encoding="ascii")  # cut by a kill
    line = await started(
        clock, journal=str(path), busy_ratio=1.0, answer_ratio=0.0, setup_seconds=(0, 0)
    )
    await collect(await line.dial(req(3)))
    await line.stop()
    assert path.read_text(encoding="ascii").splitlines() == [
        f"D {BASE_ID + 1} 0",
        f"D {BASE_ID + 2}~",
        f"D {BASE_ID + 3} 0",
    ]
