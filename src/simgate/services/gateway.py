"""Use cases of the Dinstar gateway API that the generic services do not cover (issue #6).

Queries by user_id/number/port, task ids, incoming SMS with gateway-local numbers and a
read flag, USSD replies, the push target and the Digest nonce secret. Kept apart from the
generic services so the other dialects never see gateway concepts.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.services.lines import LineService
from simgate.services.messaging import MessagingService
from simgate.store import Store
from simgate.store import dinstar as repo

PUSH_DOC = "dinstar.push"
AUTH_DOC = "dinstar.auth"
TASK_BLOCK = 100
TASK_COUNTER = "dinstar_task"


class GatewayService:
    def __init__(
        self, *, store: Store, clock: Clock, messaging: MessagingService, lines: LineService
    ) -> None:
        self._store = store
        self._clock = clock
        self._messaging = messaging
        self._lines = lines
        self._task_next = 0
        self._task_end = 0
        self._task_lock = asyncio.Lock()
        self._queued: dict[tuple[str, ...], tuple[int, int]] = {}

    # ---- tasks (send_sms task_id, stop_sms) --------------------------------------------
    async def new_task_id(self) -> int:
        """A task id unique across processes: blocks of the shared counter, starting at 1."""
        async with self._task_lock:
            if self._task_next >= self._task_end:
                start = await self._store.db.write(
                    functools.partial(
                        self._store.accounts.reserve_block, name=TASK_COUNTER, size=TASK_BLOCK
                    )
                )
                self._task_next, self._task_end = start, start + TASK_BLOCK
            value = self._task_next
            self._task_next += 1
        return value + 1

    async def stop_task(self, *, account_id: int, task_id: int) -> int | None:
        """Stop what is still queued; None when the task is unknown, else how many stopped."""

        async def job(conn: AsyncConnection) -> int | None:
            ids = await repo.task_messages(conn, account_id=account_id, task_id=task_id)
            if not ids:
                return None
            stopped = await self._messaging.cancel_in(conn, ids=ids, now_ms=self._clock.now_ms())
            return len(stopped)

        self._queued.clear()
        return await self._store.db.write(job)

    # ---- queries -----------------------------------------------------------------------
    async def messages(self, **filters: Any) -> list[MessageRecord]:
        async with self._store.db.read() as conn:
            return await repo.find_messages(conn, **filters)

    async def queued(self, lines: Sequence[str], *, max_age_ms: int = 0, added: int = 0) -> int:
        """Messages waiting on ``lines``; a count up to ``max_age_ms`` old may be reused.

        send_sms reports ``sms_in_queue`` on every request (spec §2.2); counting a deep queue
        each time would cost more than the send itself, so it reuses a count at most 500 ms
        old plus what this process queued since (``added``).
        """
        key = tuple(lines)
        now = self._clock.now_ms()
        hit = self._queued.get(key)
        if hit is not None and max_age_ms and now - hit[1] <= max_age_ms:
            self._queued[key] = (hit[0] + added, hit[1])
            return hit[0] + added
        async with self._store.db.read() as conn:
            count = await repo.queued_count(conn, lines)
        self._queued[key] = (count, now)
        return count

    async def incoming(
        self,
        *,
        account_id: int,
        after_seq: int,
        read: bool | None,
        mark_read: bool,
        ports: Sequence[tuple[str, int]] | None,
        limit: int,
    ) -> tuple[list[tuple[int, InboundRecord]], int, int]:
        """(seq, record) pairs after ``after_seq``, plus the read and unread counts after."""

        async def job(
            conn: AsyncConnection,
        ) -> tuple[list[tuple[int, InboundRecord]], int, int]:
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
                await self._store.inbound.mark_read(conn, [r.id for _, r in rows if not r.read])
            n_read, n_unread = await repo.read_counts(conn, account_id=account_id)
            return rows, n_read, n_unread

        return await self._store.db.write(job)

    # ---- USSD ----------------------------------------------------------------------------
    async def record_ussd(self, *, line: str, port: int, text: str, announce: bool) -> None:
        """Keep the port's latest reply; ``announce`` a real answer (the ``ussd`` push)."""
        now = self._clock.now_ms()

        async def job(conn: AsyncConnection) -> None:
            await repo.put_ussd(conn, line=line, port=port, text=text, now_ms=now)
            if announce:
                await self._lines.ussd_replied(conn, line=line, port=port, text=text, now_ms=now)

        await self._store.db.write(job)

    async def ussd_replies(self, ports: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        async with self._store.db.read() as conn:
            return await repo.get_ussd(conn, ports)

    # ---- documents: push target, nonce secret ------------------------------------------
    async def push_config(self) -> dict[str, Any] | None:
        async with self._store.db.read() as conn:
            return await self._store.accounts.get_doc(conn, PUSH_DOC)

    async def set_push_config(self, url: str, types: Sequence[str]) -> None:
        doc = {"url": url, "types": list(types)}
        await self._store.db.write(
            functools.partial(self._store.accounts.put_doc, key=PUSH_DOC, value=doc)
        )

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
