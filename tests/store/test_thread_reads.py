"""Whole reads in one call (store/thread_reads.py, Database.fetch): the rows the pooled reads
see, on both backends; on SQLite in one worker-thread call, read-only, closed with the
database."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database, Store
from simgate.store.database import numbered_marks
from simgate.store.tables import kv
from simgate.store.thread_reads import OVERRUNS_IN_A_ROW, THREAD_AFTER_OVERRUN, ThreadReads


async def _put(store: Store, key: str) -> None:
    async def job(conn: AsyncConnection) -> None:
        await store.accounts.put_doc(conn, key, {"k": key})

    await store.db.write(job)


async def test_fetch_reads_what_a_pooled_read_reads(store: Store) -> None:
    for key in ("a", "b", "c"):
        await _put(store, key)
    async with store.db.read() as conn:
        pooled = [r.key for r in await conn.execute(select(kv.c.key).order_by(kv.c.key))]
    one, two = await store.db.fetch(
        [
            ("SELECT key FROM kv WHERE key IN (?, ?) ORDER BY key", ("a", "c")),
            ("SELECT count(*) FROM kv WHERE key >= ?", ("b",)),
        ]
    )
    assert [r[0] for r in one] == ["a", "c"]
    assert [tuple(r) for r in two] == [(2,)]
    (alone,) = await store.db.fetch([("SELECT key FROM kv ORDER BY key", ())])
    assert [r[0] for r in alone] == pooled


async def test_each_fetch_sees_what_committed_before_it(store: Store) -> None:
    """A read's snapshot ends with it: the next one on the same thread's connection sees a
    later commit (a snapshot left open would hide it)."""
    statements = [("SELECT key FROM kv ORDER BY key", ()), ("SELECT count(*) FROM kv", ())]
    before = await store.db.fetch(statements)
    await _put(store, "later")
    for _ in range(8):  # every worker thread's connection, whichever runs the call
        keys, count = await store.db.fetch(statements)
        assert [r[0] for r in keys] == [*(r[0] for r in before[0]), "later"]
        assert count[0][0] == before[1][0][0] + 1


# With 3 000 000: millions of VM steps, far over the loop's budget on any machine.
COUNT_TO = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
    "SELECT count(*) FROM c"
)


def _spy_on_thread_calls(reads: ThreadReads) -> list[int]:
    """The thread of each worker-thread call ``reads`` makes from now on."""
    seen: list[int] = []
    original = reads._run

    def run(statements: object) -> list[list[object]]:
        seen.append(threading.get_ident())
        return original(statements)  # type: ignore[arg-type]

    reads._run = run  # type: ignore[method-assign]
    return seen


async def test_on_sqlite_a_short_read_stays_on_the_loop_s_thread(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        reads = db._thread_reads
        assert isinstance(reads, ThreadReads)
        calls = _spy_on_thread_calls(reads)
        rows = await db.fetch([("SELECT 1", ()), ("SELECT 2", ()), ("SELECT 3", ())])
        assert [r[0][0] for r in rows] == [1, 2, 3]
        assert calls == []
    finally:
        await db.close()


async def test_a_read_over_the_loop_s_budget_is_one_call_on_another_thread(
    sqlite_url: str,
) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        reads = db._thread_reads
        assert isinstance(reads, ThreadReads)
        calls = _spy_on_thread_calls(reads)
        statements = [(COUNT_TO, (3_000_000,)), ("SELECT count(*) FROM kv", ())]
        assert await db.fetch(statements) == [[(3_000_000,)], [(0,)]]
        assert len(calls) == 1
        assert calls[0] != threading.get_ident()
        # The loop's connection is left without a snapshot, and still reads.
        assert reads._loop_conn is not None
        assert not reads._loop_conn.in_transaction
        assert await db.fetch([("SELECT 7", ())]) == [[(7,)]]
        # Overrunning again and again, the same SQL goes straight to a thread for a while
        # (no budget spent on the loop), then the loop is tried again.
        for _ in range(OVERRUNS_IN_A_ROW - 1):
            await db.fetch(statements)
        assert reads._thread_only[COUNT_TO] == THREAD_AFTER_OVERRUN
        reads._thread_only[COUNT_TO] = 1
        assert await db.fetch(statements) == [[(3_000_000,)], [(0,)]]
        assert reads._thread_only[COUNT_TO] == 0
        assert len(calls) == OVERRUNS_IN_A_ROW + 1
        # A read of the same SQL within the budget, on the loop, ends the run of overruns.
        assert await db.fetch([(COUNT_TO, (3,))]) == [[(3,)]]
        assert len(calls) == OVERRUNS_IN_A_ROW + 1
        assert COUNT_TO not in reads._overruns
    finally:
        await db.close()


async def test_a_fetch_cannot_write(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.fetch([("INSERT INTO kv (key, value) VALUES (?, ?)", ("k", "{}"))])
        (rows,) = await db.fetch([("SELECT count(*) FROM kv WHERE key = ?", ("k",))])
        assert rows[0][0] == 0
    finally:
        await db.close()


async def test_closed_reads_refuse_and_close_their_connections(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.close()
    reads = ThreadReads(str(path), busy_timeout_ms=100, threads=2)
    assert await reads.fetch([("SELECT count(*) FROM t", ())]) == [[(0,)]]
    opened = list(reads._opened)
    await reads.close()
    assert reads._opened == []
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    with pytest.raises(RuntimeError):  # the pool is shut down
        await reads.fetch([("SELECT 1", ())])


def test_numbered_marks_are_asyncpg_s() -> None:
    assert numbered_marks("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )
    assert numbered_marks("SELECT 1") == "SELECT 1"
