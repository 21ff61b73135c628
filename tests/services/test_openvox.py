"""services/openvox.py on a real store: outbox/inbox pages, sync-mode waiting, push settings."""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.openvox.pushconfig import doc_key
from simgate.domain.messages import State
from simgate.services.container import Services
from simgate.services.openvox import Window, push_doc_key
from simgate.store import Store
from simgate.store.tables import messages
from simgate.testing.clock import FakeClock
from tests.services.support import T0, inbound_row, message_row, write_rows

LISTED = (State.SENT, State.DELIVERED, State.FAILED)


async def test_outbox_pages_filter_by_state_number_and_time(
    services: Services, store: Store
) -> None:
    o1 = message_row(at_ms=T0, seq=1, recipient="111", state=State.SENT)
    o2 = message_row(at_ms=T0 + 60_000, seq=2, recipient="222", state=State.DELIVERED)
    o4 = message_row(at_ms=T0 + 180_000, seq=4, recipient="111", state=State.FAILED)
    await write_rows(
        store,
        message_rows=[
            o1,
            o2,
            message_row(at_ms=T0 + 120_000, seq=3, recipient="111"),  # queued: not listed
            o4,
            message_row(at_ms=T0, seq=5, account_id=2, state=State.SENT),
        ],
    )
    svc = services.openvox

    async def page(window: Window, offset: int = 0, limit: int = 10) -> tuple[int, list[int]]:
        got = await svc.outbox(1, window, states=LISTED, offset=offset, limit=limit)
        return got.total, [m.id for m in got.records]

    assert await page(Window()) == (3, [o4["id"], o2["id"], o1["id"]])
    assert await page(Window(numbers=("111", "+111"))) == (2, [o4["id"], o1["id"]])
    assert await page(Window(from_ms=T0 + 60_000)) == (2, [o4["id"], o2["id"]])
    assert await page(Window(to_ms=T0 + 60_000)) == (2, [o2["id"], o1["id"]])
    assert await page(Window(), offset=1, limit=1) == (3, [o2["id"]])
    assert await page(Window(), offset=5) == (3, [])
    # The shown columns as stored, the state as a State (the renderer's table keys).
    first = (await svc.outbox(1, Window(), states=LISTED, offset=0, limit=1)).records[0]
    assert (first.id, first.recipient, first.state) == (o4["id"], "111", State.FAILED)
    assert first.state is State.FAILED
    assert first.accepted_ms == o4["accepted_ms"]


async def test_inbox_pages_filter_by_sender_and_time(services: Services, store: Store) -> None:
    i1 = inbound_row(at_ms=T0, seq=1, sender="111")
    i2 = inbound_row(at_ms=T0 + 60_000, seq=2, sender="222")
    i3 = inbound_row(at_ms=T0 + 120_000, seq=3, sender="111")
    await write_rows(store, inbound_rows=[i1, i2, i3, inbound_row(at_ms=T0, seq=4, account_id=2)])
    svc = services.openvox

    async def page(window: Window, offset: int = 0, limit: int = 10) -> tuple[int, list[int]]:
        got = await svc.inbox(1, window, offset=offset, limit=limit)
        return got.total, [r.id for r in got.records]

    assert await page(Window()) == (3, [i3["id"], i2["id"], i1["id"]])
    assert await page(Window(numbers=("111",))) == (2, [i3["id"], i1["id"]])
    assert await page(Window(from_ms=T0 + 1_000, to_ms=T0 + 119_000)) == (1, [i2["id"]])
    assert await page(Window(), offset=2, limit=5) == (3, [i1["id"]])


async def _run(clock: FakeClock, task: asyncio.Task[list[State]]) -> list[State]:
    for _ in range(1000):
        if task.done():
            return task.result()
        await clock.advance(0.05)
        await asyncio.sleep(0.002)
    raise AssertionError("wait_answered never returned")


async def test_wait_answered_returns_once_the_line_answered(
    services: Services, store: Store, clock: FakeClock
) -> None:
    queued = message_row(at_ms=T0, seq=1)
    sent = message_row(at_ms=T0, seq=2, state=State.SENT)
    await write_rows(store, message_rows=[queued, sent])
    svc = services.openvox

    async def states(timeout_ms: int) -> list[State]:
        rows = await svc.wait_answered([queued["id"], sent["id"]], timeout_ms=timeout_ms)
        return [r.state for r in rows]

    assert await states(0) == [State.QUEUED, State.SENT]  # no time to wait: as stored now
    start = clock.now_ms()
    waited = await _run(clock, asyncio.create_task(states(1_000)))
    assert waited == [State.QUEUED, State.SENT]  # still queued at the deadline
    assert clock.now_ms() - start >= 1_000

    task = asyncio.create_task(states(60_000))
    await clock.advance(0.1)

    async def answer(conn: AsyncConnection) -> None:
        await conn.execute(
            update(messages).where(messages.c.id == queued["id"]).values(state=int(State.FAILED))
        )

    await store.db.write(answer)
    start = clock.now_ms()
    assert await _run(clock, task) == [State.FAILED, State.SENT]
    assert clock.now_ms() - start < 60_000


async def test_push_settings_are_kept_per_account(services: Services) -> None:
    svc = services.openvox
    assert await svc.push_config(1) is None
    await svc.set_push_config(1, {"enable": 1, "url_host": "hooks.example"})
    assert await svc.push_config(1) == {"enable": 1, "url_host": "hooks.example"}
    assert await svc.push_config(2) is None


def test_the_push_settings_key_is_the_one_the_push_format_reads() -> None:
    assert push_doc_key(7) == doc_key(7)
