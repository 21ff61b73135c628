"""What a process reports about itself: does the database answer (``/healthz``), and the
message queue gauges (``/metrics``).

``/healthz`` promises "the database answered within the last second", not "this very
request reached it": a good answer is reused for :data:`HEALTH_CACHE_MS` (issue 15: a bare
``SELECT 1`` per probe cost three quarters of the HTTP ceiling under a probe flood). A
failure is never reused (a database that answers again is seen at once), and a full
storage is reported at once (an in-memory flag, set by the write that found no room).
"""

from __future__ import annotations

import asyncio

from simgate.clock import Clock
from simgate.errors import StorageFull
from simgate.metrics import Metrics
from simgate.store import Store

# How old a good answer may be. A load balancer probing every few seconds always gets a
# fresh check; a flood of probes costs one round trip a second.
HEALTH_CACHE_MS = 1_000


class HealthService:
    def __init__(self, *, store: Store, clock: Clock, metrics: Metrics) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._good_at_ms: int | None = None
        # Probes that arrive while a check runs wait for it instead of starting their own.
        self._checking: asyncio.Task[None] | None = None

    async def ping(self) -> None:
        """Raises whatever the database raised if it did not answer in the last
        :data:`HEALTH_CACHE_MS`, :class:`StorageFull` while writes find no room, and
        :class:`~simgate.errors.FlushFailed` once the disk failed to keep a commit (writes
        refused until a restart, store/wal_flush.py)."""
        if not self._fresh():
            if self._checking is None or self._checking.done():
                self._checking = asyncio.create_task(self._check())
            await asyncio.shield(self._checking)
        if self._store.db.storage_full:
            raise StorageFull()
        self._store.db.write_refusal.check()

    def _fresh(self) -> bool:
        if self._good_at_ms is None:
            return False
        age = self._clock.now_ms() - self._good_at_ms
        return 0 <= age < HEALTH_CACHE_MS  # a clock stepped back checks again

    async def _check(self) -> None:
        self._good_at_ms = None
        async with self._store.db.read_short() as conn:
            await conn.exec_driver_sql("SELECT 1")
        self._good_at_ms = self._clock.now_ms()

    async def refresh_metrics(self) -> None:
        """Queue depth and the age of the oldest queued message."""
        async with self._store.db.read() as conn:
            depth = await self._store.messages.queue_depth(conn)
            oldest = await self._store.messages.oldest_queued_ms(conn)
        m = self._metrics
        m.queue_depth.set(depth)
        m.oldest_queued_age.set(
            0 if oldest is None else max(0, self._clock.now_ms() - oldest) / 1000
        )
