"""Read queries of the web console (issue 19): message search, traffic per minute, line rates,
calls by outcome, pushes per endpoint.

Message and call ids start with their UTC second (domain/ids.py), so every time window here
is a primary-key range: a query over the last hour reads the last hour's rows, whatever the
table's size. The number searches use the dialects' indexes ``(account_id, recipient, id)``
(migration 0004_dinstar) and ``(account_id, sender, id)`` (0005_openvox): an operator's
search without an account names every account (``account_id IN (...)``), one index range
per account, instead of a scan of every row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.calls import CallRecord
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.store.call_records import _RECORD_COLUMNS as _CALL_COLUMNS
from simgate.store.call_records import _record_of as _call_of
from simgate.store.messages import _RECORD_COLUMNS, _record_of
from simgate.store.push_tables import DEAD, PENDING, STATE_NAMES, pushes
from simgate.store.tables import inbound, message_parts, messages
from simgate.store.voice_tables import calls


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What the message search narrows by; None = any. Ids bound the time window."""

    account_id: int | None = None
    # With a number and no account: every account's id, so the number index is usable.
    account_ids: tuple[int, ...] = ()
    app_id: int | None = None
    number: str | None = None
    message_id: int | None = None
    state: State | None = None
    line: str | None = None
    id_from: int | None = None
    id_to: int | None = None


async def search_messages(
    conn: AsyncConnection, f: MessageFilter, *, before_id: int | None, limit: int
) -> list[MessageRecord]:
    """Newest first, ids below ``before_id`` (the cursor: no OFFSET, so page 10 000 costs
    what page 1 does)."""
    m = messages.c
    q = select(*_RECORD_COLUMNS)
    conds = []
    if f.message_id is not None:
        conds.append(m.id == f.message_id)
    if f.account_id is not None:
        conds.append(m.account_id == f.account_id)
    elif f.number and f.account_ids:
        conds.append(m.account_id.in_(f.account_ids))
    if f.app_id is not None:
        conds.append(m.app_id == f.app_id)
    if f.number:
        conds.append(m.recipient == f.number)
    if f.state is not None:
        conds.append(m.state == int(f.state))
    if f.line:
        conds.append(m.line == f.line)
    if f.id_from is not None:
        conds.append(m.id >= f.id_from)
    upper = [v for v in (f.id_to, None if before_id is None else before_id - 1) if v is not None]
    if upper:
        conds.append(m.id <= min(upper))
    if conds:
        q = q.where(and_(*conds))
    q = q.order_by(m.id.desc()).limit(limit)
    return [_record_of(r) for r in await conn.execute(q)]


async def parts_of(conn: AsyncConnection, message_id: int) -> list[dict[str, object]]:
    rows = await conn.execute(
        select(message_parts)
        .where(message_parts.c.message_id == message_id)
        .order_by(message_parts.c.seq)
    )
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True, slots=True)
class Buckets:
    """Per bucket (index = minutes since the window start): messages accepted, and of those
    how many were sent, delivered and failed so far (a cohort by minute of acceptance)."""

    accepted: list[int]
    sent: list[int]
    delivered: list[int]
    failed: list[int]


async def traffic(
    conn: AsyncConnection,
    *,
    account_id: int | None,
    id_from: int,
    start_ms: int,
    bucket_ms: int,
    buckets: int,
    id_to: int | None = None,
) -> Buckets:
    """One pass over the window's rows (a key range), grouped by bucket of ``accepted_ms``."""
    m = messages.c
    bucket = ((m.accepted_ms - start_ms) / bucket_ms).cast(messages.c.id.type)
    sent = func.sum(case((m.sent_ms.is_not(None), 1), else_=0))
    delivered = func.sum(case((m.state == int(State.DELIVERED), 1), else_=0))
    failed_states = [int(s) for s in (State.FAILED, State.REJECTED, State.EXPIRED)]
    failed = func.sum(case((m.state.in_(failed_states), 1), else_=0))
    q = select(bucket, func.count(), sent, delivered, failed).where(m.id >= id_from)
    if id_to is not None:
        q = q.where(m.id <= id_to)
    if account_id is not None:
        q = q.where(m.account_id == account_id)
    q = q.group_by(bucket)
    out = Buckets([0] * buckets, [0] * buckets, [0] * buckets, [0] * buckets)
    for b, n, s, d, x in await conn.execute(q):
        if b is None or not 0 <= int(b) < buckets:
            continue
        i = int(b)
        out.accepted[i], out.sent[i], out.delivered[i], out.failed[i] = (
            int(n),
            int(s or 0),
            int(d or 0),
            int(x or 0),
        )
    return out


