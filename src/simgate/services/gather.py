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
own, so the database's group commit isolates the bad one (store/write_lanes.py
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
    batch (a re-run of the job after a rollback writes the same requests); ``answers``: each
    request's own future, in arrival order."""

    __slots__ = ("answers", "items", "loop", "size", "taken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Each request's future is made on it: asyncio.get_running_loop() per request asks
        # the OS for the process id (getpid, to notice a fork), a system call each time.
        self.loop = loop
        self.items: list[T] = []
        self.answers: list[asyncio.Future[R]] = []
        self.size = 0
        self.taken: list[T] | None = None


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
        # Requests wait for these batches: the writer's urgent lane (store/write_lanes.py), for
        # the accepts and the itniotech replay claims (services/itnio.py) alike.
        self._urgent = urgent
        # One-statement batches on PostgreSQL, outside a transaction (Database.submit).
        self._autocommit = autocommit
        self._open: _Batch[T, R] | None = None

    async def write(self, item: T) -> R:
        """Write ``item`` in the next batch; its answer, once that batch is committed."""
        batch = self._open
        if batch is None or batch.size >= self._max_size:
            batch = self._open = _Batch(asyncio.get_running_loop())
            # Queued now; the batch's outcome is handed to each request's own future by one
            # callback (issue 15: asyncio.shield per request cost two loop turns and three
            # callbacks each). A request that goes away cancels its own future, never the
            # others' write.
            done = self._db.submit(
                functools.partial(self._run, batch),
                urgent=self._urgent,
                autocommit=self._autocommit,
            )
            done.add_done_callback(functools.partial(_answer, batch.answers))
        answer: asyncio.Future[R] = batch.loop.create_future()
        batch.items.append(item)
        batch.answers.append(answer)
        batch.size += self._size_of(item)
        try:
            return await answer
        except Exception:
            if len(batch.items) == 1:
                raise
            (alone,) = await self._db.submit(
                functools.partial(self._write_one, item),
                urgent=self._urgent,
                autocommit=self._autocommit,
            )
            return alone

    async def _write_one(self, item: T, conn: AsyncConnection) -> list[R]:
        return await self._write_many(conn, [item])

    async def _run(self, batch: _Batch[T, R], conn: AsyncConnection) -> list[R]:
        if batch.taken is None:  # first run: close the batch, later requests open another
            if self._open is batch:
                self._open = None
            batch.taken = list(batch.items)
        return await self._write_many(conn, batch.taken)


def _answer(answers: list[asyncio.Future[Any]], done: asyncio.Future[list[Any]]) -> None:
    """Each request of a batch hears its own result, or the batch's error (which each then
    writes again alone). An error is marked as heard at once: a request gone meanwhile
    would leave it unheard ("exception was never retrieved" at exit)."""
    if done.cancelled():  # as asyncio.shield did: the requests are cancelled too
        for answer in answers:
            answer.cancel()
        return
    exc = done.exception()
    if exc is None:
        results = done.result()
        if len(results) == len(answers):
            for answer, result in zip(answers, results, strict=True):
                if not answer.done():
                    answer.set_result(result)
            return
        exc = RuntimeError(f"{len(results)} answers to a batch of {len(answers)}")
    for answer in answers:
        if not answer.done():
            answer.set_exception(exc)
            answer.exception()
