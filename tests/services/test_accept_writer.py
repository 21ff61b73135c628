"""Group commit of the accept path (services/accept_writer.py, issue 15): concurrent accepts
share one transaction with one charge per account and one INSERT, and each request still gets
its own answer and its own error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StoreError
from simgate.services.accept_writer import AcceptJob, AcceptWriter, OnceJob, Repeated
from simgate.services.container import Services
from simgate.services.itnio import Claim, NewAnswered, ReplayClaim
from simgate.store import Store
from simgate.store.dialects.itnio import ReplayRepo
from simgate.store.tables import itnio_replays, messages
from tests.support.driver_trace import asyncpg_ran, sqlite_ran, through_sqlalchemy
from tests.support.new_messages import PRICE, accept_job


class Statements:
    """What the write path ran: commits, and statements by their first words.

    ``sql``: what SQLAlchemy's engine sent (its ``before_cursor_execute`` event). ``ran``:
    on SQLite, what the write connection's sqlite3 ran (its trace), with BEGIN and COMMIT,
    one entry per row of an executemany: the accept batch's charges and INSERT run
    straight on the driver (store/driver_sql.py), out of the engine's sight. :meth:`count`
    reads what the database ran: ``ran`` on SQLite, ``sql`` on PostgreSQL."""

    def __init__(self, *, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.commits = 0
        self.sql: list[str] = []
        self.ran: list[str] = []

    def count(self, prefix: str) -> int:
        return sum(
            1 for s in (self.ran if self.sqlite else self.sql) if s.upper().startswith(prefix)
        )

    def through_sqlalchemy(self, prefix: str) -> int:
        return sum(1 for s in self.sql if s.upper().startswith(prefix))

    def transactions(self) -> list[list[str]]:
        """SQLite: the statements of each transaction the write connection ran."""
        out: list[list[str]] = []
        for s in self.ran:
            if s.upper().startswith("BEGIN"):
                out.append([])
            elif s.upper() != "COMMIT" and out:
                out[-1].append(s)
        return out


@contextlib.asynccontextmanager
async def watched(store: Store) -> AsyncIterator[Statements]:
    """Enter it before a write is held (on SQLite it reads the write connection: a write)."""
    db = store.db
    seen = Statements(sqlite=db.is_sqlite)
    engine = db.engine.sync_engine

    def on_commit(_conn: Any) -> None:
        seen.commits += 1

    async with contextlib.AsyncExitStack() as stack:
        if db.is_sqlite:
            seen.ran = await stack.enter_async_context(sqlite_ran(db))
        seen.sql = stack.enter_context(through_sqlalchemy(db))
        if not db.is_sqlite:  # the one-statement accepts run straight on asyncpg
            await stack.enter_async_context(asyncpg_ran(db, seen.sql))
            await stack.enter_async_context(asyncpg_ran(db, seen.ran))
        event.listen(engine, "commit", on_commit)
        try:
            yield seen
        finally:
            event.remove(engine, "commit", on_commit)


async def _stored_ids(store: Store) -> list[int]:
    async with store.db.read() as conn:
        return list((await conn.execute(select(messages.c.id).order_by(messages.c.id))).scalars())


async def _balance(services: Services, account_id: int) -> int:
    return (await services.accounts.get_account(account_id)).balance_micros


ONE_STATEMENT = "WITH CHARGED AS (UPDATE ACCOUNTS"  # store/messages.py insert_charged


async def test_concurrent_accepts_are_one_transaction_one_charge_one_insert(
    services: Services, store: Store
) -> None:
    """On SQLite: one transaction, one charge per account, one INSERT. On PostgreSQL the
    batch is one statement in autocommit (one round trip: no BEGIN, no COMMIT)."""
    a = await services.accounts.create_account(name="a", balance="10")
    b = await services.accounts.create_account(name="b", balance="10")
    writer = AcceptWriter(store=store)
    jobs = [accept_job(a.id if i % 2 else b.id, 100 + 10 * i, count=i % 3 + 1) for i in range(20)]
    async with watched(store) as seen:
        results = await asyncio.gather(*(writer.accept(j) for j in jobs))
    assert results == [True] * 20
    if store.db.is_sqlite:
        assert seen.commits == 1
        assert seen.count("UPDATE ACCOUNTS") == 2  # one charge per account
        # One INSERT, run by sqlite3 once per row (an executemany), in that transaction.
        assert seen.transactions() == [
            [s for s in seen.ran if not s.startswith(("BEGIN", "COMMIT"))]
        ]
        assert seen.count("INSERT INTO MESSAGES") == sum(len(j.rows) for j in jobs)
        # Straight on the write connection, not through SQLAlchemy (store/driver_sql.py).
        assert seen.through_sqlalchemy("UPDATE") == seen.through_sqlalchemy("INSERT") == 0
    else:
        assert seen.commits == 0
        assert len(seen.sql) == seen.count(ONE_STATEMENT) == 1
        # Straight on asyncpg's connection in autocommit (store/driver_sql.py).
        assert [s.upper().startswith(ONE_STATEMENT) for s in seen.ran] == [True]
    assert await _stored_ids(store) == sorted(m.id for j in jobs for m in j.rows)
    spent_a = sum(j.total_micros for j in jobs if j.account_id == a.id)
    assert await _balance(services, a.id) == 10_000_000 - spent_a


async def test_a_lone_accept_is_written_at_once(services: Services, store: Store) -> None:
    """Low load: no window to wait for; each accept that finds the writer free is its own
    transaction, as before group commit."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    async with watched(store) as seen:
        for i in range(3):
            assert await writer.accept(accept_job(a.id, 100 + i))
    if store.db.is_sqlite:
        assert seen.commits == 3
    else:
        assert len(seen.sql) == seen.count(ONE_STATEMENT) == 3
    assert await _stored_ids(store) == [100, 101, 102]


