"""Driving a CallDispatcher by hand on a fake clock: build one, run it, wait for its I/O."""

from __future__ import annotations

import asyncio

from simgate.dispatch.calls import CallDispatcher
from simgate.services.container import Services
from simgate.settings import VoiceSettings, WorkerSettings
from simgate.testing.clock import FakeClock
from simgate.testing.voice_lines import ScriptedVoiceLine

VOICE = VoiceSettings(batch_size=50, call_lease_seconds=900, max_call_seconds=600)
WORKER = WorkerSettings(reaper_interval_seconds=5)


def dispatcher(
    services: Services,
    clock: FakeClock,
    *lines: ScriptedVoiceLine,
    owner: str = "w1",
    settings: VoiceSettings = VOICE,
) -> CallDispatcher:
    return CallDispatcher(
        calls=services.calls,
        lines={v.name: v for v in lines},
        settings=settings,
        worker=WORKER,
        clock=clock,
        metrics=services.metrics,
        owner=owner,
    )


async def quiet(d: CallDispatcher) -> None:
    """Until no call of ``d`` waits on the database (real I/O, so poll it briefly)."""
    for _ in range(5000):
        for _ in range(20):
            await asyncio.sleep(0)
        if d.io_in_flight == 0:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("dispatcher I/O did not settle")


async def run(
    d: CallDispatcher, clock: FakeClock, seconds: float, step: float = 0.5, *, upkeep: bool = False
) -> None:
    """Lease and advance the clock ``seconds`` in steps, as the loop would (``upkeep``: also
    renew leases when due and reap, as the loop does)."""
    elapsed = 0.0
    while elapsed < seconds:
        if upkeep:
            await d.renew_if_due()
            await d.reap()
        await d.run_once()
        await quiet(d)
        await clock.advance(step)
        elapsed += step
        await quiet(d)
