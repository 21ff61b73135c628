"""The SQLite write connection, driven on the event loop's thread with its commit in a thread.

Group commit (store/write_lanes.py, store/batch_connections.py) runs a batch as BEGIN
IMMEDIATE, the jobs' statements, COMMIT. Through aiosqlite every call (cursor, execute,
fetch, close) was a hand-off to its thread and back, about three per statement, and under
load each hand-off also waited for a turn of a busy event loop: a batch of an accept and the
worker's records took dozens of loop turns (issue 15, profile of ``simgate run`` under wrk).
Statements into the WAL are page-cache work (microseconds), so they run right here, as the
short reads do (store/loop_sqlite.py). What is slow is left to one thread, one hand-off
each:

- COMMIT: the fsync of ``synchronous=FULL``, and the WAL auto-checkpoint that may follow
  (with ``commit = "os"`` a COMMIT fsyncs nothing and runs here; its checkpoints run beside
  the writer: store/sqlite_checkpoint.py; so does it with ``flush_by_kernel``, the kernel
  then syncing the WAL before the commit counts: store/wal_flush.py, off by default);
- BEGIN IMMEDIATE when another process holds the write lock: tried here first without
  waiting, then waited for in the thread (the full busy timeout must not hold the loop).
  Between simgate's processes (``run --worker-process``) the turn to write is taken first,
  a ``flock`` the kernel hands over the moment its holder drops it (store/sqlite_turn.py),
  so that wait is rare: the retries here are for writers that are not simgate;
- an executemany of many rows (a 1,000-number request, a 5,000-row batch), whose time grows
  with the rows: above :data:`ROWS_IN_THREAD` rows it runs in the thread too.

The thread is this connection's own (one worker): the commit never queues behind other
``to_thread`` work, and closing the connection queues behind a commit still running (a
cancelled writer task does not stop its thread), never beside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

from simgate.errors import FlushFailed
from simgate.store.loop_sqlite import LoopConnection, LoopCursor
from simgate.store.sqlite_checkpoint import Checkpointer
from simgate.store.sqlite_turn import WriteTurn
from simgate.store.wal_flush import WalFlush

log = logging.getLogger(__name__)

T = TypeVar("T")

# When a commit is done (settings ``commit``): "disk" once it is on the disk, "os" once the
# operating system has it. SQLite's ``synchronous`` for each, in WAL mode
# (https://www.sqlite.org/pragma.html#pragma_synchronous): FULL fsyncs the WAL at every
# commit, so a commit survives a power cut; NORMAL fsyncs only at checkpoints, so a commit
# survives a crash of the process ("durable across application crashes regardless of the
# synchronous setting") but a power cut or OS crash may roll the last ones back, and "WAL
# mode is always consistent with synchronous=NORMAL" (https://www.sqlite.org/wal.html).
Commit = Literal["disk", "os"]
SYNCHRONOUS: dict[Commit, str] = {"disk": "FULL", "os": "NORMAL"}

# An executemany of more rows than this runs in the connection's thread (module docstring):
# below it the statement costs less than a hand-off; above, the loop would stall (a 5,000-row
# INSERT of messages holds SQLite for milliseconds).
ROWS_IN_THREAD = 200
# BEGIN IMMEDIATE against another process's write lock: tried again after this, doubling up
# to BUSY_MAX_S (``_begin_waiting``).
BUSY_FIRST_S = 0.0002
BUSY_MAX_S = 0.002


class WriteRefusal:
    """Why every write connection of one database refuses writes, once a flush of its WAL
    failed (store/wal_flush.py); None until then. Shared by the connections of one engine: a
    connection made after the failure refuses too."""

    def __init__(self) -> None:
        self.why: FlushFailed | None = None

    def check(self) -> None:
        """Raise :class:`FlushFailed` once writes are refused: a new one each time (one
        instance raised again and again would carry every earlier traceback)."""
        if self.why is not None:
            raise FlushFailed(self.why.path, self.why.cause)


class WriterCursor(LoopCursor):
    """A :class:`LoopCursor` whose large executemany runs in the connection's thread."""

    def __init__(self, cursor: sqlite3.Cursor, owner: WriterConnection) -> None:
        super().__init__(cursor)
        self._owner = owner

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> LoopCursor:
        rows = parameters if isinstance(parameters, Sequence) else list(parameters)
        if len(rows) > ROWS_IN_THREAD:
            await self._owner.in_thread(self._cursor.executemany, sql, rows)
        else:
            self._cursor.executemany(sql, rows)
        return self


