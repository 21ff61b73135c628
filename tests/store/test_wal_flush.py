"""The WAL's fsync by the kernel after a COMMIT (store/wal_flush.py): each flush settles once
the kernel is done, its ``then`` first and even when its caller went away; a WAL file that
the disk cannot sync fails the flush; the writer keeps its turn until the flush is done, and
after a failed one refuses every write (store/sqlite_writer.py).

A file that cannot be synced is made real, not faked: a FIFO where the WAL was (the kernel
answers EINVAL to its fsync, by AIO and in a thread alike)."""

from __future__ import annotations

import asyncio
import errno
import os
import platform
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import FlushFailed
from simgate.store import Database
from simgate.store.sqlite_turn import WriteTurn
from simgate.store.sqlite_writer import open_writer_connection
from simgate.store.tables import kv
from simgate.store.wal_flush import WalFlush

# Where the kernel flushes the SQLite writer's WAL (native AIO, store/wal_flush.py): Linux on
# the machines whose system call numbers it knows; FULL in a thread everywhere else.
KERNEL_FLUSH = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")

pytestmark = pytest.mark.skipif(not KERNEL_FLUSH, reason="native AIO is Linux's")


@pytest.fixture
def wal_db(tmp_path: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A WAL database with a write in its WAL (synchronous=NORMAL: not synced yet)."""
    path = str(tmp_path / "f.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    yield path, conn
    conn.close()


def _open(path: str) -> WalFlush:
    flush = WalFlush.open(path)
    assert flush is not None  # KERNEL_FLUSH: the kernel must take it here
    return flush


def _fifo_for_wal(path: str) -> None:
    """The WAL's path now names a FIFO (SQLite keeps writing the file it has open)."""
    os.unlink(path + "-wal")
    os.mkfifo(path + "-wal", 0o600)


async def test_a_flush_tells_then_before_its_caller(wal_db: tuple[str, sqlite3.Connection]) -> None:
    path, _ = wal_db
    flush = _open(path)
    heard: list[str] = []
    try:
        fut = flush.start(lambda failure: heard.append(f"then {failure}"))
        fut.add_done_callback(lambda _: heard.append("future"))
        await fut
        await asyncio.sleep(0)  # the done callback runs a turn later
        assert heard == ["then None", "future"]
        await flush.start(lambda failure: heard.append(f"then {failure}"))
        assert flush.flushes == 2
    finally:
        await flush.aclose()


async def test_a_new_wal_file_at_the_path_is_the_one_synced(
    wal_db: tuple[str, sqlite3.Connection],
) -> None:
    """The path names another file (the WAL deleted and made again): the flush syncs that
    one, not the file it held (which nobody writes any more)."""
    path, _ = wal_db
    flush = _open(path)
    try:
        await flush.start(lambda _: None)
        os.unlink(path + "-wal")
        os.close(os.open(path + "-wal", os.O_CREAT | os.O_WRONLY, 0o600))
        await flush.start(lambda _: None)
        assert flush._wal is not None
        assert flush._wal.ino == os.stat(path + "-wal").st_ino
    finally:
        await flush.aclose()


async def test_a_file_the_disk_cannot_sync_fails_the_flush(
    wal_db: tuple[str, sqlite3.Connection],
) -> None:
    path, _ = wal_db
    flush = _open(path)
    heard: list[FlushFailed | None] = []
    try:
        _fifo_for_wal(path)
        with pytest.raises(FlushFailed) as failed:
            await flush.start(heard.append)
        assert failed.value.cause.errno == errno.EINVAL
        assert "restarted" in str(failed.value)
        assert path not in str(failed.value)
        assert heard == [failed.value]
        assert flush.flushes == 0
    finally:
        await flush.aclose()


async def test_a_cancelled_caller_does_not_cancel_the_flush(
    wal_db: tuple[str, sqlite3.Connection],
) -> None:
    path, _ = wal_db
    flush = _open(path)
    heard: list[FlushFailed | None] = []
    fut = flush.start(heard.append)
    fut.cancel()
    await flush.aclose()  # waits for the kernel's answer
    assert heard == [None]
    assert flush.flushes == 1


async def test_the_writer_keeps_its_turn_until_the_wal_is_on_the_disk(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    conn = await asyncio.to_thread(
        open_writer_connection, path, busy_timeout_ms=1000, flush_by_kernel=True
    )
    other = WriteTurn(path)  # another writer's turn (a descriptor of its own)
    try:
        assert conn.wal_flush is not None
        cur = conn.cursor()
        await conn.begin_immediate()
        await cur.execute("CREATE TABLE t (x)")
        commit = asyncio.ensure_future(conn.commit())
        await asyncio.sleep(0)  # the commit ran, its flush is asked for, not yet heard
        assert not commit.done()
        assert conn._live().in_transaction is False  # committed: visible to readers
        assert not other.try_take()
        await commit
        assert other.try_take()
    finally:
        other.close()
        await conn.close()


async def test_a_failed_flush_refuses_every_later_write_and_keeps_the_turn(
    sqlite_url: str,
) -> None:
    """The batch whose flush failed hears FlushFailed (committed, maybe not on the disk: no
    retry), so does every later write, /healthz's check too, and no other writer gets the
    turn while this process lives."""
    db = Database(sqlite_url, flush_by_kernel=True)
    await db.open()
    path = sqlite_url.split("///", 1)[1]
    other = WriteTurn(path)

    def put(key: str) -> object:
        async def job(conn: AsyncConnection) -> None:
            await conn.execute(insert(kv).values(key=key, value="{}"))

        return job

    try:
        await db.write(put("before"))  # type: ignore[arg-type]
        _fifo_for_wal(path)
        with pytest.raises(FlushFailed):
            await db.write(put("lost?"))  # type: ignore[arg-type]
        with pytest.raises(FlushFailed):
            await db.write(put("after"))  # type: ignore[arg-type]
        assert db.write_refusal.why is not None
        assert not other.try_take()
        async with db.read() as conn:  # committed before the flush: not taken back
            keys = set((await conn.execute(select(kv.c.key))).scalars())
        assert {"before", "lost?"} <= keys
        assert "after" not in keys
    finally:
        os.unlink(path + "-wal")  # the FIFO: SQLite's close must not open it
        await db.close()
        assert other.try_take()  # the process's writer closed: the turn is free
        other.close()


@pytest.mark.parametrize("by_kernel", [True, False])
async def test_the_writer_flushes_by_the_kernel_only_when_asked(
    tmp_path: Path, by_kernel: bool
) -> None:
    """Asked (and on Linux): synchronous=NORMAL, each commit flushed by the kernel before it
    returns; by default FULL, its COMMIT in the thread, no flush of ours."""
    path = str(tmp_path / "k.db")
    conn = await asyncio.to_thread(
        open_writer_connection, path, busy_timeout_ms=1000, flush_by_kernel=by_kernel
    )
    try:
        cur = conn.cursor()
        await cur.execute("PRAGMA synchronous")
        assert await cur.fetchone() == ((1,) if by_kernel else (2,))  # NORMAL, FULL
        await conn.begin_immediate()
        await cur.execute("CREATE TABLE t (x)")
        await cur.execute("INSERT INTO t VALUES (7)")
        await conn.commit()
        if by_kernel:
            assert conn.wal_flush is not None
            assert conn.wal_flush.flushes == 1
        else:
            assert conn.wal_flush is None
        check = sqlite3.connect(path)
        try:
            assert check.execute("SELECT x FROM t").fetchall() == [(7,)]
        finally:
            check.close()
    finally:
        await conn.close()
