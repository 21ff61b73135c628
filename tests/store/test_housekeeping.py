"""Reaper, validity, cancel, inbound, and event hooks inside the transaction of the change."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change, InboundStored, MessageChange, PortChanged
from simgate.domain.messages import Event, State
from simgate.domain.queue import SubmitRecord
from simgate.domain.records import InboundRecord
from simgate.lines.base import IncomingSms
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.tables import messages

from .util import PRICE, account, balance, get, lease, lease_of, ok, queue, record


async def _reap(services: Services, now_ms: int, *, resend: bool) -> int:
    return await services.messaging.reap(now_ms=now_ms, resend=resend)


@pytest.mark.parametrize("resend", [False, True], ids=["unknown", "resend"])
async def test_reaper_expired_leases(services: Services, runtime: Runtime, resend: bool) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    await queue(runtime, acc, 2)
    # Both are due at once: which one a lease takes first is the database's choice.
    (old,) = [m.id for m in await lease(store, now, limit=1, lease_ms=1000)]
    (fresh,) = [m.id for m in await lease(store, now, limit=1, lease_ms=60_000)]
    assert await _reap(services, now + 1000, resend=resend) == 0  # not past its time yet
    assert await _reap(services, now + 1001, resend=resend) == 1
    m = await get(store, old)
    if resend:
        assert m.state is State.QUEUED
        assert m.attempts == 0
        assert [x.id for x in await lease(store, now + 1001)] == [old]
    else:
        assert m.state is State.UNKNOWN
        assert m.unknown_ms == now + 1001
        assert await lease(store, now + 10**6) == []  # never resent blindly
    assert await lease_of(store, fresh) != (None, None)
    assert (await get(store, fresh)).state is State.SUBMITTING
    assert await balance(services, acc) == 10_000_000 - 2 * PRICE  # no refund either way


async def test_expire_queued_refunds_sent_does_not(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services, balance="1")
    ids = await queue(runtime, acc, 3, validity_s=60)
    (later,) = await queue(runtime, acc, 1, validity_s=3600)
    leased = await lease(store, now, limit=2, lease_ms=10)
    sent_id, unknown_id = (m.id for m in leased)
    (queued_id,) = set(ids) - {sent_id, unknown_id}
    await record(services, [ok(sent_id)], now)
    await _reap(services, now + 20, resend=False)  # the other leased one becomes UNKNOWN
    assert (await get(store, unknown_id)).state is State.UNKNOWN
    assert (await get(store, queued_id)).state is State.QUEUED
    before = await balance(services, acc)
    expire = services.messaging.expire
    assert await expire(now_ms=now + 60_000) == 0
    assert await expire(now_ms=now + 60_001) == 3
    for mid in (sent_id, unknown_id, queued_id):
        m = await get(store, mid)
        assert m.state is State.EXPIRED
        assert m.expired_ms == now + 60_001
    assert (await get(store, queued_id)).charge_micros == 0
    assert (await get(store, sent_id)).charge_micros == PRICE
    assert (await get(store, unknown_id)).charge_micros == PRICE
    assert await balance(services, acc) == before + PRICE  # only the queued one
    assert (await get(store, later)).state is State.QUEUED


async def test_expire_respects_limit(services: Services, runtime: Runtime) -> None:
    now = services.clock.now_ms()
    acc = await account(services)
    await queue(runtime, acc, 5, validity_s=1)
    expire = functools.partial(services.messaging.expire, now_ms=now + 2000, limit=3)
    assert await expire() == 3
    assert await expire() == 2
    assert await expire() == 0


async def test_cancel_stops_only_queued_and_refunds(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services, balance="1")
    ids = await queue(runtime, acc, 2, parts=2)
    (a,) = [m.id for m in await lease(store, now, limit=1)]  # a is SUBMITTING
    (b,) = set(ids) - {a}
    before = await balance(services, acc)
    stopped = await services.messaging.cancel([a, b, 12345], now_ms=now + 5)
    assert stopped == [b]
    mb = await get(store, b)
    assert (mb.state, mb.error_text, mb.charge_micros) == (State.REJECTED, "stopped", 0)
    assert mb.rejected_ms == now + 5
    assert (await get(store, a)).state is State.SUBMITTING
    assert await balance(services, acc) == before + 2 * PRICE
    again = await services.messaging.cancel([b], now_ms=now)
    assert again == []
    assert await balance(services, acc) == before + 2 * PRICE


def _inbound(mid: int, account_id: int, at: int, text: str = "hi") -> InboundRecord:
    return InboundRecord(
        id=mid,
        account_id=account_id,
        line="sim",
        port=1,
        sender="8613800138000",
        recipient="15551000001",
        text=text,
        smsc="+15550000000",
        imsi="460001234567890",
        parts=1,
        received_ms=at,
        read=False,
    )


def _incoming(at: int) -> IncomingSms:
    return IncomingSms(
        port=1,
        sender="8613800138000",
        recipient="15551000001",
        text="hi",
        received_ms=at,
        smsc="+15550000000",
    )


async def test_inbound_insert_page_mark_read(services: Services, store: Store) -> None:
    now = services.clock.now_ms()
    a = await account(services)
    b = await account(services, name="beta")
    ids = await store.new_ids(4, now)
    items = [
        _inbound(ids[0], a.id, now, "one"),
        _inbound(ids[1], a.id, now + 1000, "two"),
        _inbound(ids[2], b.id, now + 2000, "three"),
        _inbound(ids[3], a.id, now + 3000, "four 中文"),
    ]
    await store.db.write(functools.partial(store.inbound.insert, items=items))
    await store.db.write(functools.partial(store.inbound.insert, items=[]))
    r = store.inbound
    async with store.db.read() as conn:
        assert await r.get(conn, [ids[3], ids[0]]) == [items[0], items[3]]
        assert await r.count(conn) == 4
        assert await r.count(conn, account_id=a.id) == 3
        page = await r.page(conn, account_id=a.id, newest_first=True, limit=2)
        assert [x.text for x in page] == ["four 中文", "two"]
        page = await r.page(conn, account_id=a.id, offset=1, limit=5)
        assert [x.text for x in page] == ["two", "four 中文"]
        window = await r.page(conn, received_from_ms=now + 1000, received_to_ms=now + 2000)
        assert [x.text for x in window] == ["two", "three"]
        by_id = await r.page(conn, id_from=ids[1], id_to=ids[2])
        assert [x.id for x in by_id] == ids[1:3]
    await store.db.write(functools.partial(r.mark_read, ids=[ids[0], ids[3]]))
    await store.db.write(functools.partial(r.mark_read, ids=[]))
    async with store.db.read() as conn:
        unread = await r.page(conn, read=False)
        read = await r.page(conn, read=True)
    assert [x.id for x in unread] == ids[1:3]
    assert [x.id for x in read] == [ids[0], ids[3]]
    assert all(x.read for x in read)


async def test_message_page_filters(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    a = await account(services)
    b = await account(services, name="beta")
    ids_a = await queue(runtime, a, 3)
    ids_b = await queue(runtime, b, 1)
    (leased,) = [m.id for m in await lease(store, now, limit=1)]
    async with store.db.read() as conn:
        page = store.messages.page
        assert [m.id for m in await page(conn, account_id=a.id)] == ids_a
        assert [m.id for m in await page(conn, account_id=a.id, newest_first=True, limit=2)] == [
            ids_a[2],
            ids_a[1],
        ]
        assert [m.id for m in await page(conn, states=[State.SUBMITTING])] == [leased]
        assert [m.id for m in await page(conn, id_from=ids_a[1], id_to=ids_a[2])] == ids_a[1:]
        assert [m.id for m in await page(conn, offset=3)] == ids_b
        counts = await store.messages.counts_by_state(conn)
        assert counts == {State.SUBMITTING: 1, State.QUEUED: 3}
        assert await store.messages.queue_depth(conn) == 3
        assert await store.messages.oldest_queued_ms(conn) == now


async def test_hooks_see_events_inside_the_transaction(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    seen: list[tuple[Change, int]] = []

    async def hook(conn: AsyncConnection, events: Sequence[Change]) -> None:
        for e in events:
            if isinstance(e, MessageChange):
                # The hook's connection sees the new state: it runs inside the change.
                state = (
                    await conn.execute(
                        select(messages.c.state).where(messages.c.id == e.message_id)
                    )
                ).scalar_one()
                seen.append((e, state))
            else:
                seen.append((e, -1))

    runtime.changes.subscribe(hook)
    await lease(store, now)
    assert seen == []  # leasing is not news
    await record(services, [ok(mid)], now + 1)
    assert seen == [(MessageChange(mid, State.SENT, Event.SUBMIT_OK, now + 1), int(State.SENT))]
    seen.clear()
    port_event = PortChanged("sim", 2, False, now)
    await services.line_state.port_changed(line="sim", port=2, up=False)
    (inb,) = await services.inbound.receive("sim", [_incoming(now)])
    assert seen == [(port_event, -1), (InboundStored(inb, now), -1)]


async def test_a_failing_hook_rolls_the_change_back(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services, balance="1")
    ids = await queue(runtime, acc, 2)
    (mid,) = [m.id for m in await lease(store, now, limit=1)]
    (queued,) = set(ids) - {mid}
    calls = 0

    async def broken(conn: AsyncConnection, events: Sequence[Change]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("outbox full")

    runtime.changes.subscribe(broken)
    before = await balance(services, acc)
    with pytest.raises(RuntimeError, match="outbox full"):
        await record(services, [SubmitRecord(mid, Event.SUBMIT_REJECTED)], now)
    assert calls >= 1
    m = await get(store, mid)
    assert m.state is State.SUBMITTING  # the state change did not happen
    assert m.charge_micros == PRICE
    assert await balance(services, acc) == before  # nor did the refund
    with pytest.raises(RuntimeError):
        await services.messaging.cancel([queued], now_ms=now)
    assert (await get(store, queued)).state is State.QUEUED
    assert await balance(services, acc) == before
