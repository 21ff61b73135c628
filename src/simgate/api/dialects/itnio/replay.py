"""The replay rule of spec §7, kept in the database so it holds across processes.

An identical request (same Api-Key, Timestamp, Sign, method, path with query, and body) seen
again while its Timestamp is inside the window gets the first response back and sends
nothing twice. A different body under the same Sign is a new request. The record's key (the
request's Timestamp, then its fingerprint: :func:`replay_key`) is a primary key, so two
processes cannot both claim it.

Two ways to hold the rule. :meth:`ReplayGuard.once` claims the fingerprint first, runs, then
stores the response; a replay arriving meanwhile waits for it. :meth:`ReplayGuard.
once_committed` (the sends) runs first and claims the fingerprint with its response in the
transaction that commits the send (issue 15: one commit per send instead of two): a copy
whose claim finds the fingerprint recorded is neither charged nor queued and answers with
the recorded response. A send refused before any work claims it with the refusal, so a
replay gets that refusal back even when a retry would now succeed.

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
from simgate.api.dialects.itnio.envelope import ERROR_CODES, ItnioError, enveloped, refusal
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.api.http import request_path
from simgate.clock import Clock
from simgate.services.accept_writer import Repeated
from simgate.services.itnio import PENDING, Claim, ItnioService, NewAnswered, ReplayClaim

PURGE_EVERY_MS = 60_000

log = logging.getLogger(__name__)

CodeTable = tuple[tuple[type[Exception], int], ...]


def fingerprint(
    *, key: str, timestamp: str, sign: str, method: str, target: str, body: bytes
) -> str:
    """The request's identity for the replay rule: credentials, Timestamp, Sign, method,
    path with query, and body."""
    # One hash call over the parts, each followed by a NUL: the digest of the part-by-part
    # updates records were written with, in one C call instead of eleven (issue 15).
    head = "\x00".join((key, timestamp, sign, method, target, "")).encode(
        "utf-8", "surrogateescape"
    )
    return hashlib.sha256(head + body).hexdigest()


def replay_key(timestamp: str, digest: str) -> str:
    """The record's key for a request of ``timestamp`` whose :func:`fingerprint` is
    ``digest``: the Timestamp in milliseconds, 13 digits, then the digest. An identical
    request has the same Timestamp, so the same key; and keys grow with time, so each record
    goes into the last pages of the key's index rather than a random one (issue 15: a random
    page written per record was most of a send's replay cost on SQLite; migration 0016)."""
    return f"{timestamp_ms(timestamp):013d}{digest}"


# The key's Timestamp part: a record's key without it is the one written before 0016.
_TIME_DIGITS = 13


def request_fingerprint(ctx: AuthContext, request: Request, body: bytes) -> str:
    query = request.scope.get("query_string", b"")
    # Without a query (every POST send) the target is the path, read without building the URL.
    target = (
        request.url.path + ("?" + request.url.query if request.url.query else "")
        if query
        else request_path(request)
    )
    digest = fingerprint(
        key=ctx.key.key,
        timestamp=ctx.timestamp,
        sign=ctx.sign,
        method=request.method,
        target=target,
        body=body,
    )
    return replay_key(ctx.timestamp, digest)


# What a producer is handed to commit its answer with its work (``ReplayGuard.once_committed``):
# given the answer's bytes, the claim to write in the transaction that commits the work.
CommitAnswer = Callable[[bytes], ReplayClaim]


