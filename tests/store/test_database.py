"""Group commit and id blocks on both backends."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import sqlite3
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StorageFull, StoreError
from simgate.secretbox import SecretBox
from simgate.services.container import Services
from simgate.store import Database, Store
from simgate.store.database import is_storage_full
from simgate.store.tables import kv


def _put(key: str, value: str) -> Any:
    async def job(conn: AsyncConnection) -> str:
        await conn.execute(insert(kv).values(key=key, value=value))
        return key

    return job


async def _keys(store: Store) -> set[str]:
    async with store.db.read() as conn:
        return {r.key for r in await conn.execute(select(kv.c.key))}


async def test_concurrent_writes_all_commit_in_shared_transactions(store: Store) -> None:
    db = store.db
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine.sync_engine, "commit", on_commit)
    try:
        results = await asyncio.gather(*(db.write(_put(f"k{i}", "v")) for i in range(300)))
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)
    assert results == [f"k{i}" for i in range(300)]
    assert await _keys(store) == {f"k{i}" for i in range(300)}
    assert 1 <= commits < 300  # shared commits: group commit happened


async def test_submit_queues_the_job_before_the_caller_yields(store: Store) -> None:
    """A submitted job is ahead of every write started after it in the same step, and its
    future resolves once committed, whether or not anybody awaits it meanwhile."""
    db = store.db
    order: list[str] = []

    def noted(key: str) -> Any:
        async def job(conn: AsyncConnection) -> str:
            order.append(key)
            written: str = await _put(key, "v")(conn)
            return written

        return job

    later = asyncio.ensure_future(db.write(noted("written")))  # queued when it first runs
    first = db.submit(noted("submitted"))
    assert list(await asyncio.gather(later, first)) == ["written", "submitted"]
    assert order == ["submitted", "written"]
    assert await _keys(store) == {"written", "submitted"}


class Held:
    """The writer kept busy by one job until released, and the order in which later jobs
    ran and their transactions committed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.order: list[str] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        event.listen(db.engine.sync_engine, "commit", self._committed)

    def _committed(self, _conn: Any) -> None:
        self.order.append("COMMIT")

    async def hold(self, conn: AsyncConnection) -> None:
        self.started.set()
        await self.gate.wait()

    def job(self, key: str) -> Any:
        async def run(conn: AsyncConnection) -> str:
            self.order.append(key)
            written: str = await _put(key, "v")(conn)
            return written

        return run

    def done(self) -> None:
        event.remove(self.db.engine.sync_engine, "commit", self._committed)


def _one_writer(backend: str) -> None:
    if backend.startswith("postgresql"):
        pytest.skip("SQLite's one writer takes both lanes together; PostgreSQL writes them apart")


async def test_on_sqlite_urgent_jobs_run_first_in_one_transaction_with_the_others(
    store: Store, backend: str
) -> None:
    """Issue 15: an accept queued behind the worker's jobs runs first and shares their
    commit, instead of waiting for a commit of theirs and then its own."""
    _one_writer(backend)
    held = Held(store.db)
    try:
        holding = asyncio.ensure_future(store.db.write(held.hold))
        await asyncio.wait_for(held.started.wait(), 5)
        others = [store.db.submit(held.job(f"o{i}")) for i in range(3)]
        urgent = store.db.submit(held.job("u"), urgent=True)
        held.gate.set()
        await asyncio.gather(holding, urgent, *others)
    finally:
        held.done()
    assert held.order == ["COMMIT", "u", "o0", "o1", "o2", "COMMIT"]


async def test_on_sqlite_a_failing_other_job_does_not_fail_the_urgent_one(
    store: Store, backend: str
) -> None:
    _one_writer(backend)
    held = Held(store.db)

    async def boom(conn: AsyncConnection) -> None:
        raise RuntimeError("a worker job that fails")

    try:
        holding = asyncio.ensure_future(store.db.write(held.hold))
        await asyncio.wait_for(held.started.wait(), 5)
        failing = store.db.submit(boom)
        urgent = store.db.submit(held.job("u"), urgent=True)
        held.gate.set()
        await holding
        assert await urgent == "u"
        with pytest.raises(RuntimeError, match="a worker job that fails"):
            await failing
    finally:
        held.done()
    assert await _keys(store) == {"u"}


def _pg_only(backend: str) -> None:
    if not backend.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has one writer")


async def test_on_postgresql_an_urgent_job_commits_while_the_others_are_held(
    store: Store, backend: str
) -> None:
    """The urgent lane has writers of its own (store/database.py): an accept never waits for
    the worker's batch in flight, which still commits after it."""
    _pg_only(backend)
    held = Held(store.db)
    try:
        holding = asyncio.ensure_future(store.db.write(held.hold))
        await asyncio.wait_for(held.started.wait(), 5)
        assert await store.db.write(held.job("u"), urgent=True) == "u"
        assert not holding.done()
        other = store.db.submit(held.job("o"))
        held.gate.set()
        await asyncio.gather(holding, other)
    finally:
        held.done()
    assert held.order == ["u", "COMMIT", "COMMIT", "o", "COMMIT"]