async def test_requests_arriving_while_a_batch_runs_form_the_next_batch(
    services: Services, store: Store
) -> None:
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    running, release = asyncio.Event(), asyncio.Event()

    async def slow(_conn: AsyncConnection) -> None:
        running.set()
        await release.wait()

    async with watched(store) as seen:  # before: it reads the write connection (a write)
        first = asyncio.ensure_future(writer.accept(accept_job(a.id, 100, also=slow)))
        await running.wait()  # the first batch is inside its transaction
        later = [asyncio.ensure_future(writer.accept(accept_job(a.id, 200 + i))) for i in range(5)]
        await asyncio.sleep(0)
        release.set()
        assert await first
        assert await asyncio.gather(*later) == [True] * 5
    if store.db.is_sqlite:
        assert seen.commits == 2  # the first batch, then the five that queued meanwhile
        inserts = [
            sum(1 for s in statements if s.upper().startswith("INSERT INTO MESSAGES"))
            for statements in seen.transactions()
        ]
        assert inserts == [1, 5]  # the five in one INSERT (sqlite3 runs it once per row)
    else:  # the first (a caller's record: a transaction), then the five in one statement
        assert seen.commits == 1
        assert seen.count(ONE_STATEMENT) == 2  # the first's in its transaction, the five's


async def test_insufficient_balance_refuses_only_the_requests_it_does_not_cover(
    services: Services, store: Store
) -> None:
    """Balance for three messages, four requests of one (and one of two) in one batch: those
    covered in arrival order are charged, the others hear False; another account is not
    touched by it."""
    poor = await services.accounts.create_account(name="poor", balance="0.03")
    rich = await services.accounts.create_account(name="rich", balance="10")
    writer = AcceptWriter(store=store)
    jobs = [
        accept_job(poor.id, 100),
        accept_job(poor.id, 110, count=2),
        accept_job(rich.id, 120),
        accept_job(poor.id, 130),
        accept_job(poor.id, 140),
    ]
    async with watched(store) as seen:
        results = await asyncio.gather(*(writer.accept(j) for j in jobs))
    assert results == [True, True, True, False, False]
    assert seen.commits == 1
    assert await _balance(services, poor.id) == 0
    assert await _balance(services, rich.id) == 10_000_000 - PRICE
    assert await _stored_ids(store) == [100, 110, 111, 120]


