"""The lease-based queue and submit results (README "How a message travels", step 2)."""

from __future__ import annotations

import asyncio
import contextlib
import functools

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import Event, State
from simgate.domain.queue import SubmitRecord
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Database
from simgate.store.messages import _RECORD_COLUMNS, _record_of
from simgate.store.tables import messages
from tests.support.driver_trace import asyncpg_ran, sqlite_ran, through_sqlalchemy

from .util import OWNER, PRICE, account, balance, get, lease, lease_of, ok, queue, record


async def test_insert_queues_with_charge_and_times(services: Services, runtime: Runtime) -> None:
    acc = await account(services, balance="1")
    (mid,) = await queue(runtime, acc, parts=3)
    m = await get(runtime.store, mid)
    now = services.clock.now_ms()
    assert m.state is State.QUEUED
    assert (m.attempts, m.parts, m.charge_micros, m.price_micros) == (0, 3, 3 * PRICE, PRICE)
    assert m.accepted_ms == m.queued_ms == m.updated_ms == now
    assert m.sent_ms is None
    assert await balance(services, acc) == 1_000_000 - 3 * PRICE


async def test_lease_takes_only_due_queued_rows_of_the_asked_lines(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    due = await queue(runtime, acc, 3)
    other_line = await queue(runtime, acc, 2, line="smpp")
    future = await queue(runtime, acc, 1)
    await record(services, [], now)  # nothing: no-op
    # Push one message into the future by a deferral, and one out of QUEUED (SENT).
    got = await lease(store, now, limit=100)
    assert [m.id for m in got] == sorted(due + future)
    await record(
        services,
        [
            SubmitRecord(future[0], Event.SUBMIT_RETRY, retry_at_ms=now + 60_000),
            SubmitRecord(due[0], Event.SUBMIT_RETRY, retry_at_ms=now),
            SubmitRecord(due[1], Event.SUBMIT_RETRY, retry_at_ms=now),
            ok(due[2]),
        ],
        now,
    )
    got = await lease(store, now + 1000, limit=100)
    assert [m.id for m in got] == [due[0], due[1]]
    m = got[0]
    assert (m.line, m.recipient, m.text, m.parts, m.attempts) == (
        "sim",
        "8613800138000",
        "hello",
        1,
        1,
    )
    assert m.report_requested
    assert await lease(store, now + 1000) == []
    smpp = await lease(store, now + 1000, lines=["smpp", "nothing"])
    assert sorted(m.id for m in smpp) == sorted(other_line)
    later = await lease(store, now + 60_000)
    assert [m.id for m in later] == future
    row = await get(store, future[0])
    assert row.state is State.SUBMITTING
    assert await lease_of(store, future[0]) == (OWNER, now + 60_000 + 30_000)
    assert row.submitting_ms == now + 60_000


async def test_lease_respects_limit_and_oldest_due_first(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    ids = await queue(runtime, acc, 7)
    first = await lease(store, now, limit=3)
    second = await lease(store, now, limit=3)
    third = await lease(store, now, limit=3)
    assert len(first) == 3
    assert len(second) == 3
    assert len(third) == 1
    assert sorted(m.id for m in first + second + third) == ids


async def test_concurrent_leases_never_share_a_row(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    ids = await queue(runtime, acc, 40)
    batches = await asyncio.gather(*(lease(store, now, owner=f"w{i}", limit=7) for i in range(8)))
    taken = [m.id for b in batches for m in b]
    assert len(taken) == len(set(taken)) == 40
    assert sorted(taken) == ids


async def test_two_databases_lease_disjoint_rows(
    services: Services, runtime: Runtime, backend: str
) -> None:
    """Two Database objects (two pools, as two processes have) lease while one holds its lock.

    On PostgreSQL the second lease skips the rows the first holds (SKIP LOCKED) without
    waiting; SQLite's BEGIN IMMEDIATE makes it wait for the first commit instead.
    """
    store, now = runtime.store, services.clock.now_ms()
    is_pg = backend.startswith("postgresql")
    acc = await account(services)
    ids = await queue(runtime, acc, 10)
    a, b = Database(backend), Database(backend)
    await a.open()
    await b.open()
    held, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: AsyncConnection) -> list[int]:
        got = await store.messages.lease(
            conn, lines=["sim"], owner="A", now_ms=now, lease_until_ms=now + 1, limit=4
        )
        held.set()
        await release.wait()  # keep the transaction (and its row locks) open
        return [m.id for m in got]

    job = functools.partial(
        store.messages.lease, lines=["sim"], owner="B", now_ms=now, lease_until_ms=now + 1, limit=10
    )
    try:
        task_a = asyncio.create_task(a.write(slow))
        await asyncio.wait_for(held.wait(), 5)
        task_b = asyncio.create_task(b.write(job))
        if is_pg:
            # Would time out if B waited for A's row locks.
            got_b = await asyncio.wait_for(task_b, 5)
            release.set()
        else:
            release.set()
            got_b = await asyncio.wait_for(task_b, 10)
        got_a = await asyncio.wait_for(task_a, 5)
    finally:
        release.set()
        await a.close()
        await b.close()
    ids_b = [m.id for m in got_b]
    assert len(got_a) == 4
    assert len(ids_b) == 6
    assert set(got_a).isdisjoint(ids_b)
    assert sorted(got_a + ids_b) == ids


async def test_submit_ok_creates_parts(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=3)
    await lease(store, now)
    await record(services, [ok(mid, 3, port=5)], now + 10)
    m = await get(store, mid)
    assert m.state is State.SENT
    assert (m.sent_ms, m.port, m.first_ref, m.parts_ok) == (now + 10, 5, 7, 3)
    assert await lease_of(store, mid) == (None, None)
    async with store.db.read() as conn:
        parts = await store.messages.parts_of(conn, mid)
    assert [(p["seq"], p["line_ref"], p["line"], p["port"]) for p in parts] == [
        (0, f"{mid}.0", "sim", 5),
        (1, f"{mid}.1", "sim", 5),
        (2, f"{mid}.2", "sim", 5),
    ]
    assert all(p["status_code"] is None for p in parts)


async def test_a_worker_batch_s_statements_run_straight_on_the_driver(
    services: Services, runtime: Runtime
) -> None:
    """The lease, the submit answers and the parts' INSERT of a worker batch run straight on
    the driver (store/driver_sql.py), none through SQLAlchemy: on SQLite's write connection
    on its cursor (through SQLAlchemy each cost ~50 µs of the event loop's CPU, issue 15), on
    PostgreSQL on asyncpg's connection in the adapter's transaction (~65 µs more each through
    SQLAlchemy); the rows as before (test_submit_ok_creates_parts)."""
    store, now = runtime.store, services.clock.now_ms()
    db = store.db
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=2)
    ran: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if db.is_sqlite:
            ran = await stack.enter_async_context(sqlite_ran(db))
        else:
            await stack.enter_async_context(asyncpg_ran(db, ran))
        sent = stack.enter_context(through_sqlalchemy(db))
        assert [m.id for m in await lease(store, now)] == [mid]
        await record(services, [ok(mid, 2, port=5)], now + 10)

    def kinds(statements: list[str]) -> list[str]:
        wanted = (
            "UPDATE MESSAGES SET",
            "UPDATE MESSAGES AS T SET",
            "INSERT INTO MESSAGE_PARTS",
            "WITH DUE AS MATERIALIZED",
        )
        out = [w for s in statements for w in wanted if s.upper().startswith(w)]
        parts = "WITH ... INSERT INTO MESSAGE_PARTS"
        out += [parts for s in statements if s.startswith("WITH") and wanted[2] in s.upper()]
        return out

    if db.is_sqlite:  # the lease, the answer, then the INSERT (once per row: two parts)
        done = ["UPDATE MESSAGES SET", "UPDATE MESSAGES AS T SET"]
        assert kinds(ran) == [*done, *["INSERT INTO MESSAGE_PARTS"] * 2]
    else:  # the lease a WITH ... UPDATE there, the parts one INSERT of arrays in a WITH
        assert kinds(ran) == [
            "WITH DUE AS MATERIALIZED",
            "UPDATE MESSAGES AS T SET",
            "WITH ... INSERT INTO MESSAGE_PARTS",
        ]
    assert kinds(sent) == []
    m = await get(store, mid)
    assert (m.state, m.sent_ms, m.port, m.parts_ok) == (State.SENT, now + 10, 5, 2)


async def test_submit_retry_requeues_with_due_time_and_attempts(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    a, b, c = await queue(runtime, acc, 3)
    await lease(store, now)
    await record(
        services,
        [
            SubmitRecord(a, Event.SUBMIT_RETRY, retry_at_ms=now + 5000, error_text="throttled"),
            SubmitRecord(b, Event.SUBMIT_RETRY, retry_at_ms=now + 100, count_attempt=False),
            SubmitRecord(c, Event.SUBMIT_RETRY, retry_at_ms=now + 100, line="backup"),
        ],
        now,
    )
    ma, mb, mc = [await get(store, x) for x in (a, b, c)]
    assert (ma.state, ma.attempts, ma.error_text) == (State.QUEUED, 1, "throttled")
    assert (mb.state, mb.attempts, mb.line) == (State.QUEUED, 0, "sim")
    assert (mc.state, mc.attempts, mc.line) == (State.QUEUED, 1, "backup")
    assert [m.id for m in await lease(store, now + 4999)] == [b]
    assert [m.id for m in await lease(store, now + 5000)] == [a]
    assert [m.id for m in await lease(store, now + 5000, lines=["backup"])] == [c]


async def test_rejected_is_refunded_failed_is_not(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services, balance="1")
    rejected, failed = await queue(runtime, acc, 2, parts=2)
    assert await balance(services, acc) == 1_000_000 - 4 * PRICE
    await lease(store, now)
    await record(
        services,
        [
            SubmitRecord(rejected, Event.SUBMIT_REJECTED, status_code=65, error_text="barred"),
            SubmitRecord(failed, Event.SUBMIT_FAILED, error_text="attempts spent"),
        ],
        now,
    )
    r, f = await get(store, rejected), await get(store, failed)
    assert (r.state, r.status_code, r.error_text, r.charge_micros) == (
        State.REJECTED, 65, "barred", 0,
    )  # fmt: skip
    assert r.rejected_ms == now
    assert (f.state, f.charge_micros) == (State.FAILED, 2 * PRICE)
    assert f.failed_ms == now
    assert await balance(services, acc) == 1_000_000 - 2 * PRICE


async def test_record_after_lost_lease_changes_nothing(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services, balance="1")
    a, b = await queue(runtime, acc, 2)
    await lease(store, now, owner="old", lease_ms=1000)
    # The old worker's lease expires; the reaper resends; a new worker leases them.
    await services.messaging.reap(now_ms=now + 2000, resend=True)
    await lease(store, now + 2000, owner="new")
    before = await balance(services, acc)
    await record(
        services,
        [SubmitRecord(a, Event.SUBMIT_REJECTED), SubmitRecord(b, Event.SUBMIT_RETRY)],
        now + 3000,
        owner="old",
    )
    await record(services, [ok(a)], now + 3000, owner="old")
    for mid in (a, b):
        m = await get(store, mid)
        assert m.state is State.SUBMITTING
        assert (await lease_of(store, mid))[0] == "new"
        assert m.attempts == 0
    assert await balance(services, acc) == before
    async with store.db.read() as conn:
        assert await store.messages.parts_of(conn, a) == []


async def test_late_ok_resolves_unknown(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    await lease(store, now, lease_ms=1000)
    assert await services.messaging.reap(now_ms=now + 2000, resend=False) == 1
    assert (await get(store, mid)).state is State.UNKNOWN
    await record(services, [ok(mid)], now + 3000)
    m = await get(store, mid)
    assert m.state is State.SENT
    assert m.unknown_ms == now + 2000
    assert m.sent_ms == now + 3000
    # A late failure from anyone but the worker whose lease lapsed is not applied to UNKNOWN
    # (only a success resolves it for anyone)...
    (other,) = await queue(runtime, acc)
    await lease(store, now + 3000, lease_ms=1000)
    await services.messaging.reap(now_ms=now + 5000, resend=False)
    rejected = [SubmitRecord(other, Event.SUBMIT_REJECTED)]
    await record(services, rejected, now + 6000, owner="worker-b")
    assert (await get(store, other)).state is State.UNKNOWN
    # ...but that worker's is: it kept the line's answers through a database outage longer
    # than the lease (issue 14 item 4), and the line said it never left.
    await record(services, rejected, now + 6000)
    assert (await get(store, other)).state is State.REJECTED


async def test_get_reads_what_a_core_select_reads(services: Services, runtime: Runtime) -> None:
    """``MessageRepo.get`` sends positional SQL to the driver (getReport's speed, issue 15):
    the records are those of a plain Core select on both backends, types included."""
    acc = await account(services)
    ids = await queue(runtime, acc, 3, parts=2)
    ids += await queue(runtime, acc, 2, report_requested=False)
    wanted = [ids[4], 999, ids[0], ids[2], ids[1], ids[3]]
    store = runtime.store
    async with store.db.read() as conn:
        fast = await store.messages.get(conn, wanted)
        core = await conn.execute(select(*_RECORD_COLUMNS).where(messages.c.id.in_(wanted)))
        expected = sorted((_record_of(r) for r in core), key=lambda r: r.id)
    assert fast == expected
    assert [r.id for r in fast] == sorted(ids)
    assert {r.report_requested for r in fast} == {True, False}
    assert all(type(r.report_requested) is bool for r in fast)
