"""SQL for the Dinstar gateway dialect: result queries, incoming ids, USSD replies, tasks.

Ports are ``(line, port index)`` pairs, the key simgate stores messages and inbound rows by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.store.dialects.dinstar_tables import dinstar_inbound, dinstar_ussd
from simgate.store.inbound import _record as _inbound_record
from simgate.store.messages import _record as _message_record
from simgate.store.tables import inbound, messages

DIALECT = "dinstar"
# Inbound rows committed out of id order (two processes) still get a number: the backfill
# looks this far behind the newest numbered row (ids are time-ordered, domain/ids.py).
BACKFILL_WINDOW_MS = 10 * 60 * 1000

LinePort = tuple[str, int]  # (line name, the line's port index)


@dataclass(frozen=True, slots=True)
class NumberedInbound:
    """An incoming SMS with its gateway-local ``incoming_sms_id`` (spec §2.5)."""

    seq: int
    record: InboundRecord


@dataclass(frozen=True, slots=True)
class ReadCounts:
    read: int
    unread: int


async def find_messages(
    conn: AsyncConnection,
    *,
    account_id: int,
    user_refs: Sequence[str] | None = None,
    numbers: Sequence[str] | None = None,
    ports: Sequence[LinePort] | None = None,
    id_from: int | None = None,
    id_to: int | None = None,
    reported_only: bool = False,
    reported_from_ms: int | None = None,
    reported_to_ms: int | None = None,
    limit: int = 1000,
) -> list[MessageRecord]:
    """Messages sent through this dialect, newest first (spec §7: at most ``limit``)."""
    c = messages.c
    q = select(messages).where(c.account_id == account_id, c.dialect == DIALECT)
    if user_refs is not None:
        q = q.where(c.client_ref.in_(list(user_refs)))
    if numbers is not None:
        q = q.where(c.recipient.in_(list(numbers)))
    if ports is not None:
        q = q.where(or_(*(and_(c.line == line, c.port == port) for line, port in ports)))
    if id_from is not None:
        q = q.where(c.id >= id_from)
    if id_to is not None:
        q = q.where(c.id <= id_to)
    if reported_only:
        q = q.where(
            c.state.in_([int(State.DELIVERED), int(State.FAILED)]),
            c.parts_reported >= c.parts,
            c.parts_reported > 0,
        )
        done = func.coalesce(c.delivered_ms, c.failed_ms)
        if reported_from_ms is not None:
            q = q.where(done >= reported_from_ms)
        if reported_to_ms is not None:
            q = q.where(done <= reported_to_ms)
    q = q.order_by(c.id.desc()).limit(limit)
    return [_message_record(r) for r in await conn.execute(q)]


async def queued_count(
    conn: AsyncConnection, lines: Sequence[str], *, account_id: int | None = None
) -> int:
    q = (
        select(func.count())
        .select_from(messages)
        .where(messages.c.state == int(State.QUEUED), messages.c.line.in_(list(lines)))
    )
    if account_id is not None:
        q = q.where(messages.c.account_id == account_id)
    return int((await conn.execute(q)).scalar_one())


async def task_messages(conn: AsyncConnection, *, account_id: int, task_id: int) -> list[int]:
    rows = await conn.execute(
        select(messages.c.id).where(
            messages.c.task_id == task_id,
            messages.c.account_id == account_id,
            messages.c.dialect == DIALECT,
        )
    )
    return [r.id for r in rows]


# ---- incoming_sms_id ---------------------------------------------------------------------
async def number_inbound(conn: AsyncConnection, inbound_ids: Sequence[int]) -> dict[int, int]:
    """The ``incoming_sms_id`` of each inbound row, handing out new ones in id order."""
    found: dict[int, int] = {}
    wanted = sorted(set(inbound_ids))
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = await conn.execute(
            select(dinstar_inbound.c.inbound_id, dinstar_inbound.c.seq).where(
                dinstar_inbound.c.inbound_id.in_(chunk)
            )
        )
        found.update({r.inbound_id: r.seq for r in rows})
    missing = [iid for iid in wanted if iid not in found]
    if not missing:
        return found
    if conn.dialect.name == "postgresql":
        # Clients poll with a high-water mark, so numbers must become visible in the order
        # they are handed out: one numbering transaction at a time (readers are not blocked).
        await conn.execute(text("LOCK TABLE dinstar_inbound IN SHARE ROW EXCLUSIVE MODE"))
        stmt: Any = pg_insert(dinstar_inbound).on_conflict_do_nothing(index_elements=["inbound_id"])
    else:  # SQLite: one writer at a time already
        stmt = sqlite_insert(dinstar_inbound).on_conflict_do_nothing(index_elements=["inbound_id"])
    for iid in missing:  # one by one: the autoincrement order is the order clients see
        await conn.execute(stmt.values(inbound_id=iid))
    for i in range(0, len(missing), 500):
        rows = await conn.execute(
            select(dinstar_inbound.c.inbound_id, dinstar_inbound.c.seq).where(
                dinstar_inbound.c.inbound_id.in_(missing[i : i + 500])
            )
        )
        found.update({r.inbound_id: r.seq for r in rows})
    return found


async def backfill_inbound(conn: AsyncConnection) -> None:
    """Number inbound rows stored without the bus numbering them (or before 0004)."""
    newest = (await conn.execute(select(func.max(dinstar_inbound.c.inbound_id)))).scalar()
    q = select(inbound.c.id).outerjoin(
        dinstar_inbound, dinstar_inbound.c.inbound_id == inbound.c.id
    )
    q = q.where(dinstar_inbound.c.seq.is_(None))
    if newest is not None:
        q = q.where(inbound.c.id >= ids.lower_bound(ids.issued_at_ms(newest) - BACKFILL_WINDOW_MS))
    missing = [r.id for r in await conn.execute(q.order_by(inbound.c.id))]
    if missing:
        await number_inbound(conn, missing)


async def incoming(
    conn: AsyncConnection,
    *,
    account_id: int,
    after_seq: int,
    read: bool | None,
    ports: Sequence[LinePort] | None,
    limit: int,
) -> list[NumberedInbound]:
    q = (
        select(dinstar_inbound.c.seq, inbound)
        .join(inbound, inbound.c.id == dinstar_inbound.c.inbound_id)
        .where(inbound.c.account_id == account_id, dinstar_inbound.c.seq > after_seq)
    )
    if read is not None:
        q = q.where(inbound.c.read == read)
    if ports is not None:
        q = q.where(or_(*(and_(inbound.c.line == ln, inbound.c.port == p) for ln, p in ports)))
    q = q.order_by(dinstar_inbound.c.seq).limit(limit)
    out: list[NumberedInbound] = []
    for row in await conn.execute(q):
        data: dict[str, Any] = dict(row._mapping)
        seq = data.pop("seq")
        out.append(NumberedInbound(int(seq), _inbound_record(_Row(data))))
    return out


async def read_counts(conn: AsyncConnection, *, account_id: int) -> ReadCounts:
    rows = await conn.execute(
        select(inbound.c.read, func.count())
        .where(inbound.c.account_id == account_id)
        .group_by(inbound.c.read)
    )
    counts = {bool(r[0]): int(r[1]) for r in rows}
    return ReadCounts(read=counts.get(True, 0), unread=counts.get(False, 0))


class _Row:
    """Adapts a plain mapping to the ``row._mapping`` shape the store's converters read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._mapping = data


# ---- USSD replies ------------------------------------------------------------------------
async def put_ussd(
    conn: AsyncConnection,
    *,
    line: str,
    port: int,
    text: str,
    now_ms: int,
    account_id: int | None = None,
) -> None:
    values = {"text": text, "updated_ms": now_ms, "account_id": account_id}
    result = await conn.execute(
        update(dinstar_ussd)
        .where(dinstar_ussd.c.line == line, dinstar_ussd.c.port == port)
        .values(**values)
    )
    if not result.rowcount:
        await conn.execute(insert(dinstar_ussd).values(line=line, port=port, **values))


async def get_ussd(
    conn: AsyncConnection, ports: Sequence[LinePort], *, account_id: int | None = None
) -> dict[LinePort, str]:
    """The latest reply per port; with ``account_id``, only replies that account asked for."""
    if not ports:
        return {}
    c = dinstar_ussd.c
    q = select(c.line, c.port, c.text).where(
        or_(*(and_(c.line == ln, c.port == p) for ln, p in ports))
    )
    if account_id is not None:
        q = q.where(c.account_id == account_id)
    rows = await conn.execute(q)
    return {(r.line, r.port): r.text for r in rows}
