"""Whole SQLite reads in one worker-thread call: statements and fetches together.

A pooled aiosqlite read through SQLAlchemy hops between the event loop and the connection's
thread for every step (check-out, BEGIN, cursor, execute, fetch, close, rollback): getReport
with 200 ids paid 3.3x the raw query's p99 at 10 M messages (issue 15), most of it hops and
the wake-ups behind them on a busy machine. A report or page query is too long to run on
the event loop's thread (store/loop_sqlite.py is for a few indexed rows), so here the whole
read runs as one plain :mod:`sqlite3` function in one worker-thread call.

Each worker thread keeps its own read-only connection (``PRAGMA query_only``), opened on
first use. Several statements of one call share one snapshot (``BEGIN`` ... ``COMMIT``): in
WAL mode a count and its page see the same rows, as they did in one pooled transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# A statement: SQL text with ``?`` marks and its parameters.
Statement = tuple[str, Sequence[Any]]

# As many as the pooled read engine's connections (store/database.py): reads in flight at once.
READ_THREADS = 4


class ThreadReads:
    """Read-only SQLite connections, one per worker thread of a pool of its own."""

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

    async def fetch(self, statements: Sequence[Statement]) -> list[list[Any]]:
        """Every statement's rows (plain tuples), read in one snapshot by one thread call."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, statements)

    def _run(self, statements: Sequence[Statement]) -> list[list[Any]]:
        conn = self._connection()
        if len(statements) == 1:  # one statement is one snapshot already
            sql, params = statements[0]
            return [conn.execute(sql, params).fetchall()]
        conn.execute("BEGIN")
        try:
            return [conn.execute(sql, params).fetchall() for sql, params in statements]
        finally:
            conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        # check_same_thread=False only so that close() may close it from the loop's thread.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA query_only=ON")
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("the database is closed")
            self._opened.append(conn)
        self._local.conn = conn
        return conn

    async def close(self) -> None:
        """Wait for the reads in flight, then close every thread's connection."""
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
