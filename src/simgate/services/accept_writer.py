"""Group commit of the accept path (issue 15): concurrent accepts become one unit of work.

Every request that accepts messages (charge its account, queue its rows, store the caller's
own record such as the itniotech replay answer) joins the *open batch*. The batch is one job
of :meth:`Database.write`; when the database writer reaches it, the job closes the batch and
writes everything that joined so far: one charge per account, one ``executemany`` INSERT for
all the rows, then the callers' own records. Requests that arrive meanwhile open the next
batch. So nothing waits for a window: at low load a batch holds one request and costs what a
lone accept did, and under load the batch grows by itself while the writer is busy (natural
batching), up to :data:`MAX_ROWS_PER_BATCH`.

Each request hears its own answer once the batch is committed (a 2xx still means committed,
design principle 3):
- an account whose balance covers the batch's sum is charged once; one that does not is
  charged for its requests in arrival order while the balance lasts, and the others hear
  False (insufficient balance) without failing anyone else;
- a batch that raises (a bad row, a caller's record refused) is split: every request is
  written again as a job of its own, so the database's group commit isolates the bad one
  (:meth:`Database._run_batch` re-runs a failed transaction's jobs one by one) and the
  others commit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.records import NewMessage
from simgate.errors import StoreError
from simgate.store import Store

# A batch is closed to new requests once it holds this many rows: it bounds one transaction
# (and the time a request that joins it waits) when bulk requests of 1 000 numbers pile up.
MAX_ROWS_PER_BATCH = 5_000

# The caller's own database work, committed with its messages.
CallerJob = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AcceptJob:
    """One request's accept: charge ``total_micros`` to ``account_id``, queue ``rows``."""

    account_id: int
    total_micros: int
    rows: Sequence[NewMessage]
    now_ms: int
    also: CallerJob | None = None


class _Batch:
    """Requests that will be written together. ``taken`` is what the writer took when it
    ran the batch (re-runs of the same job after a rollback write the same requests)."""

    __slots__ = ("done", "jobs", "rows", "taken")

    def __init__(self) -> None:
        self.jobs: list[AcceptJob] = []
        self.rows = 0
        self.taken: list[AcceptJob] | None = None
        self.done: asyncio.Future[list[bool]] | None = None


class AcceptWriter:
    """Gathers the accepts of one process into batches (see the module docstring)."""

    def __init__(self, *, store: Store, max_rows: int = MAX_ROWS_PER_BATCH) -> None:
        self._store = store
        self._db = store.db
        self._max_rows = max_rows
        self._open: _Batch | None = None

    async def accept(self, job: AcceptJob) -> bool:
        """Charge and queue ``job`` in the next batch; True once committed, False (nothing
        queued, nothing charged) when the account's balance does not cover it."""
        batch = self._open
        if batch is None or batch.rows >= self._max_rows:
            batch = self._open = _Batch()
            # A task of its own: a request that goes away must not cancel the others' write.
            batch.done = asyncio.ensure_future(self._db.write(functools.partial(self._run, batch)))
        position = len(batch.jobs)
        batch.jobs.append(job)
        batch.rows += len(job.rows)
        assert batch.done is not None
        try:
            results = await asyncio.shield(batch.done)
        except Exception:
            if len(batch.jobs) == 1:
                raise
            # Split: each request alone, so one bad request cannot fail the others. The
            # database still commits these together, and re-runs them one by one if that
            # transaction fails.
            (alone,) = await self._db.write(functools.partial(self._write, jobs=[job]))
            return alone
        return results[position]

    async def _run(self, batch: _Batch, conn: AsyncConnection) -> list[bool]:
        if batch.taken is None:  # first run: close the batch, later requests open another
            if self._open is batch:
                self._open = None
            batch.taken = list(batch.jobs)
        return await self._write(conn, jobs=batch.taken)

    async def _write(self, conn: AsyncConnection, *, jobs: Sequence[AcceptJob]) -> list[bool]:
        """Charge, insert and run the callers' records of ``jobs``; which were charged."""
        charged = await self._charge(conn, jobs)
        kept = [j for j, ok in zip(jobs, charged, strict=True) if ok]
        await self._store.messages.insert_many(conn, [(j.rows, j.now_ms) for j in kept])
        for j in kept:
            if j.also is not None:
                await j.also(conn)
        return charged

    async def _charge(self, conn: AsyncConnection, jobs: Sequence[AcceptJob]) -> list[bool]:
        """One charge per account; an account that cannot pay for all its requests pays for
        those it covers, in arrival order."""
        accounts = self._store.accounts
        charged = [True] * len(jobs)
        by_account: dict[int, list[int]] = {}
        for i, j in enumerate(jobs):
            if j.total_micros > 0:
                by_account.setdefault(j.account_id, []).append(i)
        for account_id, indexes in by_account.items():
            total = sum(jobs[i].total_micros for i in indexes)
            if await accounts.charge(conn, account_id, total):
                continue
            if len(indexes) == 1:
                charged[indexes[0]] = False
                continue
            # Rare: the sum is not covered. Read what the account may spend (its row locked
            # on PostgreSQL) and take the requests that fit, in the order they came.
            left = await accounts.spendable(conn, account_id)
            covered = 0
            for i in indexes:
                amount = jobs[i].total_micros
                if left is not None and amount <= left:
                    left -= amount
                    covered += amount
                else:
                    charged[i] = False
            if covered and not await accounts.charge(conn, account_id, covered):
                raise StoreError(f"account {account_id} changed during its charge")
        return charged
