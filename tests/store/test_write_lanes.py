"""Group commit's lanes: the queue on its own, then the writers through a real database on
both backends (store/write_lanes.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StorageFull, StoreError
from simgate.store import Database, Store
from simgate.store.tables import kv
from simgate.store.write_lanes import Job, Lanes, Queued, WriteLanes
from tests.store.util import kv_keys, put_kv


# ---- the queue --------------------------------------------------------------------------
def _queued(name: str) -> Queued:
    async def job(conn: AsyncConnection) -> str:
        return name

    job.__name__ = name
    return (job, asyncio.get_running_loop().create_future())


def _names(batch: list[Queued]) -> list[str]:
    return [job.__name__ for job, _ in batch]


async def test_one_writers_batch_is_the_urgent_jobs_then_the_others_at_most_limit_each() -> None:
    lanes = Lanes()
    for i in range(3):
        lanes.put(_queued(f"o{i}"), urgent=False)
    for i in range(3):
        lanes.put(_queued(f"u{i}"), urgent=True)
    assert _names(await lanes.next_batch(2)) == ["u0", "u1", "o0", "o1"]
    assert _names(await lanes.next_batch(2)) == ["u2", "o2"]


async def test_each_lanes_writer_takes_its_own_lane_in_queue_order() -> None:
    lanes = Lanes()
    lanes.put(_queued("o0"), urgent=False)
    lanes.put(_queued("u0"), urgent=True)
    lanes.put(_queued("o1"), urgent=False)
    assert _names(await lanes.next_urgent(10)) == ["u0"]
    assert _names(await lanes.next_other(10)) == ["o0", "o1"]
    waiting = asyncio.ensure_future(lanes.next_urgent(10))
    lanes.put(_queued("o2"), urgent=False)
    await asyncio.sleep(0)
    assert not waiting.done()  # the other lane's job does not wake an urgent writer
    lanes.put(_queued("u1"), urgent=True)
    assert _names(await waiting) == ["u1"]


async def test_stopped_lanes_fail_the_queued_jobs_and_say_why() -> None:
    lanes = Lanes()
    queued = _queued("o0")
    lanes.put(queued, urgent=False)
    lanes.stop("the reason")
    lanes.stop("a later reason")  # the first one stays
    assert lanes.stopped == "the reason"
    with pytest.raises(StoreError, match="the reason"):
        await queued[1]
    assert lanes.drain() == []


class Transactions:
    """What the writers asked of the database: each transaction's jobs, by name; a job named
    ``bad*`` fails its transaction, ``full*`` finds no room."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[str], bool]] = []

    async def __call__(self, jobs: list[Job], *, autocommit: bool = False) -> list[Any]:
        names = [getattr(job, "__name__", "own") for job in jobs]
        self.runs.append((names, autocommit))
        if any(n.startswith("full") for n in names):
            raise StorageFull()
        if any(n.startswith("bad") for n in names):
            raise ValueError("bad job")
        return [await job(None) for job in jobs]  # type: ignore[arg-type]


def _job(name: str) -> Job:
    async def job(conn: AsyncConnection) -> str:
        return name

    job.__name__ = name
    return job


async def test_a_failing_batch_is_run_again_job_by_job_and_only_the_bad_job_fails() -> None:
    tx = Transactions()
    writers = WriteLanes(tx, one_writer=True)
    try:
        futs = [writers.submit(_job(n), urgent=False, own_commit=False) for n in ("a", "bad", "b")]
        results = await asyncio.gather(*futs, return_exceptions=True)
    finally:
        await writers.close()
    assert results[0] == "a"
    assert results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert tx.runs == [
        (["a", "bad", "b"], False),
        (["a"], False),
        (["bad"], False),
        (["b"], False),
    ]


async def test_a_write_without_room_is_not_run_again_alone() -> None:
    tx = Transactions()
    writers = WriteLanes(tx, one_writer=True)
    try:
        with pytest.raises(StorageFull):
            await writers.submit(_job("full"), urgent=False, own_commit=False)
    finally:
        await writers.close()
    assert tx.runs == [(["full"], False)]


