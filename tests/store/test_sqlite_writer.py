"""The SQLite write connection (store/sqlite_writer.py): statements on the loop's thread,
COMMIT, a lock wait and large executemany in the connection's own thread; group commit keeps
its answers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StoreError
from simgate.store import Database
from simgate.store.sqlite_writer import (
    ROWS_IN_THREAD,
    WriterConnection,
    open_writer_connection,
    sqlite3_busy,
)
from simgate.store.tables import kv


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1]


async def _threads_of_a_write(db: Database) -> dict[str, int]:
    """Which thread ran a statement, a large executemany, and the COMMIT of one write."""
    seen: dict[str, int] = {}

    def probe(what: str) -> int:
        seen.setdefault(what, threading.get_ident())
        return 1

    def on_commit() -> None:
        seen.setdefault("commit", threading.get_ident())

    async def job(conn: AsyncConnection) -> None:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, WriterConnection)
        await driver.create_function("probe", 1, probe)
        await conn.exec_driver_sql("SELECT probe('statement')")
        many = [(f"many{i}", "{}") for i in range(ROWS_IN_THREAD + 1)]
        await conn.exec_driver_sql(
            "INSERT INTO kv (key, value) VALUES (?, ?)",
            many,
        )
        await conn.exec_driver_sql("SELECT probe('after many')")
        _commit_hook(driver, on_commit)

    await db.write(job)
    return seen


def _commit_hook(driver: WriterConnection, hook: Callable[[], None]) -> None:
    """sqlite3 has no commit hook in Python: a trace callback sees the COMMIT statement run,
    on the thread that runs it."""

    def trace(sql: str) -> None:
        if sql.strip().upper() == "COMMIT":
            hook()

    driver._live().set_trace_callback(trace)


async def _many_rows(db: Database) -> int:
    """The rows _threads_of_a_write wrote (keys ``many...``), read back after its commit."""
    async with db.read() as conn:
        count: int = (
            await conn.execute(select(func.count()).select_from(kv).where(kv.c.key.like("many%")))
        ).scalar_one()
    return count


async def test_statements_run_here_and_the_commit_in_the_writer_thread(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        here = threading.get_ident()
        seen = await _threads_of_a_write(db)
        assert seen["statement"] == here
        assert seen["after many"] == here
        assert seen["commit"] != here
        assert await _many_rows(db) == ROWS_IN_THREAD + 1
    finally:
        await db.close()


async def test_with_commit_os_the_commit_runs_here_too(sqlite_url: str) -> None:
    """synchronous=NORMAL: the COMMIT fsyncs nothing, so no hand-off (store/sqlite_checkpoint.py);
    a large executemany still goes to the writer's thread."""
    db = Database(sqlite_url, commit="os")
    await db.open()
    try:
        here = threading.get_ident()
        seen = await _threads_of_a_write(db)
        assert seen["statement"] == seen["after many"] == seen["commit"] == here
        assert await _many_rows(db) == ROWS_IN_THREAD + 1
    finally:
        await db.close()


async def test_a_write_waits_for_another_process_s_lock_without_holding_the_loop(
    sqlite_url: str,
) -> None:
    """Another connection holds the write lock: the write waits (in the writer's thread),
    the loop goes on meanwhile, and the write commits once the lock is free."""
    db = Database(sqlite_url)
    await db.open()
    other = sqlite3.connect(_sqlite_path(sqlite_url), isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(
            db.write(lambda conn: conn.execute(insert(kv).values(key="late", value="{}")))
        )
        turns = 0
        while turns < 50:  # the loop keeps turning while the write waits for the lock
            await asyncio.sleep(0)
            turns += 1
        assert not write.done()
        other.execute("ROLLBACK")
        await write
        async with db.read() as conn:
            assert (await conn.execute(select(kv.c.key).where(kv.c.key == "late"))).first()
    finally:
        other.close()
        await db.close()


async def test_a_failing_statement_leaves_the_batch_to_be_split(sqlite_url: str) -> None:
    """A constraint error on the loop's thread is an error of the job, as through aiosqlite:
    the others of its batch commit."""
    db = Database(sqlite_url)
    await db.open()
    try:

        def put(key: str) -> Callable[[AsyncConnection], Awaitable[str]]:
            async def job(conn: AsyncConnection) -> str:
                await conn.execute(insert(kv).values(key=key, value="{}"))
                return key

            return job

        results = await asyncio.gather(
            db.write(put("a")),
            db.write(put("a")),
            db.write(put("b")),
            return_exceptions=True,
        )
        assert results[0] == "a"
        assert results[2] == "b"
        assert isinstance(results[1], Exception)
    finally:
        await db.close()


async def test_the_writer_connection_closes_behind_its_thread(tmp_path: Path) -> None:
    conn = open_writer_connection(str(tmp_path / "w.db"), busy_timeout_ms=1000)
    cur = conn.cursor()
    await cur.execute("CREATE TABLE t (x)")
    await conn.begin_immediate()
    await cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(ROWS_IN_THREAD * 2)])
    await conn.commit()
    await conn.close()
    await conn.close()  # twice is harmless, like aiosqlite
    with pytest.raises(sqlite3.ProgrammingError):
        conn.cursor()
    check = sqlite3.connect(tmp_path / "w.db")
    try:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (ROWS_IN_THREAD * 2,)
    finally:
        check.close()


