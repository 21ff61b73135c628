"""The OpenVox dialect's storage: outbox and inbox pages with a total, and the inbox index.

``/smsoutbox/get`` and ``/smsinbox/get`` (spec §3.3) page an account's messages or incoming
SMS, filtered by number and a time window, and count them for ``total``/``pages``. Time
windows arrive as id ranges (ids are time-ordered, domain/ids.py), so every filter is a key
range on an index: ``(account_id, id)`` for plain pages, ``(account_id, recipient, id)``
(``ix_messages_recipient``, migration 0004_dinstar) or ``(account_id, sender, id)``
(``ix_inbound_sender`` below, migration 0005_openvox) with a number.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Index, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import State
from simgate.domain.records import InboundRecord
from simgate.store.database import Database
from simgate.store.tables import inbound, messages

T = TypeVar("T")

_STATE_OF = {int(s): s for s in State}

# Part of ``metadata`` once this module is imported (the schema assembly imports it).
ix_inbound_sender = Index("ix_inbound_sender", inbound.c.account_id, inbound.c.sender, inbound.c.id)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page, newest first, and how many rows match in all."""

    total: int
    records: list[T]


def _inbound(row: Any) -> InboundRecord:
    data = dict(row._mapping)
    data["read"] = bool(data["read"])
    return InboundRecord(**{k: data[k] for k in InboundRecord.__slots__})


async def _count_and_page(
    conn: AsyncConnection,
    *,
    where: list[ColumnElement[bool]],
    query: Select[Any],
    offset: int,
    limit: int,
    table: Any,
) -> Page[Any]:
    total = int(
        (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    )
    if offset >= total:
        return Page(total, [])
    rows = await conn.execute(
        query.where(*where).order_by(table.c.id.desc()).offset(offset).limit(limit)
    )
    return Page(total, list(rows))


class OutboxRow(NamedTuple):
    """A ``/smsoutbox/get`` row: the columns it shows, named as on ``MessageRecord``. A
    tuple from the driver's row, not a 35-field record built through a dict per row
    (issue 15 "reads")."""

    id: int
    port: int | None
    line: str | None
    recipient: str
    accepted_ms: int
    text: str
    state: State


@functools.cache
def _outbox_sql(states: int, recipients: int, id_from: bool, id_to: bool) -> tuple[str, str]:
    """The count and the page of ``/smsoutbox/get`` for one shape of filter, built once."""
    where = f"account_id = ? AND state IN ({', '.join('?' * states)})"
    if recipients:
        where += f" AND recipient IN ({', '.join('?' * recipients)})"
    if id_from:
        where += " AND id >= ?"
    if id_to:
        where += " AND id <= ?"
    columns = ", ".join(OutboxRow._fields)
    return (
        f"SELECT count(*) FROM {messages.name} WHERE {where}",
        f"SELECT {columns} FROM {messages.name} WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
    )


async def outbox_page(
    db: Database,
    *,
    account_id: int,
    states: Sequence[State],
    recipients: Sequence[str] = (),
    id_from: int | None = None,
    id_to: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[OutboxRow]:
    """The count and the page in one read (store/database.py ``fetch``: one thread call on
    SQLite, one snapshot). The page is read even past the total (then empty): one call
    instead of a round trip per statement; a page past the end is a client's mistake."""
    count_sql, page_sql = _outbox_sql(
        len(states), len(recipients), id_from is not None, id_to is not None
    )
    params: list[Any] = [account_id, *(int(s) for s in states), *recipients]
    params += [b for b in (id_from, id_to) if b is not None]
    counted, rows = await db.fetch([(count_sql, params), (page_sql, [*params, limit, offset])])
    states_of = _STATE_OF
    return Page(
        int(counted[0][0]),
        [
            OutboxRow(mid, port, line, recipient, accepted_ms, text, states_of[state])
            for mid, port, line, recipient, accepted_ms, text, state in rows
        ],
    )


async def inbox_page(
    conn: AsyncConnection,
    *,
    account_id: int,
    senders: Sequence[str] = (),
    id_from: int | None = None,
    id_to: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[InboundRecord]:
    c = inbound.c
    where: list[ColumnElement[bool]] = [c.account_id == account_id]
    if senders:
        where.append(c.sender.in_(list(senders)))
    if id_from is not None:
        where.append(c.id >= id_from)
    if id_to is not None:
        where.append(c.id <= id_to)
    page = await _count_and_page(
        conn, where=where, query=select(inbound), offset=offset, limit=limit, table=inbound
    )
    return Page(page.total, [_inbound(r) for r in page.records])