async def test_on_postgresql_urgent_jobs_queued_during_a_batch_form_the_next(
    store: Store, backend: str
) -> None:
    """One urgent writer (store/database.py): the accepts that queue while an urgent batch
    is in flight wait for it, then commit together in the next batch."""
    _pg_only(backend)
    held = Held(store.db)
    try:
        holding = asyncio.ensure_future(store.db.write(held.hold, urgent=True))
        await asyncio.wait_for(held.started.wait(), 5)
        later = [store.db.submit(held.job(f"u{i}"), urgent=True) for i in range(3)]
        await asyncio.sleep(0.05)
        assert held.order == []  # nothing overtook the batch in flight
        held.gate.set()
        await asyncio.gather(holding, *later)
    finally:
        held.done()
    assert held.order == ["COMMIT", "u0", "u1", "u2", "COMMIT"]


async def test_on_postgresql_an_autocommit_job_runs_outside_the_shared_transaction(
    store: Store, backend: str
) -> None:
    """submit(autocommit=True) on PostgreSQL: the job's statement commits by itself (no
    BEGIN, no COMMIT: two round trips fewer per accept batch), and a shared batch queued
    beside it that fails takes nothing of it back."""
    _pg_only(backend)
    db = store.db
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    async def in_transaction(conn: AsyncConnection) -> bool:
        await conn.execute(insert(kv).values(key="own", value="v"))
        # In autocommit each statement is a transaction of its own: no transaction id is
        # left assigned once the INSERT returned.
        xid = (await conn.exec_driver_sql("SELECT pg_current_xact_id_if_assigned()")).scalar()
        return xid is not None

    async def boom(conn: AsyncConnection) -> None:
        await conn.execute(insert(kv).values(key="boom", value="x"))
        raise ValueError("bad job")

    event.listen(db.engine.sync_engine, "commit", on_commit)
    try:
        own = db.submit(in_transaction, urgent=True, autocommit=True)
        bad = db.submit(boom, urgent=True)
        assert await own is False
        with pytest.raises(ValueError):
            await bad
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)
    assert commits == 0
    assert await _keys(store) == {"own"}


async def test_a_failing_job_does_not_take_its_batch_down(store: Store) -> None:
    db = store.db

    async def boom(conn: AsyncConnection) -> None:
        await conn.execute(insert(kv).values(key="boom", value="x"))
        raise ValueError("bad job")

    jobs = [db.write(_put(f"k{i}", "v")) for i in range(20)]
    jobs.insert(7, db.write(boom))
    jobs.insert(12, db.write(_put("k3", "duplicate key")))  # an IntegrityError
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[7], ValueError)
    assert isinstance(results[12], Exception)
    ok = [r for i, r in enumerate(results) if i not in (7, 12)]
    assert ok == [f"k{i}" for i in range(20)]
    assert await _keys(store) == {f"k{i}" for i in range(20)}  # no "boom", k3 once
    async with db.read() as conn:
        value = (await conn.execute(select(kv.c.value).where(kv.c.key == "k3"))).scalar_one()
    assert value == "v"


async def test_write_after_a_failure_still_works(store: Store) -> None:
    db = store.db

    async def boom(conn: AsyncConnection) -> None:
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await db.write(boom)
    assert await db.write(_put("after", "v")) == "after"


async def test_id_blocks_unique_across_two_stores(
    services: Services, store: Store, backend: str
) -> None:
    """Two processes = two Store objects on one database: their ids never collide."""
    other_db = Database(backend)
    await other_db.open()
    try:
        other = Store(other_db, SecretBox("test-master-key-0123456789"))
        now = services.clock.now_ms()
        batches = await asyncio.gather(
            *(s.new_ids(n, now) for _ in range(3) for s, n in ((store, 4000), (other, 3500)))
        )
    finally:
        await other_db.close()
    ids = [i for b in batches for i in b]
    assert len(ids) == 3 * 7500
    assert len(set(ids)) == len(ids)
    assert all(len(str(i)) == 19 for i in ids)


async def test_new_ids_larger_than_a_block(services: Services, store: Store) -> None:
    now = services.clock.now_ms()
    first = await store.new_ids(25_000, now)
    second = await store.new_ids(3, now)
    assert len(set(first + second)) == 25_003
    assert max(first) < min(second)


async def test_closed_database_refuses_work(backend: str) -> None:
    db = Database(backend)
    with pytest.raises(StoreError, match="not open"):
        await db.write(_put("x", "y"))
    with pytest.raises(StoreError, match="not open"):
        async with db.read():
            pass


async def test_unreachable_database_is_one_clear_error() -> None:
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot open database") as info:
        await db.open()
    assert "\n" not in str(info.value)
    assert "nobody" not in str(info.value)  # credentials are redacted