class WriterConnection(LoopConnection):
    """The write connection (module docstring): aiosqlite-shaped for SQLAlchemy's aiosqlite
    dialect, statements on the loop, the slow calls in its own thread."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        busy_timeout_ms: int,
        checkpointer: Checkpointer | None = None,
        turn: WriteTurn | None = None,
        wal_flush: WalFlush | None = None,
        refusal: WriteRefusal | None = None,
    ) -> None:
        super().__init__(connection)
        self._busy_timeout_ms = busy_timeout_ms
        # Held from BEGIN IMMEDIATE to the end of the transaction (store/sqlite_turn.py), and
        # with a WAL flush until the commit is on the disk.
        self.turn = turn
        # synchronous=NORMAL: COMMIT here, checkpoints by this (store/sqlite_checkpoint.py).
        self.checkpointer = checkpointer
        # commit = "disk" with flush_by_kernel, where the kernel can: the fsync after the
        # COMMIT (store/wal_flush.py); None with commit = "os", or FULL in the thread.
        self.wal_flush = wal_flush
        self.refusal = refusal if refusal is not None else WriteRefusal()
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-writer"
        )
        self._last: concurrent.futures.Future[Any] | None = None  # the thread's latest call

    def cursor(self) -> LoopCursor:
        return WriterCursor(self._live().cursor(), self)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in this connection's thread; the loop runs meanwhile."""
        last = self._last = self._thread.submit(fn, *args)
        return await asyncio.wrap_future(last)

    def _thread_busy(self) -> bool:
        return self._last is not None and not self._last.done()

    def idle(self) -> bool:
        """No transaction open and nothing running in the thread: a COMMIT or ROLLBACK
        would do nothing (the held writer skips them then, store/batch_connections.py)."""
        return not self.in_transaction and not self._thread_busy()

    async def begin_immediate(self) -> None:
        """BEGIN IMMEDIATE after taking the turn to write (store/sqlite_turn.py): here when
        the write lock is free (busy timeout 0), else waited for in the thread; the turn
        and the lock together within the configured busy timeout."""
        conn = self._live()
        self.refusal.check()
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        if self.turn is not None:
            await self.turn.take(self._busy_timeout_ms / 1000)
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not sqlite3_busy(exc):
                    raise
            await self.in_thread(self._begin_waiting, conn, deadline)
        except BaseException:
            self._release_turn(conn)
            raise

    def _release_turn(self, conn: sqlite3.Connection) -> None:
        """Drop the turn once no transaction is open (a COMMIT that failed leaves it open
        for the ROLLBACK that follows); from the thread that ended it, so another process
        waiting for it starts while this one's loop is still to hear of the commit. Kept
        for good once a WAL flush failed (store/wal_flush.py): no other process writes on
        top of data the disk may not hold."""
        if self.turn is None or self.refusal.why is not None:
            return
        try:
            open_ = conn.in_transaction
        except sqlite3.ProgrammingError:  # closed (a hard stop): no transaction is open
            open_ = False
        if not open_:
            self.turn.release()

    def _commit(self, conn: sqlite3.Connection) -> None:
        try:
            conn.commit()
        finally:
            self._release_turn(conn)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            conn.rollback()
        finally:
            self._release_turn(conn)

    def _begin_waiting(self, conn: sqlite3.Connection, deadline: float) -> None:
        # Our own retry, not SQLite's busy handler: that one sleeps 1, 2, 5, 10, 15, 20,
        # 25 ms... between tries, so a lock held for one commit's fsync by the other process
        # of `simgate run` (its worker child) cost a wait of 8-18 ms. Tries here are
        # BUSY_FIRST_S apart, doubling to BUSY_MAX_S: a few microseconds each, in this thread.
        # Since the turn (store/sqlite_turn.py), only a writer that is not simgate's (the
        # sqlite3 shell, a backup) makes a BEGIN wait here.
        delay = BUSY_FIRST_S
        while True:
            time.sleep(delay)
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not sqlite3_busy(exc) or time.monotonic() >= deadline:
                    raise
            delay = min(delay * 2, BUSY_MAX_S)

    async def commit(self) -> None:
        conn = self._live()
        if self.checkpointer is None:  # synchronous=FULL: the fsync in the thread
            await self.in_thread(self._commit, conn)
            return
        # synchronous=NORMAL: the WAL frames into the page cache, no fsync; microseconds,
        # less than the hand-off (store/sqlite_checkpoint.py). Behind a call of a cancelled
        # writer still in the thread, never beside it.
        try:
            if self._thread_busy():
                await self.in_thread(conn.commit)
            else:
                conn.commit()
        except BaseException:
            self._release_turn(conn)  # unless the COMMIT left the transaction open
            raise
        if self.wal_flush is not None and not conn.in_transaction:
            # Answered, and the turn dropped, once the kernel has the WAL on the disk
            # (store/wal_flush.py); the turn even if this writer is cancelled meanwhile.
            await self.wal_flush.start(functools.partial(self._flushed, conn))
        else:
            self._release_turn(conn)
        self.checkpointer.after_commit()

    def _flushed(self, conn: sqlite3.Connection, failure: FlushFailed | None) -> None:
        """The flush after a commit is done: the turn goes, or, when it failed, stays with
        this connection and every later write is refused (store/wal_flush.py)."""
        if failure is not None and self.refusal.why is None:
            self.refusal.why = failure
            log.critical(
                "the disk failed to store %s (%s): simgate refuses every write until it is "
                "restarted",
                failure.path,
                failure.cause,
            )
        self._release_turn(conn)

    async def rollback(self) -> None:
        """Here (a no-op after a commit: the pool's reset on return), unless a call of a
        cancelled writer still runs in the thread: then behind it, never beside it."""
        if self._thread_busy():
            await self.in_thread(self._rollback, self._live())
        else:
            self._rollback(self._live())

    async def close(self) -> None:
        if self.wal_flush is not None:
            # The flushes in flight (a cancelled writer's) end first: each ends by dropping
            # the turn, which asks the connection whether a transaction is open.
            await self.wal_flush.aclose()
        connection, self._connection = self._connection, None
        if connection is not None:
            # Behind a commit still running in the thread (a cancelled writer), never beside.
            await self.in_thread(connection.close)
        self._thread.shutdown(wait=False)
        if self.turn is not None:  # after the close: its transaction, if any, has ended
            self.turn.close()
        if self.checkpointer is not None:
            await self.checkpointer.aclose()

    def stop(self) -> None:
        if self.wal_flush is not None:
            self.wal_flush.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            self._thread.submit(connection.close).result()
        self._thread.shutdown(wait=False)
        if self.turn is not None:
            self.turn.close()
        if self.checkpointer is not None:
            self.checkpointer.close()