async def test_accounts_are_charged_in_id_order_not_arrival_order(
    services: Services, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two accounts short of their sums, the one with the higher id first in the batch: each
    account is first locked (looked at or charged) in id order. Two processes' batches that
    took two shared accounts in arrival order could lock them in opposite orders and
    deadlock on PostgreSQL."""
    low = await services.accounts.create_account(name="low", balance=str(PRICE / 10**6))
    high = await services.accounts.create_account(name="high", balance=str(PRICE / 10**6))
    assert low.id < high.id
    touched: list[int] = []
    accounts = store.accounts
    charge, spendable = accounts.charge, accounts.spendable

    async def charging(conn: AsyncConnection, account_id: int, amount: int) -> bool:
        touched.append(account_id)
        return await charge(conn, account_id, amount)

    async def looking(conn: AsyncConnection, account_id: int) -> int | None:
        touched.append(account_id)
        return await spendable(conn, account_id)

    monkeypatch.setattr(accounts, "charge", charging)
    monkeypatch.setattr(accounts, "spendable", looking)

    async def recorded(_conn: AsyncConnection) -> None:  # a transaction on PostgreSQL too
        return None

    writer = AcceptWriter(store=store)
    jobs = [
        accept_job(high.id, 100, also=recorded),
        accept_job(low.id, 110, also=recorded),
        accept_job(high.id, 120, also=recorded),
        accept_job(low.id, 130, also=recorded),
    ]
    results = await asyncio.gather(*(writer.accept(j) for j in jobs))
    assert results == [True, True, False, False]  # each account covers its first request
    assert list(dict.fromkeys(touched)) == [low.id, high.id]
    assert await _stored_ids(store) == [100, 110]


async def test_a_bad_request_fails_alone(services: Services, store: Store) -> None:
    """A row that cannot be inserted (its id exists) fails its own request; the batch is
    split and the others commit, charged once each."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    assert await writer.accept(accept_job(a.id, 100))
    jobs = [accept_job(a.id, 200), accept_job(a.id, 99, count=2), accept_job(a.id, 300)]
    results = await asyncio.gather(*(writer.accept(j) for j in jobs), return_exceptions=True)
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], IntegrityError)
    assert await _stored_ids(store) == [100, 200, 300]
    assert await _balance(services, a.id) == 10_000_000 - 3 * PRICE


async def test_a_callers_record_that_fails_fails_its_request_alone(
    services: Services, store: Store
) -> None:
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    ran: list[int] = []

    def record(n: int) -> Any:
        async def job(_conn: AsyncConnection) -> None:
            if n == 2:
                raise StoreError("this request's replay claim was taken over")
            ran.append(n)

        return job

    jobs = [accept_job(a.id, 100 * n, also=record(n)) for n in (1, 2, 3)]
    results = await asyncio.gather(*(writer.accept(j) for j in jobs), return_exceptions=True)
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], StoreError)
    assert await _stored_ids(store) == [100, 300]
    assert ran[-2:] == [1, 3]  # committed runs, in arrival order
    assert await _balance(services, a.id) == 10_000_000 - 2 * PRICE


async def test_a_full_batch_closes_and_the_rest_go_in_the_next(
    services: Services, store: Store
) -> None:
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store, max_rows=4)
    jobs = [accept_job(a.id, 100 + 10 * i, count=2) for i in range(5)]
    async with watched(store) as seen:
        assert await asyncio.gather(*(writer.accept(j) for j in jobs)) == [True] * 5
    # 2 + 2 rows fill a batch: three batches (on SQLite, which the database commits together).
    # One charge of the account per batch on SQLite (whose INSERTs sqlite3 runs per row).
    written = "UPDATE ACCOUNTS" if store.db.is_sqlite else ONE_STATEMENT
    assert seen.count(written) == 3
    assert len(await _stored_ids(store)) == 10


@pytest.mark.parametrize("count", [1, 3])
async def test_zero_priced_requests_charge_nothing(
    services: Services, store: Store, count: int
) -> None:
    a = await services.accounts.create_account(name="a", balance="0")
    writer = AcceptWriter(store=store)
    jobs = [accept_job(a.id, 100 + i, total_micros=0, now_ms=1) for i in range(count)]
    async with watched(store) as seen:
        assert await asyncio.gather(*(writer.accept(j) for j in jobs)) == [True] * count
    assert seen.count("UPDATE ACCOUNTS") == 0
    async with store.db.read() as conn:
        n = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
    assert n == count


