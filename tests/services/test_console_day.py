"""The overview's day chart (services/console_day.py): settled buckets are kept and
refreshed a few at a time; the last hour is always read."""

from __future__ import annotations

from simgate.domain import ids
from simgate.runtime import Runtime
from simgate.services.console_day import BUCKET_MS, BUCKETS, REFRESH_MS, DayChart, fresh_from
from simgate.services.container import Services
from simgate.store import console_queries as q
from simgate.store.console_queries import Buckets
from simgate.testing.clock import FakeClock
from tests.store import util


async def _read(runtime: Runtime, chart: DayChart, scope: int | None = None) -> Buckets:
    now = runtime.clock.now_ms()
    async with runtime.store.db.read() as conn:
        minutes = await q.traffic(
            conn,
            account_id=scope,
            id_from=ids.lower_bound(fresh_from(now)),
            start_ms=fresh_from(now),
            bucket_ms=60_000,
            buckets=70,
        )
        start, buckets = await chart.read(conn, scope=scope, now_ms=now, fresh_minutes=minutes)
    assert len(buckets.accepted) == BUCKETS
    assert start % BUCKET_MS == 0
    return buckets


async def test_settled_buckets_are_kept_then_refreshed(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    acme = await util.account(services)
    chart = DayChart()
    (mid, _) = await util.queue(runtime, acme, 2)
    assert sum((await _read(runtime, chart)).accepted) == 2  # the fresh hour
    await clock.advance(2 * 3600)
    assert sum((await _read(runtime, chart)).accepted) == 2  # settled: read once and kept
    # A late receipt for a message of that settled bucket is not seen while it is kept...
    now = clock.now_ms()
    await util.lease(runtime.store, now, limit=1)
    await util.record(services, [util.ok(mid)], now)
    await util.report(services, [(f"{mid}.0", 0)], now)
    assert sum((await _read(runtime, chart)).delivered) == 0
    # ...and is once the bucket is older than REFRESH_MS; a fresh chart sees it at once.
    assert sum((await _read(runtime, DayChart())).delivered) == 1
    await clock.advance(REFRESH_MS / 1000 + 1)
    # The buckets between the fresh hour and the message's (two hours back, 6 or 7 buckets
    # of 10 minutes) are re-read first, 3 a request.
    seen = [sum((await _read(runtime, chart)).delivered) for _ in range(4)]
    assert seen[0] == 0
    assert seen[-1] == 1
    # An account's chart is its own; a day later the messages have left the chart.
    other = await util.account(services, "other")
    assert sum((await _read(runtime, chart, other.id)).accepted) == 0
    await clock.advance(24 * 3600)
    assert sum((await _read(runtime, chart)).accepted) == 0
