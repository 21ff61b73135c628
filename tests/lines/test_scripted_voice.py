"""The scripted voice line: each named behaviour does what it says, on the test's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from simgate.domain.calls import Audio
from simgate.lines.voice import Call, CallEvent, CallEventKind, CallRequest, VoiceLine
from simgate.testing.clock import FakeClock
from simgate.testing.voice_lines import Play, ScriptedVoiceLine

R = CallEventKind.RINGING
A = CallEventKind.ANSWERED
D = CallEventKind.DTMF
P = CallEventKind.PLAYED
E = CallEventKind.ENDED

ALICE = "8613800000001"
BOB = "8613800000002"


def req(call_id: int, callee: str = ALICE) -> CallRequest:
    return CallRequest(call_id, callee, "")


class Listener:
    """Reads a call's events as they come; ``seen`` gives (kind, ms since start, detail)."""

    def __init__(self, call: Call, start_ms: int) -> None:
        self.events: list[CallEvent] = []
        self.start_ms = start_ms
        self.task = asyncio.create_task(self._read(call))

    async def _read(self, call: Call) -> None:
        async for event in call.events():
            self.events.append(event)

    @property
    def seen(self) -> list[tuple[CallEventKind, int, str | int]]:
        return [(e.kind, e.at_ms - self.start_ms, e.digit or e.sip_code or 0) for e in self.events]


async def make_line(clock: FakeClock, **kw: int) -> ScriptedVoiceLine:
    line = ScriptedVoiceLine("v", clock=clock, **kw)
    await line.start()
    return line


async def test_answers_with_a_key_then_waits_for_our_hangup() -> None:
    clock = FakeClock()
    start = clock.now_ms()
    line = await make_line(clock)
    line.answers(ALICE, setup_s=1, after_s=2, dtmf="1", dtmf_after_s=3)
    call = await line.dial(req(7))
    heard = Listener(call, start)
    await clock.advance(6)
    await call.play(Audio(b"\0\0" * 8000), loops=2)  # 1 s of audio, twice
    await clock.advance(2)
    await call.hangup()
    await heard.task
    assert heard.seen == [(R, 1000, 0), (A, 3000, 0), (D, 6000, "1"), (P, 8000, 0), (E, 8000, 200)]
    assert not heard.events[-1].by_remote
    assert line.plays == [Play(7, 1000, 2)]
    assert line.hangups == [(7, start + 8000)]
    assert line.dials == [req(7)]


async def test_a_callee_who_hangs_up_ends_200_by_remote() -> None:
    clock = FakeClock()
    start = clock.now_ms()
    line = await make_line(clock)
    line.answers(ALICE, after_s=1, hangs_up_after_s=2, dtmf="#", dtmf_after_s=5)
    heard = Listener(await line.dial(req(1)), start)
    await clock.advance(10)
    await heard.task
    assert heard.seen == [(R, 0, 0), (A, 1000, 0), (E, 3000, 200)]  # the key came too late
    assert heard.events[-1].by_remote
    assert line.hangups == []


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (lambda line: line.busy(ALICE, setup_s=0.5), 486),
        (lambda line: line.unreachable(ALICE, setup_s=0.5), 480),
        (lambda line: line.fails(ALICE, 603, setup_s=0.5), 603),
    ],
)
async def test_failures_end_without_ringing(
    script: Callable[[ScriptedVoiceLine], object], code: int
) -> None:
    clock = FakeClock()
    start = clock.now_ms()
    line = await make_line(clock)
    script(line)
    heard = Listener(await line.dial(req(1)), start)
    await clock.advance(1)
    await heard.task
    assert heard.seen == [(E, 500, code)]
    assert heard.events[-1].by_remote


async def test_rings_forever_until_we_cancel_487() -> None:
    clock = FakeClock()
    start = clock.now_ms()
    line = await make_line(clock)
    line.rings_forever(ALICE)
    call = await line.dial(req(1))
    heard = Listener(call, start)
    await clock.advance(3600)
    assert heard.seen == [(R, 0, 0)]
    await call.hangup()
    await call.hangup()  # idempotent: one ENDED, one recorded hang-up
    await heard.task
    assert heard.seen == [(R, 0, 0), (E, 3_600_000, 487)]
    assert line.hangups == [(1, start + 3_600_000)]


async def test_fails_then_answers_counts_dials_per_callee() -> None:
    clock = FakeClock()
    line = await make_line(clock)
    line.fails_then_answers(ALICE, failures=2, code=480).busy()
    outcomes = []
    for call_id, callee in [(1, ALICE), (9, BOB), (1, ALICE), (1, ALICE), (1, ALICE)]:
        call = await line.dial(req(call_id, callee))
        events = [e async for e in _until_answered_or_ended(call)]
        outcomes.append((callee, events[-1].kind, events[-1].sip_code))
        await call.hangup()
    assert outcomes == [
        (ALICE, E, 480),
        (BOB, E, 486),  # the default set by .busy()
        (ALICE, E, 480),
        (ALICE, A, 0),
        (ALICE, A, 0),
    ]
    assert [d.call_id for d in line.dials] == [1, 9, 1, 1, 1]


