"""The checkpoints of a ``commit = "os"`` writer (store/sqlite_checkpoint.py): beside the
writer in a thread of their own, at most one per interval, stopped with the connection."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from simgate.store import sqlite_checkpoint
from simgate.store.sqlite_checkpoint import Checkpointer
from simgate.store.sqlite_writer import WriterConnection, open_writer_connection


async def _until(predicate: object, limit: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _write_rows(conn: WriterConnection, first: int, count: int) -> None:
    await conn.begin_immediate()
    cur = conn.cursor()
    await cur.executemany(
        "INSERT INTO t VALUES (?, ?)", [(i, "x" * 200) for i in range(first, first + count)]
    )
    await conn.commit()


async def _writer(path: Path) -> WriterConnection:
    conn = open_writer_connection(str(path), busy_timeout_ms=1000, commit="os")
    await conn.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


async def test_the_writer_s_commits_reach_the_database_file_through_the_checkpointer(
    tmp_path: Path,
) -> None:
    """Auto-checkpoint is off on the writer: pages reach the database file only through a
    checkpoint, and the checkpointer runs one after a commit."""
    path = tmp_path / "c.db"
    conn = await _writer(path)
    try:
        cur = conn.cursor()
        await cur.execute("PRAGMA wal_autocheckpoint")
        assert await cur.fetchone() == (0,)
        checkpointer = conn.checkpointer
        assert checkpointer is not None
        before = path.stat().st_size  # the CREATE TABLE is in the WAL only
        await _write_rows(conn, 0, 150)
        await _until(lambda: checkpointer.done >= 1)
        assert path.stat().st_size > before + 150 * 200  # the rows are in the file now
    finally:
        await conn.close()


async def test_at_most_one_checkpoint_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "CHECKPOINT_EVERY_S", 3600.0)
    conn = await _writer(tmp_path / "c.db")
    try:
        checkpointer = conn.checkpointer
        assert checkpointer is not None
        await _write_rows(conn, 0, 10)
        await _until(lambda: checkpointer.done == 1)
        for k in range(1, 6):
            await _write_rows(conn, k * 10, 10)
        await asyncio.sleep(0.2)
        assert checkpointer.done == 1
    finally:
        await conn.close()


async def test_a_checkpoint_runs_in_its_own_thread(tmp_path: Path) -> None:
    """Not on the loop's thread, not in the writer's (whose commits it must not delay)."""
    seen: list[str] = []
    real = Checkpointer._checkpoint

    def spy(self: Checkpointer) -> None:
        seen.append(threading.current_thread().name)
        real(self)

    conn = await _writer(tmp_path / "c.db")
    try:
        checkpointer = conn.checkpointer
        assert checkpointer is not None
        checkpointer._checkpoint = spy.__get__(checkpointer)  # type: ignore[method-assign]
        await _write_rows(conn, 0, 10)
        await _until(lambda: bool(seen))
        assert seen[0].startswith("sqlite-checkpoint")
    finally:
        await conn.close()


async def test_closing_the_writer_stops_its_checkpointer(tmp_path: Path) -> None:
    conn = await _writer(tmp_path / "c.db")
    checkpointer = conn.checkpointer
    assert checkpointer is not None
    await _write_rows(conn, 0, 10)
    await _until(lambda: checkpointer.done == 1)
    await conn.close()
    done = checkpointer.done
    checkpointer.after_commit()  # after close: nothing starts
    await asyncio.sleep(0.05)
    assert checkpointer.done == done
    assert checkpointer._conn is None


def test_a_hard_stop_stops_the_checkpointer_too(tmp_path: Path) -> None:
    async def opened() -> WriterConnection:
        return await _writer(tmp_path / "c.db")

    conn = asyncio.run(opened())
    checkpointer = conn.checkpointer
    assert checkpointer is not None
    conn.stop()
    assert checkpointer._conn is None
    checkpointer.after_commit()
    assert checkpointer._running is None or checkpointer._running.done()