def sqlite3_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLITE_BUSY / SQLITE_LOCKED (another connection holds the lock)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_writer_connection(
    path: str,
    *,
    busy_timeout_ms: int,
    commit: Commit = "disk",
    refusal: WriteRefusal | None = None,
    flush_by_kernel: bool = False,
) -> WriterConnection:
    """The write connection to ``path``: WAL, foreign keys on, and no busy wait on the loop
    (``begin_immediate`` waits in the thread instead). Its COMMIT on the loop with
    ``synchronous=NORMAL`` and the checkpoints beside it (``commit="os"``); with
    ``commit="disk"``, ``synchronous=FULL`` and the COMMIT in the thread, or, with
    ``flush_by_kernel`` where the kernel can, NORMAL with the WAL flushed by the kernel before
    the commit counts (store/wal_flush.py: off by default, its module docstring says why).
    Blocking (it may wait for the lock to switch to WAL): open it in a thread."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.execute("PRAGMA journal_mode=WAL")
    wal_flush = WalFlush.open(path) if commit == "disk" and flush_by_kernel else None
    # The flush makes NORMAL as durable as FULL (store/wal_flush.py).
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS['os' if wal_flush else commit]}")
    conn.execute("PRAGMA busy_timeout=0")
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        turn: WriteTurn | None = WriteTurn(path)
    except OSError:  # a directory it cannot create a file in: the BEGIN retries alone
        turn = None
    if commit == "disk" and wal_flush is None:
        return WriterConnection(conn, busy_timeout_ms=busy_timeout_ms, turn=turn, refusal=refusal)
    # Its checkpoints fsync: not in a COMMIT on the loop (store/sqlite_checkpoint.py).
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return WriterConnection(
        conn,
        busy_timeout_ms=busy_timeout_ms,
        checkpointer=Checkpointer(path),
        turn=turn,
        wal_flush=wal_flush,
        refusal=refusal,
    )