def test_busy_and_locked_are_told_from_other_errors() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert sqlite3_busy(busy)
    other = sqlite3.OperationalError("no such table: x")
    other.sqlite_errorcode = sqlite3.SQLITE_ERROR
    assert not sqlite3_busy(other)


async def test_a_rollback_waits_for_the_thread_s_call_of_a_cancelled_writer(
    tmp_path: Path,
) -> None:
    """A cancelled writer's call goes on in the thread; the pool's rollback that follows
    queues behind it instead of running beside it on the same connection."""
    conn = open_writer_connection(str(tmp_path / "w.db"), busy_timeout_ms=1000)
    release = threading.Event()
    try:
        await conn.begin_immediate()
        blocked = asyncio.ensure_future(conn.in_thread(release.wait))
        await asyncio.sleep(0)
        blocked.cancel()
        rollback = asyncio.ensure_future(conn.rollback())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not rollback.done()
        release.set()
        await rollback
        assert conn._live().in_transaction is False
    finally:
        release.set()
        await conn.close()


def _checkouts(db: Database) -> list[int]:
    """Counts the pool checkouts of ``db``'s write engine from now on (one item each)."""
    seen: list[int] = []

    @event.listens_for(db.engine.sync_engine, "checkout")
    def _on_checkout(*_: object) -> None:
        seen.append(1)

    return seen


def _put(key: str) -> Callable[[AsyncConnection], Awaitable[str]]:
    async def job(conn: AsyncConnection) -> str:
        await conn.execute(insert(kv).values(key=key, value="{}"))
        return key

    return job


def _lock_is_free(url: str) -> bool:
    """Whether another connection can take the write lock at once (no transaction left open)."""
    other = sqlite3.connect(_sqlite_path(url), isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def _keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(kv.c.key))).scalars())


async def test_the_writer_holds_its_connection_across_batches(sqlite_url: str) -> None:
    """One pool checkout for every batch (issue 15: a checkout, its reset and SQLAlchemy's
    begin/commit per batch were ~40 % of a send's loop CPU); each batch still commits, runs
    its after-commit callbacks, and leaves the write lock free between batches."""
    db = Database(sqlite_url)
    await db.open()
    try:
        checkouts = _checkouts(db)
        ran: list[str] = []
        for key in ("a", "b", "c"):

            async def job(conn: AsyncConnection, key: str = key) -> str:
                db.after_commit(conn, lambda: ran.append(key))
                return await _put(key)(conn)

            assert await db.write(job) == key
            assert _lock_is_free(sqlite_url)
        assert await db.write_direct(_put("d")) == "d"
        assert ran == ["a", "b", "c"]
        assert await _keys(db) == {"a", "b", "c", "d"}
        assert len(checkouts) == 1
    finally:
        await db.close()


async def test_a_failed_batch_keeps_the_connection_an_invalidated_one_is_replaced(
    sqlite_url: str,
) -> None:
    """A job's error rolls the held connection back and the next write reuses it; a
    connection invalidated under a job is not reused: the next write takes a new one."""
    db = Database(sqlite_url)
    await db.open()
    try:
        checkouts = _checkouts(db)
        await db.write(_put("a"))
        with pytest.raises(IntegrityError):
            await db.write(_put("a"))
        assert _lock_is_free(sqlite_url)
        await db.write(_put("b"))
        assert len(checkouts) == 1

        async def breaks(conn: AsyncConnection) -> None:
            await conn.execute(insert(kv).values(key="lost", value="{}"))
            await conn.invalidate()
            raise RuntimeError("the connection broke")

        with pytest.raises(RuntimeError):
            await db.write(breaks)
        assert await db.write(_put("c")) == "c"
        # Run twice (the batch, then the job alone: store/write_lanes.py), each time
        # invalidating the connection it ran on: two new ones after the first.
        assert len(checkouts) == 3
        assert await _keys(db) == {"a", "b", "c"}
    finally:
        await db.close()


async def test_a_write_cancelled_by_close_frees_the_lock(sqlite_url: str) -> None:
    """close() cancelling a job inside its transaction ends the writer; the caller hears the
    database closed and the write lock is free (the held connection closed, not kept)."""
    db = Database(sqlite_url)
    await db.open()
    inside = asyncio.Event()

    async def stuck(conn: AsyncConnection) -> None:
        await conn.execute(insert(kv).values(key="never", value="{}"))
        inside.set()
        await asyncio.Event().wait()

    pending = db.submit(stuck)
    await inside.wait()
    assert not _lock_is_free(sqlite_url)
    await asyncio.wait_for(db.close(), timeout=20)  # a hang guard, not a timing
    with pytest.raises(StoreError, match="closed"):
        await pending
    assert _lock_is_free(sqlite_url)
