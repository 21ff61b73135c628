"""Group commit of the accept path (issue 15): concurrent accepts become one unit of work.

Every request that accepts messages (charge its account, queue its rows, store the caller's
own record) joins the open batch of a :class:`~simgate.services.gather.Gatherer` (natural
batching, no window, a failed batch split per request). A batch is written with the claims
of its requests that may happen only once (:class:`OnceJob`, the itniotech replay rule:
one statement per kind), one charge per account, one ``executemany`` INSERT for all its
rows, then the callers' own records in arrival order. An account whose balance covers the
batch's sum is charged once; one that does not is charged for its requests in arrival order
while the balance lasts, and the others hear False (insufficient balance) without failing
anyone else. A request whose claim finds its key taken is a repeat: neither charged nor
queued, it hears :class:`Repeated` with what the key holds.

On PostgreSQL the requests with no record of their own (an OpenVox send), and those whose
record is a replay record (an itniotech send, :meth:`OnceJob.record`), are batched apart and
written in one statement run in autocommit (store/messages.py ``insert_charged``, and
``insert_claimed`` when the batch holds replay records): one round trip to the server per
batch instead of BEGIN, the claims, a charge per account, the INSERT and COMMIT, the cost of
an accept there (issue 15). The statement writes a request's record, charge and rows
together or none of them. What it does not write is heard again through the batches above:
a repeat (they answer it with its record), a second copy of a fingerprint in the batch, and
every request of an account short of its sum (their charge covers them one by one in
arrival order); a lone request with no record that its account could not pay hears False.
Those batches too charge and insert with ``insert_charged``'s one statement on PostgreSQL,
inside their transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.records import NewMessage
from simgate.domain.values import value_type
from simgate.errors import StoreError
from simgate.services.gather import Gatherer
from simgate.store import Store
from simgate.store.accept_writes import ReplayRecord

# A batch is closed to new requests once it holds this many rows: it bounds one transaction
# (and the time a request that joins it waits) when bulk requests of 1 000 numbers pile up.
MAX_ROWS_PER_BATCH = 5_000

# The caller's own database work, committed with its messages.
CallerJob = Callable[[AsyncConnection], Awaitable[None]]


class OnceJob:
    """A caller's record that lets its request happen at most once (the itniotech replay
    rule, spec §7): a key written with the request's answer in the request's own
    transaction, before its charge, so the two commit together or not at all.

    ``claim_together`` writes the keys of the batch's jobs of one kind (one statement) and
    answers for each None when its key was free (written now: the request goes on), else
    what the key holds (a repeat). ``drop_together`` takes back the keys of requests the
    balance did not cover (refused: nothing of theirs is kept). ``written`` is told, with no
    database work of its own, once its request's rows are written beside its key: a plain
    call, not a coroutine awaited per request of the batch (issue 15).

    A base class, not a Protocol: ``isinstance`` against a runtime-checkable Protocol costs
    ~10 µs (it looks up every member), paid on every accept."""

    __slots__ = ()

    def written(self) -> None:
        raise NotImplementedError

    async def claim_together(self, conn: AsyncConnection, jobs: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    async def drop_together(self, conn: AsyncConnection, jobs: Sequence[Any]) -> None:
        raise NotImplementedError

    def record(self) -> ReplayRecord | None:
        """The key as a replay record written by the accept statement itself on PostgreSQL
        (store/messages.py ``insert_claimed``), or None: claimed through
        :meth:`claim_together` in a transaction."""
        return None


class Repeated(Exception):
    """The request's :class:`OnceJob` key was taken: nothing was charged or queued.
    ``found``: what the key holds (its ``claim_together`` answer)."""

    def __init__(self, found: object) -> None:
        super().__init__("this request was made before")
        self.found = found


@value_type  # one per accept (domain/values.py)
class AcceptJob:
    """One request's accept: charge ``total_micros`` to ``account_id``, queue ``rows``."""

    account_id: int
    total_micros: int
    rows: Sequence[NewMessage]
    now_ms: int
    also: CallerJob | OnceJob | None = None


