"""What the database ran, seen from both sides of store/driver_sql.py.

``sqlite_ran``: on SQLite, every statement the write connection's sqlite3 runs (its trace
callback: BEGIN and COMMIT too, and one entry per row of an executemany), whether it came
through SQLAlchemy or straight on the driver. ``through_sqlalchemy``: the statements
SQLAlchemy's engine sends (``before_cursor_execute``), which on SQLite's write connection
no longer include what runs straight on its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database
from simgate.store.sqlite_writer import WriterConnection


def _flat(statement: str) -> str:
    return " ".join(statement.split())


@contextlib.asynccontextmanager
async def sqlite_ran(db: Database) -> AsyncIterator[list[str]]:
    """The statements SQLite's write connection runs meanwhile (whitespace collapsed).
    Reads the connection through a write of its own: enter it before a write is held."""
    assert db.is_sqlite

    async def writer(conn: AsyncConnection) -> sqlite3.Connection:
        driver = (await conn.get_raw_connection()).driver_connection
        assert isinstance(driver, WriterConnection)
        return driver._live()

    live = await db.write(writer)
    seen: list[str] = []
    live.set_trace_callback(lambda statement: seen.append(_flat(statement)))
    try:
        yield seen
    finally:
        live.set_trace_callback(None)


@contextlib.contextmanager
def through_sqlalchemy(db: Database) -> Iterator[list[str]]:
    """The statements SQLAlchemy's engine sends meanwhile (whitespace collapsed)."""
    seen: list[str] = []

    def on_execute(_c: object, _cur: object, statement: str, *_: object) -> None:
        seen.append(_flat(statement))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


# asyncpg's own queries: the type introspection of a statement's first run on a connection
# (with JIT off around it), not the caller's.
_ASYNCPG_OWN = (
    "WITH RECURSIVE typeinfo_tree",
    "SELECT current_setting('jit')",
    "SELECT set_config",
)


@contextlib.asynccontextmanager
async def asyncpg_ran(db: Database, seen: list[str]) -> AsyncIterator[list[str]]:
    """PostgreSQL: the statements run straight on asyncpg's connections meanwhile
    (store/driver_sql.py ``fetch``), added to ``seen``, from asyncpg's query
    logger (it sees those, not what SQLAlchemy's adapter runs through its prepared
    statements), on every connection checked out of the pool meanwhile and on those the
    database's writer tasks hold across batches (store/database.py), reached through writes
    of their own: enter it before a write is held."""

    def logged(record: Any) -> None:
        query = _flat(record.query)
        if not query.startswith(_ASYNCPG_OWN):
            seen.append(query)

    held: list[Any] = []

    async def attach(conn: AsyncConnection) -> None:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # an open connection's
        driver.add_query_logger(logged)
        held.append(driver)

    def checkout(dbapi_connection: Any, *_: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(logged)

    def checkin(dbapi_connection: Any, *_: object) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(logged)

    engine = db.engine.sync_engine
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        # Each lane's writer, in a transaction and in autocommit (checked out now if not yet).
        for urgent in (False, True):
            for autocommit in (False, True):
                await db.submit(attach, urgent=urgent, autocommit=autocommit)
        yield seen
        await asyncio.sleep(0)  # asyncpg calls its loggers soon after, not during, a query
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
        for driver in held:
            driver.remove_query_logger(logged)
