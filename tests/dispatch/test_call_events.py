"""A call's line events as flow events (dispatch/call_events.py), with the deadline on the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from simgate.dispatch.call_events import LineEvents
from simgate.domain import call_flow as flow
from simgate.domain.calls import Audio
from simgate.lines.voice import CallEvent, CallEventKind
from simgate.testing.clock import FakeClock


class Session:
    """A call whose events the test puts in by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[CallEvent | None] = asyncio.Queue()

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def play(self, audio: Audio, loops: int) -> None:
        pass

    async def hangup(self) -> None:
        pass


async def test_each_kind_of_line_event_becomes_its_flow_event() -> None:
    clock = FakeClock()
    session = Session()
    events = LineEvents(session, clock)
    until = clock.now_ms() + 1000
    for line_event, expected in [
        (CallEvent(CallEventKind.RINGING, 5), flow.Ringing(5)),
        (CallEvent(CallEventKind.ANSWERED, 6), flow.Answered(6)),
        (CallEvent(CallEventKind.DTMF, 7, digit="#"), flow.Dtmf(7, "#")),
        (CallEvent(CallEventKind.PLAYED, 8), flow.Played(8)),
        (
            CallEvent(CallEventKind.ENDED, 9, sip_code=486, reason="busy"),
            flow.Ended(9, 486, "busy"),
        ),
    ]:
        session.queue.put_nowait(line_event)
        assert await events.next(until_ms=until) == expected


async def test_the_deadline_comes_first_and_the_event_stays_pending() -> None:
    clock = FakeClock()
    session = Session()
    events = LineEvents(session, clock)
    waiting = asyncio.ensure_future(events.next(until_ms=clock.now_ms() + 2000))
    await clock.advance(1.999)
    assert not waiting.done()
    await clock.advance(0.001)
    assert await waiting == flow.Deadline()
    session.queue.put_nowait(CallEvent(CallEventKind.ENDED, 1, sip_code=200))
    assert await events.next(until_ms=0) == flow.Ended(1, 200)  # an event already there wins
    events.close()


async def test_events_that_stop_without_ended_count_as_an_unavailable_line() -> None:
    session = Session()
    events = LineEvents(session, FakeClock())
    session.queue.put_nowait(None)
    assert await events.next(until_ms=10**15) == flow.Ended(0, 503, "")
