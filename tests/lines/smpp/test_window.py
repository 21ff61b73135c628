"""The window stays full when the SMSC answers slower than the line submits (issue 15)."""

from __future__ import annotations

import asyncio
import statistics

from simgate.lines.base import Outcome

from .slow_smsc import SlowSmsc
from .support import request, started_line

WINDOW = 16
COUNT = 6 * WINDOW


async def _held_at_answers(*, nagle: bool) -> list[int]:
    async with (
        SlowSmsc(gap=0.005, nagle=nagle) as smsc,
        started_line(smsc.port, window=WINDOW, response_timeout=5.0) as (line, _),
    ):
        results = await asyncio.gather(*(line.submit(request()) for _ in range(COUNT)))
        assert [r.outcome for r in results] == [Outcome.OK] * COUNT
        assert smsc.answered == COUNT
    # Until the last WINDOW submits are out, every answer finds a full window held.
    return smsc.held_at_answer[: COUNT - WINDOW]


async def test_a_slow_smsc_holds_a_full_window_at_every_answer() -> None:
    held = await _held_at_answers(nagle=False)
    assert max(held) == WINDOW  # never more than the window
    assert statistics.median(held) == WINDOW


async def test_an_smsc_with_nagle_on_still_holds_a_full_window() -> None:
    held = await _held_at_answers(nagle=True)
    assert statistics.median(held) == WINDOW
