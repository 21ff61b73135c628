"""The per-account deliver_sm outbox of the SMPP server (issue 18): rows until answered."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.smpp_tables import smpp_outbox
from simgate.store.sqltext import chunks


@dataclass(frozen=True, slots=True)
class NewDeliver:
    account_id: int
    kind: str  # receipt | inbound
    pdu: bytes
    expires_ms: int


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    account_id: int
    kind: str
    pdu: bytes
    expires_ms: int


class SmppOutboxRepo:
    async def insert(
        self, conn: AsyncConnection, items: Sequence[NewDeliver], *, now_ms: int
    ) -> None:
        if not items:
            return
        await conn.execute(
            insert(smpp_outbox),
            [
                {
                    "account_id": i.account_id,
                    "kind": i.kind,
                    "pdu": i.pdu,
                    "created_ms": now_ms,
                    "expires_ms": i.expires_ms,
                }
                for i in items
            ],
        )

    async def due(
        self,
        conn: AsyncConnection,
        *,
        account_id: int,
        after_id: int,
        now_ms: int,
        limit: int,
    ) -> list[OutboxRow]:
        """Unexpired rows of the account after ``after_id``, oldest first."""
        c = smpp_outbox.c
        rows = await conn.execute(
            select(c.id, c.account_id, c.kind, c.pdu, c.expires_ms)
            .where(c.account_id == account_id, c.id > after_id, c.expires_ms > now_ms)
            .order_by(c.id)
            .limit(limit)
        )
        return [OutboxRow(int(r[0]), int(r[1]), str(r[2]), bytes(r[3]), int(r[4])) for r in rows]

    async def remove(self, conn: AsyncConnection, ids: Collection[int]) -> None:
        for chunk in chunks(sorted(ids), 500):
            await conn.execute(delete(smpp_outbox).where(smpp_outbox.c.id.in_(chunk)))

    async def purge_expired(self, conn: AsyncConnection, *, now_ms: int) -> int:
        result = await conn.execute(delete(smpp_outbox).where(smpp_outbox.c.expires_ms <= now_ms))
        return int(result.rowcount or 0)

    async def pending_by_account(self, conn: AsyncConnection) -> dict[int, int]:
        rows = await conn.execute(
            select(smpp_outbox.c.account_id, func.count()).group_by(smpp_outbox.c.account_id)
        )
        return {int(r[0]): int(r[1]) for r in rows}