class KeyOnce(OnceJob):
    """A once-job over an in-memory key book (a fake of the replay records): a key already
    in the book, or twice in a batch, is a repeat. It notes every call, so a test sees one
    claim per batch and which requests' keys were taken back."""

    def __init__(self, book: dict[str, str], log: list[tuple[str, list[str]]], key: str) -> None:
        self.book = book
        self.log = log
        self.key = key

    def written(self) -> None:
        self.log.append(("written", [self.key]))

    async def claim_together(self, _conn: AsyncConnection, jobs: Sequence[KeyOnce]) -> list[Any]:
        self.log.append(("claim", [j.key for j in jobs]))
        found: list[Any] = []
        for j in jobs:
            if j.key in self.book:
                found.append(self.book[j.key])
            else:
                self.book[j.key] = f"answer {j.key}"
                found.append(None)
        return found

    async def drop_together(self, _conn: AsyncConnection, jobs: Sequence[KeyOnce]) -> None:
        self.log.append(("drop", [j.key for j in jobs]))
        for j in jobs:
            del self.book[j.key]


async def test_once_jobs_are_claimed_together_and_repeats_are_neither_charged_nor_queued(
    services: Services, store: Store
) -> None:
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    book = {"old": "answer old"}
    log: list[tuple[str, list[str]]] = []
    jobs = [
        accept_job(a.id, 100, also=KeyOnce(book, log, "k1")),
        accept_job(a.id, 110, also=KeyOnce(book, log, "old")),
        accept_job(a.id, 120),
        accept_job(a.id, 130, also=KeyOnce(book, log, "k1")),
        accept_job(a.id, 140, also=KeyOnce(book, log, "k2")),
    ]
    results = await asyncio.gather(*(writer.accept(j) for j in jobs), return_exceptions=True)
    assert results[0] is results[2] is results[4] is True
    repeats = [r.found for r in results if isinstance(r, Repeated)]
    assert repeats == ["answer old", "answer k1"]  # requests 1 and 3
    assert log == [
        ("claim", ["k1", "old", "k1", "k2"]),
        ("written", ["k1"]),
        ("written", ["k2"]),
    ]
    assert await _stored_ids(store) == [100, 120, 140]
    assert await _balance(services, a.id) == 10_000_000 - 3 * PRICE


async def test_a_refused_request_s_once_key_is_taken_back(services: Services, store: Store) -> None:
    """The balance covers the first two requests only: the third is refused and its key
    dropped, so a later copy of it is not a repeat."""
    a = await services.accounts.create_account(name="a", balance=str(2 * PRICE / 1_000_000))
    writer = AcceptWriter(store=store)
    book: dict[str, str] = {}
    log: list[tuple[str, list[str]]] = []
    jobs = [accept_job(a.id, 100 + 10 * n, also=KeyOnce(book, log, f"k{n}")) for n in range(3)]
    assert await asyncio.gather(*(writer.accept(j) for j in jobs)) == [True, True, False]
    assert ("drop", ["k2"]) in log
    assert sorted(book) == ["k0", "k1"]
    assert await _stored_ids(store) == [100, 110]


async def _down_to_the_credit_line(
    services: Services,
    store: Store,
    priced: Callable[[int, int, int], AcceptJob],
) -> tuple[Statements, list[str]]:
    """Four lone accepts, ids 100-103, ``priced(account, first id, total micros)``, of an
    account with 1 of balance, 0.3 of gift and a credit line of 0.5: the gift is spent
    first, then the balance down to -0.5, and the fourth (a micro past it) is refused.
    Returns the statements of the four accepts, and those before the refused one."""
    a = await services.accounts.create_account(name="a", balance="1", credit="0.5")
    await services.accounts.topup(a.id, amount="0.3", gift=True)
    writer = AcceptWriter(store=store)

    async def after(first_id: int, total: int) -> tuple[bool, int, int]:
        ok = await writer.accept(priced(a.id, first_id, total))
        x = await services.accounts.get_account(a.id)
        return ok, x.gift_micros, x.balance_micros

    async with watched(store) as seen:
        assert await after(100, 200_000) == (True, 100_000, 1_000_000)
        assert await after(101, 300_000) == (True, 0, 800_000)
        assert await after(102, 1_300_000) == (True, 0, -500_000)
        paid = list(seen.sql)
        assert await after(103, 1) == (False, 0, -500_000)
    return seen, paid


