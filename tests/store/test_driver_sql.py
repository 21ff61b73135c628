"""Raw statements straight on the driver (store/driver_sql.py): SQLite's write connection's
cursor, asyncpg's connection in autocommit or in a transaction SQLAlchemy began, out of
SQLAlchemy's execution path, with the same answers as through it (row counts, rows, errors)
on both backends; elsewhere through ``exec_driver_sql`` as before."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database, Store, driver_sql
from simgate.store.sqltext import marks
from simgate.store.tables import kv
from tests.support.driver_trace import asyncpg_ran, through_sqlalchemy


def _sql(conn: AsyncConnection, text: str, count: int) -> str:
    """``text`` with its ``{}`` marks as the dialect's positional parameters."""
    return text.format(*marks(conn.dialect, count))


async def test_row_counts_and_rows_are_as_stored(store: Store) -> None:
    """The same answers on both backends, none through SQLAlchemy (each of these would have
    cost ~50 µs of the event loop's CPU on SQLite, ~65 µs more than straight on PostgreSQL:
    issue 15); on PostgreSQL asyncpg ran them itself."""
    db = store.db

    async def job(conn: AsyncConnection) -> list[Any]:
        insert = _sql(conn, "INSERT INTO kv (key, value) VALUES ({}, {})", 2)
        update = _sql(conn, "UPDATE kv SET value = {} WHERE key LIKE {}", 2)
        read = _sql(conn, "SELECT key, value FROM kv WHERE key LIKE {} ORDER BY key", 1)
        return [
            await driver_sql.run(conn, insert, ("d:a", "1")),
            await driver_sql.run_many(conn, insert, [("d:b", "2"), ("d:c", "3"), ("e", "4")]),
            await driver_sql.run_many(conn, insert, []),
            await driver_sql.run(conn, update, ("x", "d:%")),
            await driver_sql.run(conn, update, ("y", "none%")),
            [tuple(r) for r in await driver_sql.fetch(conn, read, ("d:%",))],
        ]

    raw: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if not db.is_sqlite:
            await stack.enter_async_context(asyncpg_ran(db, raw))
        with through_sqlalchemy(db) as seen:
            answers = await db.write(job)
    # asyncpg reports no row count for an executemany: -1, as through SQLAlchemy.
    many = 3 if db.is_sqlite else -1
    assert answers == [1, many, 0, 3, 0, [("d:a", "x"), ("d:b", "x"), ("d:c", "x")]]
    assert seen == []
    if not db.is_sqlite:  # the adapter's lazy BEGIN, begun for the first; its COMMIT
        verbs = [q.split()[0].rstrip(";") for q in raw]
        assert verbs == ["BEGIN", "INSERT", "INSERT", "UPDATE", "UPDATE", "SELECT", "COMMIT"]
    async with db.read() as conn:
        stored = (await conn.execute(select(kv.c.key, kv.c.value).order_by(kv.c.key))).all()
    assert [tuple(r) for r in stored if r[0] in ("d:a", "d:b", "d:c", "e")] == [
        ("d:a", "x"),
        ("d:b", "x"),
        ("d:c", "x"),
        ("e", "4"),
    ]


@pytest.mark.parametrize("many", [False, True])
async def test_a_failing_statement_raises_asthrough_sqlalchemy(store: Store, many: bool) -> None:
    """SQLAlchemy's exception for the driver's error (the database writer's retries and its
    storage-full check read it, store/database.py); the transaction is rolled back whole."""
    db = store.db

    async def job(conn: AsyncConnection) -> None:
        insert = _sql(conn, "INSERT INTO kv (key, value) VALUES ({}, {})", 2)
        await driver_sql.run(conn, insert, ("dup", "1"))
        if many:
            await driver_sql.run_many(conn, insert, [("other", "2"), ("dup", "3")])
        else:
            await driver_sql.run(conn, insert, ("dup", "2"))

    with pytest.raises(IntegrityError) as raised:
        await db.write(job)
    if db.is_sqlite:
        assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    else:  # as the adapter translates it (unique_violation)
        assert getattr(raised.value.orig, "sqlstate", None) == "23505"
    async with db.read() as conn:
        keys = (await conn.execute(select(kv.c.key).where(kv.c.key.in_(["dup", "other"])))).all()
    assert keys == []


