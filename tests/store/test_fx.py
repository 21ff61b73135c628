"""Exchange rates (store/fx.py): units of a currency per 1 USD, set by the operator."""

from __future__ import annotations

import functools

from simgate.store import Store


async def test_set_get_list_delete(store: Store) -> None:
    fx = store.fx
    await store.db.write(
        functools.partial(fx.set_rate, currency="EUR", per_usd_micros=938_000, now_ms=5)
    )
    await store.db.write(
        functools.partial(fx.set_rate, currency="CNY", per_usd_micros=7_100_000, now_ms=6)
    )
    await store.db.write(
        functools.partial(fx.set_rate, currency="EUR", per_usd_micros=940_000, now_ms=7)
    )
    async with store.db.read() as conn:
        assert await fx.get_rate(conn, "EUR") == 940_000
        assert await fx.get_rate(conn, "GBP") is None
        assert await fx.list_rates(conn) == [("CNY", 7_100_000, 6), ("EUR", 940_000, 7)]
    assert await store.db.write(functools.partial(fx.delete_rate, currency="EUR"))
    assert not await store.db.write(functools.partial(fx.delete_rate, currency="EUR"))
    async with store.db.read() as conn:
        assert await fx.get_rate(conn, "EUR") is None
        assert await fx.list_rates(conn) == [("CNY", 7_100_000, 6)]
