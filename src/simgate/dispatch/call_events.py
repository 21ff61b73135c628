"""A call on a voice line as its :class:`simgate.domain.call_flow.CallFlow` sees it: the line's
events turned into flow events, waited for until the flow's deadline on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from simgate.clock import Alarm, Clock
from simgate.domain import call_flow as flow
from simgate.domain.calls import SIP_SERVICE_UNAVAILABLE
from simgate.lines.voice import Call, CallEvent, CallEventKind


class LineEvents:
    def __init__(self, session: Call, clock: Clock) -> None:
        self._events = session.events()
        self._clock = clock
        self._pending: asyncio.Future[CallEvent] | None = None
        # The flow's deadline and its alarm, kept from one event to the next while the flow
        # asks for the same deadline (ringing: the same maxRingingTime for every event).
        self._alarm: Alarm | None = None
        self._alarm_ms = 0

    async def next(self, *, until_ms: int) -> flow.FlowEvent:
        """The line's next event, or :class:`~simgate.domain.call_flow.Deadline` when
        ``until_ms`` comes first (the event then stays pending for the next call)."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(_anext(self._events))
        pending = self._pending
        if not pending.done():
            alarm = self._alarm_for(until_ms)
            await _either(pending, alarm.future)
            if not pending.done():
                self._drop_alarm()
                return flow.Deadline()
        self._pending = None
        return _flow_event(_event_or_end(pending))

    def _alarm_for(self, until_ms: int) -> Alarm:
        alarm = self._alarm
        if alarm is None or self._alarm_ms != until_ms:
            self._drop_alarm()
            left_s = max(0, until_ms - self._clock.now_ms()) / 1000
            alarm = self._alarm = self._clock.alarm(left_s)
            self._alarm_ms = until_ms
        return alarm

    def _drop_alarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def close(self) -> None:
        """Stop waiting for the line (the flow has ended)."""
        self._drop_alarm()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


async def _either(a: asyncio.Future[Any], b: asyncio.Future[Any]) -> None:
    """Return once ``a`` or ``b`` is done (what asyncio.wait does for two futures, without
    its sets and per-call task bookkeeping: this runs for every event of every call)."""
    if a.done() or b.done():
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(_: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    a.add_done_callback(wake)
    b.add_done_callback(wake)
    try:
        await waiter
    finally:
        a.remove_done_callback(wake)
        b.remove_done_callback(wake)


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
