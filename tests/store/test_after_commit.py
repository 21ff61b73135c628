"""After-commit callbacks of the database's writer, on both backends (store/after_commit.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StoreError
from simgate.store import Store
from simgate.store.tables import kv


def _put(store: Store, key: str, callback: Callable[[], None], *, fail: bool = False) -> Any:
    async def job(conn: AsyncConnection) -> str:
        await conn.execute(insert(kv).values(key=key, value="{}"))
        store.db.after_commit(conn, callback)
        if fail:
            raise RuntimeError("the job fails after registering")
        return key

    return job


async def _stored(store: Store, key: str) -> bool:
    async with store.db.read() as conn:
        return (await conn.execute(select(kv.c.key).where(kv.c.key == key))).first() is not None


async def test_the_callback_runs_once_committed_not_before(store: Store) -> None:
    """What the callback starts reads the committed row, although the job goes on for a
    while after registering it (a callback run at once would read before the commit)."""
    seen: list[bool] = []
    reads: list[asyncio.Task[None]] = []

    async def look() -> None:
        seen.append(await _stored(store, "k"))

    def committed() -> None:
        reads.append(asyncio.get_running_loop().create_task(look()))

    async def job(conn: AsyncConnection) -> None:
        await conn.execute(insert(kv).values(key="k", value="{}"))
        store.db.after_commit(conn, committed)
        await asyncio.sleep(0.05)  # another task's read now would not see the row
        assert reads == []

    await store.db.write(job)
    assert len(reads) == 1  # run before the writer's caller heard of the commit
    await reads[0]
    assert seen == [True]


async def test_a_rolled_back_transaction_runs_no_callback(store: Store) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        await store.db.write(_put(store, "bad", lambda: calls.append("bad"), fail=True))
    assert calls == []
    assert not await _stored(store, "bad")


async def test_a_batch_rerun_job_by_job_runs_the_callbacks_of_the_commits_only(
    store: Store,
) -> None:
    """The batch fails as a whole and each job runs again alone (group commit): the good
    job's callback runs once, from the transaction that committed; the bad one's never."""
    calls: list[str] = []
    good = store.db.submit(_put(store, "good", lambda: calls.append("good")))
    bad = store.db.submit(_put(store, "bad", lambda: calls.append("bad"), fail=True))
    assert await good == "good"
    with pytest.raises(RuntimeError):
        await bad
    assert calls == ["good"]


async def test_an_equal_callback_of_one_transaction_runs_once(store: Store) -> None:
    """Two jobs of one batch register the same bound method: one call (a subscriber's
    wake-up per transaction, services/smpp_outbox.py)."""
    calls: list[str] = []

    class Teller:
        def tell(self) -> None:
            calls.append("told")

    teller = Teller()
    first = store.db.submit(_put(store, "a", teller.tell))
    second = store.db.submit(_put(store, "b", teller.tell))
    assert list(await asyncio.gather(first, second)) == ["a", "b"]
    assert calls == ["told"]
    await store.db.write(_put(store, "c", teller.tell))  # the next transaction: again
    assert calls == ["told", "told"]


async def test_an_autocommit_job_runs_its_callback(store: Store) -> None:
    calls: list[str] = []
    assert await store.db.submit(_put(store, "k", lambda: calls.append("k")), autocommit=True)
    assert calls == ["k"]
    assert await _stored(store, "k")


async def test_a_failing_callback_is_logged_and_the_write_stands(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise ValueError("broken callback")

    async def job(conn: AsyncConnection) -> None:
        store.db.after_commit(conn, broken)
        store.db.after_commit(conn, lambda: calls.append("next"))
        await conn.execute(insert(kv).values(key="k", value="{}"))

    with caplog.at_level(logging.ERROR, logger="simgate.store.after_commit"):
        await store.db.write(job)
    assert calls == ["next"]
    assert "broken callback" in caplog.text
    assert await _stored(store, "k")


async def test_outside_a_write_transaction_it_refuses(store: Store) -> None:
    async with store.db.read() as conn:
        with pytest.raises(StoreError):
            store.db.after_commit(conn, lambda: None)
    # Nor on the writer's pooled connection after its transaction (SQLite: the same one).
    await store.db.write(_put(store, "k", lambda: None))
    async with store.db.engine.connect() as conn:
        with pytest.raises(StoreError):
            store.db.after_commit(conn, lambda: None)