async def test_fails_then_answers_may_ring_unanswered_first() -> None:
    clock = FakeClock()
    line = await make_line(clock)
    line.fails_then_answers(ALICE, failures=1, code=487, after_s=1)
    first = await line.dial(req(1))
    heard = Listener(first, clock.now_ms())
    await clock.advance(60)
    assert [e.kind for e in heard.events] == [R]
    await first.hangup()
    await heard.task
    assert heard.events[-1].sip_code == 487
    second = Listener(await line.dial(req(1)), clock.now_ms())
    await clock.advance(1)
    assert second.seen == [(R, 0, 0), (A, 1000, 0)]
    await line.stop()


async def test_the_default_answers_at_once_and_can_be_changed() -> None:
    clock = FakeClock()
    line = await make_line(clock)
    first = Listener(await line.dial(req(1, BOB)), clock.now_ms())
    await clock.advance(0)
    assert first.seen == [(R, 0, 0), (A, 0, 0)]
    line.unreachable()
    second = Listener(await line.dial(req(2, BOB)), clock.now_ms())
    await second.task
    assert second.seen == [(E, 0, 480)]
    await line.stop()
    await first.task
    assert first.seen[-1] == (E, 0, 200)


async def test_peak_concurrent_and_the_503_beyond_max_concurrent() -> None:
    clock = FakeClock()
    line = await make_line(clock, max_concurrent=2)
    line.answers(after_s=1)
    a, b = await line.dial(req(1)), await line.dial(req(2))
    assert (line.live_calls, line.peak_concurrent) == (2, 2)
    await a.hangup()
    c = await line.dial(req(3))
    assert (line.live_calls, line.peak_concurrent) == (2, 2)
    over = await line.dial(req(4))
    assert [(e.kind, e.sip_code) for e in [e async for e in over.events()]] == [(E, 503)]
    assert line.peak_concurrent == 3  # the over-dial shows: the dispatcher broke the limit
    for call in (b, c):
        await call.hangup()
    assert line.live_calls == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_stop_hangs_up_everything_and_a_stopped_line_refuses() -> None:
    clock = FakeClock()
    line = await make_line(clock)
    line.answers(ALICE, after_s=1, dtmf="2", dtmf_after_s=30).rings_forever(BOB)
    talking = Listener(await line.dial(req(1, ALICE)), clock.now_ms())
    ringing = Listener(await line.dial(req(2, BOB)), clock.now_ms())
    await clock.advance(2)
    await line.stop()
    await asyncio.gather(talking.task, ringing.task)
    assert talking.seen == [(R, 0, 0), (A, 1000, 0), (E, 2000, 200)]
    assert ringing.seen == [(R, 0, 0), (E, 2000, 487)]
    assert sorted(call_id for call_id, _ in line.hangups) == [1, 2]
    assert asyncio.all_tasks() == {asyncio.current_task()}
    refused = await line.dial(req(3, ALICE))
    assert [pair async for pair in _pairs(refused)] == [(E, 503)]


def test_bad_scripts_are_refused_clearly() -> None:
    line = ScriptedVoiceLine("v", clock=FakeClock())
    with pytest.raises(ValueError, match="dtmf"):
        line.answers(ALICE, dtmf="12")
    with pytest.raises(ValueError, match="dtmf"):
        line.answers(ALICE, dtmf="x")
    with pytest.raises(ValueError, match="after_s"):
        line.answers(ALICE, after_s=-1)
    with pytest.raises(ValueError, match="4xx-6xx"):
        line.fails(ALICE, 200)
    with pytest.raises(ValueError, match="failures"):
        line.fails_then_answers(ALICE, failures=-1)
    with pytest.raises(ValueError, match="max_concurrent"):
        ScriptedVoiceLine("v", clock=FakeClock(), max_concurrent=0)


def test_the_scripted_line_is_a_voice_line() -> None:
    line: VoiceLine = ScriptedVoiceLine("v", clock=FakeClock(), calls_per_second=2)
    assert (line.name, line.calls_per_second, line.max_concurrent) == ("v", 2, 5)


async def _until_answered_or_ended(call: Call) -> AsyncIterator[CallEvent]:
    async for event in call.events():
        yield event
        if event.kind in (A, E):
            return


async def _pairs(call: Call) -> AsyncIterator[tuple[CallEventKind, int]]:
    async for event in call.events():
        yield event.kind, event.sip_code