async def test_first_id_block_reserved_by_two_processes_at_once(store: Store, backend: str) -> None:
    """Two processes reserving the first block of a new counter at the same moment."""
    a, b = Database(backend), Database(backend)
    await a.open()
    await b.open()
    repo = store.accounts
    held, release = asyncio.Event(), asyncio.Event()

    async def first(conn: AsyncConnection) -> int:
        start = await repo.reserve_block(conn, name="fresh", size=100)
        held.set()
        await release.wait()  # commit only after the other process has tried too
        return start

    try:
        task_a = asyncio.create_task(a.write(first))
        await asyncio.wait_for(held.wait(), 5)
        task_b = asyncio.create_task(
            b.write(functools.partial(repo.reserve_block, name="fresh", size=100))
        )
        await asyncio.sleep(0.2)  # let B reach the row A has not committed yet
        release.set()
        starts = sorted(await asyncio.wait_for(asyncio.gather(task_a, task_b), 10))
    finally:
        release.set()
        await a.close()
        await b.close()
    assert starts == [0, 100]


async def test_write_after_close_fails_instead_of_hanging(backend: str) -> None:
    db = Database(backend)
    await db.open()
    await db.close()
    with pytest.raises(StoreError, match="not open"):
        await asyncio.wait_for(db.write(_put("late", "v")), 5)


async def test_close_fails_the_writes_it_interrupts(backend: str) -> None:
    """Writers waiting when the database closes get an error, not an endless wait."""
    db = Database(backend)
    await db.open()
    started = asyncio.Event()

    async def slow(conn: AsyncConnection) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes by itself

    running = asyncio.create_task(db.write(slow))
    await asyncio.wait_for(started.wait(), 5)
    queued = asyncio.create_task(db.write(_put("queued", "v")))
    await asyncio.sleep(0)
    await db.close()
    for task in (running, queued):
        with pytest.raises(StoreError, match="closed"):
            await asyncio.wait_for(task, 5)


# ---- a full storage (issue 14 item 13) -----------------------------------------------------
class NoSpaceDisk:
    """A named fake for the one thing a unit test cannot make happen on demand: the operating
    system refusing a write with ENOSPC (the SQLite case is real in tests/api/test_app.py)."""

    def __init__(self) -> None:
        self.full = True

    def job(self, key: str) -> Any:
        async def write(conn: AsyncConnection) -> str:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return str(await _put(key, "v")(conn))

        return write


async def test_a_write_without_room_is_storage_full_until_one_commits(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    disk = NoSpaceDisk()
    with caplog.at_level(logging.INFO, logger="simgate.store.database"):
        for i in range(5):
            with pytest.raises(StorageFull):
                await store.db.write(disk.job(f"k{i}"))
        assert store.db.storage_full
        disk.full = False
        assert await store.db.write(disk.job("after")) == "after"
    assert not store.db.storage_full
    lines = [r.getMessage() for r in caplog.records if r.name == "simgate.store.database"]
    assert len(lines) == 2, lines  # full, then room again: not one line per refused write
    assert "storage is full" in lines[0]
    assert "room again (5 transactions refused" in lines[1]


def test_storage_full_is_recognised_from_each_backend() -> None:
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_storage_full(sqlite3.OperationalError("database or disk is full"))
    pg = asyncpg.exceptions.DiskFullError("could not extend file: No space left on device")
    assert pg.sqlstate == "53100"
    wrapped = DBAPIError("INSERT ...", None, RuntimeError("adapter"))
    wrapped.__cause__ = pg
    assert is_storage_full(wrapped)
    assert not is_storage_full(sqlite3.OperationalError("database is locked"))
    assert not is_storage_full(OSError(errno.EACCES, "Permission denied"))


async def test_a_writer_cancelled_from_outside_refuses_writes_instead_of_hanging(
    store: Store,
) -> None:
    """asyncio.run's cancel-all at shutdown cancels the writer tasks too, not through close():
    a write queued then (a line recording its port state as it stops) waited forever, and a
    test run's teardown hung on it. Now every write after that fails at once with a reason.
    (wait_for only bounds a hang on the old code; nothing here is timed.)"""
    db = store.db
    blocker = asyncio.Event()

    async def stuck(conn: AsyncConnection) -> None:
        await blocker.wait()

    running = db.submit(stuck)
    await asyncio.sleep(0)  # the writer takes the stuck job
    queued = db.submit(_put("queued", "v"))
    writers = list(db._writers)
    for writer in writers:
        writer.cancel()
    await asyncio.gather(*writers, return_exceptions=True)

    for fut in (running, queued):
        with pytest.raises(StoreError):
            await asyncio.wait_for(fut, 10)
    with pytest.raises(StoreError, match="writer stopped"):
        await asyncio.wait_for(db.write(_put("later", "v")), 10)