class ReplayGuard:
    def __init__(self, itnio: ItnioService, *, clock: Clock, cfg: ItnioSettings) -> None:
        self._itnio = itnio
        self._clock = clock
        self._cfg = cfg
        self._last_purge_ms = 0
        self._pending: set[asyncio.Future[bool]] = set()
        # Until when records keyed as before migration 0016 may answer a replay: None until
        # read (once per process), 0 once none can (see _legacy).
        self._legacy_until: int | None = None

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

        async def answer() -> bytes:
            return await enveloped(produce, table)

        run = functools.partial(self._once, ctx, request, body, answer)
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
        hands the claim the given :data:`CommitAnswer` makes to that transaction). The work
        is done first and the fingerprint claimed in its commit (see the module docstring):
        a crash leaves both or neither, and no claim waits for an owner that died.

        One ``try`` per envelope, not :func:`enveloped` around closures: the send's path
        was six coroutines and closures deep (issue 15)."""
        try:
            return await self._once_on_commit(ctx, request, body, produce, table)
        except Exception as exc:  # the guard's own failure: this request's answer alone
            return refusal(exc, table)

    async def _once_on_commit(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        produce: Callable[[CommitAnswer], Awaitable[bytes]],
        table: CodeTable,
    ) -> bytes:
        fp, now, expires, purge = self._fingerprint(ctx, request, body)
        if self._legacy_until != 0:
            legacy = await self._legacy(fp, now)
            if legacy is not None:
                return await self._recorded(*legacy)
        takeover_ms = int(self._cfg.replay_wait_seconds * 1000)
        written = False

        def mark() -> None:
            nonlocal written
            written = True  # the send's rows are written beside the claim

        def commit(response: bytes) -> ReplayClaim:
            claim = NewAnswered(fp, expires, now, response.decode(), takeover_ms)
            return self._itnio.replay_claim_job(claim, purge=purge, on_run=mark)

        try:
            response = await produce(commit)
        except Repeated as exc:  # not an answer of this request: the recorded one is
            found = exc.found
            assert isinstance(found, Claim), found
            return await self._recorded(fp, found)
        except Exception as exc:  # a refusal is an answer like any other (see once)
            response = refusal(exc, table)
        else:
            if written:
                return response  # committed with the work it answers
        # A refusal, answered at most once too: the first copy to record its answer wins.
        answered = NewAnswered(fp, expires, now, response.decode(), takeover_ms)
        claim = await self._itnio.record_answer(answered, purge=purge)
        return response if claim.owned else await self._recorded(fp, claim)

    async def _recorded(self, fp: str, claim: Claim) -> bytes:
        """The answer recorded for ``fp`` (waited for while its owner still runs)."""
        if claim.response is None:  # released just now: the first copy failed
            raise ItnioError(-18, "the first copy of this request failed; send it anew")
        return claim.response.encode() if claim.response != PENDING else await self._wait(fp)

    def _fingerprint(
        self, ctx: AuthContext, request: Request, body: bytes
    ) -> tuple[str, int, int, bool]:
        """The request's fingerprint, now, when its record may go, and whether to purge
        expired records first (once a minute per process)."""
        fp = request_fingerprint(ctx, request, body)
        now = self._clock.now_ms()
        # The record must outlive every moment at which this Timestamp is still accepted.
        window_ms = self._cfg.timestamp_window_seconds * 1000
        expires = max(now, timestamp_ms(ctx.timestamp)) + window_ms + 1000
        purge = now - self._last_purge_ms > PURGE_EVERY_MS
        if purge:
            self._last_purge_ms = now
        return fp, now, expires, purge

    async def _legacy(self, fp: str, now: int) -> tuple[str, Claim] | None:
        """The record of this request under its key from before migration 0016, if one may
        still be alive: its key and what it holds, or None. Records written before the
        upgrade keep their keys, and a replay of their requests must still get their answer
        (spec §7); they expire at most a Timestamp window after it, and from then on no
        request looks (one read per process tells when)."""
        until = self._legacy_until
        if until is None:
            until = self._legacy_until = await self._itnio.legacy_replays_until()
        if until < now:
            self._legacy_until = 0
            return None
        old = fp[_TIME_DIGITS:]
        found = await self._itnio.replay_response(old)
        return None if found is None else (old, Claim(owned=False, response=found))

    async def _once(
        self,
        ctx: AuthContext,
        request: Request,
        body: bytes,
        answer: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        fp, now, expires, purge = self._fingerprint(ctx, request, body)
        if self._legacy_until != 0:
            legacy = await self._legacy(fp, now)
            if legacy is not None:
                return await self._recorded(*legacy)
        claim = await self._itnio.claim_replay(
            fingerprint=fp, expires_ms=expires, now_ms=now, purge=purge
        )
        if not claim.owned:
            return await self._recorded(fp, claim)
        token = claim.token
        try:
            response = await answer()
        except BaseException:
            # Nothing was answered: let a retry of the same request run afresh.
            await asyncio.shield(self._itnio.release_replay(fp, token))
            raise
        # The stored response only serves replays, which wait while it is PENDING. Not
        # awaiting it saves one group-commit round trip per request.
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