@pytest.mark.parametrize("straight_first", [True, False])
async def test_straight_statements_are_in_sqlalchemys_transaction(
    store: Store, straight_first: bool
) -> None:
    """A statement straight on the driver and one through SQLAlchemy are in one transaction,
    whichever runs first (on PostgreSQL the adapter's BEGIN is lazy: a straight statement
    first begins it, else it would run in a transaction of its own and commit at once),
    committed or rolled back together."""
    db = store.db

    async def job(conn: AsyncConnection, key: str, fail: bool) -> list[Any]:
        insert = _sql(conn, "INSERT INTO kv (key, value) VALUES ({}, {})", 2)
        txid = "SELECT 0" if db.is_sqlite else "SELECT txid_current()"
        seen = []
        for straight in (straight_first, not straight_first):
            if straight:
                await driver_sql.run(conn, insert, (key + ":raw", "1"))
                seen.append((await driver_sql.fetch(conn, txid))[0][0])
            else:
                await conn.execute(kv.insert().values(key=key + ":core", value="2"))
                seen.append((await conn.exec_driver_sql(txid)).scalar_one())
        if fail:
            raise RuntimeError("roll it back")
        return seen

    with pytest.raises(RuntimeError):
        await db.write(lambda conn: job(conn, "t:gone", True))
    txids = await db.write(lambda conn: job(conn, "t:kept", False))
    assert txids[0] == txids[1]
    async with db.read() as conn:
        keys = (await conn.execute(select(kv.c.key).where(kv.c.key.like("t:%")))).scalars()
        assert sorted(keys) == ["t:kept:core", "t:kept:raw"]


async def test_a_connection_sqlalchemy_has_not_begun_goes_through_it(store: Store) -> None:
    """PostgreSQL: on a connection SQLAlchemy has not begun (it would not commit nor roll
    back a transaction begun behind it) the first statement goes through SQLAlchemy, which
    begins; the next one runs straight, in that transaction."""
    db = store.db
    if db.is_sqlite:
        pytest.skip("PostgreSQL's adapter and its lazy BEGIN")
    async with db.read() as conn:
        assert not conn.in_transaction()
        with through_sqlalchemy(db) as seen:
            first = (await driver_sql.fetch(conn, "SELECT txid_current()"))[0][0]
            second = (await driver_sql.fetch(conn, "SELECT txid_current()"))[0][0]
    assert seen == ["SELECT txid_current()"]
    assert first == second


async def test_elsewhere_through_sqlalchemy_as_before(tmp_path: Path) -> None:
    """A URI database runs on aiosqlite's connection (store/database.py): no write
    connection of simgate's there, so the statements go through ``exec_driver_sql``."""
    db = Database(f"sqlite+aiosqlite:///file:{tmp_path / 'uri.db'}?uri=true")
    await db.open()
    try:

        async def job(conn: AsyncConnection) -> list[Any]:
            assert driver_sql.writer_of(conn) is None
            await driver_sql.run(conn, "CREATE TABLE t (a INTEGER)")
            return [
                await driver_sql.run_many(conn, "INSERT INTO t (a) VALUES (?)", [(1,), (2,)]),
                await driver_sql.run(conn, "UPDATE t SET a = a + ? WHERE a > ?", (10, 1)),
                [tuple(r) for r in await driver_sql.fetch(conn, "SELECT a FROM t ORDER BY a")],
            ]

        with through_sqlalchemy(db) as seen:
            answers = await db.write(job)
        assert answers == [2, 1, [(1,), (12,)]]
        assert [s for s in seen if not s.startswith("BEGIN")] == [
            "CREATE TABLE t (a INTEGER)",
            "INSERT INTO t (a) VALUES (?)",
            "UPDATE t SET a = a + ? WHERE a > ?",
            "SELECT a FROM t ORDER BY a",
        ]
    finally:
        await db.close()


async def test_autocommit_statements_run_straight_on_asyncpg(store: Store) -> None:
    """PostgreSQL in autocommit: ``fetch`` straight on asyncpg's connection (the
    adapter cost ~65 µs of CPU per statement more), the same rows and errors, no BEGIN; in
    a transaction the statement stays in it. SQLite: :func:`fetch`."""
    db = store.db
    insert = "INSERT INTO kv (key, value) VALUES ({}, {}) RETURNING key, value"

    async def job(conn: AsyncConnection) -> list[Any]:
        sql = _sql(conn, insert, 2)
        return [tuple(r) for r in await driver_sql.fetch(conn, sql, ("a:1", "x"))]

    raw: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if not db.is_sqlite:
            await stack.enter_async_context(asyncpg_ran(db, raw))
        assert await db.submit(job, autocommit=True) == [("a:1", "x")]
    assert len(raw) == (0 if db.is_sqlite else 1)
    with pytest.raises(IntegrityError) as raised:
        await db.submit(job, autocommit=True)
    if db.is_sqlite:
        assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    else:  # as the adapter translates it (unique_violation)
        assert getattr(raised.value.orig, "sqlstate", None) == "23505"

    async def rolled_back(conn: AsyncConnection) -> None:
        sql = _sql(conn, insert, 2)
        assert await driver_sql.fetch(conn, sql, ("a:2", "y"))
        raise RuntimeError("roll it back")

    with pytest.raises(RuntimeError):
        await db.write(rolled_back)
    async with db.read() as conn:
        keys = (await conn.execute(select(kv.c.key).where(kv.c.key.like("a:%")))).scalars()
        assert list(keys) == ["a:1"]
