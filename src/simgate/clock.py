"""Time as a dependency.

Everything that needs "now" or needs to wait takes a :class:`Clock`, so tests can inject
:class:`simgate.testing.clock.FakeClock` and nothing in a test ever sleeps for real.
All stored times are UTC epoch milliseconds (spec §7 "Every stored time is UTC").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Alarm:
    """A deadline as a future that completes when it rings; :meth:`cancel` stops it.

    For code that races a wait against a deadline many times a second (a call waits for its
    line's next event or its timer, four times a call): a sleeping task per deadline costs a
    task, its steps and its cancellation; an alarm is one future and one timer handle.
    """

    future: asyncio.Future[None]
    handle: asyncio.TimerHandle | asyncio.Handle | None = None

    def cancel(self) -> None:
        self.future.cancel()
        if self.handle is not None:
            self.handle.cancel()


def ring(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, UTC epoch milliseconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait; a fake clock returns when the test advances time."""

    def alarm(self, seconds: float) -> Alarm:
        """An alarm that rings after ``seconds`` (at once, on the next turn, when <= 0)."""


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def alarm(self, seconds: float) -> Alarm:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if seconds <= 0:  # on the next turn, as the fake clock does (not a timer's turn)
            return Alarm(future, loop.call_soon(ring, future))
        return Alarm(future, loop.call_later(seconds, ring, future))
