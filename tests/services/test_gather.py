"""Natural batching (services/gather.py): requests that queue while the writer is busy are
written by one call, each hears its own answer, and a batch that fails is split."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.services.gather import Gatherer
from simgate.store import Store


class Doubler:
    """A write_many that answers each item doubled, after one real statement, and records
    each call's items; an item < 0 is a bad one (the call raises)."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def __call__(self, conn: AsyncConnection, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        await conn.execute(text("SELECT 1"))
        if any(i < 0 for i in items):
            raise ValueError(f"bad item in {list(items)}")
        return [2 * i for i in items]


async def test_queued_requests_are_one_call_with_their_own_answers(store: Store) -> None:
    write = Doubler()
    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=write, max_size=100)
    assert await asyncio.gather(*(gather.write(i) for i in range(10))) == [2 * i for i in range(10)]
    assert write.calls == [list(range(10))]  # arrival order


async def test_a_lone_request_is_written_at_once(store: Store) -> None:
    write = Doubler()
    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=write, max_size=100)
    assert [await gather.write(i) for i in range(3)] == [0, 2, 4]
    assert write.calls == [[0], [1], [2]]


async def test_a_failing_batch_is_split_and_only_the_bad_item_fails(store: Store) -> None:
    write = Doubler()
    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=write, max_size=100)
    results = await asyncio.gather(*(gather.write(i) for i in (1, -1, 3)), return_exceptions=True)
    assert results[0] == 2
    assert results[2] == 6
    assert isinstance(results[1], ValueError)
    # The batch (tried once alone after the database's failed group), then each item alone.
    assert write.calls[0] == [1, -1, 3]
    assert sorted(map(tuple, write.calls[-3:])) == [(-1,), (1,), (3,)]


async def test_a_lone_failing_request_hears_its_error(store: Store) -> None:
    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=Doubler(), max_size=100)
    with pytest.raises(ValueError, match="bad item"):
        await gather.write(-5)


async def test_a_full_batch_closes(store: Store) -> None:
    write = Doubler()
    gather: Gatherer[int, int] = Gatherer(
        db=store.db, write_many=write, max_size=5, size_of=lambda i: i
    )
    assert await asyncio.gather(*(gather.write(i) for i in (3, 2, 4, 1))) == [6, 4, 8, 2]
    assert write.calls == [[3, 2], [4, 1]]


async def test_a_request_that_goes_away_does_not_cancel_the_batch(store: Store) -> None:
    write = Doubler()
    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=write, max_size=100)
    first = asyncio.ensure_future(gather.write(1))
    second = asyncio.ensure_future(gather.write(2))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 4
    assert write.calls == [[1, 2]]


async def test_batches_go_ahead_of_the_other_writes(store: Store, backend: str) -> None:
    """Requests wait for a batch: it takes the writer's urgent lane (store/write_lanes.py), ahead
    of the worker's writes queued before it (issue 15 item 4); on PostgreSQL the urgent lane
    has writers of its own, so the batch commits while the other write is still held."""
    order: list[str] = []
    started, gate = asyncio.Event(), asyncio.Event()

    async def hold(conn: AsyncConnection) -> None:
        started.set()
        await gate.wait()

    async def other(conn: AsyncConnection) -> None:
        order.append("other")

    class Noted(Doubler):
        async def __call__(self, conn: AsyncConnection, items: Sequence[int]) -> list[int]:
            order.append("batch")
            return await super().__call__(conn, items)

    gather: Gatherer[int, int] = Gatherer(db=store.db, write_many=Noted(), max_size=100)
    holding = asyncio.ensure_future(store.db.write(hold))
    await asyncio.wait_for(started.wait(), 5)
    queued = store.db.submit(other)
    answer = asyncio.ensure_future(gather.write(4))
    await asyncio.sleep(0)  # the request joins (and queues) its batch
    if backend.startswith("postgresql"):
        assert await answer == 8
        assert not holding.done()
    gate.set()
    assert await answer == 8
    await asyncio.gather(holding, queued)
    assert order == ["batch", "other"]
