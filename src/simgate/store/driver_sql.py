"""Raw SQL straight on the driver: SQLite's write connection's cursor, asyncpg's connection.

A statement through SQLAlchemy's execution path (``exec_driver_sql``: a cursor wrapper, a
result object, greenlet hops into the adapted driver and back) cost ~50 µs of the event
loop's CPU on SQLite, where the statement itself is a few microseconds of page-cache work
(issue 15: the one-number send; helper itnio's measurement of the replay INSERT), and ~130 µs
on PostgreSQL against ~65 µs straight on asyncpg. simgate's own SQLite write connection
(store/sqlite_writer.py) runs every call on the loop already, so a statement whose text and
parameters are final can run on its cursor directly, as the writer's BEGIN IMMEDIATE does
(store/batch_connections.py).

On PostgreSQL a statement runs straight on asyncpg's connection in autocommit, and in a
transaction SQLAlchemy began (``engine.begin()``: the database writer's jobs). The adapter's
BEGIN is lazy (at the first statement through it), so a statement straight on asyncpg first
starts the adapter's own transaction when none is open yet, under the adapter's lock, as its
cursor does: the COMMIT or ROLLBACK SQLAlchemy issues then ends it, and what runs through
SQLAlchemy after it runs in the same transaction. A connection SQLAlchemy has not begun
(it would not commit what a raw BEGIN opened) goes through ``exec_driver_sql``, as does
aiosqlite's connection for an in-memory or URI database (its calls are hand-offs to its
thread either way).

What the caller sees is the same on every path: the statement's row count (on SQLite
summed over an executemany, as sqlite3 and SQLAlchemy both report it; -1 for an
executemany on PostgreSQL, as the adapter reports it), the rows as the driver returns them
(by position: sqlite3 tuples, asyncpg Records), and a failure as SQLAlchemy's exception for
it (``DBAPIError.instance``, the driver's error as ``orig``; asyncpg's translated by the
adapter's own ``_handle_exception``, SQLAlchemy 2.x): the writer's retries
(store/batch_connections.py) and its storage-full check (store/database.py) read those.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.sqlite_writer import WriterConnection

__all__ = ["fetch", "run", "run_many", "writer_of"]


def writer_of(conn: AsyncConnection) -> WriterConnection | None:
    """``conn``'s driver connection when it is simgate's SQLite write connection, else None."""
    sync = conn.sync_connection
    driver = None if sync is None else sync.connection.driver_connection
    return driver if isinstance(driver, WriterConnection) else None


def _wrapped(conn: AsyncConnection, sql: str, params: Any, exc: sqlite3.Error) -> StatementError:
    """The exception SQLAlchemy raises for ``exc`` on this statement (its class by the
    driver error's name: IntegrityError, OperationalError, ...)."""
    return DBAPIError.instance(
        sql,
        params,
        exc,
        sqlite3.Error,
        dialect=conn.dialect,
        ismulti=isinstance(params, list),
    )


async def _straight(
    conn: AsyncConnection,
    writer: WriterConnection,
    sql: str,
    params: Any,
    *,
    many: bool = False,
    rows: bool = False,
) -> Any:
    """``sql`` on the write connection's own cursor (once, or for each of ``params`` when
    ``many``): its row count, or its rows; a failure as SQLAlchemy's exception for it."""
    cursor = writer.cursor()
    try:
        if many:
            await cursor.executemany(sql, params)
        else:
            await cursor.execute(sql, params)
        return await cursor.fetchall() if rows else cursor.rowcount
    except sqlite3.Error as exc:
        raise _wrapped(conn, sql, list(params) if many else params, exc) from exc
    finally:
        await cursor.close()


async def run(conn: AsyncConnection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run ``sql`` (the dialect's own parameter marks) once with ``params``; its row count."""
    writer = writer_of(conn)
    if writer is not None:
        count: int = await _straight(conn, writer, sql, params)
        return count
    pg = _asyncpg(conn)
    if pg is not None:
        status: str = await _on_asyncpg(conn, pg, sql, params, "execute")
        return _row_count(status)
    return (await conn.exec_driver_sql(sql, tuple(params))).rowcount


async def run_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` for each of ``rows`` (one executemany; many rows run in the write
    connection's thread: sqlite_writer.ROWS_IN_THREAD); on SQLite the rows it changed in
    all, -1 on PostgreSQL (asyncpg counts none for an executemany)."""
    if not rows:
        return 0
    writer = writer_of(conn)
    if writer is not None:
        count: int = await _straight(conn, writer, sql, rows, many=True)
        return count
    pg = _asyncpg(conn)
    if pg is not None:
        await _on_asyncpg(conn, pg, sql, rows, "executemany")
        return -1
    return (await conn.exec_driver_sql(sql, list(rows))).rowcount


async def fetch(conn: AsyncConnection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run ``sql`` once with ``params``; every row it returns (tuple-like, by position)."""
    writer = writer_of(conn)
    if writer is not None:
        found: list[Any] = await _straight(conn, writer, sql, params, rows=True)
        return found
    pg = _asyncpg(conn)
    if pg is not None:
        records: list[Any] = await _on_asyncpg(conn, pg, sql, params, "fetch")
        return records
    return list(await conn.exec_driver_sql(sql, tuple(params)))


def _asyncpg(conn: AsyncConnection) -> tuple[Any, Any] | None:
    """SQLAlchemy's adapted connection and the asyncpg connection under it, when a
    statement may run straight on asyncpg: in autocommit, or in a transaction SQLAlchemy
    began (it commits or rolls back the adapter's transaction, which :func:`_on_asyncpg`
    starts if no statement has yet); else None."""
    sync = conn.sync_connection
    if sync is None or conn.dialect.driver != "asyncpg":
        return None
    adapted: Any = sync.connection.dbapi_connection
    if adapted is None:
        return None
    if adapted.isolation_level != "autocommit" and not sync.in_transaction():
        return None
    return adapted, sync.connection.driver_connection


_COUNTED = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+|MERGE) (\d+)")


def _row_count(status: str | None) -> int:
    """The row count in a command tag ("UPDATE 3", "INSERT 0 2"), as the adapter reads it;
    -1 for a command that counts none."""
    found = _COUNTED.match(status or "")
    return int(found.group(1)) if found else -1


async def _on_asyncpg(
    conn: AsyncConnection, found: tuple[Any, Any], sql: str, params: Any, how: str
) -> Any:
    """``sql`` straight on asyncpg's connection (``how``: its ``execute``, ``executemany``
    or ``fetch``), in the adapter's transaction (begun here when no statement has begun it
    yet: its BEGIN is lazy; nothing in autocommit) and under its lock, as its cursor runs
    one. The parameters reach asyncpg as through the adapter (which hands them over as they
    are; the codecs it registers are the connection's own), so types and NULLs are the same.
    A failure is translated by the adapter's own ``_handle_exception`` (its one place for
    it, SQLAlchemy 2.x), then wrapped as SQLAlchemy's execution path would wrap it."""
    adapted, pg = found
    try:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()  # no-op in autocommit
            if how == "fetch":
                return await pg.fetch(sql, *params)
            if how == "execute":
                return await pg.execute(sql, *params)
            return await pg.executemany(sql, params)
    except Exception as exc:
        dbapi = conn.dialect.loaded_dbapi
        if isinstance(exc, dbapi.Error):  # translated already (the BEGIN's failure)
            raise _pg_wrapped(conn, sql, params, exc, how) from exc
        try:
            adapted._handle_exception(exc)  # raises the adapter's error for it
        except dbapi.Error as translated:
            raise _pg_wrapped(conn, sql, params, translated, how) from exc
        raise


def _pg_wrapped(
    conn: AsyncConnection, sql: str, params: Any, exc: Exception, how: str
) -> StatementError:
    return DBAPIError.instance(
        sql,
        list(params) if how == "executemany" else params,
        exc,
        conn.dialect.loaded_dbapi.Error,
        dialect=conn.dialect,
        ismulti=how == "executemany",
    )
