"""A clock that only moves when the test says so; ``sleep`` waits for :meth:`advance`."""

from __future__ import annotations

import asyncio
import heapq
import itertools

from simgate.clock import Alarm, ring


class FakeClock:
    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ms
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + round(seconds * 1000), next(self._seq), fut))
        await fut

    def alarm(self, seconds: float) -> Alarm:
        """Rings when :meth:`advance` reaches it (on the next turn when ``seconds`` <= 0)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if seconds <= 0:
            return Alarm(fut, loop.call_soon(ring, fut))
        heapq.heappush(self._sleepers, (self._now + round(seconds * 1000), next(self._seq), fut))
        return Alarm(fut)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper that falls due on the way, in order."""
        target = self._now + round(seconds * 1000)
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, due)
            if not fut.done():
                fut.set_result(None)
            # let the woken task run before waking the next one
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)

    def set(self, now_ms: int) -> None:
        self._now = now_ms

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())