async def test_an_own_commit_job_runs_alone_in_autocommit_beside_the_shared_batch() -> None:
    tx = Transactions()
    writers = WriteLanes(tx, one_writer=False)
    try:
        own = writers.submit(_job("own"), urgent=True, own_commit=True)
        shared = writers.submit(_job("shared"), urgent=True, own_commit=False)
        assert list(await asyncio.gather(own, shared)) == ["own", "shared"]
    finally:
        await writers.close()
    assert tx.runs == [(["own"], True), (["shared"], False)]


async def test_closed_lanes_refuse_new_writes() -> None:
    writers = WriteLanes(Transactions(), one_writer=True)
    await writers.close()
    with pytest.raises(StoreError, match="closed"):
        writers.submit(_job("late"), urgent=False, own_commit=False)


# ---- the writers on a real database ------------------------------------------------------
async def test_concurrent_writes_all_commit_in_shared_transactions(store: Store) -> None:
    db = store.db
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine.sync_engine, "commit", on_commit)
    try:
        results = await asyncio.gather(*(db.write(put_kv(f"k{i}", "v")) for i in range(300)))
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)
    assert results == [f"k{i}" for i in range(300)]
    assert await kv_keys(store) == {f"k{i}" for i in range(300)}
    assert 1 <= commits < 300  # shared commits: group commit happened


async def test_submit_queues_the_job_before_the_caller_yields(store: Store) -> None:
    """A submitted job is ahead of every write started after it in the same step, and its
    future resolves once committed, whether or not anybody awaits it meanwhile."""
    db = store.db
    order: list[str] = []

    def noted(key: str) -> Any:
        async def job(conn: AsyncConnection) -> str:
            order.append(key)
            written: str = await put_kv(key, "v")(conn)
            return written

        return job

    later = asyncio.ensure_future(db.write(noted("written")))  # queued when it first runs
    first = db.submit(noted("submitted"))
    assert list(await asyncio.gather(later, first)) == ["written", "submitted"]
    assert order == ["submitted", "written"]
    assert await kv_keys(store) == {"written", "submitted"}


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
            written: str = await put_kv(key, "v")(conn)
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
    assert await kv_keys(store) == {"u"}


def _pg_only(backend: str) -> None:
    if not backend.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has one writer")


async def test_on_postgresql_an_urgent_job_commits_while_the_others_are_held(
    store: Store, backend: str
) -> None:
    """The urgent lane has writers of its own (store/write_lanes.py): an accept never waits for
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
    """One urgent writer (store/write_lanes.py): the accepts that queue while an urgent batch
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
    assert await kv_keys(store) == {"own"}


async def test_a_failing_job_does_not_take_its_batch_down(store: Store) -> None:
    db = store.db

    async def boom(conn: AsyncConnection) -> None:
        await conn.execute(insert(kv).values(key="boom", value="x"))
        raise ValueError("bad job")

    jobs = [db.write(put_kv(f"k{i}", "v")) for i in range(20)]
    jobs.insert(7, db.write(boom))
    jobs.insert(12, db.write(put_kv("k3", "duplicate key")))  # an IntegrityError
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[7], ValueError)
    assert isinstance(results[12], Exception)
    ok = [r for i, r in enumerate(results) if i not in (7, 12)]
    assert ok == [f"k{i}" for i in range(20)]
    assert await kv_keys(store) == {f"k{i}" for i in range(20)}  # no "boom", k3 once
    async with db.read() as conn:
        value = (await conn.execute(select(kv.c.value).where(kv.c.key == "k3"))).scalar_one()
    assert value == "v"


async def test_write_after_a_failure_still_works(store: Store) -> None:
    db = store.db

    async def boom(conn: AsyncConnection) -> None:
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await db.write(boom)
    assert await db.write(put_kv("after", "v")) == "after"


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
    queued = asyncio.create_task(db.write(put_kv("queued", "v")))
    await asyncio.sleep(0)
    await db.close()
    for task in (running, queued):
        with pytest.raises(StoreError, match="closed"):
            await asyncio.wait_for(task, 5)


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
    queued = db.submit(put_kv("queued", "v"))
    assert db._lanes is not None
    writers = list(db._lanes.writers)
    for writer in writers:
        writer.cancel()
    await asyncio.gather(*writers, return_exceptions=True)

    for fut in (running, queued):
        with pytest.raises(StoreError):
            await asyncio.wait_for(fut, 10)
    with pytest.raises(StoreError, match="writer stopped"):
        await asyncio.wait_for(db.write(put_kv("later", "v")), 10)
