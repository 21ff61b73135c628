"""Incoming SMS (mobile originated)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.records import InboundRecord
from simgate.store.tables import inbound


def _record(row: Any) -> InboundRecord:
    d = dict(row._mapping)
    d["read"] = bool(d["read"])
    return InboundRecord(**d)


class InboundRepo:
    async def insert(self, conn: AsyncConnection, items: Sequence[InboundRecord]) -> None:
        if not items:
            return
        await conn.execute(
            insert(inbound),
            [{k: getattr(i, k) for k in InboundRecord.__slots__} for i in items],
        )

    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[InboundRecord]:
        rows = await conn.execute(
            select(inbound).where(inbound.c.id.in_(list(ids))).order_by(inbound.c.id)
        )
        return [_record(r) for r in rows]

    async def page(
        self,
        conn: AsyncConnection,
        *,
        account_id: int | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        received_from_ms: int | None = None,
        received_to_ms: int | None = None,
        read: bool | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> list[InboundRecord]:
        q = select(inbound)
        if account_id is not None:
            q = q.where(inbound.c.account_id == account_id)
        if id_from is not None:
            q = q.where(inbound.c.id >= id_from)
        if id_to is not None:
            q = q.where(inbound.c.id <= id_to)
        if received_from_ms is not None:
            q = q.where(inbound.c.received_ms >= received_from_ms)
        if received_to_ms is not None:
            q = q.where(inbound.c.received_ms <= received_to_ms)
        if read is not None:
            q = q.where(inbound.c.read == read)
        q = (
            q.order_by(inbound.c.id.desc() if newest_first else inbound.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_record(r) for r in await conn.execute(q)]

    async def count(
        self,
        conn: AsyncConnection,
        *,
        account_id: int | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
    ) -> int:
        q = select(func.count()).select_from(inbound)
        if account_id is not None:
            q = q.where(inbound.c.account_id == account_id)
        if id_from is not None:
            q = q.where(inbound.c.id >= id_from)
        if id_to is not None:
            q = q.where(inbound.c.id <= id_to)
        return int((await conn.execute(q)).scalar_one())

    async def mark_read(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
        if ids:
            await conn.execute(update(inbound).where(inbound.c.id.in_(list(ids))).values(read=True))