async def sent_by_line(
    conn: AsyncConnection, *, id_from: int, since_ms: tuple[int, ...], id_to: int | None = None
) -> dict[str, list[int]]:
    """Per line: messages sent at or after each of ``since_ms`` (of those with ids in
    ``id_from..id_to``)."""
    m = messages.c
    sums = [func.sum(case((m.sent_ms >= t, 1), else_=0)) for t in since_ms]
    q = select(m.line, *sums).where(m.id >= id_from, m.line.is_not(None), m.sent_ms.is_not(None))
    if id_to is not None:
        q = q.where(m.id <= id_to)
    q = q.group_by(m.line)
    return {str(row[0]): [int(v or 0) for v in row[1:]] for row in await conn.execute(q)}


async def calls_by_outcome(
    conn: AsyncConnection, *, account_id: int | None, id_from: int
) -> dict[str, int]:
    """Calls since ``id_from`` by outcome: queued, calling, or the final SIP code.

    Read by the id range alone: with statistics (ANALYZE) SQLite grouped by walking
    ``ix_calls_due`` over every call (200 ms at 1 M calls), or took an account's index over
    all its calls. ``+ 0`` makes a column no index key (the SQLite docs' "disqualifying"
    unary operator), so only the primary key's range is left: 12 ms."""
    c = calls.c
    state = (c.state + 0).label("state")
    q = select(state, c.sip_code, func.count()).where(c.id >= id_from)
    if account_id is not None:
        q = q.where(c.account_id + 0 == account_id)
    q = q.group_by(state, c.sip_code)
    out: dict[str, int] = {}
    names = {0: "queued", 1: "calling"}
    for state, code, n in await conn.execute(q):
        key = names.get(int(state)) or f"done {code if code is not None else '-'}"
        out[key] = out.get(key, 0) + int(n)
    return out


async def search_calls(
    conn: AsyncConnection,
    *,
    account_id: int | None,
    number: str | None,
    before_id: int | None,
    limit: int,
    all_accounts: tuple[int, ...] = (),
) -> list[CallRecord]:
    """Newest first. A number reads ``ix_calls_account_callee`` (migration 0014): that
    callee's calls only, one index range per account (``all_accounts`` for the operator)."""
    c = calls.c
    q = select(*_CALL_COLUMNS)
    if account_id is not None:
        q = q.where(c.account_id == account_id)
    elif number and all_accounts:
        q = q.where(c.account_id.in_(all_accounts))
    if number:
        q = q.where(c.callee == number)
    if before_id is not None:
        q = q.where(c.id < before_id)
    q = q.order_by(c.id.desc()).limit(limit)
    return [_call_of(r) for r in await conn.execute(q)]


async def get_call(conn: AsyncConnection, call_id: int) -> CallRecord | None:
    row = (await conn.execute(select(*_CALL_COLUMNS).where(calls.c.id == call_id))).first()
    return None if row is None else _call_of(row)


async def search_inbound(
    conn: AsyncConnection,
    *,
    account_id: int | None,
    all_accounts: tuple[int, ...],
    number: str | None,
    before_id: int | None,
    limit: int,
) -> list[InboundRecord]:
    i = inbound.c
    q = select(inbound)
    if account_id is not None:
        q = q.where(i.account_id == account_id)
    elif number:
        q = q.where(i.account_id.in_(all_accounts))
    if number:
        q = q.where(i.sender == number)
    if before_id is not None:
        q = q.where(i.id < before_id)
    q = q.order_by(i.id.desc()).limit(limit)
    return [InboundRecord(**dict(r._mapping)) for r in await conn.execute(q)]


