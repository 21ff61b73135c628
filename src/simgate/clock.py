"""Time as a dependency.

Everything that needs "now" or needs to wait takes a :class:`Clock`, so tests can inject
:class:`simgate.testing.clock.FakeClock` and nothing in a test ever sleeps for real.
All stored times are UTC epoch milliseconds (spec §7 "Every stored time is UTC").
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, UTC epoch milliseconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait; a fake clock returns when the test advances time."""


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
