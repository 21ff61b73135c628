"""Use cases of the Dinstar gateway API (spec §2) that the generic services do not cover.

Queries by user_id/number/port, task ids, incoming SMS with gateway-local numbers and a
read flag, USSD replies, the push target and the Digest nonce secret. Built once by the
composition root and reached as ``services.dinstar``; the dialect parses, calls one of these
and renders. Nothing here knows the wire: ports are simgate's ``(line, port index)`` pairs,
times are epoch ms.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain import ids
from simgate.domain.records import MessageRecord
from simgate.services.cache_epoch import CacheEpoch
from simgate.services.lines import LineService
from simgate.services.messaging import MessagingService
from simgate.store import Store
from simgate.store.dialects import dinstar as repo
from simgate.store.dialects.dinstar import LinePort, NumberedInbound

DIALECT = repo.DIALECT  # the ``messages.dialect`` of what this dialect sent
# Stored documents (``kv``): the push target `simgate gateway push` sets, read by the push
# format too; the nonce secret every API process shares.
PUSH_DOC = "dinstar.push"
AUTH_DOC = "dinstar.auth"
TASK_BLOCK = 100
TASK_COUNTER = "dinstar_task"

__all__ = [
    "AUTH_DOC",
    "DIALECT",
    "PUSH_DOC",
    "DinstarService",
    "IncomingPage",
    "LinePort",
    "MessageQuery",
    "NumberedInbound",
    "PushTarget",
    "number_inbound",
]


async def number_inbound(conn: AsyncConnection, inbound_ids: Sequence[int]) -> dict[int, int]:
    """The ``incoming_sms_id`` of each inbound row, numbering new ones in id order (§2.5).

    Called inside the transaction that stores the SMS, so polling clients see the numbers in
    commit order; ``incoming`` backfills rows stored while no one numbered them.
    """
    return await repo.number_inbound(conn, inbound_ids)


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters of query_sms_result and query_sms_deliver_status (spec §2.3, §2.4).

    ``None`` matches anything. What ``after_ms``/``before_ms`` bound depends on the query:
    the sending time for results, the report's arrival for delivery statuses (spec §7).
    """

    account_id: int
    numbers: tuple[str, ...] | None = None
    ports: tuple[LinePort, ...] | None = None
    after_ms: int | None = None
    before_ms: int | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class IncomingPage:
    """query_incoming_sms: SMS after a high-water mark, and the read/unread counts after."""

    sms: list[NumberedInbound]
    read: int
    unread: int


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where and what the gateway pushes (spec §2.9); an empty ``url`` turns pushes off."""

    url: str
    types: tuple[str, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PushTarget:
        url, types = doc.get("url"), doc.get("types")
        return cls(
            url=url if isinstance(url, str) else "",
            types=tuple(str(t) for t in types) if isinstance(types, list | tuple) else (),
        )


@dataclass(slots=True)
class _QueueCount:
    count: int
    at_ms: int


@dataclass
class _TaskBlock:
    next: int = 0
    end: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DinstarService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        messaging: MessagingService,
        lines: LineService,
        epoch: CacheEpoch | None = None,
    ) -> None:
        self._store = store
        # Moved by a push target changed here, so this process's push outbox sees it at once
        # (services/push_interest.py; other processes within its poll).
        self._epoch = epoch
        self._clock = clock
        self._messaging = messaging
        self._lines = lines
        self._tasks = _TaskBlock()
        self._queued: dict[tuple[str, ...], _QueueCount] = {}

    # ---- tasks (send_sms task_id, stop_sms) --------------------------------------------
    async def new_task_id(self) -> int:
        """A task id unique across processes: blocks of the shared counter, starting at 1."""
        block = self._tasks
        async with block.lock:
            if block.next >= block.end:
                start = await self._store.db.write(
                    functools.partial(
                        self._store.accounts.reserve_block, name=TASK_COUNTER, size=TASK_BLOCK
                    )
                )
                block.next, block.end = start, start + TASK_BLOCK
            value = block.next
            block.next += 1
        return value + 1

    async def stop_task(self, *, account_id: int, task_id: int) -> int | None:
        """Stop what is still queued; None when the task is unknown, else how many stopped."""

        async def job(conn: AsyncConnection) -> int | None:
            ids_ = await repo.task_messages(conn, account_id=account_id, task_id=task_id)
            if not ids_:
                return None
            stopped = await self._messaging.cancel_in(conn, ids=ids_, now_ms=self._clock.now_ms())
            return len(stopped)

        self._queued.clear()
        return await self._store.db.write(job)

    # ---- queries -----------------------------------------------------------------------
    async def sent_messages(
        self, query: MessageQuery, *, user_refs: Sequence[str] | None = None
    ) -> list[MessageRecord]:
        """query_sms_result: messages sent through this dialect, newest first (spec §2.3).

        The time bounds become id bounds: ids are time-ordered (domain/ids.py).
        """
        after, before = query.after_ms, query.before_ms
        return await self._find(
            query,
            user_refs=user_refs,
            id_from=None if after is None else ids.lower_bound(after),
            id_to=None if before is None else ids.upper_bound(before),
        )

    async def reported_messages(self, query: MessageQuery) -> list[MessageRecord]:
        """query_sms_deliver_status: messages whose every part has a report (spec §2.4).

        The time bounds apply to when the report arrived (spec §7); a report never precedes
        its send, so ``before_ms`` also bounds the (time-ordered) message id.
        """
        before = query.before_ms
        return await self._find(
            query,
            reported_only=True,
            reported_from_ms=query.after_ms,
            reported_to_ms=before,
            id_to=None if before is None else ids.upper_bound(before),
        )

    async def _find(
        self,
        query: MessageQuery,
        *,
        user_refs: Sequence[str] | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        reported_only: bool = False,
        reported_from_ms: int | None = None,
        reported_to_ms: int | None = None,
    ) -> list[MessageRecord]:
        async with self._store.db.read() as conn:
            return await repo.find_messages(
                conn,
                account_id=query.account_id,
                user_refs=user_refs,
                numbers=query.numbers,
                ports=query.ports,
                id_from=id_from,
                id_to=id_to,
                reported_only=reported_only,
                reported_from_ms=reported_from_ms,
                reported_to_ms=reported_to_ms,
                limit=query.limit,
            )

    async def queued(
        self,
        lines: Sequence[str],
        *,
        account_id: int | None = None,
        max_age_ms: int = 0,
        added: int = 0,
    ) -> int:
        """Messages waiting on ``lines`` (``account_id``'s only, when given); a count up to
        ``max_age_ms`` old may be reused.

        send_sms reports ``sms_in_queue`` on every request (spec §2.2); counting a deep queue
        each time would cost more than the send itself, so it reuses a count at most 500 ms
        old plus what this process queued since (``added``).
        """
        key = (*lines, f"account={account_id}")
        now = self._clock.now_ms()
        hit = self._queued.get(key)
        if hit is not None and max_age_ms and now - hit.at_ms <= max_age_ms:
            hit.count += added
            return hit.count
        async with self._store.db.read() as conn:
            count = await repo.queued_count(conn, lines, account_id=account_id)
        self._queued[key] = _QueueCount(count, now)
        return count

    async def incoming(
        self,
        *,
        account_id: int,
        after_seq: int,
        read: bool | None,
        mark_read: bool,
        ports: Sequence[LinePort] | None,
        limit: int,
    ) -> IncomingPage:
        """SMS numbered after ``after_seq`` (``read`` None: read or not), oldest first."""

        async def job(conn: AsyncConnection) -> IncomingPage:
            await repo.backfill_inbound(conn)
            rows = await repo.incoming(
                conn,
                account_id=account_id,
                after_seq=after_seq,
                read=read,
                ports=ports,
                limit=limit,
            )
            if mark_read:
                unread = [r.record.id for r in rows if not r.record.read]
                await self._store.inbound.mark_read(conn, unread)
            counts = await repo.read_counts(conn, account_id=account_id)
            return IncomingPage(rows, read=counts.read, unread=counts.unread)

        return await self._store.db.write(job)

    # ---- USSD ----------------------------------------------------------------------------
    async def record_ussd(
        self, *, line: str, port: int, text: str, announce: bool, account_id: int | None = None
    ) -> None:
        """Keep the port's latest reply for the account that asked; ``announce`` a real
        answer (the ``ussd`` push)."""
        now = self._clock.now_ms()

        async def job(conn: AsyncConnection) -> None:
            await repo.put_ussd(
                conn, line=line, port=port, text=text, now_ms=now, account_id=account_id
            )
            if announce:
                await self._lines.ussd_replied(conn, line=line, port=port, text=text, now_ms=now)

        await self._store.db.write(job)

    async def ussd_replies(
        self, ports: Sequence[LinePort], *, account_id: int | None = None
    ) -> dict[LinePort, str]:
        """The ports' latest replies; with ``account_id``, only those that account asked for."""
        async with self._store.db.read() as conn:
            return await repo.get_ussd(conn, ports, account_id=account_id)

    # ---- documents: push target, nonce secret ------------------------------------------
    async def push_target(self) -> PushTarget | None:
        """The stored target; None when none is (``[dinstar] push_url`` applies then)."""
        async with self._store.db.read() as conn:
            doc = await self._store.accounts.get_doc(conn, PUSH_DOC)
        return None if doc is None else PushTarget.from_doc(doc)

    async def set_push_target(self, *, url: str, types: Sequence[str]) -> None:
        doc = {"url": url, "types": list(types)}
        await self._store.db.write(
            functools.partial(self._store.accounts.put_doc, key=PUSH_DOC, value=doc)
        )
        if self._epoch is not None:
            self._epoch.changed()

    async def nonce_secret(self) -> bytes:
        """A random secret shared by every API process through the database."""

        async def job(conn: AsyncConnection) -> str:
            doc = await self._store.accounts.get_doc(conn, AUTH_DOC)
            if doc and isinstance(doc.get("nonce_secret"), str):
                return str(doc["nonce_secret"])
            value = secrets.token_hex(32)
            await self._store.accounts.put_doc(conn, AUTH_DOC, {"nonce_secret": value})
            return value

        try:
            return bytes.fromhex(await self._store.db.write(job))
        except Exception:  # two processes raced to create it: the other one's is stored now
            async with self._store.db.read() as conn:
                doc = await self._store.accounts.get_doc(conn, AUTH_DOC)
            if not doc:
                raise
            return bytes.fromhex(str(doc["nonce_secret"]))
