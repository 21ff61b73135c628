"""The shared worker loop (lease_loop.py) on a FakeClock: cycles, idling, wake-ups, stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from simgate.lease_loop import PUSHES, QUEUE, LeaseLoop, Wakeup
from simgate.testing.clock import FakeClock


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Script:
    """A cycle that answers "busy" from a list (then idle), counting its runs."""

    def __init__(self, *busy: bool, fail_at: frozenset[int] = frozenset()) -> None:
        self.busy = list(busy)
        self.fail_at = fail_at
        self.runs = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bool:
        self.runs += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.runs in self.fail_at:
            raise RuntimeError("database in trouble")
        return self.busy.pop(0) if self.busy else False


async def test_runs_at_once_repeats_while_busy_then_idles_on_the_clock() -> None:
    clock = FakeClock()
    cycle = Script(True, True, False)
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=5)
    loop.start()
    await settle()
    assert cycle.runs == 3  # two busy cycles run back to back, the third found nothing
    await clock.advance(4.9)
    assert cycle.runs == 3
    await clock.advance(0.1)
    assert cycle.runs == 4
    await loop.stop()


async def test_wake_cuts_the_idle_wait_short_and_is_not_lost_during_a_cycle() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=60)
    loop.start()
    await settle()
    assert cycle.runs == 1
    loop.wake()
    await settle()
    assert cycle.runs == 2
    cycle.gate = asyncio.Event()
    loop.wake()
    await settle()
    assert cycle.runs == 3  # in the cycle, waiting at the gate
    loop.wake()  # arrives while the cycle runs: the loop goes round again without idling
    cycle.gate.set()
    await settle()
    assert cycle.runs == 4
    await loop.stop()


async def test_a_failing_cycle_is_logged_and_retried_at_the_idle_pace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    cycle = Script(True, fail_at=frozenset({1}))
    loop = LeaseLoop("things", cycle=cycle, clock=clock, idle_seconds=2)
    with caplog.at_level(logging.ERROR):
        loop.start()
        await settle()
    assert cycle.runs == 1
    assert "things cycle failing" in caplog.text
    await clock.advance(2)
    assert cycle.runs == 3  # the busy answer, then idle
    await loop.stop()


async def test_stop_ends_an_idle_wait_at_once_and_lets_a_running_cycle_finish() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=3600)
    loop.start()
    await settle()
    await asyncio.wait_for(loop.stop(), 1)  # no clock movement needed
    assert not loop.running
    assert clock.sleepers == 0

    cycle.gate = asyncio.Event()
    loop.start()
    await settle()
    stopping = asyncio.ensure_future(loop.stop())
    await settle()
    assert not stopping.done()  # waits for the cycle in flight
    cycle.gate.set()
    await asyncio.wait_for(stopping, 1)
    assert cycle.runs == 2  # and runs no further one


async def test_without_wakes_during_cycle_a_wake_in_an_idle_cycle_is_dropped() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=60, wakes_during_cycle=False)
    cycle.gate = asyncio.Event()
    loop.start()
    await settle()
    loop.wake()  # while the first cycle runs (and then finds nothing)
    cycle.gate.set()
    await settle()
    assert cycle.runs == 1  # idles: the wake-up went with the cycle
    loop.wake()
    await settle()
    assert cycle.runs == 2
    await loop.stop()


async def test_an_outage_logs_its_start_and_its_end_not_every_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14 item 10: a database outage logged a traceback per cycle (every 50 ms, 10 MB a
    minute). Now: one line when cycles start failing, one when they work again saying how
    long it lasted and how many failed; nothing in between until a reminder is due."""
    clock = FakeClock()
    cycle = Script(fail_at=frozenset(range(2, 202)))  # runs 2..201 fail: 200 failures
    loop = LeaseLoop("things", cycle=cycle, clock=clock, idle_seconds=0.05)
    with caplog.at_level(logging.DEBUG, logger="simgate"):
        loop.start()
        await settle()
        for _ in range(215):
            await clock.advance(0.05)
            await settle()
        await loop.stop()
    assert cycle.runs > 202
    mine = [r for r in caplog.records if r.name == "simgate.lease_loop"]
    assert len(mine) == 2, [r.getMessage() for r in mine]
    down, up = mine
    assert down.levelno == logging.ERROR
    assert "things cycle failing" in down.getMessage()
    assert "database in trouble" in down.getMessage()
    assert down.exc_info is not None  # the first failure keeps its cause, once
    assert up.levelno == logging.WARNING
    assert up.exc_info is None
    assert "things cycle works again after 10.0 s, 200 failed cycles" in up.getMessage()


