"""The lease primitive (store/leases.py) on both backends, on a probe table of its own.

Leases never share a row and never take more than asked for; workers in separate transactions
on PostgreSQL (where the materialised CTE matters) are in tests/store/test_queue.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database
from simgate.store.leases import due_locked, lease, stamp

meta = MetaData()
probe = Table(
    "lease_probe",
    meta,
    Column("id", BigInteger, primary_key=True),
    Column("state", Integer, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("owner", String(32)),
)


@pytest.fixture
async def db(backend: str) -> AsyncIterator[Database]:
    database = Database(backend)
    await database.open()

    async def create(conn: AsyncConnection) -> None:
        await conn.run_sync(meta.drop_all)
        await conn.run_sync(meta.create_all)
        rows = [{"id": i, "state": 0, "due_ms": 1000 * (i % 7), "owner": None} for i in range(60)]
        await conn.execute(probe.insert(), rows)

    await database.write_direct(create)
    try:
        yield database
    finally:

        async def drop(conn: AsyncConnection) -> None:
            await conn.run_sync(meta.drop_all)

        await database.write_direct(drop)
        await database.close()


async def take(db: Database, owner: str, *, now_ms: int, limit: int) -> list[int]:
    async def job(conn: AsyncConnection) -> list[int]:
        c = probe.c
        rows = await lease(
            conn,
            probe,
            due=(c.state == 0) & (c.due_ms <= now_ms),
            order_by=(c.due_ms, c.id),
            limit=limit,
            guard=c.state == 0,
            set_values={"state": 1, "owner": owner},
            returning=(c.id,),
        )
        return sorted(r.id for r in rows)

    return await db.write(job)


async def test_lease_takes_due_rows_first_by_order_and_never_twice(db: Database) -> None:
    first = await take(db, "w1", now_ms=1000, limit=5)
    assert first == [0, 7, 14, 21, 28]  # due at 0 first, by id
    both = await asyncio.gather(*(take(db, f"w{i}", now_ms=6000, limit=10) for i in range(2, 6)))
    taken = [i for ids in both for i in ids]
    assert all(len(ids) <= 10 for ids in both)
    assert len(taken) == len(set(taken)) == 40
    assert not set(taken) & set(first)
    assert await take(db, "w9", now_ms=6000, limit=100) == sorted(
        set(range(60)) - set(taken) - set(first)
    )
    assert await take(db, "w9", now_ms=6000, limit=100) == []


async def test_due_locked_then_stamp_leases_the_chosen_rows(db: Database) -> None:
    async def job(conn: AsyncConnection) -> list[int]:
        q = select(probe.c.id).where(probe.c.due_ms == 0).order_by(probe.c.id)
        chosen = [r.id for r in await conn.execute(due_locked(conn, q, of=probe))][::2]
        taken = await stamp(
            conn, probe, chosen, set_values={"owner": "picker"}, returning=[probe.c.id]
        )
        assert sorted(r.id for r in taken) == chosen
        return chosen

    chosen = await db.write(job)
    assert chosen == [0, 14, 28, 42, 56]
    async with db.read() as conn:
        rows = await conn.execute(select(probe.c.id).where(probe.c.owner == "picker"))
        assert sorted(r.id for r in rows) == chosen
