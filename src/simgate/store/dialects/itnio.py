"""Store work of the itniotech dialect: replay records (spec §7) and the getSentRcd page.

The page query reads only the columns getSentRcd renders: building full MessageRecords for
50 000 rows costs more than the query itself (bench/itnio_query.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import State
from simgate.domain.records import SentRow
from simgate.store.tables import itnio_replays as t
from simgate.store.tables import messages as m

PENDING = ""  # returned by claim() when another request holds the claim without a response

# The column recording when a message reached each final-or-sent state.
_REACHED: dict[State, ColumnElement[int]] = {
    State.SENT: m.c.sent_ms,
    State.DELIVERED: m.c.delivered_ms,
    State.FAILED: m.c.failed_ms,
    State.EXPIRED: m.c.expired_ms,
    State.REJECTED: m.c.rejected_ms,
}
_STATES = {int(s): s for s in State}


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


async def sent_page(
    conn: AsyncConnection,
    *,
    app_id: int,
    id_from: int,
    id_to: int,
    states: Sequence[State],
    offset: int,
    limit: int,
) -> list[SentRow]:
    """One page of an app's messages in an id (= time) range, via the (app_id, id) index."""
    reached = func.coalesce(
        case({int(s): col for s, col in _REACHED.items()}, value=m.c.state), m.c.sent_ms
    )
    q = (
        select(m.c.id, m.c.recipient, m.c.state, reached)
        .where(
            m.c.app_id == app_id,
            m.c.id >= id_from,
            m.c.id <= id_to,
            or_(*(m.c.state == int(s) for s in states)),
        )
        .order_by(m.c.id)
        .offset(offset)
        .limit(limit)
    )
    states_of = _STATES
    return [
        SentRow(row[0], row[1], states_of[row[2]], row[3])
        for row in (await conn.execute(q)).fetchall()
    ]
