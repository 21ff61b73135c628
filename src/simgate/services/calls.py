"""The worker side of voice calls: the only way a call's state changes after it is queued.

Lease, renew, redial, finish and reap, each one ``db.write`` job; a call that reaches its
final result (DONE) is recorded as :class:`~simgate.domain.events.CallDone` inside that job
(pushVoiceReport is owed, spec §1.16). Accepting calls is :mod:`simgate.services.voice`.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.calls import Audio, CallFinal, CallResult, LeasedCall
from simgate.domain.events import CallDone
from simgate.services.changes import Publish
from simgate.store import Store


class CallService:
    def __init__(self, *, store: Store, publish: Publish) -> None:
        self._store = store
        self._db = store.db
        self._calls = store.calls
        self._publish = publish

    # ---- the queue -------------------------------------------------------------------
    async def lease(
        self, *, owner: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[LeasedCall]:
        """Claim up to ``limit`` due QUEUED calls, oldest due first (they become CALLING)."""
        job = functools.partial(
            self._calls.lease,
            owner=owner,
            now_ms=now_ms,
            lease_until_ms=lease_until_ms,
            limit=limit,
        )
        return await self._db.write(job)

    async def renew(
        self, *, ids: Sequence[int], owner: str, lease_until_ms: int, now_ms: int
    ) -> int:
        """Extend the leases of the calls ``owner`` has in progress; returns how many."""
        job = functools.partial(
            self._calls.renew, ids=ids, owner=owner, lease_until_ms=lease_until_ms, now_ms=now_ms
        )
        return await self._db.write(job)

    async def redial(
        self, *, result: CallResult, owner: str, next_attempt_ms: int, now_ms: int
    ) -> bool:
        """An unanswered attempt with recalls left: queued again. Not news (spec §1.11:
        only the last attempt's result is pushed)."""
        job = functools.partial(
            self._calls.redial,
            result=result,
            owner=owner,
            next_attempt_ms=next_attempt_ms,
            now_ms=now_ms,
        )
        return await self._db.write(job)

    async def release(self, *, ids: Sequence[int], owner: str, now_ms: int) -> int:
        """Leased calls never dialled (their voice route's lines stayed full until the worker
        stopped): queued again at once, no attempt counted (issue 17)."""
        job = functools.partial(
            self._calls.release, ids=ids, owner=owner, retry_at_ms=now_ms, now_ms=now_ms
        )
        return await self._db.write(job)

    async def finish(self, *, finals: Sequence[CallFinal], owner: str, now_ms: int) -> list[int]:
        """Record final results and charge them; returns the ids that ended (held ones)."""

        async def job(conn: AsyncConnection) -> list[int]:
            done = await self._calls.finish(conn, finals=finals, owner=owner, now_ms=now_ms)
            await self._publish(conn, [CallDone(cid, now_ms) for cid in done])
            return done

        return await self._db.write(job)

    async def reap(self, *, now_ms: int) -> int:
        """End calls whose lease lapsed (their worker died) as lost; returns how many."""

        async def job(conn: AsyncConnection) -> int:
            ended = await self._calls.reap(conn, now_ms=now_ms)
            await self._publish(conn, [CallDone(cid, now_ms) for cid in ended])
            return len(ended)

        return await self._db.write(job)

    # ---- what the dispatcher reads ---------------------------------------------------
    async def queue_depth(self) -> int:
        """Calls not finished yet (QUEUED or CALLING)."""
        async with self._db.read() as conn:
            return await self._calls.queue_depth(conn)

    async def spendable(self, account_ids: Collection[int]) -> dict[int, int]:
        """What each account may still spend (micros); 0 for an account that is gone."""
        out: dict[int, int] = {}
        async with self._db.read() as conn:
            for account_id in account_ids:
                account = await self._store.accounts.get_account(conn, account_id)
                out[account_id] = account.spendable_micros if account else 0
        return out

    async def audio(self, audio_id: int) -> Audio | None:
        async with self._db.read() as conn:
            return await self._store.voice_files.get_audio(conn, audio_id)
