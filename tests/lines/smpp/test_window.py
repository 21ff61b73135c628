"""The window stays full when the SMSC answers slower than the line submits (issue 15)."""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import replace

from simgate.lines.base import Outcome
from simgate.testing.smsc import FakeSmsc

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


async def test_a_freed_slot_is_refilled_before_the_submit_that_freed_it_returns() -> None:
    """The answer that frees a slot puts the next waiting submit_sm on the wire in the same
    loop turn (the submit that freed it writes it), not a turn later when the waiting
    submit's own task is scheduled: with answers arriving in batches, each turn lost per
    refill is a window slot left empty (issue 15)."""
    async with FakeSmsc() as smsc, started_line(smsc.port, window=1) as (line, _):
        first = asyncio.create_task(line.submit(request(report=False)))
        first_done_at_second_write: list[bool] = []
        second = replace(
            request(report=False),
            on_write=lambda _id: first_done_at_second_write.append(first.done()),
        )
        results = await asyncio.gather(first, line.submit(second))
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert len(smsc.submits) == 2
    assert first_done_at_second_write == [False]
