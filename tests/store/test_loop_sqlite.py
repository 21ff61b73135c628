"""Short reads on the event loop's thread (store/loop_sqlite.py, Database.read_short): the
same answers as the pooled reads on both backends, no worker thread on SQLite, read-only."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import AppKind
from simgate.services.container import Services
from simgate.store import Database, Store
from simgate.store.loop_sqlite import LoopConnection, open_loop_connection
from simgate.store.tables import kv


async def _tenant(services: Services) -> dict[str, str]:
    acc = await services.accounts.create_account(name="acme", balance="5")
    key = await services.accounts.create_key(acc.id, allow_ips=["10.0.0.0/8"])
    app = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    await services.accounts.create_user(acc.id, username="ann", password="secret")
    return {"key": key.key, "app": app.app_id, "account": str(acc.id)}


async def test_short_reads_answer_what_pooled_reads_answer(
    services: Services, store: Store
) -> None:
    t = await _tenant(services)
    repo = store.accounts

    async def answers(conn: AsyncConnection) -> list[object]:
        return [
            await repo.get_key(conn, t["key"]),
            await repo.get_key(conn, "missing"),
            await repo.get_app(conn, t["app"]),
            await repo.get_user(conn, "ann"),
            await repo.get_account(conn, int(t["account"])),
            await repo.find_account(conn, "acme"),
            await repo.get_doc(conn, "nothing"),
        ]

    async with store.db.read() as conn:
        pooled = await answers(conn)
    async with store.db.read_short() as conn:
        short = await answers(conn)
    assert short == pooled
    assert None not in (pooled[0], pooled[2], pooled[3])


async def test_a_short_read_sees_what_committed_before_it(store: Store) -> None:
    async with store.db.read_short() as conn:  # a connection of the pool, now idle
        assert await store.accounts.get_doc(conn, "fresh") is None
    await store.db.write(lambda conn: store.accounts.put_doc(conn, "fresh", {"a": 1}))
    async with store.db.read_short() as conn:
        assert await store.accounts.get_doc(conn, "fresh") == {"a": 1}


async def _thread_of_read(db: Database, *, short: bool) -> int:
    reader = db.read_short() if short else db.read()
    async with reader as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        seen: list[int] = []

        def probe() -> int:
            seen.append(threading.get_ident())
            return 1

        # Both are aiosqlite-shaped: a LoopConnection, or aiosqlite's own connection.
        assert isinstance(driver, LoopConnection) == short
        await driver.create_function("thread_probe", 0, probe)
        await conn.exec_driver_sql("SELECT thread_probe()")
    return seen[0]


async def test_on_sqlite_a_short_read_runs_on_the_loop_s_thread(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        here = threading.get_ident()
        assert await _thread_of_read(db, short=True) == here
        assert await _thread_of_read(db, short=False) != here  # aiosqlite's worker thread
    finally:
        await db.close()


async def test_a_short_read_cannot_write(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await db.open()
    try:
        async with db.read_short() as conn:
            with pytest.raises(OperationalError, match="readonly"):
                await conn.execute(insert(kv).values(key="k", value="{}"))
        async with db.read() as conn:
            assert (await conn.execute(select(kv.c.key))).first() is None
    finally:
        await db.close()


async def test_loop_connection_is_closed_for_good(tmp_path: Path) -> None:
    conn = open_loop_connection(str(tmp_path / "x.db"))
    cur = conn.cursor()
    await cur.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
    assert await cur.fetchmany(2) == [(1,), (2,)]
    assert await cur.fetchall() == [(3,)]
    await conn.close()
    await conn.close()  # twice is harmless, like aiosqlite
    with pytest.raises(sqlite3.ProgrammingError):
        conn.cursor()


async def test_on_postgresql_a_short_read_is_one_round_trip(store: Store, backend: str) -> None:
    """Autocommit: no BEGIN and ROLLBACK around the query (READ COMMITTED takes a snapshot
    per statement anyway), where a pooled read sends both."""
    if not backend.startswith("postgresql"):
        pytest.skip("PostgreSQL only: on SQLite a short read never leaves the loop")

    async def statements(reader: Any) -> list[str]:
        seen: list[str] = []

        def log(record: Any) -> None:
            seen.append(record.query.strip().upper())

        async with reader() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_query_logger(log)
            await store.accounts.get_doc(conn, "nothing")
        driver.remove_query_logger(log)  # after the release: its ROLLBACK is logged too
        return seen

    pooled = await statements(store.db.read)
    short = await statements(store.db.read_short)
    assert [q for q in pooled if q.startswith(("BEGIN", "ROLLBACK"))] == ["BEGIN;", "ROLLBACK;"]
    assert [q for q in short if q.startswith(("BEGIN", "ROLLBACK"))] == []
