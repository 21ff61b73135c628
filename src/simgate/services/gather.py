"""Natural batching of one kind of write (issue 15, group commit): requests join an open
batch, and the batch is one job of :meth:`Database.write` that writes them all with one
statement per table.

When the database writer reaches the job, the job closes the batch and writes what joined
so far; requests that arrive meanwhile open the next batch. Nothing waits for a window: at
low load a batch holds one request and costs what a lone write did; under load it grows by
itself while the writer is busy, up to ``max_size``.

Each request hears its own answer once the batch is committed (a 2xx still means
committed). ``write_many`` answers every item (an item's refusal is an answer, not an
error); if it raises, the batch is split: every request is written again as a job of its
own, so the database's group commit isolates the bad one (:meth:`Database._run_batch`
re-runs a failed transaction's jobs one by one) and the others commit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database

T = TypeVar("T")
R = TypeVar("R")

WriteMany = Callable[[AsyncConnection, Sequence[T]], Awaitable[list[R]]]


class _Batch(Generic[T, R]):
    """Requests written together. ``taken``: what the writer took when it first ran the
    batch (a re-run of the job after a rollback writes the same requests)."""

    __slots__ = ("done", "items", "size", "taken")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.size = 0
        self.taken: list[T] | None = None
        self.done: asyncio.Future[list[R]] | None = None


class Gatherer(Generic[T, R]):
    """Gathers one process's writes of one kind into batches (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        write_many: WriteMany[T, R],
        max_size: int,
        size_of: Callable[[T], int] = lambda _: 1,
        urgent: bool = True,
        autocommit: bool = False,
    ) -> None:
        self._db = db
        self._write_many = write_many
        self._max_size = max_size
        self._size_of = size_of
        # Requests wait for these batches: the writer's urgent lane (store/database.py), for
        # the accepts and the itniotech replay claims (services/itnio.py) alike.
        self._urgent = urgent
        # One-statement batches on PostgreSQL, outside a transaction (Database.submit).
        self._autocommit = autocommit
        self._open: _Batch[T, R] | None = None

    async def write(self, item: T) -> R:
        """Write ``item`` in the next batch; its answer, once that batch is committed."""
        batch = self._open
        if batch is None or batch.size >= self._max_size:
            batch = self._open = _Batch()
            # Queued now, awaited shielded: a request that goes away must not cancel the
            # others' write.
            batch.done = self._db.submit(
                functools.partial(self._run, batch),
                urgent=self._urgent,
                autocommit=self._autocommit,
            )
            batch.done.add_done_callback(_retrieved)
        position = len(batch.items)
        batch.items.append(item)
        batch.size += self._size_of(item)
        assert batch.done is not None
        try:
            results = await asyncio.shield(batch.done)
        except Exception:
            if len(batch.items) == 1:
                raise
            (alone,) = await self._db.submit(
                functools.partial(self._write_one, item),
                urgent=self._urgent,
                autocommit=self._autocommit,
            )
            return alone
        return results[position]

    async def _write_one(self, item: T, conn: AsyncConnection) -> list[R]:
        return await self._write_many(conn, [item])

    async def _run(self, batch: _Batch[T, R], conn: AsyncConnection) -> list[R]:
        if batch.taken is None:  # first run: close the batch, later requests open another
            if self._open is batch:
                self._open = None
            batch.taken = list(batch.items)
        return await self._write_many(conn, batch.taken)


def _retrieved(done: asyncio.Future[Any]) -> None:
    """Mark a batch's failure as heard even when every request of it went away (its
    requests hear it themselves otherwise): no "exception was never retrieved" at exit."""
    if not done.cancelled():
        done.exception()
