"""The dispatcher's write journal (issue 14 item 3): slots, what a killed worker left, and the
restart that queues again what never reached the line. The kill -9 itself, with real
processes: tests/process/test_crash_mid_batch.py."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from simgate.dispatch.journal import WriteJournal, boot_id
from simgate.dispatch.worker import Dispatcher
from simgate.domain.messages import State
from simgate.lines.base import BatchMarks, Line, SubmitRequest, SubmitResult
from simgate.lines.sim import SimLine
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.settings import Route, SimLineSettings, WorkerSettings
from simgate.store import Store
from simgate.testing.clock import FakeClock
from simgate.testing.lines import RecordingSink, ScriptedLine

from ..store.util import PRICE, account, balance, get, lease, lease_of, queue

DEAD = "worker-dead"


def dispatcher(services: Services, clock: FakeClock, line: Line, journal: Path) -> Dispatcher:
    return Dispatcher(
        messaging=services.messaging,
        line_state=services.line_state,
        lines={"sim": line},
        routes=[Route(prefix="", lines=("sim",))],
        settings=WorkerSettings(lease_seconds=30),
        clock=clock,
        metrics=services.metrics,
        owner="worker-new",
        rng=random.Random(1),
        journal=WriteJournal.open(journal),
    )


def test_a_slot_is_one_worker_s_and_keeps_what_it_marked(tmp_path: Path) -> None:
    first = WriteJournal.open(tmp_path)
    first.begin("w1")
    first.leased([11, 12, 13])
    first.mark(11)
    first.mark(12)
    second = WriteJournal.open(tmp_path)  # slot 0 is held: the next one
    assert (first.path.name, second.path.name) == ("dispatch-0.journal", "dispatch-1.journal")
    assert second.leftover is None
    first.close()  # as the kernel does when the process is killed
    second.close()
    again = WriteJournal.open(tmp_path)
    assert again.leftover is not None
    assert (again.leftover.owner, again.leftover.leased, again.leftover.written) == (
        "w1",
        frozenset({11, 12, 13}),
        frozenset({11, 12}),
    )
    again.begin("w2")
    again.leased([14])
    again.clear()  # the batch's answers are committed
    again.close()
    last = WriteJournal.open(tmp_path)
    assert last.leftover is not None
    left = last.leftover
    assert (left.owner, left.leased, left.written) == ("w2", frozenset(), frozenset())
    last.close()


def test_a_journal_from_another_boot_is_left_to_the_reaper(tmp_path: Path) -> None:
    assert boot_id(), "this test needs /proc/sys/kernel/random/boot_id"
    (tmp_path / "dispatch-0.journal").write_text("O w1 another-boot\nL 1 2\n1\n")
    j = WriteJournal.open(tmp_path)
    assert j.leftover is None  # its marks may have been lost with the page cache
    j.close()


@pytest.mark.parametrize("reaped_first", [False, True], ids=["restart", "reaper-first"])
async def test_restart_queues_again_what_never_reached_the_line(
    services: Services,
    store: Store,
    runtime: Runtime,
    clock: FakeClock,
    tmp_path: Path,
    reaped_first: bool,
) -> None:
    acc = await account(services)
    ids = await queue(runtime, acc, 5, validity_s=60)
    now = clock.now_ms()
    assert len(await lease(store, now, owner=DEAD, lease_ms=1000)) == 5
    # The dead worker's journal: the batch, and the two it was writing when it was killed.
    dead = WriteJournal.open(tmp_path / "j")
    dead.begin(DEAD)
    dead.leased(ids)
    dead.mark(ids[0])
    dead.mark(ids[1])
    dead.close()
    if reaped_first:  # a reaper elsewhere found the lapsed lease first: all UNKNOWN
        assert await services.messaging.reap(now_ms=now + 1001, resend=False) == 5
    d = dispatcher(services, clock, ScriptedLine.accepts(), tmp_path / "j")
    await d.recover()

    for mid in ids[:2]:  # may have reached the line: never resent blindly
        assert (await get(store, mid)).state is State.UNKNOWN
    for mid in ids[2:]:  # never did: back in the queue, due now, free
        row = await get(store, mid)
        assert (row.state, row.attempts) == (State.QUEUED, 0)
        assert await lease_of(store, mid) == (None, None)
    # The slot is the new worker's now: a later restart finds only its (empty) journal.
    slot = tmp_path / "j" / "dispatch-0.journal"
    assert slot.read_text() == f"O worker-new {boot_id()}\n"

    # What never left and ends unsent is refunded; what may have left is not.
    before = await balance(services, acc)
    await clock.advance(61)
    assert await services.messaging.expire(now_ms=clock.now_ms()) == 5
    assert await balance(services, acc) == before + 3 * PRICE


async def test_each_message_is_journaled_before_the_line_takes_it(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    seen: list[tuple[int, bool]] = []

    def script(line: ScriptedLine, req: SubmitRequest) -> SubmitResult:
        # A line without WRITE_MARKS: the dispatcher marks before calling submit.
        text = next((tmp_path / "j").glob("*.journal")).read_text()
        seen.append((req.message_id, f"\n{req.message_id}\n" in text))
        return line.ok(req)

    acc = await account(services)
    ids = await queue(runtime, acc, 3)
    d = dispatcher(services, clock, ScriptedLine(script), tmp_path / "j")
    await d.recover()
    await d.claim_lines()
    assert await d.run_once() == 3
    assert sorted(seen) == [(mid, True) for mid in ids]
    for mid in ids:
        assert (await get(store, mid)).state is State.SENT
    journal = next((tmp_path / "j").glob("*.journal")).read_text()
    assert journal == f"O worker-new {boot_id()}\n"  # cleared once the answers are committed


def test_two_open_batches_keep_each_other_when_one_is_done(tmp_path: Path) -> None:
    """The dispatcher leases the next batch while the previous one is still being recorded
    (issue 15): finishing one batch keeps the other's lease and marks for a restart."""
    j = WriteJournal.open(tmp_path)
    j.begin("w1")
    j.leased([1, 2])
    j.mark(1)
    j.leased([3, 4])
    j.mark(2)
    j.mark(3)
    j.done([1, 2])  # the first batch's answers are committed
    j.close()
    again = WriteJournal.open(tmp_path)
    assert again.leftover is not None
    assert (again.leftover.leased, again.leftover.written) == (frozenset({3, 4}), frozenset({3}))
    again.begin("w2")
    again.leased([5])
    again.mark(5)
    again.done([5])
    again.close()
    last = WriteJournal.open(tmp_path)
    assert last.leftover is not None
    assert (last.leftover.leased, last.leftover.written) == (frozenset(), frozenset())
    last.close()


