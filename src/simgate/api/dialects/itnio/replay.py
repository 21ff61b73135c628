"""The replay rule of spec §7, kept in the database so it holds across processes.

An identical request (same Api-Key, Timestamp, Sign, method, path with query, and body) seen
again while its Timestamp is inside the window gets the first response back and sends
nothing twice. A different body under the same Sign is a new request. The first request
claims the fingerprint (a primary key, so two processes cannot both claim it), runs, and
stores its response; a replay arriving meanwhile waits for that response.

Only endpoints that change something (sendSms, sendSms/batch) go through the guard: a
repeated query has no effect to repeat and returns the same data an attacker already saw.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.itnio.auth import AuthContext, timestamp_ms
from simgate.api.dialects.itnio.config import ItnioSettings
from simgate.api.dialects.itnio.envelope import ItnioError
from simgate.services.container import Services
from simgate.store.itnio import PENDING, ReplayRepo

PURGE_EVERY_MS = 60_000

log = logging.getLogger(__name__)


def fingerprint(ctx: AuthContext, request: Request, body: bytes) -> str:
    h = hashlib.sha256()
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    for part in (ctx.key.key, ctx.timestamp, ctx.sign, request.method, target):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
    h.update(body)
    return h.hexdigest()


class ReplayGuard:
    def __init__(self, services: Services, cfg: ItnioSettings) -> None:
        self._services = services
        self._cfg = cfg
        self._repo = ReplayRepo()
        self._last_purge_ms = 0
        self._pending: set[asyncio.Future[None]] = set()

    async def once(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        produce: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        db = self._services.store.db
        fp = fingerprint(ctx, request, body)
        now = self._services.clock.now_ms()
        # The record must outlive every moment at which this Timestamp is still accepted.
        window_ms = self._cfg.timestamp_window_seconds * 1000
        expires = max(now, timestamp_ms(ctx.timestamp)) + window_ms + 1000
        purge = now - self._last_purge_ms > PURGE_EVERY_MS
        if purge:
            self._last_purge_ms = now
        prior = await db.write(
            functools.partial(self._claim, fp=fp, expires=expires, now=now, purge=purge)
        )
        if prior is not None:
            return prior.encode() if prior != PENDING else await self._wait(fp)
        try:
            response = await produce()
        except BaseException:
            # Nothing was answered: let a retry of the same request run afresh.
            await asyncio.shield(db.write(functools.partial(self._repo.release, fingerprint=fp)))
            raise
        # The messages are committed already (a 2xx means committed); the stored response
        # only serves replays, which wait while it is PENDING. Not awaiting it saves one
        # group-commit round trip per send (bench/itnio_send.py).
        task = asyncio.ensure_future(
            db.write(
                functools.partial(self._repo.complete, fingerprint=fp, response=response.decode())
            )
        )
        self._pending.add(task)
        task.add_done_callback(self._completed)
        return response

    def _completed(self, task: asyncio.Future[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A replay of this request will find the claim PENDING and answer -18.
            log.warning("itnio: could not store a replay response: %s", task.exception())

    async def _claim(
        self, conn: AsyncConnection, *, fp: str, expires: int, now: int, purge: bool
    ) -> str | None:
        if purge:
            await self._repo.purge(conn, now_ms=now)
        return await self._repo.claim(conn, fingerprint=fp, expires_ms=expires, now_ms=now)

    async def _wait(self, fp: str) -> bytes:
        store = self._services.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cfg.replay_wait_seconds
        while loop.time() < deadline:
            await asyncio.sleep(0.02)  # real time: the first request runs on real I/O
            async with store.db.read() as conn:
                found = await self._repo.lookup(conn, fp)
            if found is None:  # the first request failed and released its claim
                raise ItnioError(-18, "the first copy of this request failed; send it anew")
            if found != PENDING:
                return found.encode()
        raise ItnioError(-18, "the first copy of this request is still running")
