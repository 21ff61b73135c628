"""Group commit's writer lanes: the queue of write jobs, the writer tasks that take it in
batches, and what becomes of the queued jobs when the writers end.

Group commit: :meth:`Database.write <simgate.store.database.Database.write>` queues a job;
one writer task runs every job queued at that moment inside one transaction and commits once.
Each caller's awaitable resolves only after the commit, so "a 2xx means the data is committed"
holds while a burst of API requests shares one fsync. If a job raises, the batch is rolled
back and every job is re-run in its own transaction, so one bad job never takes others down.
Jobs must therefore be re-runnable: database work only, no side effects outside the
transaction. The transaction itself (retries, a full storage) is the database's
(store/database.py): the lanes hand it lists of jobs.

Two lanes (issue 15 item 4): in ``simgate run`` the worker's writes share the writer with the
API's accepts. Jobs queued with ``urgent=True`` (the accept batches, services/accept_writer.py)
run first. On SQLite, where the one writer's commits are the line every write queues on, the
writer takes both lanes into one transaction: the urgent jobs, then the others queued at that
moment. Batches by turns (each lane its own commit) made an accept wait for the worker's
batch commit and then its own, two fsyncs and two thread hand-offs; with statements on the
loop's thread (store/sqlite_writer.py) the worker's jobs cost an accept far less than a commit
of their own (issue 15: under load the commit thread waited for a CPU a fifth of the time).

On PostgreSQL a batch is a few network round trips (BEGIN, a statement or two, COMMIT), each
waiting for a turn of a loop busy with requests, so one writer's batches, back to back, were
the ceiling of a send (issue 15: 122 req/s beside a 1,770 req/s HTTP ceiling). Several
processes already write side by side there, so one process may as well: the urgent lane
has :data:`PG_URGENT_WRITERS` writer tasks of its own, each on its own connection, and one
writer takes the other lane's batches alone, in queue order (the worker's records of one
message must not overtake each other): an accept never waits for the worker's batches there.
One urgent writer, not two: the accepts of one account all update its row, so a second
batch in flight only waited for the first one's row lock, and split the load into smaller
batches with more statements and commits per request (issue 15, bench/http_send.py on
PostgreSQL: one writer answered 1.25x the sends of two). SQLite has one write lock: one
writer, both lanes in each of its transactions. On PostgreSQL a job that is one statement may
ask to run in autocommit (:meth:`Database.submit <simgate.store.database.Database.submit>`):
the accept batches of OpenVox sends, for which BEGIN and COMMIT were two of four round trips,
and of itniotech sends with their replay records (BEGIN, the records, the charge, the INSERT
and COMMIT: five) (issue 15).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StorageFull, StoreError

Job = Callable[[AsyncConnection], Awaitable[Any]]
Queued = tuple[Job, "asyncio.Future[Any]"]

MAX_JOBS_PER_COMMIT = 512
# PostgreSQL: writer tasks that take urgent batches, beside the other lane's (module doc).
PG_URGENT_WRITERS = 1


class Transaction(Protocol):
    """Run ``jobs`` in one transaction and return their results once it has committed
    (``autocommit``: one job, alone on a connection in autocommit); raise if it failed."""

    def __call__(self, jobs: list[Job], *, autocommit: bool = False) -> Awaitable[list[Any]]: ...


class OwnCommit:
    """A job :meth:`Database.submit` was asked to run in autocommit (PostgreSQL)."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, conn: AsyncConnection) -> Awaitable[Any]:
        return self.job(conn)