async def test_an_accept_charges_the_gift_first_down_to_the_credit_line_in_one_statement(
    services: Services, store: Store
) -> None:
    """The accept's charge is store/accounts.py ``charge``'s (tests/store/test_charge.py):
    the gift first, then the balance down to minus the credit line and not a micro further.
    On PostgreSQL each lone accept, paid or refused, is one statement and no transaction."""
    seen, _ = await _down_to_the_credit_line(
        services, store, lambda a, i, total: accept_job(a, i, total_micros=total, now_ms=1)
    )
    assert await _stored_ids(store) == [100, 101, 102]
    if not store.db.is_sqlite:
        assert seen.commits == 0
        writes = [sql for sql in seen.sql if not sql.startswith("SELECT")]  # get_account's
        assert len(writes) == seen.count(ONE_STATEMENT) == 4


# ---- itniotech sends: the replay record in the accept statement (PostgreSQL) -------------

ONE_CLAIMED = "WITH JOB AS MATERIALIZED"  # store/messages.py insert_claimed


def _sent(
    account_id: int,
    first_id: int,
    fp: str,
    *,
    count: int = 1,
    ran: list[str] | None = None,
    purge: bool = False,
    **kw: Any,
) -> AcceptJob:
    """An itniotech send's accept: its replay claim (services/itnio.py ``ReplayClaim``)
    answers "answer <fp>#<first id>"; ``ran`` hears its fingerprint once its rows are
    written beside the claim (``kw``: the job's price and time)."""
    claim = NewAnswered(fp, 10**13, 1_000, f"answer {fp}#{first_id}")
    once = ReplayClaim(
        ReplayRepo(), claim, purge, lambda: ran.append(fp) if ran is not None else None
    )
    return accept_job(account_id, first_id, count=count, also=once, **kw)


async def _records(store: Store) -> dict[str, str | None]:
    async with store.db.read() as conn:
        rows = await conn.execute(select(itnio_replays.c.fingerprint, itnio_replays.c.response))
        return {fp: response for fp, response in rows}


def _found(result: object) -> object:
    """An accept's result, or the recorded answer a repeat heard."""
    if isinstance(result, Repeated) and isinstance(result.found, Claim):
        return result.found.response
    return result


async def test_concurrent_sends_with_replay_records_are_one_statement(
    services: Services, store: Store
) -> None:
    """On PostgreSQL a batch of itniotech sends is one statement in autocommit: their
    replay records, one charge per account and their rows, no BEGIN or COMMIT. On SQLite
    one transaction. Every record holds its own send's answer."""
    a = await services.accounts.create_account(name="a", balance="10")
    b = await services.accounts.create_account(name="b", balance="10")
    writer = AcceptWriter(store=store)
    ran: list[str] = []
    jobs = [
        _sent(a.id if i % 2 else b.id, 100 + 10 * i, f"f{i}", count=i % 3 + 1, ran=ran)
        for i in range(20)
    ]
    async with watched(store) as seen:
        results = await asyncio.gather(*(writer.accept(j) for j in jobs))
    assert results == [True] * 20
    if store.db.is_sqlite:
        assert seen.commits == 1
    else:
        assert seen.commits == 0
        assert len(seen.sql) == seen.count(ONE_CLAIMED) == 1
    assert ran == [f"f{i}" for i in range(20)]
    assert await _records(store) == {f"f{i}": f"answer f{i}#{100 + 10 * i}" for i in range(20)}
    assert await _stored_ids(store) == sorted(m.id for j in jobs for m in j.rows)
    for acc in (a, b):
        spent = sum(j.total_micros for j in jobs if j.account_id == acc.id)
        assert await _balance(services, acc.id) == 10_000_000 - spent


