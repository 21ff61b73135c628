"""The rate table, read through a short cache that the SMS and voice services share."""

from __future__ import annotations

import asyncio

from simgate.clock import Clock
from simgate.domain.billing import RateTable
from simgate.store import Store

RATES_TTL_MS = 5_000


class RateCache:
    """Rates change rarely (CLI, console); a few seconds of caching saves a read per send."""

    def __init__(self, *, store: Store, clock: Clock, ttl_ms: int = RATES_TTL_MS) -> None:
        self._store = store
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._table: RateTable | None = None
        self._read_at = 0
        self._lock = asyncio.Lock()

    async def table(self) -> RateTable:
        now = self._clock.now_ms()
        if self._table is None or now - self._read_at > self._ttl_ms:
            async with self._lock:
                if self._table is None or now - self._read_at > self._ttl_ms:
                    async with self._store.db.read() as conn:
                        rows = await self._store.accounts.list_rates(conn)
                    self._table, self._read_at = RateTable(rows), now
        return self._table
