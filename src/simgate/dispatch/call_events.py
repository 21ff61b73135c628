"""A call on a voice line as its :class:`simgate.domain.call_flow.CallFlow` sees it: the line's
events turned into flow events, waited for until the flow's deadline on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from simgate.clock import Clock
from simgate.domain import call_flow as flow
from simgate.domain.calls import SIP_SERVICE_UNAVAILABLE
from simgate.lines.voice import Call, CallEvent, CallEventKind


class LineEvents:
    def __init__(self, session: Call, clock: Clock) -> None:
        self._events = session.events()
        self._clock = clock
        self._pending: asyncio.Future[CallEvent] | None = None

    async def next(self, *, until_ms: int) -> flow.FlowEvent:
        """The line's next event, or :class:`~simgate.domain.call_flow.Deadline` when
        ``until_ms`` comes first (the event then stays pending for the next call)."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(_anext(self._events))
        pending = self._pending
        if not pending.done():
            timer = asyncio.ensure_future(self._sleep_until(until_ms))
            try:
                waiters: set[asyncio.Future[Any]] = {pending, timer}
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
            if pending not in done:
                return flow.Deadline()
        self._pending = None
        return _flow_event(_event_or_end(pending))

    async def _sleep_until(self, until_ms: int) -> None:
        # What is left is read when the timer starts, not when it was asked for: the clock
        # may have moved in between (a fake clock in big steps), and a deadline must not slip.
        await self._clock.sleep(max(0, until_ms - self._clock.now_ms()) / 1000)

    def close(self) -> None:
        """Stop waiting for the line (the flow has ended)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


async def _anext(events: AsyncIterator[CallEvent]) -> CallEvent:
    return await anext(events)


def _event_or_end(fut: asyncio.Future[CallEvent]) -> CallEvent:
    """A finished iterator without ENDED (a driver bug) counts as an unavailable line."""
    try:
        return fut.result()
    except StopAsyncIteration:
        return CallEvent(CallEventKind.ENDED, 0, sip_code=SIP_SERVICE_UNAVAILABLE, reason="")


def _flow_event(event: CallEvent) -> flow.FlowEvent:
    kind, at = event.kind, event.at_ms
    if kind is CallEventKind.RINGING:
        return flow.Ringing(at)
    if kind is CallEventKind.ANSWERED:
        return flow.Answered(at)
    if kind is CallEventKind.DTMF:
        return flow.Dtmf(at, event.digit)
    if kind is CallEventKind.PLAYED:
        return flow.Played(at)
    return flow.Ended(at, event.sip_code, event.reason)
