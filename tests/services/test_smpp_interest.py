"""The cached accounts that have SMPP accounts (services/smpp_interest.py), both backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.services.container import Services
from simgate.services.smpp_interest import POLL_MS, SmppAccounts
from simgate.store import Store
from simgate.testing.clock import FakeClock


async def _get(store: Store, cache: SmppAccounts) -> tuple[frozenset[int], int]:
    """The cache's answer in a write transaction, and how many statements it ran."""
    ran = 0

    def seen(*_args: Any) -> None:
        nonlocal ran
        ran += 1

    async def job(conn: AsyncConnection) -> frozenset[int]:
        event.listen(conn.sync_connection, "before_cursor_execute", seen)
        try:
            return await cache.get(conn)
        finally:
            event.remove(conn.sync_connection, "before_cursor_execute", seen)

    return await store.db.write(job), ran


async def test_read_once_a_poll_and_at_once_after_a_change_here(
    services: Services, store: Store, clock: FakeClock
) -> None:
    acc = await services.accounts.create_account(name="acme")
    cache = SmppAccounts(clock=clock)
    assert await _get(store, cache) == (frozenset(), 1)
    assert await _get(store, cache) == (frozenset(), 0)  # within the poll: nothing read
    await clock.advance(POLL_MS / 1000)
    assert await _get(store, cache) == (frozenset(), 1)  # due: read again
    assert services.smpp_users is not None
    await services.smpp_users.create(account="acme", system_id="esme", password="pw")
    assert await _get(store, cache) == (frozenset({acc.id}), 1)  # no time passed
    assert await _get(store, cache) == (frozenset({acc.id}), 0)
