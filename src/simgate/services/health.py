"""What a process reports about itself: does the database answer (``/healthz``), and the
message queue gauges (``/metrics``)."""

from __future__ import annotations

from simgate.clock import Clock
from simgate.errors import StorageFull
from simgate.metrics import Metrics
from simgate.store import Store


class HealthService:
    def __init__(self, *, store: Store, clock: Clock, metrics: Metrics) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics

    async def ping(self) -> None:
        """One round trip to the database; raises whatever the database raises, and
        :class:`StorageFull` while writes find no room (the last one did not)."""
        async with self._store.db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
        if self._store.db.storage_full:
            raise StorageFull()

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