async def test_a_long_outage_is_reminded_of_now_and_then(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    cycle = Script(fail_at=frozenset(range(1, 10**6)))
    loop = LeaseLoop("things", cycle=cycle, clock=clock, idle_seconds=1)
    with caplog.at_level(logging.DEBUG, logger="simgate"):
        loop.start()
        await settle()
        for _ in range(12):
            await clock.advance(60)
            await settle()
        await loop.stop()
    mine = [r.getMessage() for r in caplog.records if r.name == "simgate.lease_loop"]
    # the start, then one reminder per 5 minutes (at 300 s and 600 s of the 720 s); the
    # fake clock runs each 1 s idle wait it passes, so a cycle a second
    assert len(mine) == 3, mine
    assert "still failing after 300.0 s, 301 failed cycles" in mine[1], mine


async def test_idle_waits_double_up_to_the_cap_and_a_wake_starts_them_again() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=1, idle_max_seconds=4)
    loop.start()
    await settle()
    assert cycle.runs == 1
    for wait, runs in ((1, 2), (2, 3), (4, 4), (4, 5)):  # 1, 2, 4, then capped at 4
        await clock.advance(wait - 0.01)
        assert cycle.runs == runs - 1
        await clock.advance(0.01)
        assert cycle.runs == runs
    loop.wake()
    await settle()
    assert cycle.runs == 6
    await clock.advance(1)  # work came: the quick pace again
    assert cycle.runs == 7
    await loop.stop()


async def test_a_busy_cycle_resets_the_backoff() -> None:
    clock = FakeClock()
    cycle = Script(False, False, True)
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=1, idle_max_seconds=8)
    loop.start()
    await settle()
    await clock.advance(1)
    await clock.advance(2)
    assert cycle.runs == 4  # the third run was busy: the fourth followed at once
    await clock.advance(1)  # and its idle wait is the first again
    assert cycle.runs == 5
    await loop.stop()


async def test_without_a_cap_the_idle_wait_stays_the_same() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=1)
    loop.start()
    await settle()
    for runs in (2, 3, 4):
        await clock.advance(1)
        assert cycle.runs == runs
    await loop.stop()


async def test_due_in_ends_the_idle_wait_when_scheduled_work_falls_due() -> None:
    clock = FakeClock()
    due_at_cycle = {1: 3.0, 5: 0.5}  # what the cycle of that number announces
    loop: LeaseLoop

    async def cycle() -> bool:
        if loop.cycles in due_at_cycle:
            loop.due_in(due_at_cycle[loop.cycles])
        return False

    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=1, idle_max_seconds=60)
    loop.start()
    await settle()
    for wait in (1, 2, 4, 8):  # the backoff (3 s later than 1 s changes nothing)
        await clock.advance(wait)
    assert loop.cycles == 5
    await clock.advance(0.49)  # the backoff says 16 s; the fifth cycle announced 0.5 s
    assert loop.cycles == 5
    await clock.advance(0.01)
    assert loop.cycles == 6
    await loop.stop()


