"""Incoming SMS in parts while they are reassembled (``reassembly``, ``reassembly_parts``).

Row operations only: when a message is complete, what a part sent again is, and when waiting
ends are the inbound service's decisions (:mod:`simgate.services.inbound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import leases
from simgate.store.sqltext import chunks
from simgate.store.tables import reassembly, reassembly_parts

__all__ = ["Group", "GroupKey", "ReassemblyRepo", "StoredPart"]


class GroupKey(NamedTuple):
    """What the parts of one message share (TS 23.040 §9.2.3.24.1: reference and count)."""

    line: str
    port: int
    sender: str
    recipient: str
    ref: int
    total: int


class Group(NamedTuple):
    """A message being reassembled (done: stored, kept to know its parts if sent again)."""

    id: int
    key: GroupKey
    smsc: str
    started_ms: int
    done_ms: int | None


class StoredPart(NamedTuple):
    seq: int
    data_coding: int
    data: bytes
    received_ms: int


def _group(row: Any) -> Group:
    key = GroupKey(row.line, row.port, row.sender, row.recipient, row.ref, row.total)
    return Group(row.id, key, row.smsc, row.started_ms, row.done_ms)


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


class ReassemblyRepo:
    async def group(self, conn: AsyncConnection, key: GroupKey) -> Group | None:
        """The group of ``key``, locked for this transaction on PostgreSQL: the parts of one
        message arriving on two workers at once are counted one after the other."""
        q = select(reassembly).where(
            reassembly.c.line == key.line,
            reassembly.c.port == key.port,
            reassembly.c.sender == key.sender,
            reassembly.c.recipient == key.recipient,
            reassembly.c.ref == key.ref,
            reassembly.c.total == key.total,
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = (await conn.execute(q)).first()
        return _group(row) if row is not None else None

    async def open(
        self, conn: AsyncConnection, key: GroupKey, *, smsc: str, started_ms: int
    ) -> Group:
        """The group of ``key``, made now unless another worker just made it."""
        await conn.execute(
            _insert(conn)(reassembly)
            .values(**key._asdict(), smsc=smsc, started_ms=started_ms)
            .on_conflict_do_nothing(index_elements=list(GroupKey._fields))
        )
        group = await self.group(conn, key)
        assert group is not None
        return group

    async def pending(self, conn: AsyncConnection, line: str) -> int:
        """How many messages of ``line`` wait for parts."""
        q = (
            select(func.count())
            .select_from(reassembly)
            .where(reassembly.c.line == line, reassembly.c.done_ms.is_(None))
        )
        return int((await conn.execute(q)).scalar_one())

    async def add_part(self, conn: AsyncConnection, group_id: int, part: StoredPart) -> None:
        """Keep ``part``; a part already kept stays as it was (the first copy wins)."""
        await conn.execute(
            _insert(conn)(reassembly_parts)
            .values(group_id=group_id, **part._asdict())
            .on_conflict_do_nothing(index_elements=["group_id", "seq"])
        )

    async def part(self, conn: AsyncConnection, group_id: int, seq: int) -> StoredPart | None:
        row = (
            await conn.execute(
                select(*_PART_COLUMNS).where(
                    reassembly_parts.c.group_id == group_id, reassembly_parts.c.seq == seq
                )
            )
        ).first()
        return StoredPart(*row) if row is not None else None

    async def count(self, conn: AsyncConnection, group_id: int) -> int:
        q = (
            select(func.count())
            .select_from(reassembly_parts)
            .where(reassembly_parts.c.group_id == group_id)
        )
        return int((await conn.execute(q)).scalar_one())

    async def parts(
        self, conn: AsyncConnection, group_ids: Sequence[int]
    ) -> dict[int, list[StoredPart]]:
        """The parts of each group, in sequence order."""
        out: dict[int, list[StoredPart]] = {g: [] for g in group_ids}
        for chunk in chunks(list(group_ids), 500):
            rows = await conn.execute(
                select(reassembly_parts.c.group_id, *_PART_COLUMNS)
                .where(reassembly_parts.c.group_id.in_(chunk))
                .order_by(reassembly_parts.c.group_id, reassembly_parts.c.seq)
            )
            for gid, *rest in rows:
                out[gid].append(StoredPart(*rest))
        return out

    async def finish(
        self, conn: AsyncConnection, group_ids: Sequence[int], *, done_ms: int
    ) -> None:
        for chunk in chunks(list(group_ids), 500):
            await conn.execute(
                update(reassembly).where(reassembly.c.id.in_(chunk)).values(done_ms=done_ms)
            )

    async def drop(self, conn: AsyncConnection, group_ids: Sequence[int]) -> None:
        for chunk in chunks(list(group_ids), 500):
            await conn.execute(
                delete(reassembly_parts).where(reassembly_parts.c.group_id.in_(chunk))
            )
            await conn.execute(delete(reassembly).where(reassembly.c.id.in_(chunk)))

    async def due(
        self,
        conn: AsyncConnection,
        line: str,
        *,
        started_before_ms: int,
        lock: bool = True,
        limit: int = 500,
    ) -> list[Group]:
        """Groups of ``line`` still waiting, begun before ``started_before_ms``, oldest first;
        with ``lock``, on PostgreSQL, locked for this transaction, skipping those another
        worker holds."""
        q = (
            select(reassembly)
            .where(
                reassembly.c.line == line,
                reassembly.c.done_ms.is_(None),
                reassembly.c.started_ms < started_before_ms,
            )
            .order_by(reassembly.c.started_ms)
            .limit(limit)
        )
        rows = await conn.execute(leases.due_locked(conn, q, of=reassembly) if lock else q)
        return [_group(r) for r in rows]

    async def stale(self, conn: AsyncConnection, line: str, *, done_before_ms: int) -> bool:
        """Are there groups of ``line`` stored before ``done_before_ms`` (for :meth:`purge`)?"""
        q = select(reassembly.c.id).where(
            reassembly.c.line == line, reassembly.c.done_ms < done_before_ms
        )
        return (await conn.execute(q.limit(1))).first() is not None

    async def purge(self, conn: AsyncConnection, line: str, *, done_before_ms: int) -> int:
        """Forget the groups of ``line`` stored before ``done_before_ms``; how many."""
        old = select(reassembly.c.id).where(
            reassembly.c.line == line, reassembly.c.done_ms < done_before_ms
        )
        await conn.execute(delete(reassembly_parts).where(reassembly_parts.c.group_id.in_(old)))
        result = await conn.execute(
            delete(reassembly).where(
                reassembly.c.line == line, reassembly.c.done_ms < done_before_ms
            )
        )
        return int(result.rowcount or 0)


_PART_COLUMNS = (
    reassembly_parts.c.seq,
    reassembly_parts.c.data_coding,
    reassembly_parts.c.data,
    reassembly_parts.c.received_ms,
)
