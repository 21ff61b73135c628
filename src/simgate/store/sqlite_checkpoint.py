"""WAL checkpoints of the SQLite writer with ``commit = "os"``, beside it, never on the loop.

With ``synchronous=NORMAL`` a COMMIT only writes the WAL frames into the page cache, so the
writer commits on the event loop's thread (store/sqlite_writer.py) instead of handing each
COMMIT to a thread and back (issue 15, compare's send to ``simgate serve`` at one connection
on a busy machine, 3 rounds by turns: p50 3.4 against 5.2 ms, 281 against 182 req/s; in
``run`` the worker's work on the same loop hid the difference). What NORMAL still fsyncs is
the checkpoint: the WAL before it copies pages into the database file, the database after
(https://www.sqlite.org/pragma.html#pragma_synchronous). SQLite runs one inside a COMMIT once
the WAL passes ``wal_autocheckpoint`` pages, which on the loop would hold it for both fsyncs.
So the writer's auto-checkpoint is off and a :class:`Checkpointer` runs a PASSIVE checkpoint
on a connection and thread of its own, at most every :data:`CHECKPOINT_EVERY_S` after a
commit. In WAL mode a checkpoint runs beside the writer and the readers without blocking
them (https://www.sqlite.org/wal.html#concurrency); PASSIVE never waits for a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from typing import Any

log = logging.getLogger(__name__)

# How often, at most, a checkpoint starts while commits come. SQLite's default auto-checkpoint
# (1,000 pages, 4 MB) came several times a second under a send load (each commit writes whole
# pages to the WAL); a fifth of a second keeps the WAL to the same order of size.
CHECKPOINT_EVERY_S = 0.2


class Checkpointer:
    """PASSIVE checkpoints of the database at ``path``, in a thread of their own."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sqlite-checkpoint"
        )
        self._conn: sqlite3.Connection | None = None  # opened and used in the thread only
        self._running: concurrent.futures.Future[Any] | None = None
        self._started: float | None = None  # monotonic time the last checkpoint started
        self._closed = False
        self.done = 0  # checkpoints that ran (tests read it)

    def after_commit(self) -> None:
        """Start a checkpoint unless one runs or one started less than
        :data:`CHECKPOINT_EVERY_S` ago. Called on the loop: costs a clock read, or one
        hand-off a fifth of a second at most."""
        now = time.monotonic()
        if self._closed or (self._started is not None and now - self._started < CHECKPOINT_EVERY_S):
            return
        if self._running is not None and not self._running.done():
            return
        self._started = now
        self._running = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                conn = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False, timeout=0
                )
                # The checkpoint's fsyncs (WAL, then database) come with NORMAL or FULL; with
                # OFF the WAL could be reused before the pages reached the disk.
                conn.execute("PRAGMA synchronous=NORMAL")
                self._conn = conn
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error as exc:  # the next commit's checkpoint tries again
            log.debug("checkpoint of %s failed: %s", self._path, exc)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        """Stop: after a checkpoint still running, never beside it. Twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await asyncio.wrap_future(self._thread.submit(self._close_connection))
        self._thread.shutdown(wait=False)

    def close(self) -> None:
        """:meth:`aclose` off the loop (the connection's hard stop)."""
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self._close_connection).result()
        self._thread.shutdown(wait=False)
