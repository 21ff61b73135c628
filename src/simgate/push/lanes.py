"""Per-endpoint connection lanes: at most N requests at a time, one keep-alive pool each.

Why not one shared pool: httpcore's pool walks every queued request against every
connection on each request start and end, so with tens of concurrent requests the pool
itself becomes the bottleneck (measured in bench/push_throughput.py --shared: a single client
at 32 concurrent requests is several times slower than 32 one-connection clients). A lane is
one httpcore pool holding one connection, used by one request at a time (push/wire.py sends
on it, without an httpx client around it); an endpoint gets up to
``per_endpoint_concurrency`` lanes, which also bounds what one slow receiver can hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator

import httpcore
import httpx

from simgate.push.settings import PushSettings
from simgate.push.ssrf import UrlGuard
from simgate.push.transport import make_pool

MAX_IDLE_ENDPOINTS = 256  # endpoints whose idle keep-alive clients are kept


class _Endpoint:
    def __init__(self, size: int) -> None:
        self.sem = asyncio.Semaphore(size)
        self.idle: list[httpcore.AsyncConnectionPool] = []
        self.busy = 0


class Lanes:
    def __init__(self, guard: UrlGuard, cfg: PushSettings) -> None:
        self._guard = guard
        self._cfg = cfg
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)  # shared: costly
        self._endpoints: OrderedDict[str, _Endpoint] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def lane(self, endpoint: str) -> AsyncIterator[httpcore.AsyncConnectionPool]:
        """A lane for one request to ``endpoint``; waits while all its lanes are busy."""
        ep = self._endpoints.get(endpoint)
        if ep is None:
            ep = self._endpoints[endpoint] = _Endpoint(self._cfg.per_endpoint_concurrency)
            self._evict()
        self._endpoints.move_to_end(endpoint)
        ep.busy += 1
        try:
            async with ep.sem:
                pool = ep.idle.pop() if ep.idle else self._new()
                try:
                    yield pool
                finally:
                    ep.idle.append(pool)
        finally:
            ep.busy -= 1

    def _new(self) -> httpcore.AsyncConnectionPool:
        # No cap on connections: the lane's one request at a time is the cap (a pool cap
        # would only add a wait when a connection is being replaced).
        return make_pool(self._guard, ssl_context=self._ssl, keepalive=1, max_connections=None)

    def _evict(self) -> None:
        while len(self._endpoints) > MAX_IDLE_ENDPOINTS:
            victim = next((k for k, e in self._endpoints.items() if e.busy == 0), None)
            if victim is None:
                return
            pools = self._endpoints.pop(victim).idle
            task = asyncio.create_task(_close_all(pools))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        pools = [p for e in self._endpoints.values() for p in e.idle]
        self._endpoints.clear()
        await _close_all(pools)
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task


async def _close_all(pools: list[httpcore.AsyncConnectionPool]) -> None:
    for p in pools:
        with contextlib.suppress(Exception):
            await p.aclose()
