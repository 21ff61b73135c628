"""Whole SQLite reads in one call: statements and fetches together, on the loop or a thread.

A pooled aiosqlite read through SQLAlchemy hops between the event loop and the connection's
thread for every step (check-out, BEGIN, cursor, execute, fetch, close, rollback): getReport
with 200 ids paid 3.3x the raw query's p99 at 10 M messages (issue 15), most of it hops and
the wake-ups behind them on a busy machine. Here the whole read is one plain :mod:`sqlite3`
function: on the event loop's thread when it is short (below), else in one worker-thread
call (store/loop_sqlite.py stays for the few indexed rows of the auth look-ups).

Each worker thread keeps its own read-only connection (``PRAGMA query_only``), opened on
first use. Several statements of one call share one snapshot (``BEGIN`` ... ``COMMIT``): in
WAL mode a count and its page see the same rows, as they did in one pooled transaction.

A read first runs on the event loop's own thread, on a connection of its own, with a
budget of :data:`LOOP_BUDGET_S`: the thread hop itself costs more than a short read (at
10 M messages a number's /smsoutbox/get page read in 0.9 ms p50 in a sync call, 2.6 ms
through the worker thread on a busy 2-core machine: two cross-thread wake-ups). SQLite's
progress handler checks the clock every :data:`PROGRESS_STEPS` VM instructions and
interrupts a read that would hold the loop longer; it is then run again in a worker thread.
SQL whose reads overrun :data:`OVERRUNS_IN_A_ROW` times in a row goes straight there for the
next :data:`THREAD_AFTER_OVERRUN` calls (a getReport of 200 ids spread over months is such a
read). So the loop is held for at most about the budget per read, whatever the query.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# A statement: SQL text with ``?`` marks and its parameters.
Statement = tuple[str, Sequence[Any]]

# As many as the pooled read engine's connections (store/database.py): reads in flight at once.
READ_THREADS = 4
# The longest a read may hold the event loop before it moves to a worker thread (module doc).
LOOP_BUDGET_S = 0.001
# VM instructions between two looks at the clock: tens of microseconds of SQLite's work.
PROGRESS_STEPS = 2000
# When reads of one SQL overran the budget this many times in a row (a read that is long by
# nature, not one that met a busy moment), that SQL goes to a worker thread this many times,
# then the loop is tried again (the data or the load may have changed).
OVERRUNS_IN_A_ROW = 3
THREAD_AFTER_OVERRUN = 32


class ThreadReads:
    """Read-only SQLite connections: one for the event loop's thread, one per worker thread
    of a pool of its own."""

    def __init__(self, path: str, *, busy_timeout_ms: int, threads: int = READ_THREADS) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        # Its own threads: the loop's default executor also runs getaddrinfo and file I/O,
        # which must not queue reads behind them (nor the reverse).
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._loop_conn: sqlite3.Connection | None = None
        self._deadline = 0.0
        # By SQL (the first statement's): overruns of the loop's budget in a row, and the
        # calls left that go straight to a thread.
        self._overruns: dict[str, int] = {}
        self._thread_only: dict[str, int] = {}

    async def fetch(self, statements: Sequence[Statement]) -> list[list[Any]]:
        """Every statement's rows (plain tuples), read in one snapshot: on the loop's thread
        within the budget, else by one worker-thread call (module doc)."""
        key = statements[0][0] if statements else ""
        skips = self._thread_only.get(key, 0)
        if skips:
            self._thread_only[key] = skips - 1
        elif not self._closed:
            rows = self._on_loop(statements)
            if rows is not None:
                self._overruns.pop(key, None)
                return rows
            overruns = self._overruns[key] = self._overruns.get(key, 0) + 1
            if overruns >= OVERRUNS_IN_A_ROW:
                self._thread_only[key] = THREAD_AFTER_OVERRUN
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, statements)

    def _on_loop(self, statements: Sequence[Statement]) -> list[list[Any]] | None:
        """The read on this thread, or None when it overran the budget or met a lock."""
        conn = self._loop_conn
        if conn is None:
            conn = self._loop_conn = self._open(busy_timeout_ms=0)
        self._deadline = time.perf_counter() + LOOP_BUDGET_S
        try:
            return _read(conn, statements)
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc) and "locked" not in str(exc):
                raise
            return None
        finally:
            if conn.in_transaction:  # an interrupted read's snapshot
                conn.execute("ROLLBACK")

    def _over_budget(self) -> int:
        """SQLite's progress handler: non-zero interrupts the running statement. Once only:
        the read's ROLLBACK after the interrupt must not be interrupted too."""
        if time.perf_counter() <= self._deadline:
            return 0
        self._deadline = math.inf
        return 1

    def _run(self, statements: Sequence[Statement]) -> list[list[Any]]:
        return _read(self._connection(), statements)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = self._open(busy_timeout_ms=self._busy_timeout_ms)
        self._local.conn = conn
        return conn

    def _open(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        # check_same_thread=False only so that close() may close it from the loop's thread.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute("PRAGMA query_only=ON")
        if busy_timeout_ms == 0:  # the loop's connection: its reads are on a budget
            conn.set_progress_handler(self._over_budget, PROGRESS_STEPS)
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("the database is closed")
            self._opened.append(conn)
        return conn

    async def close(self) -> None:
        """Wait for the reads in flight, then close every thread's connection."""
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, []
            self._loop_conn = None
        for conn in opened:
            conn.close()


def _read(conn: sqlite3.Connection, statements: Sequence[Statement]) -> list[list[Any]]:
    if len(statements) == 1:  # one statement is one snapshot already
        sql, params = statements[0]
        return [conn.execute(sql, params).fetchall()]
    conn.execute("BEGIN")
    try:
        return [conn.execute(sql, params).fetchall() for sql, params in statements]
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
