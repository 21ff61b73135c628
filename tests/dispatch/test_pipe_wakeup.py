"""The SQLite wake-up from ``run``'s HTTP process to its worker child (dispatch/pipe_wakeup.py).

Both ends in one process here, on a real socket pair: the parent's Wakeup and the child's are
separate objects, as in the two processes; tests/process/test_worker_child.py has the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from simgate.clock import SystemClock
from simgate.dispatch.pipe_wakeup import PipeListener, PipeNotifier, wake_pair
from simgate.lease_loop import CALLS, QUEUE, SMPP_OUT, LeaseLoop, Wakeup


async def _idle() -> bool:
    return False


async def _until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not cond():  # noqa: ASYNC110 (the loops' cycle counts have no event)
            await asyncio.sleep(0.005)


async def test_notifies_reach_the_other_wakeup_coalesced_per_loop_turn() -> None:
    ours, theirs = wake_pair()
    parent, child = Wakeup(), Wakeup()
    # Polls an hour apart: each cycle after the first comes from a wake-up.
    queue = LeaseLoop("q", cycle=_idle, clock=SystemClock(), idle_seconds=3600)
    calls = LeaseLoop("c", cycle=_idle, clock=SystemClock(), idle_seconds=3600)
    child.attach(QUEUE, queue)
    child.attach(CALLS, calls)
    notifier = PipeNotifier(ours, parent)
    notifier.start()
    listener = PipeListener(theirs.detach(), child)
    queue.start()
    calls.start()
    try:
        await _until(lambda: queue.cycles == 1 and calls.cycles == 1)  # idle now
        listener.start()  # wakes every loop once: what was said before it listened
        await _until(lambda: queue.cycles == 2 and calls.cycles == 2)
        for _ in range(100):  # a hundred commits in one loop turn: one datagram
            parent.notify(QUEUE)
        await _until(lambda: queue.cycles == 3)
        assert notifier.sent == 1
        await asyncio.sleep(0.05)
        assert (queue.cycles, calls.cycles) == (3, 2)  # only the topic that was notified
        parent.notify(CALLS)
        await _until(lambda: calls.cycles == 3)
        assert notifier.sent == 2
    finally:
        notifier.stop()
        listener.stop()
        await queue.stop()
        await calls.stop()
        ours.close()


async def test_a_full_buffer_drops_datagrams_without_raising() -> None:
    ours, theirs = wake_pair()
    parent = Wakeup()
    notifier = PipeNotifier(ours, parent)
    notifier.start()
    try:
        for _ in range(20_000):  # nobody reads: the buffer fills, notify never raises
            parent.notify(QUEUE)
            await asyncio.sleep(0)
        assert 0 < notifier.sent < 20_000
    finally:
        notifier.stop()
        ours.close()
        theirs.close()


class _Counts:
    """A Wakeable that counts its wake-ups (the SMPP outbox stands behind SMPP_OUT)."""

    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


async def test_the_child_tells_the_parent_of_smpp_rows_and_nothing_echoes() -> None:
    ours, theirs = wake_pair()
    parent, child = Wakeup(), Wakeup()
    in_parent, in_child = _Counts(), _Counts()
    parent.attach(SMPP_OUT, in_parent)
    child.attach(SMPP_OUT, in_child)
    child_queue = _Counts()
    child.attach(QUEUE, child_queue)
    notifier = PipeNotifier(ours, parent)
    notifier.start()
    listener = PipeListener(theirs.detach(), child)
    listener.start()
    try:
        looked = child_queue.woken  # the listener's start-up look
        child.notify(SMPP_OUT)  # receipts the child's commit stored
        await _until(lambda: in_parent.woken == 1)
        assert in_child.woken == 1  # its own, locally; not sent back down by the parent
        parent.notify(QUEUE)  # and the usual way still works
        await _until(lambda: child_queue.woken == looked + 1)
        parent.notify(SMPP_OUT)  # the parent's own rows: its deliverers, not the child
        await asyncio.sleep(0.05)
        assert in_child.woken == 1
        assert in_parent.woken == 2
    finally:
        listener.stop()
        notifier.stop()
        ours.close()


async def test_sends_that_keep_coming_wake_the_child_dispatcher_once_per_interval() -> None:
    """One wake-up per send made the worker child lease and record each message in commits
    of its own, which the HTTP process's next accept waited for (module docstring). The
    first send after a quiet spell still wakes it at once."""
    ours, theirs = wake_pair()
    parent, child = Wakeup(), Wakeup()
    child_queue = _Counts()
    child.attach(QUEUE, child_queue)
    notifier = PipeNotifier(ours, parent)
    notifier.start()
    listener = PipeListener(theirs.detach(), child, gather_s=0.5)
    listener.start()
    try:
        looked = child_queue.woken  # the listener's start-up look
        parent.notify(QUEUE)  # after a quiet spell: at once
        await _until(lambda: child_queue.woken == looked + 1)
        for _ in range(5):  # five sends, each committed in a loop turn of its own
            parent.notify(QUEUE)
            await asyncio.sleep(0)
        await _until(lambda: notifier.sent == 6)
        await _until(lambda: child_queue.woken == looked + 2)  # the five: one wake-up
        await asyncio.sleep(0.1)
        assert child_queue.woken == looked + 2
        assert listener.queue_wakes == 2
    finally:
        listener.stop()
        notifier.stop()
        ours.close()
