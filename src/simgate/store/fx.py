"""Exchange rates: units of a currency per 1 USD (x 1e6), set by the operator (``simgate fx``).

Voice prices are in USD; an account quoted in another currency sees ``quoteExchange``,
``settleRate`` and ``settlePay`` in its records (spec §1.14), taken from here when a call is
accepted. USD itself is always 1 and is never stored.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.voice_tables import fx_rates

__all__ = ["FxRate", "FxRepo"]


class FxRate(NamedTuple):
    currency: str
    per_usd_micros: int
    updated_ms: int


class FxRepo:
    async def set_rate(
        self, conn: AsyncConnection, *, currency: str, per_usd_micros: int, now_ms: int
    ) -> None:
        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = upsert(fx_rates).values(
            currency=currency, per_usd_micros=per_usd_micros, updated_ms=now_ms
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[fx_rates.c.currency],
                set_={"per_usd_micros": per_usd_micros, "updated_ms": now_ms},
            )
        )

    async def get_rate(self, conn: AsyncConnection, currency: str) -> int | None:
        found = await conn.execute(
            select(fx_rates.c.per_usd_micros).where(fx_rates.c.currency == currency)
        )
        value = found.scalar()
        return int(value) if value is not None else None

    async def list_rates(self, conn: AsyncConnection) -> list[FxRate]:
        """Every stored rate, by currency."""
        rows = await conn.execute(
            select(fx_rates.c.currency, fx_rates.c.per_usd_micros, fx_rates.c.updated_ms).order_by(
                fx_rates.c.currency
            )
        )
        return [
            FxRate(
                currency=r.currency,
                per_usd_micros=int(r.per_usd_micros),
                updated_ms=int(r.updated_ms),
            )
            for r in rows
        ]

    async def delete_rate(self, conn: AsyncConnection, currency: str) -> bool:
        gone = await conn.execute(delete(fx_rates).where(fx_rates.c.currency == currency))
        return bool(gone.rowcount)
