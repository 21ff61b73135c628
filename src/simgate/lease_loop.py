"""One worker loop for every lease queue: run a cycle, idle when it found nothing, stop cleanly.

The message dispatcher, the call dispatcher, the push sender and the reaper differ only in
what one cycle does (lease and hand out work, or reap) and in how long they idle; the loop
around it is this one. The idle wait is on the clock it is given (a test's FakeClock moves it,
or the system clock for a loop that polls what other processes write) and ends early on
:meth:`LeaseLoop.wake` (room freed, results recorded) or on :meth:`stop`.
A cycle that raises is logged and counts as idle, so a database in trouble is retried at the
idle pace instead of in a hot loop; :meth:`stop` lets the cycle in flight finish, so what it
leased is handed out and recorded before the owner winds down.

A base module (it needs only the clock), so that both dispatch/ and push/ may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from simgate.clock import Clock

log = logging.getLogger(__name__)

# One cycle: True when it did a full share of work and should run again at once.
Cycle = Callable[[], Awaitable[bool]]


class LeaseLoop:
    """``name`` names the task and the log line of a failed cycle ("<name> cycle failed")."""

    def __init__(
        self,
        name: str,
        *,
        cycle: Cycle,
        clock: Clock,
        idle_seconds: float,
        wakes_during_cycle: bool = True,
    ) -> None:
        """``wakes_during_cycle=False``: a wake-up that comes while a cycle runs is dropped
        when that cycle finds nothing, so the loop idles until the next one (or the poll)."""
        self.name = name
        self._keep_wakes = wakes_during_cycle
        self._cycle = cycle
        self._clock = clock
        self._idle_s = idle_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Run no further cycle; wait for the one in flight."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Cut the idle wait short (or skip the next one): there may be work now."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            if self._keep_wakes:  # cleared before the cycle: a wake-up while it runs counts
                self._wake.clear()
            try:
                busy = await self._cycle()
            except Exception:
                log.exception("%s cycle failed", self.name)
                busy = False
            if not busy and not self._stopping:
                if not self._keep_wakes:
                    self._wake.clear()
                await self._idle()

    async def _idle(self) -> None:
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(self._idle_s))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waker):
                t.cancel()
