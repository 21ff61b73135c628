"""Dinstar ``incoming_sms_id``: every stored SMS is numbered in its storing transaction
(spec §2.5), pushes or not, and the numbers reach the push outbox in the notes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import DomainEvent, InboundStored
from simgate.lines.base import IncomingSms
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.dinstar_inbound import INBOUND_SEQ, number_inbound
from simgate.services.events import EventBus, Notes
from simgate.store import Store
from simgate.store.dialects.dinstar_tables import dinstar_inbound


def _sms(n: int) -> list[IncomingSms]:
    return [IncomingSms(0, f"+861390000000{i}", "1", f"text {i}", 5) for i in range(n)]


async def _numbers(store: Store) -> dict[int, int]:
    async with store.db.read() as conn:
        rows = await conn.execute(select(dinstar_inbound.c.inbound_id, dinstar_inbound.c.seq))
        return {r.inbound_id: r.seq for r in rows}


async def test_every_stored_sms_is_numbered_in_id_order_and_noted_for_later_subscribers(
    runtime: Runtime, services: Services, store: Store
) -> None:
    await services.accounts.create_account(name="acme")
    noted: list[dict[int, int]] = []

    async def after(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        noted.append(dict(notes.get(INBOUND_SEQ, {})))

    assert runtime.events is not None
    runtime.events.subscribe(after)  # no push target anywhere: numbered all the same
    first = await services.inbound.receive("sim", _sms(3))
    second = await services.inbound.receive("sim", _sms(2))
    numbers = await _numbers(store)
    assert sorted(numbers) == sorted(first + second)
    seqs = [numbers[i] for i in sorted(first + second)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5
    assert noted == [
        {i: numbers[i] for i in first},
        {i: numbers[i] for i in second},
    ]


async def test_numbering_is_idempotent_and_needs_no_push_format(
    runtime: Runtime, services: Services, store: Store
) -> None:
    await services.accounts.create_account(name="acme")
    runtime.changes.clear()  # the runtime's bus would number them first
    ids = await services.inbound.receive("sim", _sms(2))
    assert await _numbers(store) == {}
    bus = EventBus(store)
    bus.subscribe(number_inbound)
    changes = [InboundStored(i, 1) for i in ids]
    await store.db.write(functools.partial(bus.publish, changes=changes))
    once = await _numbers(store)
    assert sorted(once) == sorted(ids)
    await store.db.write(functools.partial(bus.publish, changes=changes))
    assert await _numbers(store) == once
