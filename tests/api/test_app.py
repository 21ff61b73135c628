"""Operations endpoints: /healthz and Prometheus /metrics (README "Running it")."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock

from ..store.util import account, lease, queue


def client(runtime: Runtime) -> httpx.AsyncClient:
    app = runtime.app(dialects=())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


async def test_healthz(runtime: Runtime) -> None:
    async with client(runtime) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_healthz_reports_a_dead_database(runtime: Runtime) -> None:
    assert runtime.services is not None
    async with client(runtime) as c:
        await runtime.store.db.close()
        r = await c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "error"


async def test_metrics_queue_depth_and_oldest_age(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    async with client(runtime) as c:
        empty = samples((await c.get("/metrics")).text)
        assert empty["simgate_queue_depth"] == 0
        assert empty["simgate_queue_oldest_age_seconds"] == 0

        acc = await account(services)
        await queue(runtime, acc, 3)
        clock.set(clock.now_ms() + 90_000)
        await queue(runtime, acc, 2)
        await lease(runtime.store, clock.now_ms(), limit=1)  # leased: no longer queued
        clock.set(clock.now_ms() + 30_000)
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m["simgate_queue_depth"] == 4
    assert m["simgate_queue_oldest_age_seconds"] == 120.0


async def test_unknown_path_is_404_not_500(runtime: Runtime) -> None:
    async with client(runtime) as c:
        r = await c.get("/nothing-here")
    assert r.status_code == 404
