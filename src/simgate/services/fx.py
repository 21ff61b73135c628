"""Exchange rates for accounts quoted in another currency (``simgate fx set|list|delete``).

Voice prices are in USD; a record of an account in EUR also shows ``quoteExchange``,
``settleRate`` and ``settlePay`` (spec §1.14), computed with the rate set here. A rate is units
of the currency per 1 USD (EUR 0.938: 1 USD = 0.938 EUR); USD itself is always 1 and is never
stored.
"""

from __future__ import annotations

import functools
import re

from simgate.clock import Clock
from simgate.domain.money import parse_amount
from simgate.errors import InvalidInput, NotFound
from simgate.store import Store
from simgate.store.fx import FxRate

CURRENCY_RE = re.compile(r"[A-Z]{3}")


def check_currency(text: str) -> str:
    """The ISO 4217 code in ``text``; USD is refused (its rate is 1 by definition)."""
    code = text.strip()
    if not CURRENCY_RE.fullmatch(code):
        raise InvalidInput(f"currency must be 3 upper-case letters (ISO 4217), not {text!r}")
    if code == "USD":
        raise InvalidInput("USD is the base currency: its rate is always 1")
    return code


def parse_rate(text: str) -> int:
    """Units per 1 USD as micros; must be positive."""
    try:
        micros = parse_amount(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if micros <= 0:
        raise InvalidInput(f"the rate must be positive, not {text!r}")
    return micros


class FxService:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def set_rate(self, currency: str, per_usd: str) -> FxRate:
        """Set (or replace) how many units of ``currency`` one US dollar buys."""
        code, micros = check_currency(currency), parse_rate(per_usd)
        now = self._clock.now_ms()
        await self._store.db.write(
            functools.partial(
                self._store.fx.set_rate, currency=code, per_usd_micros=micros, now_ms=now
            )
        )
        return FxRate(currency=code, per_usd_micros=micros, updated_ms=now)

    async def list_rates(self) -> list[FxRate]:
        async with self._store.db.read() as conn:
            return await self._store.fx.list_rates(conn)

    async def delete_rate(self, currency: str) -> None:
        code = check_currency(currency)
        job = functools.partial(self._store.fx.delete_rate, currency=code)
        if not await self._store.db.write(job):
            raise NotFound(f"no exchange rate for {code}")