async def pushes_by_endpoint(
    conn: AsyncConnection, *, account_id: int | None = None
) -> dict[str, dict[str, int]]:
    """Per endpoint, pushes per state name (pending, delivered, failed, dead); only
    ``account_id``'s pushes when given."""
    q = select(pushes.c.endpoint, pushes.c.state, func.count())
    if account_id is not None:
        q = q.where(pushes.c.account_id == account_id)
    rows = await conn.execute(q.group_by(pushes.c.endpoint, pushes.c.state))
    out: dict[str, dict[str, int]] = {}
    for endpoint, state, n in rows:
        out.setdefault(str(endpoint), {})[STATE_NAMES[int(state)]] = int(n)
    return out


async def get_inbound(conn: AsyncConnection, inbound_id: int) -> InboundRecord | None:
    row = (await conn.execute(select(inbound).where(inbound.c.id == inbound_id))).first()
    return None if row is None else InboundRecord(**dict(row._mapping))


@dataclass(frozen=True, slots=True)
class PortDay:
    """One port's day: messages sent, delivered and failed (of those accepted since the day
    began), and incoming SMS received."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    received: int = 0


async def port_day(
    conn: AsyncConnection, *, since_ms: int, id_from: int
) -> dict[str, dict[int, PortDay]]:
    """Per line and port, the day since ``since_ms``: two key-range reads (``id_from`` is
    that time's smallest id), one of messages and one of incoming SMS."""
    m = messages.c
    failed_states = [int(s) for s in (State.FAILED, State.REJECTED, State.EXPIRED)]
    sent = func.sum(case((m.sent_ms.is_not(None), 1), else_=0))
    delivered = func.sum(case((m.state == int(State.DELIVERED), 1), else_=0))
    failed = func.sum(case((m.state.in_(failed_states), 1), else_=0))
    out: dict[str, dict[int, PortDay]] = {}
    rows = await conn.execute(
        select(m.line, m.port, sent, delivered, failed)
        .where(m.id >= id_from, m.line.is_not(None), m.port.is_not(None))
        .group_by(m.line, m.port)
    )
    for line, port, n_sent, n_delivered, n_failed in rows:
        day = PortDay(int(n_sent or 0), int(n_delivered or 0), int(n_failed or 0))
        out.setdefault(str(line), {})[int(port)] = day
    i = inbound.c
    received = (
        select(i.line, i.port, func.count())
        .where(i.id >= id_from, i.received_ms >= since_ms)
        .group_by(i.line, i.port)
    )
    for line, port, n in await conn.execute(received):
        ports = out.setdefault(str(line), {})
        ports[int(port)] = replace(ports.get(int(port), PortDay()), received=int(n))
    return out


async def queue_now(conn: AsyncConnection) -> tuple[int, int | None]:
    """Queued messages and the oldest one's queue time, in one read of the queue's index."""
    m = messages.c
    row = (
        await conn.execute(
            select(func.count(), func.min(m.queued_ms)).where(m.state == int(State.QUEUED))
        )
    ).one()
    return int(row[0]), None if row[1] is None else int(row[1])


async def pushes_pending_dead(
    conn: AsyncConnection, *, account_id: int | None = None
) -> tuple[int, int]:
    """Pending and dead pushes (``account_id``'s only, when given); each count reads its
    partial index (the state as a literal, as store/pushes.py does, so the planner can
    match the index's WHERE)."""
    out = []
    for state in (PENDING, DEAD):
        q = select(func.count()).select_from(pushes)
        q = q.where(pushes.c.state == literal_column(str(state)))
        if account_id is not None:
            q = q.where(pushes.c.account_id == account_id)
        out.append(int((await conn.execute(q)).scalar_one()))
    return out[0], out[1]
