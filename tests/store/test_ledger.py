"""The account ledger on both backends: operator movements, refused top-ups, the rebuild."""

from __future__ import annotations

import pytest

from simgate.domain.accounts import LedgerKind
from simgate.errors import InvalidInput, NotFound
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store

from .util import PRICE, lease, ok, queue, record, report


async def test_every_operator_movement_is_an_entry(services: Services, runtime: Runtime) -> None:
    acc = services.accounts
    a = await acc.create_account(name="acme", balance="10", by="alice")
    t0 = runtime.clock.now_ms()
    await acc.topup("acme", amount="2.5", by="bob")
    await acc.topup(a.id, amount="1", gift=True)
    after = await acc.correct("acme", amount="-3", reason="double top-up on 12-01", by="carol")
    assert (after.balance_micros, after.gift_micros) == (9_500_000, 1_000_000)
    entries = await acc.ledger("acme")
    assert [(e.kind, e.amount_micros, e.by, e.reason) for e in entries] == [
        (LedgerKind.OPENING, 10_000_000, "alice", ""),
        (LedgerKind.TOPUP, 2_500_000, "bob", ""),
        (LedgerKind.GIFT, 1_000_000, "system", ""),
        (LedgerKind.CORRECTION, -3_000_000, "carol", "double top-up on 12-01"),
    ]
    assert [(e.balance_after_micros, e.gift_after_micros) for e in entries] == [
        (10_000_000, 0), (12_500_000, 0), (12_500_000, 1_000_000), (9_500_000, 1_000_000),
    ]  # fmt: skip
    assert all(e.account_id == a.id and e.at_ms == t0 for e in entries)
    assert entries == sorted(entries, key=lambda e: e.id)
    # Another account's ledger is its own; an account created with nothing has none.
    await acc.create_account(name="beta")
    assert await acc.ledger("beta") == []
    assert len(await acc.ledger(a.id)) == 4


async def test_negative_or_zero_topups_are_refused_and_change_nothing(
    services: Services,
) -> None:
    acc = services.accounts
    await acc.create_account(name="acme", balance="5")
    for amount in ("-5", "0", "-0.000001"):
        with pytest.raises(InvalidInput, match="more than 0"):
            await acc.topup("acme", amount=amount)
        with pytest.raises(InvalidInput, match="more than 0"):
            await acc.topup("acme", amount=amount, gift=True)
    with pytest.raises(InvalidInput, match="reason"):
        await acc.correct("acme", amount="-1", reason="  ")
    with pytest.raises(InvalidInput, match="not be 0"):
        await acc.correct("acme", amount="0", reason="nothing")
    with pytest.raises(InvalidInput, match="who"):
        await acc.topup("acme", amount="1", by=" ")
    with pytest.raises(NotFound):
        await acc.correct("nobody", amount="1", reason="x")
    a = await acc.get_account("acme")
    assert (a.balance_micros, a.gift_micros) == (5_000_000, 0)
    assert [e.kind for e in await acc.ledger("acme")] == [LedgerKind.OPENING]


async def test_balance_is_rebuilt_from_ledger_charges_and_refunds(
    services: Services, runtime: Runtime, store: Store
) -> None:
    acc = services.accounts
    a = await acc.create_account(name="acme", balance="1")
    await acc.topup("acme", amount="2")
    await acc.topup("acme", amount="0.05", gift=True)  # charges take the gift first
    await acc.correct("acme", amount="-0.5", reason="refund by bank transfer")
    ids = await queue(runtime, a, 6, parts=2)
    now = runtime.clock.now_ms()
    got = await lease(store, now, limit=5)
    sent = [m.id for m in got]
    await record(services, [ok(mid, 2) for mid in sent], now)
    await report(services, [(f"{sent[0]}.0", 0), (f"{sent[0]}.1", 0)], now)  # delivered
    await services.messaging.cancel(ids, now_ms=now)  # the one still queued: refunded
    await acc.correct("acme", amount="0.25", reason="goodwill")
    now_a = await acc.get_account("acme")
    held = now_a.balance_micros + now_a.gift_micros
    assert held == 1_000_000 + 2_000_000 + 50_000 - 500_000 + 250_000 - 5 * 2 * PRICE
    assert await acc.rebuilt_micros("acme") == held
    # A balance changed behind the ledger's back no longer rebuilds.
    await store.db.write(lambda conn: store.accounts.topup(conn, a.id, balance=7))
    assert await acc.rebuilt_micros("acme") == held
    assert (await acc.get_account("acme")).balance_micros == now_a.balance_micros + 7
