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

from simgate.api.dialects.itnio.auth import AuthContext, timestamp_ms
from simgate.api.dialects.itnio.envelope import ERROR_CODES, ItnioError, enveloped
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.clock import Clock
from simgate.services.itnio import PENDING, AnswerJob, ItnioService

PURGE_EVERY_MS = 60_000

log = logging.getLogger(__name__)

CodeTable = tuple[tuple[type[Exception], int], ...]


def fingerprint(
    *, key: str, timestamp: str, sign: str, method: str, target: str, body: bytes
) -> str:
    """The request's identity for the replay rule: credentials, Timestamp, Sign, method,
    path with query, and body."""
    h = hashlib.sha256()
    for part in (key, timestamp, sign, method, target):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
    h.update(body)
    return h.hexdigest()


def request_fingerprint(ctx: AuthContext, request: Request, body: bytes) -> str:
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    return fingerprint(
        key=ctx.key.key,
        timestamp=ctx.timestamp,
        sign=ctx.sign,
        method=request.method,
        target=target,
        body=body,
    )


# What a producer is handed to commit its answer with its work (``ReplayGuard.once_committed``):
# given the answer's bytes, the job to run in the transaction that commits the work.
CommitAnswer = Callable[[bytes], AnswerJob]


class ReplayGuard:
    def __init__(self, itnio: ItnioService, *, clock: Clock, cfg: ItnioSettings) -> None:
        self._itnio = itnio
        self._clock = clock
        self._cfg = cfg
        self._last_purge_ms = 0
        self._pending: set[asyncio.Future[bool]] = set()

    async def once(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        produce: Callable[[], Awaitable[bytes]],
        table: CodeTable = ERROR_CODES,
    ) -> bytes:
        """The envelope for this request, answered at most once (§7).

        Two envelopes, on purpose: a refusal from ``produce`` is an answer like any other and
        is what a replay gets back; a failure of the guard itself (the database, a first copy
        that never finished) answers this request alone and stores nothing.
        """

        async def answer(_: CommitAnswer) -> bytes:
            return await enveloped(produce, table)

        run = functools.partial(self._once, ctx, request, body, answer, takeover=False)
        return await enveloped(run, table)

    async def once_committed(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        produce: Callable[[CommitAnswer], Awaitable[bytes]],
        table: CodeTable = ERROR_CODES,
    ) -> bytes:
        """:meth:`once` for a producer that commits its answer with its work (``produce``
        hands the given :data:`CommitAnswer` job to that transaction). A crash then leaves
        either both or neither, so a claim still unanswered ``replay_wait_seconds`` after it
        was made is taken over by an identical retry (issue 14 item 14): its owner died
        before committing anything, or it is only slow and fenced out (its commit fails)."""

        async def answer(commit: CommitAnswer) -> bytes:
            return await enveloped(lambda: produce(commit), table)

        run = functools.partial(self._once, ctx, request, body, answer, takeover=True)
        return await enveloped(run, table)

    async def _once(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        answer: Callable[[CommitAnswer], Awaitable[bytes]],
        *,
        takeover: bool,
    ) -> bytes:
        fp = request_fingerprint(ctx, request, body)
        now = self._clock.now_ms()
        # The record must outlive every moment at which this Timestamp is still accepted.
        window_ms = self._cfg.timestamp_window_seconds * 1000
        expires = max(now, timestamp_ms(ctx.timestamp)) + window_ms + 1000
        purge = now - self._last_purge_ms > PURGE_EVERY_MS
        if purge:
            self._last_purge_ms = now
        claim = await self._itnio.claim_replay(
            fingerprint=fp,
            expires_ms=expires,
            now_ms=now,
            purge=purge,
            takeover_after_ms=int(self._cfg.replay_wait_seconds * 1000) if takeover else None,
        )
        if not claim.owned:
            if claim.response is None:  # released just now: the first copy failed
                raise ItnioError(-18, "the first copy of this request failed; send it anew")
            return claim.response.encode() if claim.response != PENDING else await self._wait(fp)
        token = claim.token
        committed = False

        def mark() -> None:
            nonlocal committed
            committed = True  # (if its transaction then fails, produce raises)

        def commit(response: bytes) -> AnswerJob:
            return self._itnio.replay_answer_job(
                fingerprint=fp, response=response.decode(), token=token, on_run=mark
            )

        try:
            response = await answer(commit)
        except BaseException:
            # Nothing was answered: let a retry of the same request run afresh.
            await asyncio.shield(self._itnio.release_replay(fp, token))
            raise
        if committed:
            return response  # stored with the work it answers
        # The messages are committed already (a 2xx means committed); the stored response
        # only serves replays, which wait while it is PENDING. Not awaiting it saves one
        # group-commit round trip per send (bench/itnio_send.py).
        task = asyncio.ensure_future(
            self._itnio.complete_replay(fingerprint=fp, response=response.decode(), token=token)
        )
        self._pending.add(task)
        task.add_done_callback(self._completed)
        return response

    def _completed(self, task: asyncio.Future[bool]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A replay of this request will find the claim PENDING and answer -18.
            log.warning("itnio: could not store a replay response: %s", task.exception())

    async def _wait(self, fp: str) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cfg.replay_wait_seconds
        while loop.time() < deadline:
            await asyncio.sleep(0.02)  # real time: the first request runs on real I/O
            found = await self._itnio.replay_response(fp)
            if found is None:  # the first request failed and released its claim
                raise ItnioError(-18, "the first copy of this request failed; send it anew")
            if found != PENDING:
                return found.encode()
        raise ItnioError(-18, "the first copy of this request is still running")
