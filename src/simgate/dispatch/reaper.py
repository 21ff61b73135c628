"""Housekeeping: expired leases, messages past validity, stale orphan reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from simgate.clock import Clock
from simgate.metrics import Metrics
from simgate.services.messaging import MessagingService
from simgate.settings import WorkerSettings

log = logging.getLogger(__name__)

ORPHAN_HOLD_MS = 10 * 60 * 1000  # a receipt may overtake its submit_sm_resp by this much


class Reaper:
    def __init__(
        self,
        *,
        messaging: MessagingService,
        settings: WorkerSettings,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._messaging = messaging
        self._cfg = settings
        self._clock = clock
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> tuple[int, int]:
        now = self._clock.now_ms()
        m = self._messaging
        reaped = await m.reap(now_ms=now, resend=self._cfg.expired_lease_policy == "resend")
        expired = await m.expire(now_ms=now)
        await m.purge_orphans(older_than_ms=now - ORPHAN_HOLD_MS)
        self._metrics.reaped.inc(reaped)
        self._metrics.expired.inc(expired)
        if reaped:
            log.warning(
                "reaped %d expired leases (policy %s)", reaped, self._cfg.expired_lease_policy
            )
        return reaped, expired

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("reaper cycle failed")
            await self._clock.sleep(self._cfg.reaper_interval_seconds)
