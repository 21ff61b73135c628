"""The fake clock: sleepers and alarms wake only when the test advances time, in order."""

from __future__ import annotations

import asyncio

from simgate.testing.clock import FakeClock


async def test_an_alarm_rings_when_time_reaches_it() -> None:
    clock = FakeClock()
    alarm = clock.alarm(5)
    assert clock.sleepers == 1
    await clock.advance(4.999)
    assert not alarm.future.done()
    await clock.advance(0.001)
    assert alarm.future.done()
    assert clock.sleepers == 0


async def test_alarms_and_sleepers_wake_in_time_order() -> None:
    clock = FakeClock()
    woke: list[str] = []
    late = clock.alarm(2)
    late.future.add_done_callback(lambda _: woke.append("alarm@2"))

    async def sleeper() -> None:
        await clock.sleep(1)
        woke.append("sleep@1")

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)  # the sleeper registers
    await clock.advance(3)
    await task
    assert woke == ["sleep@1", "alarm@2"]


async def test_a_cancelled_alarm_never_rings_and_is_no_sleeper() -> None:
    clock = FakeClock()
    alarm = clock.alarm(1)
    alarm.cancel()
    assert clock.sleepers == 0
    await clock.advance(2)  # waking a cancelled future must not raise
    assert alarm.future.cancelled()


async def test_an_alarm_due_now_rings_on_the_next_turn_without_advancing() -> None:
    clock = FakeClock()
    alarm = clock.alarm(0)
    assert not alarm.future.done()
    await asyncio.sleep(0)
    assert alarm.future.done()
