"""Store.new_ids: ids taken straight from the block while one is left, in call order."""

from __future__ import annotations

import asyncio

from simgate.services.container import Services
from simgate.store import ID_BLOCK, Store


async def test_one_id_sends_across_a_refill_get_unique_ids_in_call_order(
    services: Services, store: Store
) -> None:
    """Requests taking one id each, concurrently, across two refills of the block: a
    request that comes while a refill is awaited waits behind it (never a second refill,
    never an id out of order), and the others take theirs without the lock."""
    now = services.clock.now_ms()
    count = 2 * ID_BLOCK + 7
    got = await asyncio.gather(*(store.new_ids(1, now) for _ in range(count)))
    ids = [one for (one,) in got]
    assert len(set(ids)) == count
    assert ids == sorted(ids)


async def test_a_request_larger_than_what_is_left_refills_and_keeps_order(
    services: Services, store: Store
) -> None:
    now = services.clock.now_ms()
    first = await store.new_ids(ID_BLOCK - 2, now)
    second, third = await asyncio.gather(store.new_ids(5, now), store.new_ids(1, now))
    ids = first + second + third
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
