"""Ownership of lines that only one worker may drive (a modem port, an SMPP bind budget)."""

from __future__ import annotations

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.tables import line_owners


async def claim(
    conn: AsyncConnection, *, line: str, owner: str, now_ms: int, until_ms: int
) -> bool:
    """Take or renew the lease on ``line``; False while another live owner holds it."""
    result = await conn.execute(
        update(line_owners)
        .where(
            line_owners.c.line == line,
            or_(line_owners.c.owner == owner, line_owners.c.lease_until_ms < now_ms),
        )
        .values(owner=owner, lease_until_ms=until_ms)
    )
    if result.rowcount:
        return True
    exists = (
        await conn.execute(select(line_owners.c.line).where(line_owners.c.line == line))
    ).first()
    if exists:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(line_owners).values(line=line, owner=owner, lease_until_ms=until_ms)
            )
    except IntegrityError:
        return False
    return True


async def release(conn: AsyncConnection, *, line: str, owner: str) -> None:
    await conn.execute(
        delete(line_owners).where(line_owners.c.line == line, line_owners.c.owner == owner)
    )


async def owners(conn: AsyncConnection) -> dict[str, tuple[str, int]]:
    rows = await conn.execute(select(line_owners))
    return {r.line: (r.owner, r.lease_until_ms) for r in rows}
