"""Whose turn it is to write a SQLite file, among simgate's processes: a kernel lock, not polling.

``simgate run --worker-process`` writes one SQLite file from two processes (the HTTP parent
and its worker child, cli/worker_child.py). SQLite has one write lock and no queue for it: a
``BEGIN IMMEDIATE`` that finds it taken gets SQLITE_BUSY at once, and the only way to wait is
to try again later, by SQLite's busy handler (sleeps of 1, 2, 5, 10 ... ms) or our own retry
(store/sqlite_writer.py, 0.2 ms doubling to 2 ms). Either sleeps past the moment the lock is
freed: measured in ``run --worker-process`` at one connection on a busy 2-core machine, the
parent's writer waited 6.9 ms per busy BEGIN (136 of 1,257) for commits that held the lock
2.5 ms on average, and the child 4.0 ms for 3.1 ms.

So each writer takes an exclusive ``flock(2)`` on a file beside the database
(``<database>-writer``) before ``BEGIN IMMEDIATE`` and drops it once the transaction ended.
A process that finds it taken waits for it in the kernel (in a thread: the loop goes on), and
the kernel wakes it when the holder drops it: the wait is the holder's transaction, not the
holder's plus a sleep. The lock is the open file's (``flock``, not ``fcntl``: SQLite's own
POSIX locks are not touched, and closing this file never drops them), and the kernel drops it
when its process dies, so a kill -9 leaves nobody waiting on it.

The waiting thread is the turn's own, started at its first wait and kept (:class:`_Waiter`).
A thread started per wait stalled the loop each time (``Thread.start`` blocks its caller until
the new thread runs, and that thread needs the GIL from a busy loop): ~40 times a second in
each process of ``simgate run`` under a send load, ~1.3 % of the parent's loop (issue 15,
py-spy).

It orders simgate's writers only; SQLite's own lock stays what guards the data. A writer that
is not simgate (the ``sqlite3`` shell, a backup) does not take the turn: a BEGIN IMMEDIATE
that finds the lock taken anyway still waits as before (store/sqlite_writer.py), and the wait
for the turn plus that one keep within the busy timeout (30 s), after which the write fails
with "database is locked" as SQLite's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable

SUFFIX = "-writer"


class WriteTurn:
    """The turn to write the SQLite file at ``path`` (module docstring). One per writer
    connection; :meth:`take` before BEGIN IMMEDIATE, :meth:`release` once it ended."""

    def __init__(self, path: str) -> None:
        self.path = path + SUFFIX
        # 0600 as the database: the data directory holds keys (settings: data_dir).
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held: int | None = None  # the descriptor holding the turn, if any
        self._waiter: _Waiter | None = None  # started at the first wait (module docstring)

    @property
    def held(self) -> bool:
        return self._held is not None

    def try_take(self) -> bool:
        """The turn now if it is free (one system call, on the loop's thread)."""
        if self._held is not None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = self._fd
        return True

    async def take(self, timeout_s: float) -> None:
        """The turn, waited for in a thread of its own when another process has it; raises
        SQLite's "database is locked" after ``timeout_s``, as its busy timeout would."""
        if self.try_take():
            return
        loop = asyncio.get_running_loop()
        got: asyncio.Future[int] = loop.create_future()
        # A descriptor of its own (a lock of its own): a wait given up on (timeout, cancel)
        # may still be granted later, and is then dropped without touching self._fd.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

        def granted(error: OSError | None) -> None:  # in the waiter's thread
            try:
                loop.call_soon_threadsafe(_settle, got, fd, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                os.close(fd)

        if self._waiter is None:
            self._waiter = _Waiter()
        self._waiter.wait_for(fd, granted)
        try:
            self._held = await asyncio.wait_for(asyncio.shield(got), timeout_s)
        except TimeoutError:
            _give_up(got)
            raise sqlite3.OperationalError("database is locked") from None
        except BaseException:
            _give_up(got)
            raise

    def release(self) -> None:
        """Drop the turn (nothing if not held); callable from any thread."""
        fd, self._held = self._held, None
        if fd is None:
            return
        if fd == self._fd:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            os.close(fd)  # a waited-for turn: its own descriptor, closed with its lock

    def close(self) -> None:
        self.release()
        if self._waiter is not None:
            self._waiter.stop()
            self._waiter = None
        with contextlib.suppress(OSError):
            os.close(self._fd)


# Told, in the waiter's thread, that the wait's lock is granted (None) or failed.
Granted = Callable[[OSError | None], None]


class _Waiter:
    """The thread that waits for the turn's ``flock`` on behalf of the loop, one wait at a
    time, in the order asked. A wait given up on (a timeout, a cancel) still ends with its
    lock granted, then dropped on the loop by :func:`_settle`; the next wait is granted after
    that: the order the kernel granted them in when each wait had a thread of its own."""

    def __init__(self) -> None:
        self._asked: queue.SimpleQueue[tuple[int, Granted] | None] = queue.SimpleQueue()
        # A daemon thread: a process stopping while another holds the turn does not wait (a
        # ThreadPoolExecutor's thread is joined at exit, so it would, for as long as the turn).
        threading.Thread(target=self._run, name="sqlite-turn", daemon=True).start()

    def wait_for(self, fd: int, granted: Granted) -> None:
        """Lock ``fd`` (blocking, in the thread), then call ``granted(error)`` there."""
        self._asked.put((fd, granted))

    def stop(self) -> None:
        """End the thread once the waits asked before have ended."""
        self._asked.put(None)

    def _run(self) -> None:
        while (asked := self._asked.get()) is not None:
            fd, granted = asked
            error: OSError | None = None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                error = exc
            granted(error)


def _settle(got: asyncio.Future[int], fd: int, exc: OSError | None) -> None:
    """On the loop: hand the granted descriptor to the waiter, or drop it if nobody waits."""
    if got.done():  # given up on (timeout, cancel): _give_up left the closing to us
        os.close(fd)
    elif exc is not None:
        os.close(fd)
        got.set_exception(exc)
    else:
        got.set_result(fd)


def _give_up(got: asyncio.Future[int]) -> None:
    """The waiter went away: a descriptor already granted is closed now; one granted later
    is closed by :func:`_settle`, which finds ``got`` done."""
    if not got.done():
        got.cancel()
    elif not got.cancelled() and got.exception() is None:
        os.close(got.result())