class WriteLanes:
    """The lanes and their writer tasks: one taking both lanes (SQLite), or one for the other
    lane and :data:`PG_URGENT_WRITERS` for the urgent one (PostgreSQL); module docstring."""

    def __init__(self, transaction: Transaction, *, one_writer: bool) -> None:
        self._transaction = transaction
        self.lanes = Lanes()
        if one_writer:
            self.writers = [asyncio.create_task(self._write_loop("both"), name="db-writer")]
        else:
            self.writers = [asyncio.create_task(self._write_loop("other"), name="db-writer")]
            self.writers += [
                asyncio.create_task(self._write_loop("urgent"), name=f"db-writer-{i}")
                for i in range(1, PG_URGENT_WRITERS + 1)
            ]

    def submit(self, job: Job, *, urgent: bool, own_commit: bool) -> asyncio.Future[Any]:
        """Queue ``job`` now (before the caller yields); the future resolves after the
        commit. ``own_commit``: run it alone in autocommit (:class:`OwnCommit`)."""
        if self.lanes.stopped is not None:
            raise StoreError(self.lanes.stopped)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queued: Job = OwnCommit(job) if own_commit else job
        self.lanes.put((queued, fut), urgent=urgent)
        return fut

    async def close(self) -> None:
        """Stop the writers; every write queued or running fails with a :class:`StoreError`,
        and later ones are refused."""
        writers, self.writers = self.writers, []
        # Before the writers end: their own stop says less.
        self.lanes.stop("database closed before the write ran")
        for writer in writers:
            writer.cancel()
        for writer in writers:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        # Writes still queued would wait forever: they fail.
        for _, fut in self.lanes.drain():
            if not fut.done():
                fut.set_exception(StoreError("database closed before the write ran"))

    async def _write_loop(self, lane: Literal["both", "urgent", "other"]) -> None:
        lanes = self.lanes
        take = {"both": lanes.next_batch, "urgent": lanes.next_urgent, "other": lanes.next_other}[
            lane
        ]
        me = asyncio.current_task()
        try:
            while True:
                batch = await take(MAX_JOBS_PER_COMMIT)
                live = [(job, fut) for job, fut in batch if not fut.cancelled()]
                try:
                    if live:
                        await self._run_batch(live)
                    if me is not None and me.cancelling():
                        # A cancel that a job's error handling swallowed (another error
                        # raised over it): stop as if it had come through, or close()
                        # waits for a writer that waits for jobs.
                        raise asyncio.CancelledError
                except asyncio.CancelledError:  # close() during a batch: its callers must hear
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(StoreError("database closed during the write"))
                    raise
        finally:
            # A writer cancelled by someone else than close() (asyncio.run's cancel-all at
            # shutdown cancels every task, this one among them) left a queue nobody takes:
            # a write queued then, or later, waited forever. A test runner's teardown hung
            # that way (a line's close recorded its port state after the cancel-all). Every
            # such write now fails at once, saying so.
            lanes.stop(f"the database writer stopped ({lane} lane): no more writes")

    async def _run_batch(self, batch: list[Queued]) -> None:
        if any(isinstance(job, OwnCommit) for job, _ in batch):
            shared: list[Queued] = []
            for job, fut in batch:
                if isinstance(job, OwnCommit):
                    await self._run_alone(job.job, fut, autocommit=True)
                else:
                    shared.append((job, fut))
            if not shared:
                return
            batch = shared
        try:
            results = await self._transaction([job for job, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                job, fut = batch[0]
                if isinstance(exc, StorageFull):  # the same write again finds no more room
                    if not fut.done():
                        fut.set_exception(exc)
                    return
                await self._run_alone(job, fut)
                return
            for job, fut in batch:
                await self._run_alone(job, fut)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _run_alone(
        self, job: Job, fut: asyncio.Future[Any], *, autocommit: bool = False
    ) -> None:
        try:
            (result,) = await self._transaction([job], autocommit=autocommit)
        except Exception as exc:  # handed to the caller, who decides
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(result)


class Lanes:
    """The writers' queue: urgent jobs first (module docstring)."""

    def __init__(self) -> None:
        self._urgent: collections.deque[Queued] = collections.deque()
        self._other: collections.deque[Queued] = collections.deque()
        self._ready = asyncio.Event()
        # For the writers of one lane (PostgreSQL).
        self._urgent_ready = asyncio.Event()
        self._other_ready = asyncio.Event()
        # Why writes are refused, once a writer of these lanes has ended (WriteLanes._write_loop).
        self.stopped: str | None = None

    def stop(self, why: str) -> None:
        """Refuse later writes with ``why`` and fail the queued ones (none will run)."""
        if self.stopped is None:
            self.stopped = why
        for _, fut in self.drain():
            if not fut.done():
                fut.set_exception(StoreError(why))

    def put(self, queued: Queued, *, urgent: bool) -> None:
        (self._urgent if urgent else self._other).append(queued)
        self._ready.set()
        (self._urgent_ready if urgent else self._other_ready).set()

    async def next_batch(self, limit: int) -> list[Queued]:
        """The next batch of SQLite's one writer: every urgent job queued now, then every
        other one, at most ``limit`` of each."""
        while not (self._urgent or self._other):
            self._ready.clear()
            await self._ready.wait()
        urgent, other = self._urgent, self._other
        return [urgent.popleft() for _ in range(min(limit, len(urgent)))] + [
            other.popleft() for _ in range(min(limit, len(other)))
        ]

    async def next_urgent(self, limit: int) -> list[Queued]:
        """The next urgent batch, at most ``limit`` jobs (the PostgreSQL urgent writers)."""
        while not self._urgent:
            self._urgent_ready.clear()
            await self._urgent_ready.wait()
        return [self._urgent.popleft() for _ in range(min(limit, len(self._urgent)))]

    async def next_other(self, limit: int) -> list[Queued]:
        """The next batch of the other lane, at most ``limit`` jobs (PostgreSQL's writer of
        that lane)."""
        while not self._other:
            self._other_ready.clear()
            await self._other_ready.wait()
        return [self._other.popleft() for _ in range(min(limit, len(self._other)))]

    def drain(self) -> list[Queued]:
        out = [*self._urgent, *self._other]
        self._urgent.clear()
        self._other.clear()
        return out
