"""Per-endpoint connection lanes: at most N requests at a time, one keep-alive client each.

Why not one shared httpx client: httpcore's pool walks every queued request against every
connection on each request start and end, so with tens of concurrent requests the pool
itself becomes the bottleneck (measured in bench/push_throughput.py: a single client at 32
concurrent requests is several times slower than 32 one-connection clients). A lane is one
client with one connection, used by one request at a time; an endpoint gets up to
``per_endpoint_concurrency`` lanes, which also bounds what one slow receiver can hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator

import httpx

from simgate.push.settings import PushSettings
from simgate.push.ssrf import UrlGuard
from simgate.push.transport import make_client

MAX_IDLE_ENDPOINTS = 256  # endpoints whose idle keep-alive clients are kept


class _Endpoint:
    def __init__(self, size: int) -> None:
        self.sem = asyncio.Semaphore(size)
        self.idle: list[httpx.AsyncClient] = []
        self.busy = 0


class Lanes:
    def __init__(self, guard: UrlGuard, cfg: PushSettings) -> None:
        self._guard = guard
        self._cfg = cfg
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)  # shared: costly
        self._endpoints: OrderedDict[str, _Endpoint] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def client(self, endpoint: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client for one request to ``endpoint``; waits while all its lanes are busy."""
        ep = self._endpoints.get(endpoint)
        if ep is None:
            ep = self._endpoints[endpoint] = _Endpoint(self._cfg.per_endpoint_concurrency)
            self._evict()
        self._endpoints.move_to_end(endpoint)
        ep.busy += 1
        try:
            async with ep.sem:
                client = ep.idle.pop() if ep.idle else self._new()
                try:
                    yield client
                finally:
                    ep.idle.append(client)
        finally:
            ep.busy -= 1

    def _new(self) -> httpx.AsyncClient:
        return make_client(self._guard, self._cfg, ssl_context=self._ssl, keepalive=1)

    def _evict(self) -> None:
        while len(self._endpoints) > MAX_IDLE_ENDPOINTS:
            victim = next((k for k, e in self._endpoints.items() if e.busy == 0), None)
            if victim is None:
                return
            clients = self._endpoints.pop(victim).idle
            task = asyncio.create_task(_close_all(clients))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        clients = [c for e in self._endpoints.values() for c in e.idle]
        self._endpoints.clear()
        await _close_all(clients)
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task


async def _close_all(clients: list[httpx.AsyncClient]) -> None:
    for c in clients:
        with contextlib.suppress(Exception):
            await c.aclose()
