"""The system clock's alarm: a deadline as a future, rung by the loop's timer, stoppable."""

from __future__ import annotations

import asyncio

from simgate.clock import SystemClock


async def test_an_alarm_rings_after_its_delay() -> None:
    alarm = SystemClock().alarm(0.01)
    assert not alarm.future.done()
    await asyncio.wait_for(alarm.future, 5)  # generous: the test asserts order, not time
    assert alarm.future.result() is None


async def test_an_alarm_due_now_rings_on_the_next_turn() -> None:
    for seconds in (0.0, -3.0):
        alarm = SystemClock().alarm(seconds)
        assert not alarm.future.done()  # never inside the call that set it
        await asyncio.sleep(0)
        assert alarm.future.done()


async def test_a_cancelled_alarm_stops_its_timer() -> None:
    alarm = SystemClock().alarm(60)
    alarm.cancel()
    assert alarm.future.cancelled()
    assert alarm.handle is not None
    assert alarm.handle.cancelled()  # the loop drops it: no timer left for a minute
    alarm.cancel()  # twice is harmless