async def test_repeats_beside_new_sends_are_neither_charged_nor_queued(
    services: Services, store: Store
) -> None:
    """A send whose fingerprint is recorded, and a second copy within the batch, hear the
    recorded answer, pay nothing and queue nothing; the new sends beside them (and an
    OpenVox-like accept with no record) are written. On PostgreSQL the new ones are the
    one statement and the repeats a transaction that only reads their records."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    assert await writer.accept(_sent(a.id, 50, "old"))
    jobs = [
        _sent(a.id, 100, "k1"),
        _sent(a.id, 110, "old"),
        accept_job(a.id, 120),
        _sent(a.id, 130, "k1"),
        _sent(a.id, 140, "k2"),
    ]
    async with watched(store) as seen:
        results = await asyncio.gather(*(writer.accept(j) for j in jobs), return_exceptions=True)
    assert [_found(r) for r in results] == [True, "answer old#50", True, "answer k1#100", True]
    assert await _stored_ids(store) == [50, 100, 120, 140]
    assert await _balance(services, a.id) == 10_000_000 - 4 * PRICE
    assert await _records(store) == {
        "old": "answer old#50",
        "k1": "answer k1#100",
        "k2": "answer k2#140",
    }
    if not store.db.is_sqlite:
        assert seen.count(ONE_CLAIMED) == 1
        assert seen.commits == 1  # the repeats' batch
        assert seen.count("UPDATE ACCOUNTS") == seen.count("INSERT INTO MESSAGES") == 0


async def test_an_account_short_of_its_sum_is_charged_in_arrival_order(
    services: Services, store: Store
) -> None:
    """The balance covers two of the three sends of one account in a batch: the statement
    writes none of them (their records neither), and the transactional batch charges the
    first two in arrival order and refuses the third, whose record is taken back. Another
    account's send in the same batch is written by the statement."""
    poor = await services.accounts.create_account(name="poor", balance=str(2 * PRICE / 10**6))
    rich = await services.accounts.create_account(name="rich", balance="10")
    writer = AcceptWriter(store=store)
    jobs = [
        _sent(poor.id, 100, "p0"),
        _sent(rich.id, 110, "r0"),
        _sent(poor.id, 120, "p1"),
        _sent(poor.id, 130, "p2"),
    ]
    async with watched(store) as seen:
        results = await asyncio.gather(*(writer.accept(j) for j in jobs))
    assert results == [True, True, True, False]
    assert await _stored_ids(store) == [100, 110, 120]
    assert sorted(await _records(store)) == ["p0", "p1", "r0"]
    assert await _balance(services, poor.id) == 0
    assert await _balance(services, rich.id) == 10_000_000 - PRICE
    if not store.db.is_sqlite:
        assert seen.count(ONE_CLAIMED) == 1
        assert seen.commits == 1  # poor's three, in a transaction


async def test_a_send_charges_the_gift_first_down_to_the_credit_line_in_one_statement(
    services: Services, store: Store
) -> None:
    """insert_claimed charges as store/accounts.py ``charge`` does (tests/store/
    test_charge.py): the gift first, then the balance down to minus the credit line. On
    PostgreSQL each lone paid send is one statement, no transaction; the refused one is
    then heard again in a transaction, which takes its record back."""
    seen, paid = await _down_to_the_credit_line(
        services, store, lambda a, i, total: _sent(a, i, f"g{i}", total_micros=total, now_ms=1)
    )
    assert await _stored_ids(store) == [100, 101, 102]
    assert sorted(await _records(store)) == ["g100", "g101", "g102"]
    if not store.db.is_sqlite:
        writes = [sql for sql in paid if not sql.startswith("SELECT")]  # get_account's
        assert len(writes) == seen.count(ONE_CLAIMED) - 1 == 3
        assert seen.commits == 1


async def test_a_failing_send_beside_others_takes_nothing_from_them(
    services: Services, store: Store
) -> None:
    """A send whose row cannot be inserted (its id exists) fails alone, and its record is
    not kept; the sends of its batch are written with their records, charged once each."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    assert await writer.accept(accept_job(a.id, 99))
    jobs = [_sent(a.id, 200, "x"), _sent(a.id, 98, "bad", count=2)]
    jobs.append(_sent(a.id, 300, "y"))
    results = await asyncio.gather(*(writer.accept(j) for j in jobs), return_exceptions=True)
    assert results[0] is True
    assert results[2] is True
    assert isinstance(results[1], IntegrityError)
    assert await _stored_ids(store) == [99, 200, 300]
    assert sorted(await _records(store)) == ["x", "y"]
    assert await _balance(services, a.id) == 10_000_000 - 3 * PRICE


async def test_a_send_that_purges_expired_records_is_a_transaction(
    services: Services, store: Store
) -> None:
    """Once a minute a send first drops the expired replay records: a statement of its own,
    so on PostgreSQL that send's batch is a transaction (claims, then the accept)."""
    a = await services.accounts.create_account(name="a", balance="10")
    writer = AcceptWriter(store=store)
    async with watched(store) as seen:
        assert await writer.accept(_sent(a.id, 100, "p", purge=True))
    assert await _records(store) == {"p": "answer p#100"}
    assert seen.commits == 1
    assert seen.count(ONE_CLAIMED) == 0
