"""Store work of the itniotech dialect: replay records (spec §7) and the getSentRcd page.

The page query reads only the columns getSentRcd renders, as plain tuples: building full
MessageRecords for 50 000 rows costs more than the query itself (bench/itnio_query.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.tables import itnio_replays as t
from simgate.store.tables import messages as m

PENDING = ""  # returned by claim() when another request holds the claim without a response


class ReplayRepo:
    async def claim(
        self, conn: AsyncConnection, *, fingerprint: str, expires_ms: int, now_ms: int
    ) -> str | None:
        """None when this caller now owns the fingerprint; else the stored response
        (``PENDING`` while the owner is still running). One INSERT .. ON CONFLICT DO NOTHING,
        so concurrent claimers in other processes are serialised by the primary key."""
        make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        result = await conn.execute(
            make(t)
            .values(
                fingerprint=fingerprint, expires_ms=expires_ms, response=None, created_ms=now_ms
            )
            .on_conflict_do_nothing(index_elements=["fingerprint"])
        )
        if result.rowcount == 1:
            return None
        return await self.lookup(conn, fingerprint)

    async def lookup(self, conn: AsyncConnection, fingerprint: str) -> str | None:
        row = (
            await conn.execute(select(t.c.response).where(t.c.fingerprint == fingerprint))
        ).first()
        if row is None:
            return None
        return PENDING if row.response is None else str(row.response)

    async def complete(self, conn: AsyncConnection, *, fingerprint: str, response: str) -> None:
        await conn.execute(
            update(t).where(t.c.fingerprint == fingerprint).values(response=response)
        )

    async def release(self, conn: AsyncConnection, *, fingerprint: str) -> None:
        await conn.execute(delete(t).where(t.c.fingerprint == fingerprint))

    async def purge(self, conn: AsyncConnection, *, now_ms: int) -> int:
        result = await conn.execute(delete(t).where(t.c.expires_ms < now_ms))
        return int(result.rowcount or 0)


# (id, recipient, state, sent_ms, delivered_ms, failed_ms, expired_ms, rejected_ms)
SentRow = tuple[int, str, int, int | None, int | None, int | None, int | None, int | None]


async def sent_page(
    conn: AsyncConnection,
    *,
    app_id: int,
    id_from: int,
    id_to: int,
    states: Sequence[int],
    offset: int,
    limit: int,
) -> list[SentRow]:
    """One page of an app's messages in an id (= time) range, via the (app_id, id) index."""
    q = (
        select(
            m.c.id,
            m.c.recipient,
            m.c.state,
            m.c.sent_ms,
            m.c.delivered_ms,
            m.c.failed_ms,
            m.c.expired_ms,
            m.c.rejected_ms,
        )
        .where(
            m.c.app_id == app_id,
            m.c.id >= id_from,
            m.c.id <= id_to,
            or_(*(m.c.state == s for s in states)),
        )
        .order_by(m.c.id)
        .offset(offset)
        .limit(limit)
    )
    # Rows index like tuples; copying 50 000 of them into tuples costs more than it helps.
    rows: list[Any] = list((await conn.execute(q)).fetchall())
    return rows
