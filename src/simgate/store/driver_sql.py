"""Raw SQL on SQLite's write connection, straight on its cursor.

A statement through SQLAlchemy's execution path (``exec_driver_sql``: a cursor wrapper, a
result object, greenlet hops into the adapted driver and back) cost ~50 µs of the event
loop's CPU on SQLite, where the statement itself is a few microseconds of page-cache work
(issue 15: the one-number send; helper itnio's measurement of the replay INSERT). simgate's
own write connection (store/sqlite_writer.py) runs every call on the loop already, so a
statement whose text and parameters are final can run on its cursor directly, as the
writer's BEGIN IMMEDIATE does (store/database.py).

Everything else (PostgreSQL, aiosqlite's connection for an in-memory or URI database)
goes through ``exec_driver_sql`` as before: on asyncpg a raw statement would skip the
adapter's lazy BEGIN, and aiosqlite's calls are hand-offs to its thread either way. The
exception is :func:`fetch_autocommit`, for a statement that runs alone in autocommit on
PostgreSQL (the one-statement accepts, store/accept_writes.py): no BEGIN to skip there.

What the caller sees is the same on both paths: the statement's row count (on SQLite
summed over an executemany, as sqlite3 and SQLAlchemy both report it; asyncpg reports -1
for one), the rows as the driver returns them, and a failure as SQLAlchemy's exception
for it (``DBAPIError.instance``, the driver's error as ``orig``): the database writer's
retries and its storage-full check (store/database.py) read those.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.sqlite_writer import WriterConnection

__all__ = ["fetch", "fetch_autocommit", "run", "run_many", "writer_of"]


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
    if writer is None:
        return (await conn.exec_driver_sql(sql, tuple(params))).rowcount
    count: int = await _straight(conn, writer, sql, params)
    return count


async def run_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` for each of ``rows`` (one executemany; many rows run in the write
    connection's thread: sqlite_writer.ROWS_IN_THREAD); on SQLite the rows it changed in
    all, -1 on PostgreSQL (asyncpg counts none for an executemany)."""
    if not rows:
        return 0
    writer = writer_of(conn)
    if writer is None:
        return (await conn.exec_driver_sql(sql, list(rows))).rowcount
    count: int = await _straight(conn, writer, sql, rows, many=True)
    return count


def _asyncpg_autocommit(conn: AsyncConnection) -> tuple[Any, Any] | None:
    """SQLAlchemy's adapted connection and the asyncpg connection under it, when the
    adapter holds it in autocommit (it starts no transaction that a raw statement would
    skip: its BEGIN is lazy, at the first statement through it), else None."""
    sync = conn.sync_connection
    if sync is None:
        return None
    adapted: Any = sync.connection.dbapi_connection
    if getattr(adapted, "isolation_level", None) != "autocommit":
        return None
    return adapted, sync.connection.driver_connection


async def fetch_autocommit(
    conn: AsyncConnection, sql: str, params: Sequence[Any] = ()
) -> list[Any]:
    """:func:`fetch`; on PostgreSQL in autocommit straight on asyncpg's connection too.

    Through SQLAlchemy's asyncpg adapter a statement cost ~130 µs of CPU, straight on
    asyncpg ~65 µs (the same one-parameter statement, in one process, issue 15): its
    prepared-statement cache, cursor and result. The parameters reach asyncpg as through
    the adapter (which hands them over as they are; the JSON codecs it registers are the
    connection's own), so types and NULLs are the same; rows are asyncpg Records (by
    position, as the adapter's rows). A failure is translated by the adapter's own
    ``_handle_exception`` (its one place for it, SQLAlchemy 2.x), then as
    SQLAlchemy's execution path would wrap it."""
    found = _asyncpg_autocommit(conn)
    if found is None:
        return await fetch(conn, sql, params)
    adapted, pg = found
    try:
        rows: list[Any] = await pg.fetch(sql, *params)
        return rows
    except Exception as exc:
        dbapi = conn.dialect.loaded_dbapi
        try:
            adapted._handle_exception(exc)  # raises the adapter's error for it
        except dbapi.Error as translated:
            raise DBAPIError.instance(
                sql, params, translated, dbapi.Error, dialect=conn.dialect
            ) from exc
        raise


async def fetch(conn: AsyncConnection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run ``sql`` once with ``params``; every row it returns (tuple-like, by position)."""
    writer = writer_of(conn)
    if writer is None:
        return list(await conn.exec_driver_sql(sql, tuple(params)))
    found: list[Any] = await _straight(conn, writer, sql, params, rows=True)
    return found
