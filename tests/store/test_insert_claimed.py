"""The PostgreSQL accept statement with replay records (store/accept_writes.py
``insert_claimed``): a record is written with its charge and its rows or not at all, even
when another transaction changes the account while the statement runs."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.services.container import Services
from simgate.store import Store
from simgate.store.accept_writes import ReplayRecord
from simgate.store.tables import accounts, itnio_replays, messages
from tests.support.new_messages import PRICE, new_message


async def _count(store: Store, table: object) -> int:
    async with store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def _waits_for_a_lock(store: Store) -> bool:
    async with store.db.read() as conn:
        n = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'WITH job AS MATERIALIZED%'"
            )
        )
        return bool(n.scalar_one())


@pytest.mark.parametrize("left", [0, PRICE])
async def test_a_charge_made_meanwhile_is_seen_before_any_record_is_written(
    services: Services, store: Store, left: int
) -> None:
    """Another transaction takes the balance down while the statement waits for the
    account's row: the statement then reads the row as committed. With nothing left it
    writes nothing, record included (a record without its charge would answer a replay
    with a send that never happened); with enough left it writes all three."""
    if store.db.is_sqlite:
        pytest.skip("the PostgreSQL accept statement")
    a = await services.accounts.create_account(name="a", balance="10")
    record: ReplayRecord = ("fp", 10**13, "answer", 1)

    async def accept(conn: AsyncConnection) -> tuple[set[int], set[str]]:
        return await store.messages.insert_claimed(
            conn, [([new_message(100, a.id, dialect="itnio")], 1, a.id, PRICE, record)]
        )

    async with store.db.engine.connect() as other:
        await other.execute(
            update(accounts).where(accounts.c.id == a.id).values(balance_micros=left)
        )
        written = store.db.submit(accept, urgent=True, autocommit=True)
        for _ in range(2_000):  # until the statement waits for the row (not a timing)
            if await _waits_for_a_lock(store):
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("the statement never waited for the account's row")
        await other.commit()
    charged, claimed = await written
    if left:
        assert (charged, claimed) == ({a.id}, {"fp"})
        assert await _count(store, messages) == await _count(store, itnio_replays) == 1
    else:
        assert not charged
        assert not claimed
        assert await _count(store, messages) == await _count(store, itnio_replays) == 0
    assert (await services.accounts.get_account(a.id)).balance_micros == left - (
        PRICE if left else 0
    )
