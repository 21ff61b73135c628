"""The health service (services/health.py): the database check and the queue gauges."""

from __future__ import annotations

import pytest

from simgate.errors import FlushFailed, StorageFull, StoreError
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.health import HEALTH_CACHE_MS
from simgate.testing.clock import FakeClock

from ..store.util import account, queue


async def test_ping_answers_while_the_database_does(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    await services.health.ping()
    await runtime.store.db.close()
    clock.set(clock.now_ms() + HEALTH_CACHE_MS)  # past the cached answer
    with pytest.raises(StoreError):
        await services.health.ping()


async def test_a_good_answer_is_reused_for_at_most_a_second(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    """/healthz costs no round trip per request: a good answer is at most 1 s old."""
    await services.health.ping()
    await runtime.store.db.close()
    clock.set(clock.now_ms() + HEALTH_CACHE_MS - 1)
    await services.health.ping()  # still the cached answer: no database touched
    clock.set(clock.now_ms() + 1)
    with pytest.raises(StoreError):
        await services.health.ping()


async def test_a_failure_is_not_cached(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    """A database that answers again is seen by the next check, however soon."""
    await runtime.store.db.close()
    with pytest.raises(StoreError):
        await services.health.ping()
    await runtime.store.db.open()
    await services.health.ping()


async def test_storage_full_is_reported_even_with_a_cached_answer(
    runtime: Runtime, services: Services
) -> None:
    await services.health.ping()
    runtime.store.db.storage_full = True
    with pytest.raises(StorageFull):
        await services.health.ping()


async def test_a_failed_wal_flush_is_reported_even_with_a_cached_answer(
    runtime: Runtime, services: Services
) -> None:
    """Writes are refused once the disk failed to keep a commit (store/wal_flush.py)."""
    await services.health.ping()
    runtime.store.db.write_refusal.why = FlushFailed("/data/db-wal", OSError(5, "I/O error"))
    with pytest.raises(FlushFailed):
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