def test_a_batch_marked_in_one_write_is_read_back_as_written(tmp_path: Path) -> None:
    j = WriteJournal.open(tmp_path)
    j.begin("w1")
    j.leased([1, 2, 3, 4])
    j.mark_many([1, 2])
    j.mark_many([])  # nothing left: nothing written
    j.leased([5, 6])
    j.mark_many([5])
    j.done([1, 2, 3, 4])  # the second batch and its mark stay
    j.close()
    again = WriteJournal.open(tmp_path)
    assert again.leftover is not None
    assert (again.leftover.leased, again.leftover.written) == (frozenset({5, 6}), frozenset({5}))
    again.close()


async def test_a_batch_line_has_its_batch_journaled_before_it_takes_it(
    services: Services, store: Store, runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    """A line that takes the batch in one call (lines.base.BatchLine): the ids it says will
    leave are in the journal before it takes them, in one write; the others are not."""
    line = SimLine("sim", SimLineSettings(failure_ratio=0.5), clock)  # the rest: REJECTED
    seen: list[str] = []
    take = line.submit_batch

    async def looking(
        requests: Sequence[SubmitRequest], *, on_write: BatchMarks | None
    ) -> list[SubmitResult]:
        def marks(ids: Sequence[int]) -> None:
            assert on_write is not None
            on_write(ids)
            seen.append(next((tmp_path / "j").glob("*.journal")).read_text())

        return await take(requests, on_write=marks)

    line.submit_batch = looking  # type: ignore[method-assign]
    await line.start(RecordingSink())
    try:
        acc = await account(services)
        ids = await queue(runtime, acc, 10)
        d = dispatcher(services, clock, line, tmp_path / "j")
        await d.recover()
        await d.claim_lines()
        assert await d.run_once() == 10
    finally:
        await line.stop()
    (text,) = seen  # one call for the batch
    marked = {int(x) for x in text.splitlines()[2:]}
    states = {mid: (await get(store, mid)).state for mid in ids}
    left = {mid for mid, s in states.items() if s is State.SENT}
    assert marked == left
    assert left
    rejected = {mid for mid, s in states.items() if s is State.REJECTED}
    assert rejected
    assert rejected == set(ids) - left
