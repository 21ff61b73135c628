"""SQLite connections driven on the event loop's own thread, for short reads.

aiosqlite runs every call (cursor, execute, fetch, close, rollback) on a worker thread and
wakes the loop for each: about four thread hops per one-row read (issue 15 measured 0.55 ms
per read, most of it hops). A short indexed read costs SQLite itself a few microseconds,
less than one hop, so :meth:`Database.read_short` runs it right here instead.

The classes below give a plain :mod:`sqlite3` connection the shape of an aiosqlite one
(``async`` methods that finish at once), so SQLAlchemy's aiosqlite dialect drives it
through ``create_async_engine(async_creator=...)``: every store function works unchanged
on it. Each await completes without suspending: the event loop is held for the whole read,
which is why only short reads (a key, an app, a user, an account) come this way.

The connection is opened read-only (``PRAGMA query_only``) with a short busy timeout: in
WAL mode a reader never waits for the writer, so SQLITE_BUSY is left to rare recovery
moments, and then the loop waits :data:`LOOP_BUSY_TIMEOUT_MS` at most.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

# The longest the event loop may wait for SQLite's lock on this path (see module doc).
LOOP_BUSY_TIMEOUT_MS = 250


class LoopCursor:
    """An aiosqlite-shaped cursor over a :class:`sqlite3.Cursor`."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> LoopCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> LoopCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class LoopConnection:
    """An aiosqlite-shaped connection over a :class:`sqlite3.Connection`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        # aiosqlite's name for the live sqlite3 connection: SQLAlchemy's adapter looks at it.
        self._connection: sqlite3.Connection | None = connection

    def _live(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (sqlite3's ``in_transaction``); False once closed."""
        return self._connection is not None and self._connection.in_transaction

    def cursor(self) -> LoopCursor:
        return LoopCursor(self._live().cursor())

    def begin(self) -> None:
        """BEGIN straight on sqlite3 (SQLAlchemy's "begin" event): one snapshot for the
        read, without a second statement through SQLAlchemy's execution path."""
        self._live().execute("BEGIN")

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:  # aiosqlite's hard stop: nothing runs elsewhere to stop
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)


def open_loop_connection(path: str) -> LoopConnection:
    """A read-only connection to ``path`` for the event loop's thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    conn.execute(f"PRAGMA busy_timeout={LOOP_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only=ON")
    return LoopConnection(conn)
