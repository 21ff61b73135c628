"""The turn to write a SQLite file among simgate's processes (store/sqlite_turn.py): a writer
that finds it taken waits in the kernel and tries BEGIN IMMEDIATE once it is free, instead
of polling SQLite's lock; the turn is dropped with the transaction, on a timeout, and by the
kernel when its holder dies.

Two writer connections in one process contend as two processes do: ``flock`` locks belong
to the open file, not to the process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from simgate.store.sqlite_writer import WriterConnection, open_writer_connection


def _begins(conn: WriterConnection) -> list[str]:
    """Every BEGIN IMMEDIATE ``conn`` runs, including the ones SQLite answers busy."""
    seen: list[str] = []
    conn._live().set_trace_callback(
        lambda sql: seen.append(sql) if sql.startswith("BEGIN IMMEDIATE") else None
    )
    return seen


def _held(conn: WriterConnection) -> bool:
    assert conn.turn is not None
    return conn.turn.held


async def _writers(path: Path, *, busy_timeout_ms: int = 10_000) -> list[WriterConnection]:
    first = await asyncio.to_thread(open_writer_connection, str(path), busy_timeout_ms=10_000)
    second = await asyncio.to_thread(
        open_writer_connection, str(path), busy_timeout_ms=busy_timeout_ms
    )
    cur = first.cursor()
    await cur.execute("CREATE TABLE IF NOT EXISTS t (x)")
    return [first, second]


async def test_a_waiting_writer_tries_begin_once_when_the_turn_is_free(tmp_path: Path) -> None:
    """Before the turn the second writer tried BEGIN IMMEDIATE every 0.2-2 ms while the first
    held the lock (dozens of tries here), and woke up to a sleep past the first's commit."""
    first, second = await _writers(tmp_path / "w.db")
    tries = _begins(second)
    try:
        await first.begin_immediate()
        waiting = asyncio.ensure_future(second.begin_immediate())
        await asyncio.sleep(0.1)  # the first holds the lock this long (nothing timed here)
        assert not waiting.done()
        assert tries == []  # it waits for the turn, not for SQLite's lock
        await first.cursor().execute("INSERT INTO t VALUES (1)")
        await first.commit()
        await asyncio.wait_for(waiting, 10)
        assert tries == ["BEGIN IMMEDIATE"]
        await second.cursor().execute("INSERT INTO t VALUES (2)")
        await second.commit()
        rows = await (await second.cursor().execute("SELECT x FROM t ORDER BY x")).fetchall()
        assert rows == [(1,), (2,)]
    finally:
        await first.close()
        await second.close()


async def test_a_rollback_drops_the_turn(tmp_path: Path) -> None:
    first, second = await _writers(tmp_path / "w.db")
    try:
        await first.begin_immediate()
        waiting = asyncio.ensure_future(second.begin_immediate())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await first.rollback()
        await asyncio.wait_for(waiting, 10)
        assert _held(second)
        assert not _held(first)
        await second.rollback()
        assert not _held(second)
    finally:
        await first.close()
        await second.close()


async def test_the_turn_waited_for_past_the_busy_timeout_fails_as_a_locked_database(
    tmp_path: Path,
) -> None:
    """The busy timeout still bounds the wait; the given-up wait does not keep the turn."""
    first, second = await _writers(tmp_path / "w.db", busy_timeout_ms=100)
    try:
        await first.begin_immediate()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await second.begin_immediate()
        assert not _held(second)
        await first.commit()
        # The abandoned wait got the turn when the first dropped it, and let it go.
        await asyncio.wait_for(second.begin_immediate(), 10)
        await second.cursor().execute("INSERT INTO t VALUES (3)")
        await second.commit()
        await asyncio.wait_for(first.begin_immediate(), 10)
        await first.rollback()
    finally:
        await first.close()
        await second.close()


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from simgate.store.sqlite_writer import open_writer_connection

    async def main() -> None:
        conn = open_writer_connection(sys.argv[1], busy_timeout_ms=10_000)
        await conn.begin_immediate()
        await conn.cursor().execute("INSERT INTO t VALUES (99)")
        print("holding", flush=True)
        time.sleep(600)

    asyncio.run(main())
    """
)


async def test_a_holder_killed_mid_transaction_leaves_the_turn_and_the_lock_free(
    tmp_path: Path,
) -> None:
    """kill -9 of the process holding the turn (the worker child, say): the kernel drops its
    flock and SQLite's locks, the waiter goes on, and the killed transaction is not there."""
    path = tmp_path / "w.db"
    creator, writer = await _writers(path)
    await creator.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(path), stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"holding"
        waiting = asyncio.ensure_future(writer.begin_immediate())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 10)
        await asyncio.wait_for(waiting, 10)
        rows = await (await writer.cursor().execute("SELECT x FROM t")).fetchall()
        assert rows == []
        await writer.rollback()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await writer.close()


def _turn_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-turn"]


async def test_one_thread_waits_for_every_contended_turn_and_ends_with_the_connection(
    tmp_path: Path,
) -> None:
    """A thread started per wait blocked the loop in ``Thread.start`` each time (issue 15):
    the turn's one waiter thread serves every wait and stops when the connection closes."""
    before = set(_turn_threads())
    first, second = await _writers(tmp_path / "w.db")
    try:
        for x in range(3):
            await first.begin_immediate()
            waiting = asyncio.ensure_future(second.begin_immediate())
            await asyncio.sleep(0.02)
            assert not waiting.done()
            await first.cursor().execute("INSERT INTO t VALUES (?)", (x,))
            await first.commit()
            await asyncio.wait_for(waiting, 10)
            await second.cursor().execute("INSERT INTO t VALUES (?)", (10 + x,))
            await second.commit()
        started = set(_turn_threads()) - before
        assert len(started) == 1
        rows = await (await first.cursor().execute("SELECT count(*) FROM t")).fetchall()
        assert rows == [(6,)]
    finally:
        await first.close()
        await second.close()
    (waiter,) = started
    await asyncio.to_thread(waiter.join, 10)
    assert not waiter.is_alive()