class AcceptWriter:
    """Gathers the accepts of one process into batches (see the module docstring)."""

    def __init__(self, *, store: Store, max_rows: int = MAX_ROWS_PER_BATCH) -> None:
        self._store = store
        self._batches: Gatherer[AcceptJob, bool | Repeated] = Gatherer(
            db=store.db,
            write_many=self._write,
            max_size=max_rows,
            size_of=_rows_of,
            urgent=True,  # a request waits for each accept (store/write_lanes.py)
        )
        # PostgreSQL: the one-statement batches (module docstring). None answers "not
        # charged, with other requests of its account": written again through _batches.
        self._one_statement: Gatherer[AcceptJob, bool | None] | None = None
        if not store.db.is_sqlite:
            self._one_statement = Gatherer(
                db=store.db,
                write_many=self._write_one_statement,
                max_size=max_rows,
                size_of=_rows_of,
                urgent=True,
                autocommit=True,
            )

    async def accept(self, job: AcceptJob) -> bool:
        """Charge and queue ``job`` in the next batch; True once committed, False (nothing
        queued, nothing charged) when the account's balance does not cover it. Raises
        :class:`Repeated` when its :class:`OnceJob` finds its key taken."""
        if self._one_statement is not None and (
            job.also is None or (isinstance(job.also, OnceJob) and job.also.record() is not None)
        ):
            charged = await self._one_statement.write(job)
            if charged is not None:
                return charged
        result = await self._batches.write(job)
        if isinstance(result, Repeated):
            raise result
        return result

    async def _write(
        self, conn: AsyncConnection, jobs: Sequence[AcceptJob]
    ) -> list[bool | Repeated]:
        """Claim, charge, insert and run the callers' records of ``jobs``; which were
        charged, and which were repeats."""
        out: list[bool | Repeated] = [True] * len(jobs)
        live = list(range(len(jobs)))
        once = [i for i, j in enumerate(jobs) if isinstance(j.also, OnceJob)]
        if once:
            for i, found in (await _claim(conn, [(i, jobs[i].also) for i in once])).items():
                out[i] = Repeated(found)
            live = [i for i in live if out[i] is True]
        live_jobs = [jobs[i] for i in live]
        if self._one_statement is not None:
            # PostgreSQL: the charges and the INSERT of the requests going on are
            # insert_charged's one statement, here inside the batch's transaction.
            charged = await self._charge_and_insert(conn, live_jobs)
        else:
            charged = await self._charge(conn, live_jobs)
        kept: list[AcceptJob] = []
        refused: list[tuple[int, Any]] = []
        for i, ok in zip(live, charged, strict=True):
            out[i] = ok
            if ok:
                kept.append(jobs[i])
            elif isinstance(jobs[i].also, OnceJob):
                refused.append((i, jobs[i].also))
        if refused:
            await _drop(conn, refused)
        if self._one_statement is None:
            await self._store.messages.insert_many(conn, [(j.rows, j.now_ms) for j in kept])
        for job in kept:  # the callers' records in arrival order
            also = job.also
            if also is None:
                continue
            if isinstance(also, OnceJob):
                also.written()
            else:
                await also(conn)
        return out

    async def _charge_and_insert(
        self, conn: AsyncConnection, jobs: Sequence[AcceptJob]
    ) -> list[bool]:
        """PostgreSQL, in a transaction: :meth:`_write_one_statement`; an account that could
        not pay for several requests together pays for those it covers, in arrival order,
        and their rows are inserted after."""
        if not jobs:
            return []
        payers = sorted({j.account_id for j in jobs if j.total_micros > 0})
        if len(payers) > 1:
            # Every payer's row locked first, in id order (see _charge): the statement locks
            # those it charges, _charge_in_order after it those short of their sum, and two
            # processes could otherwise take two shared accounts in opposite orders. A rare
            # batch (repeats, a purge, an account short of its sum), so a look-up each.
            for account_id in payers:
                await self._store.accounts.spendable(conn, account_id)
        answers = await self._insert_charged(conn, jobs)
        again = [i for i, ok in enumerate(answers) if ok is None]
        charged = [ok is True for ok in answers]
        if again:
            by_account: dict[int, list[int]] = {}
            for i in again:
                by_account.setdefault(jobs[i].account_id, []).append(i)
            # In account id order, as every charge of a batch (see _charge).
            for account_id, indexes in sorted(by_account.items()):
                paid = await self._charge_in_order(conn, account_id, [jobs[i] for i in indexes])
                for i, ok in zip(indexes, paid, strict=True):
                    charged[i] = ok
            await self._store.messages.insert_many(
                conn, [(jobs[i].rows, jobs[i].now_ms) for i in again if charged[i]]
            )
        return charged

    async def _write_one_statement(
        self, conn: AsyncConnection, jobs: Sequence[AcceptJob]
    ) -> list[bool | None]:
        """PostgreSQL: charge one sum per account and insert the rows of the requests paid
        for, in one statement; True for those, False for a request its account could not
        pay alone, None for one of several its account could not pay together."""
        if any(isinstance(j.also, OnceJob) for j in jobs):
            return await self._write_claimed(conn, jobs)
        return await self._insert_charged(conn, jobs)

    async def _insert_charged(
        self, conn: AsyncConnection, jobs: Sequence[AcceptJob]
    ) -> list[bool | None]:
        """:meth:`_write_one_statement` for requests whose records (if any) are written
        apart: store/messages.py ``insert_charged``."""
        sums: dict[int, int] = {}
        paying: dict[int, int] = {}
        for j in jobs:
            if j.total_micros > 0:
                sums[j.account_id] = sums.get(j.account_id, 0) + j.total_micros
                paying[j.account_id] = paying.get(j.account_id, 0) + 1
        charged = await self._store.messages.insert_charged(
            conn,
            # By account id: concurrent batches lock the accounts they share in one order.
            sorted(sums.items()),
            [(j.rows, j.now_ms, j.account_id if j.total_micros > 0 else None) for j in jobs],
        )
        return [
            True
            if j.total_micros <= 0 or j.account_id in charged
            else (False if paying[j.account_id] == 1 else None)
            for j in jobs
        ]

    async def _write_claimed(
        self, conn: AsyncConnection, jobs: Sequence[AcceptJob]
    ) -> list[bool | None]:
        """:meth:`_write_one_statement` for a batch with replay records: claims, charges
        and rows in one statement (store/messages.py ``insert_claimed``). True for the
        requests written; None for a repeat, a second copy of a fingerprint in the batch,
        and every request of an account short of its sum here, heard again through the
        transactional batches (which answer a repeat with its record, and charge a short
        account's requests in arrival order); False for a lone request with no record its
        account could not pay."""
        out: list[bool | None] = [None] * len(jobs)
        groups: list[tuple[Sequence[NewMessage], int, int | None, int, ReplayRecord | None]] = []
        sent: list[tuple[int, ReplayRecord | None]] = []
        seen: set[str] = set()
        paying: dict[int, int] = {}
        for i, j in enumerate(jobs):
            record = j.also.record() if isinstance(j.also, OnceJob) else None
            if record is not None:
                if record[0] in seen:
                    continue
                seen.add(record[0])
            payer = j.account_id if j.total_micros > 0 else None
            if payer is not None:
                paying[payer] = paying.get(payer, 0) + 1
            amount = 0 if payer is None else j.total_micros
            groups.append((j.rows, j.now_ms, payer, amount, record))
            sent.append((i, record))
        charged, claimed = await self._store.messages.insert_claimed(conn, groups)
        for i, record in sent:
            j = jobs[i]
            if record is not None:
                if record[0] in claimed:  # written with its charge and rows
                    out[i] = True
            elif j.total_micros <= 0 or j.account_id in charged:
                out[i] = True
            elif paying[j.account_id] == 1:
                out[i] = False
        for i, ok in enumerate(out):
            also = jobs[i].also
            if ok and isinstance(also, OnceJob):  # no database work of its own
                also.written()
        return out

    async def _charge(self, conn: AsyncConnection, jobs: Sequence[AcceptJob]) -> list[bool]:
        """One charge per account; an account that cannot pay for all its requests pays for
        those it covers, in arrival order.

        Accounts are charged in id order, not in the order their requests came: on
        PostgreSQL each charge locks its account's row until the commit, and two processes'
        batches that lock two shared accounts in opposite orders deadlock (one of them is
        run again: store/batch_connections.py). Locks taken in one order never wait in a circle."""
        charged = [True] * len(jobs)
        by_account: dict[int, list[int]] = {}
        for i, j in enumerate(jobs):
            if j.total_micros > 0:
                by_account.setdefault(j.account_id, []).append(i)
        for account_id, indexes in sorted(by_account.items()):
            total = sum(jobs[i].total_micros for i in indexes)
            if await self._store.accounts.charge(conn, account_id, total):
                continue
            if len(indexes) == 1:
                charged[indexes[0]] = False
                continue
            paid = await self._charge_in_order(conn, account_id, [jobs[i] for i in indexes])
            for i, ok in zip(indexes, paid, strict=True):
                charged[i] = ok
        return charged

    async def _charge_in_order(
        self, conn: AsyncConnection, account_id: int, jobs: Sequence[AcceptJob]
    ) -> list[bool]:
        """Rare: the sum of ``jobs`` (one account's) is not covered. Read what the account
        may spend (its row locked on PostgreSQL) and charge the requests that fit, in the
        order they came; which were charged."""
        accounts = self._store.accounts
        left = await accounts.spendable(conn, account_id)
        charged: list[bool] = []
        covered = 0
        for job in jobs:
            if left is not None and job.total_micros <= left:
                left -= job.total_micros
                covered += job.total_micros
                charged.append(True)
            else:
                charged.append(False)
        if covered and not await accounts.charge(conn, account_id, covered):
            raise StoreError(f"account {account_id} changed during its charge")
        return charged


async def _claim(conn: AsyncConnection, jobs: Sequence[tuple[int, Any]]) -> dict[int, object]:
    """The claims of ``(index, once job)``, one ``claim_together`` per kind of job; the
    indexes whose key was taken, with what it holds."""
    taken: dict[int, object] = {}
    for kind in _kinds(jobs).values():
        answers = await kind[0][1].claim_together(conn, [job for _, job in kind])
        for (i, _), found in zip(kind, answers, strict=True):
            if found is not None:
                taken[i] = found
    return taken


async def _drop(conn: AsyncConnection, jobs: Sequence[tuple[int, Any]]) -> None:
    for kind in _kinds(jobs).values():
        await kind[0][1].drop_together(conn, [job for _, job in kind])


def _kinds(jobs: Sequence[tuple[int, Any]]) -> dict[type, list[tuple[int, Any]]]:
    kinds: dict[type, list[tuple[int, Any]]] = {}
    for i, job in jobs:
        kinds.setdefault(type(job), []).append((i, job))
    return kinds


def _rows_of(job: AcceptJob) -> int:
    return len(job.rows)
