"""PortStateKeeper (lines/modem/keeper.py): changes handed on at once, signal-only changes
at most every interval, a failed save retried with the next change, the final state on stop."""

from __future__ import annotations

import asyncio
import dataclasses

from simgate.lines.base import PortInfo
from simgate.lines.modem.keeper import PortStateKeeper
from simgate.testing.clock import FakeClock

PORT = PortInfo(
    index=0,
    name="gsm-1.1",
    imsi="1",
    iccid="2",
    number="3",
    signal=20,
    registered=True,
    reg="REGISTER_OK",
)


class Saved:
    def __init__(self) -> None:
        self.rows: list[tuple[str, PortInfo, int]] = []
        self.fail = False

    async def __call__(self, line: str, info: PortInfo, blocked_until_ms: int) -> None:
        if self.fail:
            raise OSError("database away")
        self.rows.append((line, info, blocked_until_ms))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def keeper_with(saved: Saved, clock: FakeClock) -> PortStateKeeper:
    keeper = PortStateKeeper(line="gsm", clock=clock, signal_every_ms=60_000)
    keeper.keep_with(saved)
    keeper.start()
    return keeper


async def test_a_change_is_saved_and_the_same_state_is_not_saved_again() -> None:
    saved, clock = Saved(), FakeClock()
    keeper = await keeper_with(saved, clock)
    keeper.changed(PORT, blocked_until_ms=0)
    await settle()
    keeper.changed(PORT, blocked_until_ms=0)
    keeper.changed(dataclasses.replace(PORT, reg="NO_SIM", registered=False), blocked_until_ms=0)
    await settle()
    assert [(r[1].reg, r[2]) for r in saved.rows] == [("REGISTER_OK", 0), ("NO_SIM", 0)]
    await keeper.stop()


async def test_signal_alone_is_saved_at_most_every_interval() -> None:
    saved, clock = Saved(), FakeClock()
    keeper = await keeper_with(saved, clock)
    keeper.changed(PORT, blocked_until_ms=0)
    await settle()
    keeper.changed(dataclasses.replace(PORT, signal=21), blocked_until_ms=0)
    await settle()
    assert [r[1].signal for r in saved.rows] == [20]  # held back
    await clock.advance(61)
    keeper.changed(dataclasses.replace(PORT, signal=21), blocked_until_ms=0)  # the line's tick
    await settle()
    assert [r[1].signal for r in saved.rows] == [20, 21]
    keeper.changed(dataclasses.replace(PORT, signal=22), blocked_until_ms=5)  # blocked too: now
    await settle()
    assert [(r[1].signal, r[2]) for r in saved.rows][-1] == (22, 5)
    await keeper.stop()


async def test_a_failed_save_is_tried_again_with_the_next_call() -> None:
    saved, clock = Saved(), FakeClock()
    keeper = await keeper_with(saved, clock)
    saved.fail = True
    keeper.changed(PORT, blocked_until_ms=0)
    await settle()
    saved.fail = False
    keeper.changed(PORT, blocked_until_ms=0)  # the same state: not saved yet, so saved now
    await settle()
    assert len(saved.rows) == 1
    await keeper.stop()


async def test_stop_saves_the_final_state() -> None:
    saved, clock = Saved(), FakeClock()
    keeper = await keeper_with(saved, clock)
    off = dataclasses.replace(PORT, reg="POWER_OFF", registered=False, signal=0)
    await keeper.stop([off])
    assert [r[1].reg for r in saved.rows] == ["POWER_OFF"]


async def test_nothing_is_kept_without_a_keeper() -> None:
    keeper = PortStateKeeper(line="gsm", clock=FakeClock(), signal_every_ms=0)
    keeper.start()
    keeper.changed(PORT, blocked_until_ms=0)
    await keeper.stop([PORT])  # no error, nowhere to save
