"""The health service (services/health.py): the database check and the queue gauges."""

from __future__ import annotations

import pytest

from simgate.errors import StoreError
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock

from ..store.util import account, queue


async def test_ping_answers_while_the_database_does(runtime: Runtime, services: Services) -> None:
    await services.health.ping()
    await runtime.store.db.close()
    with pytest.raises(StoreError):
        await services.health.ping()


async def test_queue_gauges(runtime: Runtime, services: Services, clock: FakeClock) -> None:
    registry = services.metrics.registry
    await services.health.refresh_metrics()
    assert registry.get_sample_value("simgate_queue_depth") == 0
    assert registry.get_sample_value("simgate_queue_oldest_age_seconds") == 0
    acc = await account(services)
    await queue(runtime, acc, 2)
    clock.set(clock.now_ms() + 45_000)
    await services.health.refresh_metrics()
    assert registry.get_sample_value("simgate_queue_depth") == 2
    assert registry.get_sample_value("simgate_queue_oldest_age_seconds") == 45