async def test_wakeup_wakes_the_loops_of_its_topic_and_relays_it() -> None:
    clock = FakeClock()
    queue_cycle, push_cycle = Script(), Script()
    queue_loop = LeaseLoop("q", cycle=queue_cycle, clock=clock, idle_seconds=60)
    push_loop = LeaseLoop("p", cycle=push_cycle, clock=clock, idle_seconds=60)
    wakeup = Wakeup()
    wakeup.attach(QUEUE, queue_loop)
    wakeup.attach(PUSHES, push_loop)
    relayed: list[str] = []
    wakeup.add_relay(relayed.append)
    queue_loop.start()
    push_loop.start()
    await settle()
    wakeup.notify(QUEUE)
    await settle()
    assert (queue_cycle.runs, push_cycle.runs) == (2, 1)
    assert relayed == [QUEUE]
    wakeup.notify(PUSHES, relay=False)  # the caller sends its own NOTIFY
    await settle()
    assert (queue_cycle.runs, push_cycle.runs) == (2, 2)
    assert relayed == [QUEUE]
    wakeup.detach(queue_loop)
    wakeup.notify(QUEUE)
    await settle()
    assert queue_cycle.runs == 2
    await queue_loop.stop()
    await push_loop.stop()


async def test_delivered_payloads_wake_other_processes_loops_not_the_senders_own() -> None:
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop("q", cycle=cycle, clock=clock, idle_seconds=60)
    here, there = Wakeup(), Wakeup()
    here.attach(QUEUE, loop)
    loop.start()
    await settle()
    here.delivered(here.payload(QUEUE))  # our own NOTIFY coming back: woken already
    await settle()
    assert cycle.runs == 1
    here.delivered(there.payload(QUEUE))
    await settle()
    assert cycle.runs == 2
    await loop.stop()


async def test_without_wake_resets_only_work_a_poll_found_quickens_the_poll() -> None:
    """``wake_resets_backoff=False`` (the dispatcher beside its wake-ups): work that came
    with a wake-up leaves the poll's backoff where it was; work a poll found starts it again."""
    clock = FakeClock()
    cycle = Script()
    loop = LeaseLoop(
        "t",
        cycle=cycle,
        clock=clock,
        idle_seconds=1,
        idle_max_seconds=16,
        wake_resets_backoff=False,
    )
    loop.start()
    await settle()
    for wait in (1, 2, 4):
        await clock.advance(wait)
    assert cycle.runs == 4
    cycle.busy = [True, False]  # woken with work: a busy cycle, then one finding nothing
    loop.wake()
    await settle()
    assert cycle.runs == 6
    await clock.advance(15.99)  # the backoff went on past the 8 s wait the wake cut: 16 s
    assert cycle.runs == 6
    await clock.advance(0.01)
    assert cycle.runs == 7
    cycle.busy = [True]  # the next poll finds work: someone the wake-ups do not reach
    await clock.advance(16)
    assert cycle.runs == 9  # the poll's busy cycle, then one finding nothing
    await clock.advance(1)  # and the quick pace again
    assert cycle.runs == 10
    await loop.stop()


async def test_woken_says_whether_a_wake_came_during_the_cycle() -> None:
    clock = FakeClock()
    seen: list[bool] = []
    loop: LeaseLoop

    async def cycle() -> bool:
        if loop.cycles == 1:
            loop.wake()
        seen.append(loop.woken)
        return False

    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=60)
    loop.start()
    await settle()
    assert seen == [True, False]  # the first cycle woke itself; the second (woken) did not
    await loop.stop()


async def test_looking_answers_the_wake_ups_so_far_not_later_ones() -> None:
    clock = FakeClock()
    seen: list[bool] = []
    loop: LeaseLoop

    async def cycle() -> bool:
        if loop.cycles == 1:
            loop.wake()  # work came before the cycle looked
            loop.looking()  # its lease sees that work
            seen.append(loop.woken)
            loop.wake()  # work after the look: the next cycle's
            seen.append(loop.woken)
        return False

    loop = LeaseLoop("t", cycle=cycle, clock=clock, idle_seconds=60)
    loop.start()
    await settle()
    assert seen == [False, True]
    assert loop.cycles == 2  # the later wake-up ran one more cycle at once, then it idled
    await loop.stop()
