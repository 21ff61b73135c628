"""What the itniotech dialect reads and keeps: credentials, its queries and its replay records.

The dialect parses and renders; every database access it needs is a method here (spec §1.5,
§1.6, §1.8 for the queries, §7 for the replay rule), so ``api/`` never holds a connection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, ApiKey
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, SentRow
from simgate.services.accept_writer import OnceJob
from simgate.services.gather import Gatherer
from simgate.store import Store
from simgate.store.dialects.itnio import (
    PENDING,
    Claim,
    NewAnswered,
    NewClaim,
    ReplayRepo,
    ReportRow,
    report_rows,
    sent_page,
)

__all__ = [
    "PENDING",
    "Claim",
    "Credentials",
    "ItnioService",
    "MoPage",
    "NewAnswered",
    "ReplayClaim",
    "ReportRow",
]

# Claims written together at most (one multi-row INSERT each: services/gather.py).
CLAIMS_PER_BATCH = 500


@dataclass(frozen=True, slots=True)
class Credentials:
    """An Api-Key with its account, as read in one transaction."""

    key: ApiKey
    account: Account


@dataclass(frozen=True, slots=True)
class MoPage:
    total: int
    records: list[InboundRecord]


@dataclass(frozen=True, slots=True)
class ReplayClaim(OnceJob):
    """A send's replay record, claimed with its answer in the send's own accept transaction
    (services/accept_writer.py ``OnceJob``): the claims of one accept batch are one INSERT,
    and a request whose fingerprint is recorded already is a repeat there, neither charged
    nor queued. ``purge`` first drops expired records; ``on_run`` is told once the send's
    rows are written beside the claim."""

    replays: ReplayRepo
    claim: NewAnswered
    purge: bool
    on_run: Callable[[], None]

    def written(self) -> None:
        self.on_run()

    async def claim_together(
        self, conn: AsyncConnection, jobs: Sequence[ReplayClaim]
    ) -> list[Claim | None]:
        """None for each claim now owned, else what its record holds (a :class:`Claim`)."""
        if any(j.purge for j in jobs):
            await self.replays.purge(conn, now_ms=min(j.claim.now_ms for j in jobs))
        claims = await self.replays.claim_answered(conn, [j.claim for j in jobs])
        return [None if c.owned else c for c in claims]

    async def drop_together(self, conn: AsyncConnection, jobs: Sequence[ReplayClaim]) -> None:
        await self.replays.drop_answered(
            conn, [(j.claim.fingerprint, j.claim.now_ms) for j in jobs]
        )

    def record(self) -> tuple[str, int, str, int] | None:
        """On PostgreSQL the claim is written by the accept statement itself (one round
        trip: store/messages.py ``insert_claimed``); not when expired records are purged
        first (a statement of its own, in a transaction)."""
        c = self.claim
        return None if self.purge else (c.fingerprint, c.expires_ms, c.response, c.now_ms)


class ItnioService:
    def __init__(self, *, store: Store) -> None:
        self._store = store
        self._replays = ReplayRepo()
        self._claims: Gatherer[NewClaim, Claim] = Gatherer(
            db=store.db, write_many=self._replays.claim_many, max_size=CLAIMS_PER_BATCH
        )
        self._answered: Gatherer[NewAnswered, Claim] = Gatherer(
            db=store.db, write_many=self._replays.claim_answered, max_size=CLAIMS_PER_BATCH
        )

    # ---- authentication (spec §1.1) ------------------------------------------------------
    async def credentials(self, key: str) -> Credentials | None:
        """The key and its account; None when either is unknown (two indexed rows: a short
        read, on the event loop's thread on SQLite)."""
        store = self._store
        async with store.db.read_short() as conn:
            api_key = await store.accounts.get_key(conn, key)
            if api_key is None:
                return None
            account = await store.accounts.get_account(conn, api_key.account_id)
        return None if account is None else Credentials(api_key, account)

    # ---- queries ---------------------------------------------------------------------------
    async def report_rows(self, *, app_id: int, ids: Sequence[int]) -> list[ReportRow]:
        """getReport's rows (§1.5) as plain tuples (store/dialects/itnio.py ``ReportRow``):
        the app's messages among ``ids``, in no particular order; others' are not found."""
        return await report_rows(self._store.db, app_id=app_id, ids=ids)

    async def sent_page(
        self,
        *,
        app_id: int,
        id_from: int,
        id_to: int,
        states: Sequence[State],
        offset: int,
        limit: int,
    ) -> list[SentRow]:
        """getSentRcd (§1.6): one page of the app's messages in ``states``, in id order."""
        async with self._store.db.read() as conn:
            return await sent_page(
                conn,
                app_id=app_id,
                id_from=id_from,
                id_to=id_to,
                states=states,
                offset=offset,
                limit=limit,
            )

    async def mo_page(
        self, *, account_id: int, id_from: int, id_to: int, offset: int, limit: int
    ) -> MoPage:
        """recordMo (§1.8): the account's incoming SMS in an id range, with the total."""
        inbound = self._store.inbound
        async with self._store.db.read() as conn:
            total = await inbound.count(conn, account_id=account_id, id_from=id_from, id_to=id_to)
            records = await inbound.page(
                conn,
                account_id=account_id,
                id_from=id_from,
                id_to=id_to,
                offset=offset,
                limit=limit,
            )
        return MoPage(total, records)

    # ---- replay records (§7) -----------------------------------------------------------------
    async def claim_replay(
        self,
        *,
        fingerprint: str,
        expires_ms: int,
        now_ms: int,
        purge: bool,
        takeover_after_ms: int | None = None,
    ) -> Claim:
        """Own ``fingerprint`` or find its record (store/dialects/itnio.py ``claim``): a claim
        left unanswered ``takeover_after_ms`` is taken over. ``purge`` first drops expired
        records."""
        if not purge:
            # Concurrent requests' claims share one INSERT (group commit, issue 15).
            claim = NewClaim(fingerprint, expires_ms, now_ms, takeover_after_ms)
            return await self._claims.write(claim)
        return await self._store.db.write(
            functools.partial(
                self._claim,
                fingerprint=fingerprint,
                expires_ms=expires_ms,
                now_ms=now_ms,
                purge=purge,
                takeover_after_ms=takeover_after_ms,
            )
        )

    async def _claim(
        self,
        conn: AsyncConnection,
        *,
        fingerprint: str,
        expires_ms: int,
        now_ms: int,
        purge: bool,
        takeover_after_ms: int | None,
    ) -> Claim:
        if purge:
            await self._replays.purge(conn, now_ms=now_ms)
        return await self._replays.claim(
            conn,
            fingerprint=fingerprint,
            expires_ms=expires_ms,
            now_ms=now_ms,
            takeover_after_ms=takeover_after_ms,
        )

    async def replay_response(self, fingerprint: str) -> str | None:
        """The stored response (:data:`PENDING` while running); None once released."""
        async with self._store.db.read() as conn:
            return await self._replays.lookup(conn, fingerprint)

    async def legacy_replays_until(self) -> int:
        """When the last record under a key of before migration 0016 expires (0: none)."""
        async with self._store.db.read() as conn:
            return await self._replays.legacy_until(conn)

    async def complete_replay(self, *, fingerprint: str, response: str, token: int) -> bool:
        """Store the answer of claim ``token``; False if that claim was taken over."""
        return await self._store.db.write(
            functools.partial(
                self._replays.complete, fingerprint=fingerprint, response=response, token=token
            )
        )

    def replay_claim_job(
        self, claim: NewAnswered, *, purge: bool, on_run: Callable[[], None]
    ) -> ReplayClaim:
        """The claim of a send, written with its answer in the send's own transaction (the
        one that commits its messages), so a crash never leaves the work done and the answer
        unknown, nor a claim without its work; a send whose fingerprint is recorded already
        is refused there as a repeat (services/accept_writer.py ``Repeated``)."""
        return ReplayClaim(self._replays, claim, purge, on_run)

    async def record_answer(self, claim: NewAnswered, *, purge: bool = False) -> Claim:
        """Claim a fingerprint with the answer of a request that did no work (a refusal):
        owned, or what its record already holds. Concurrent requests' records share one
        INSERT (group commit)."""
        if not purge:
            return await self._answered.write(claim)
        return await self._store.db.write(functools.partial(self._record_purging, claim))

    async def _record_purging(self, claim: NewAnswered, conn: AsyncConnection) -> Claim:
        await self._replays.purge(conn, now_ms=claim.now_ms)
        (found,) = await self._replays.claim_answered(conn, [claim])
        return found

    async def release_replay(self, fingerprint: str, token: int) -> None:
        await self._store.db.write(
            functools.partial(self._replays.release, fingerprint=fingerprint, token=token)
        )
