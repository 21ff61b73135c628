"""Group commit of the accept path (issue 15): concurrent accepts become one unit of work.

Every request that accepts messages (charge its account, queue its rows, store the caller's
own record such as the itniotech replay answer) joins the open batch of a
:class:`~simgate.services.gather.Gatherer` (natural batching, no window, a failed batch
split per request). A batch is written with one charge per account, one ``executemany``
INSERT for all its rows, then the callers' own records in arrival order. An account whose
balance covers the batch's sum is charged once; one that does not is charged for its
requests in arrival order while the balance lasts, and the others hear False (insufficient
balance) without failing anyone else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.records import NewMessage
from simgate.errors import StoreError
from simgate.services.gather import Gatherer
from simgate.store import Store

# A batch is closed to new requests once it holds this many rows: it bounds one transaction
# (and the time a request that joins it waits) when bulk requests of 1 000 numbers pile up.
MAX_ROWS_PER_BATCH = 5_000

# The caller's own database work, committed with its messages.
CallerJob = Callable[[AsyncConnection], Awaitable[None]]


@runtime_checkable
class JointJob(Protocol):
    """A caller's job that can also run in one statement with the others of its kind in a
    batch (the itniotech replay answers: one UPDATE for the batch, not one per request).
    ``run_together`` raises when any of them cannot be written; the batch is then split and
    each runs alone, as a plain :data:`CallerJob`."""

    async def __call__(self, conn: AsyncConnection) -> None: ...

    async def run_together(self, conn: AsyncConnection, jobs: Sequence[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class AcceptJob:
    """One request's accept: charge ``total_micros`` to ``account_id``, queue ``rows``."""

    account_id: int
    total_micros: int
    rows: Sequence[NewMessage]
    now_ms: int
    also: CallerJob | None = None


class AcceptWriter:
    """Gathers the accepts of one process into batches (see the module docstring)."""

    def __init__(self, *, store: Store, max_rows: int = MAX_ROWS_PER_BATCH) -> None:
        self._store = store
        self._batches: Gatherer[AcceptJob, bool] = Gatherer(
            db=store.db,
            write_many=self._write,
            max_size=max_rows,
            size_of=_rows_of,
            urgent=True,  # a request waits for each accept (store/database.py's lanes)
        )

    async def accept(self, job: AcceptJob) -> bool:
        """Charge and queue ``job`` in the next batch; True once committed, False (nothing
        queued, nothing charged) when the account's balance does not cover it."""
        return await self._batches.write(job)

    async def _write(self, conn: AsyncConnection, jobs: Sequence[AcceptJob]) -> list[bool]:
        """Charge, insert and run the callers' records of ``jobs``; which were charged."""
        charged = await self._charge(conn, jobs)
        kept = [j for j, ok in zip(jobs, charged, strict=True) if ok]
        await self._store.messages.insert_many(conn, [(j.rows, j.now_ms) for j in kept])
        await _run_callers(conn, [j.also for j in kept if j.also is not None])
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


async def _run_callers(conn: AsyncConnection, jobs: Sequence[CallerJob]) -> None:
    """The callers' jobs in arrival order, those of one :class:`JointJob` kind together
    (where the first of them came) when there is more than one."""
    kinds: dict[type, list[JointJob]] = {}
    for job in jobs:
        if isinstance(job, JointJob):
            kinds.setdefault(type(job), []).append(job)
    done: set[type] = set()
    for job in jobs:
        kind = type(job)
        group = kinds.get(kind)
        if group is None or len(group) == 1:
            await job(conn)
        elif kind not in done:
            done.add(kind)
            await group[0].run_together(conn, group)


def _rows_of(job: AcceptJob) -> int:
    return len(job.rows)
