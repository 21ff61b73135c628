"""Replay records of the itniotech dialect (spec §7): claim, complete, look up, purge."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.tables import itnio_replays as t

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
