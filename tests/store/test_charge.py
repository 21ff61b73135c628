"""Charging: gift first, then balance down to minus the credit line; never overdrawn."""

from __future__ import annotations

import asyncio
import functools

from simgate.services.container import Services
from simgate.store import Store


async def test_gift_is_spent_first(services: Services, store: Store) -> None:
    a = await services.accounts.create_account(name="acme", balance="1", credit="0.5")
    await services.accounts.topup(a.id, amount="0.3", gift=True)
    charge = functools.partial(store.accounts.charge, account_id=a.id)
    assert await store.db.write(functools.partial(charge, amount=200_000))
    x = await services.accounts.get_account(a.id)
    assert (x.gift_micros, x.balance_micros) == (100_000, 1_000_000)
    assert await store.db.write(functools.partial(charge, amount=300_000))
    x = await services.accounts.get_account(a.id)
    assert (x.gift_micros, x.balance_micros) == (0, 800_000)
    # Down to minus the credit line, and not a micro further.
    assert await store.db.write(functools.partial(charge, amount=1_300_000))
    x = await services.accounts.get_account(a.id)
    assert (x.gift_micros, x.balance_micros) == (0, -500_000)
    assert not await store.db.write(functools.partial(charge, amount=1))
    assert await store.db.write(functools.partial(charge, amount=0))
    assert (await services.accounts.get_account(a.id)).balance_micros == -500_000


async def test_refused_charge_changes_nothing(services: Services, store: Store) -> None:
    a = await services.accounts.create_account(name="acme", balance="1")
    await services.accounts.topup(a.id, amount="0.5", gift=True)
    assert not await store.db.write(
        functools.partial(store.accounts.charge, account_id=a.id, amount=1_500_001)
    )
    x = await services.accounts.get_account(a.id)
    assert (x.gift_micros, x.balance_micros) == (500_000, 1_000_000)


async def test_refunds_go_to_the_balance(services: Services, store: Store) -> None:
    a = await services.accounts.create_account(name="acme", balance="1")
    b = await services.accounts.create_account(name="beta", balance="0")
    await services.accounts.topup(a.id, amount="0.5", gift=True)
    await store.db.write(functools.partial(store.accounts.charge, account_id=a.id, amount=700_000))
    await store.db.write(
        functools.partial(store.accounts.refund, refunds={a.id: 700_000, b.id: 5, 999: 0})
    )
    x = await services.accounts.get_account(a.id)
    assert (x.gift_micros, x.balance_micros) == (0, 1_500_000)
    assert (await services.accounts.get_account(b.id)).balance_micros == 5


async def test_concurrent_charges_never_overdraw(services: Services, store: Store) -> None:
    """60 concurrent charges of 0.05 against 2.00 spendable: exactly 40 succeed."""
    a = await services.accounts.create_account(name="acme", balance="1", credit="0.5")
    await services.accounts.topup(a.id, amount="0.5", gift=True)
    job = functools.partial(store.accounts.charge, account_id=a.id, amount=50_000)
    results = await asyncio.gather(*(store.db.write(job) for _ in range(60)))
    assert results.count(True) == 40
    x = await services.accounts.get_account(a.id)
    assert x.gift_micros == 0
    assert x.balance_micros == -500_000
    assert x.spendable_micros == 0


async def test_concurrent_charges_of_mixed_sizes(services: Services, store: Store) -> None:
    a = await services.accounts.create_account(name="acme", balance="0.9")
    amounts = [70_000, 130_000, 50_000, 310_000, 90_000] * 6
    results = await asyncio.gather(
        *(
            store.db.write(functools.partial(store.accounts.charge, account_id=a.id, amount=m))
            for m in amounts
        )
    )
    spent = sum(m for m, ok in zip(amounts, results, strict=True) if ok)
    x = await services.accounts.get_account(a.id)
    assert x.balance_micros == 900_000 - spent
    assert x.balance_micros >= 0
    # Group commit runs jobs in arrival order: the outcome is that of charging one by one.
    left, expected = 900_000, []
    for m in amounts:
        expected.append(m <= left)
        left -= m if m <= left else 0
    assert results == expected
    assert any(results)
    assert not all(results)
