"""A message accepted by the send service reaches DELIVERED through the sim line."""

from __future__ import annotations

import asyncio

import pytest

from simgate.domain.messages import State
from simgate.errors import AccountLocked, ContentEmpty, InsufficientBalance
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.store import Store
from simgate.testing.clock import FakeClock


async def _wait_for(store: Store, ids: list[int], state: State, clock: FakeClock) -> None:
    for _ in range(200):
        async with store.db.read() as conn:
            rows = await store.messages.get(conn, ids)
        if rows and all(r.state is state for r in rows):
            return
        await clock.advance(0.1)
        await asyncio.sleep(0.01)
    raise AssertionError(f"not all {state.name}: {[r.state.name for r in rows]}")


async def test_accepted_message_is_delivered_and_charged(
    runtime: Runtime, services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme", balance="1")
    long_text = "x" * 161  # two GSM-7 parts
    outcome = await services.sending.send(
        SendRequest(
            account=account,
            dialect="test",
            text=long_text,
            recipients=[
                Recipient("8613800138000", "o1"),
                Recipient("+44 7700 900123"),
                Recipient("12"),
            ],
        )
    )
    assert [a.number for a in outcome.accepted] == ["8613800138000", "447700900123"]
    assert outcome.invalid == ["12"]
    assert [a.parts for a in outcome.accepted] == [2, 2]
    assert outcome.charge_micros == 4 * 10_000
    after = await services.accounts.get_account(account.id)
    assert after.balance_micros == 1_000_000 - 40_000

    await runtime.start_worker()
    ids = [a.message_id for a in outcome.accepted]
    await _wait_for(store, ids, State.DELIVERED, clock)
    async with runtime.store.db.read() as conn:
        rows = await runtime.store.messages.get(conn, ids)
        parts = await runtime.store.messages.parts_of(conn, ids[0])
    assert all(r.sent_ms is not None and r.delivered_ms is not None for r in rows)
    assert all(r.parts_ok == 2 and r.parts_reported == 2 for r in rows)
    assert [p["status_code"] for p in parts] == [0, 0]
    assert rows[0].client_ref == "o1"


async def test_insufficient_balance_queues_nothing(services: Services, store: Store) -> None:
    account = await services.accounts.create_account(name="poor", balance="0.015")
    with pytest.raises(InsufficientBalance):
        await services.sending.send(
            SendRequest(
                account=account,
                dialect="test",
                text="hi",
                recipients=[Recipient("8613800138000")] * 2,
            )
        )
    async with store.db.read() as conn:
        assert await store.messages.page(conn, account_id=account.id) == []
    assert (await services.accounts.get_account(account.id)).balance_micros == 15_000


async def test_locked_account_and_empty_content_are_refused(services: Services) -> None:
    account = await services.accounts.create_account(name="acme", balance="1")
    with pytest.raises(ContentEmpty):
        await services.sending.send(
            SendRequest(
                account=account, dialect="t", text="", recipients=[Recipient("8613800138000")]
            )
        )
    await services.accounts.set_locked(account.id, True)
    locked = await services.accounts.get_account(account.id)
    with pytest.raises(AccountLocked):
        await services.sending.send(
            SendRequest(
                account=locked, dialect="t", text="hi", recipients=[Recipient("8613800138000")]
            )
        )
