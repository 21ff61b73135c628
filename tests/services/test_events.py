"""The event bus on the real store: changes become domain events in the unit of work.

The bus loads what subscribers need (records as the transaction left them, accounts, apps)
in batches, hands every subscriber the same events in order, and a subscriber's error rolls
the change back (a change never commits without the pushes it owes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.calls import CallKind, CallOptions, NewCall, Pricing
from simgate.domain.events import (
    CallDone,
    CallFinished,
    Change,
    DomainEvent,
    InboundReceived,
    InboundStored,
    MessageChange,
    MessageChanged,
    PortChanged,
    UssdReplied,
)
from simgate.domain.messages import Event, State
from simgate.lines.base import IncomingSms
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.events import EventBus, Notes, reads_messages_of
from simgate.store import Store
from simgate.store.tables import inbound
from tests.store import util

MISSING = 2601010000000009999  # an id no row has


async def _setup(services: Services) -> tuple[Account, App, App]:
    acc = await services.accounts.create_account(name="acme", balance="10", timezone="Asia/Tokyo")
    sms = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    voice = await services.accounts.create_app(acc.id, kind=AppKind.VOICE)
    other = await services.accounts.create_account(name="other")
    await services.accounts.create_app(other.id, kind=AppKind.SMS)
    return acc, sms, voice


async def _call(runtime: Runtime, acc: Account) -> int:
    """A queued group call of an app that does not exist."""
    store, now = runtime.store, runtime.clock.now_ms()
    (call_id,) = await store.new_ids(1, now)
    new = NewCall(
        id=call_id,
        account_id=acc.id,
        app_id=7,
        kind=CallKind.GROUP,
        callee="8613800138000",
        audio_id=3,
        file_id="f.mp3",
        area="",
        options=CallOptions(display_num="1008122211"),
        pricing=Pricing(
            rate_micros=1, bill_period="20+20", currency="USD", quote_exchange_micros=None
        ),
        submit_ms=now,
    )
    await store.db.write(functools.partial(store.calls.insert, calls=[new]))
    return call_id


async def _events(store: Store, changes: Sequence[Change]) -> list[DomainEvent]:
    bus = EventBus(store)
    async with store.db.read() as conn:
        return await bus.events(conn, changes)


async def test_changes_become_events_carrying_record_account_and_app(
    runtime: Runtime, services: Services, store: Store
) -> None:
    acc, sms, voice = await _setup(services)
    with_app, without = (
        *await util.queue(runtime, acc, app_id=sms.id),
        *await util.queue(runtime, acc),
    )
    (mo,) = await services.inbound.receive("sim", [IncomingSms(1, "+8613900000001", "1", "x", 5)])
    call = await _call(runtime, acc)  # its app (pk 7) does not exist
    port, ussd = PortChanged("sim", 1, True, 8), UssdReplied("sim", 1, "ok", 9)
    changes: list[Change] = [
        MessageChange(with_app, State.SENT, Event.SUBMIT_OK, 1),
        InboundStored(mo, 2),
        MessageChange(MISSING, State.SENT, Event.SUBMIT_OK, 3),  # its row is gone
        CallDone(call, 4),
        port,
        MessageChange(without, State.QUEUED, Event.SUBMIT_RETRY, 5),
        ussd,
    ]
    events = await _events(store, changes)
    account = await services.accounts.get_account(acc.id)
    async with store.db.read() as conn:
        m1, m2 = await store.messages.get(conn, [with_app, without])
        (r,) = await store.inbound.get(conn, [mo])
        (c,) = await store.calls.get(conn, [call])
    assert events == [
        MessageChanged(m1, State.SENT, Event.SUBMIT_OK, 1, account, sms),
        InboundReceived(r, 2, account, (sms, voice)),  # every app of the account, id order
        CallFinished(c, 4, account, None),
        port,
        MessageChanged(m2, State.QUEUED, Event.SUBMIT_RETRY, 5, account, None),
        ussd,
    ]
    first = events[0]
    assert isinstance(first, MessageChanged)
    assert first.message_id == with_app
    assert await _events(store, []) == []


async def test_reads_messages_with_their_accounts_and_apps_in_one_statement(
    runtime: Runtime, services: Services, store: Store
) -> None:
    """1,100 changed messages of two accounts, with and without an app: one SELECT for all
    (issue 15: on PostgreSQL each read was a round trip; it was five here, in batches of
    500), and each event carries the same record, account and app as the repositories read."""
    acc, sms, _ = await _setup(services)
    other = await services.accounts.create_account(name="third", timezone="Europe/Paris")
    ids = await util.queue(runtime, acc, 1_000, charge=False, app_id=sms.id)
    ids += await util.queue(runtime, other, 100, charge=False)
    changes = [MessageChange(i, State.SENT, Event.SUBMIT_OK, 1) for i in ids]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(sql)

    async with store.db.read() as conn:
        event.listen(conn.sync_connection, "before_cursor_execute", seen)
        events = await EventBus(store).events(conn, changes)
    assert len(statements) == 1
    async with store.db.read() as conn:
        records = {r.id: r for r in await store.messages.get(conn, ids)}
        accounts = await store.accounts.get_accounts(conn, [acc.id, other.id])
        apps = await store.accounts.get_apps_by_pk(conn, [sms.id])
    assert events == [
        MessageChanged(
            records[i],
            State.SENT,
            Event.SUBMIT_OK,
            1,
            accounts[records[i].account_id],
            apps.get(records[i].app_id or 0),
        )
        for i in ids
    ]


async def test_subscribers_get_the_same_events_in_order_and_share_notes(
    runtime: Runtime, services: Services, store: Store
) -> None:
    acc, _, _ = await _setup(services)
    (mid,) = await util.queue(runtime, acc)
    bus = EventBus(store)
    calls: list[tuple[str, list[DomainEvent], dict[str, dict[int, int]]]] = []

    async def first(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        calls.append(("first", list(events), dict(notes)))
        notes["test.n"] = {1: 2}

    async def second(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        calls.append(("second", list(events), dict(notes)))

    bus.subscribe(first)
    bus.subscribe(second)
    changes = [MessageChange(mid, State.SENT, Event.SUBMIT_OK, 1)]
    await store.db.write(functools.partial(bus.publish, changes=changes))
    (one, two) = calls
    assert (one[0], two[0]) == ("first", "second")
    assert one[1] == two[1]
    assert len(one[1]) == 1
    assert (one[2], two[2]) == ({}, {"test.n": {1: 2}})
    calls.clear()
    await store.db.write(functools.partial(bus.publish, changes=[]))
    assert calls == []  # nothing changed, nobody called


async def test_a_subscriber_error_rolls_the_change_back(
    runtime: Runtime, services: Services, store: Store
) -> None:
    await _setup(services)

    async def broken(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        raise RuntimeError("this subscriber fails")

    assert runtime.events is not None
    runtime.events.subscribe(broken)
    with pytest.raises(RuntimeError, match="this subscriber fails"):
        await services.inbound.receive("sim", [IncomingSms(1, "+8613900000001", "1", "x", 5)])
    async with store.db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(inbound))).scalar_one()
    assert stored == 0


async def test_builds_only_the_messages_of_the_dialects_its_subscribers_read(
    runtime: Runtime, services: Services, store: Store
) -> None:
    """Every subscriber names the dialects it reads: the others' messages get no record and no
    event (issue 15: the records were most of the bus's cost), read by their dialect alone."""
    acc, _, _ = await _setup(services)
    (mine,) = await util.queue(runtime, acc, dialect="openvox")
    (theirs,) = await util.queue(runtime, acc)  # dialect "test"
    seen: list[list[DomainEvent]] = []

    @reads_messages_of("openvox")
    async def openvox(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        seen.append(list(events))

    @reads_messages_of()
    async def none(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        seen.append(list(events))

    bus = EventBus(store)
    bus.subscribe(openvox)
    bus.subscribe(none)
    changes: list[Change] = [
        MessageChange(theirs, State.SENT, Event.SUBMIT_OK, 1),
        MessageChange(mine, State.SENT, Event.SUBMIT_OK, 2),
    ]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append(sql.split("FROM", 1)[0])

    async def publish(conn: AsyncConnection) -> None:
        event.listen(conn.sync_connection, "before_cursor_execute", record)
        await bus.publish(conn, changes)

    await store.db.write(publish)
    (first, second) = seen
    assert first == second
    assert [e.message_id for e in first if isinstance(e, MessageChanged)] == [mine]
    # One read, of the records of the dialects read (with their accounts and apps).
    assert len([s for s in statements if "dialect" in s]) == 1

    # Nobody reads "test" messages: a batch of them builds nothing past the dialect read.
    statements.clear()
    seen.clear()
    changes = [MessageChange(theirs, State.DELIVERED, Event.REPORT_DELIVERED, 3)]
    await store.db.write(publish)
    assert seen == []  # no event at all: no subscriber is called (issue 15)
    assert len([s for s in statements if "dialect" in s]) == 1

    # A subscriber that names no dialects reads every message: the bus builds them all again.
    async def every(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        seen.append(list(events))

    bus.subscribe(every)
    seen.clear()
    await store.db.write(publish)
    # (the marks are what a subscriber ignores, not a filter: each sees the same events)
    assert [[e.message_id for e in s if isinstance(e, MessageChanged)] for s in seen] == [
        [theirs]
    ] * 3
