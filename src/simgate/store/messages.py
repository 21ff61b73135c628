"""Outbound messages: rows of the lease-based queue, submit results, refunds, queries.

The database is the queue (design principle 3). A message row is inserted QUEUED and
charged in the same transaction; workers claim due rows by moving them to SUBMITTING with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction is already
exclusive), and record what the line said. These are row operations: the messaging service
(:mod:`simgate.services.messaging`) reads the transition table and passes each UPDATE the
states its event may leave from, so a late or duplicate writer changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.codecs.segments import Encoding
from simgate.domain.messages import STATE_TIME_COLUMN, State
from simgate.domain.queue import IdState, Leased
from simgate.domain.records import MessageRecord, NewMessage
from simgate.store import accept_writes, driver_sql, submit_writes
from simgate.store.sqltext import chunks, marks, one_of
from simgate.store.tables import accounts, message_parts, messages

__all__ = ["RECORD_COLUMN_NAMES", "STATE_OF", "MessageRepo", "record_of"]

# Stored values to enums by lookup: calling State(...) per row cost more than the row.
STATE_OF: dict[int, State] = {int(s): s for s in State}
_ENCODING_OF: dict[int, Encoding] = {int(e): e for e in Encoding}

# The columns of a MessageRecord in field order, so a row converts positionally: building a
# dict per row (row._mapping) cost more than the query for a 500-id get.
RECORD_COLUMN_NAMES: tuple[str, ...] = tuple(MessageRecord.__slots__)
_RECORD_COLUMNS = tuple(messages.c[name] for name in RECORD_COLUMN_NAMES)
_STATE_AT = MessageRecord.__slots__.index("state")
_REPORT_AT = MessageRecord.__slots__.index("report_requested")
_ENCODING_AT = MessageRecord.__slots__.index("encoding")


def _record(row: Any) -> MessageRecord:
    """From any row holding the record's columns by name (e.g. ``select(messages)``)."""
    data = row._mapping
    return _record_of([data[name] for name in MessageRecord.__slots__])


# The record's slot setters, in field order: a frozen dataclass's __init__ sets each field
# through object.__setattr__ by name, which made building the records of a batch the largest
# part of publishing its changes (the event bus reads them back, issue 15); setting the slots
# directly gives the same object at about 0.6 of the cost.
_SLOT_SETTERS = tuple(getattr(MessageRecord, name).__set__ for name in MessageRecord.__slots__)
_new_record = functools.partial(object.__new__, MessageRecord)


def _record_of(row: Any) -> MessageRecord:
    """From a row of ``select(*_RECORD_COLUMNS)``: positional, no mapping per row."""
    values = list(row)
    values[_STATE_AT] = STATE_OF[values[_STATE_AT]]
    values[_REPORT_AT] = bool(values[_REPORT_AT])
    values[_ENCODING_AT] = _ENCODING_OF[values[_ENCODING_AT]]
    record = _new_record()
    for put, value in zip(_SLOT_SETTERS, values, strict=True):
        put(record, value)
    return record


# For the event bus's joined read (store/event_reads.py).
record_of = _record_of


@functools.cache
def _records_by_ids(dialect: Dialect, count: int) -> str:
    """``SELECT`` of the record columns for ``count`` ids, with positional parameters."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in _RECORD_COLUMNS)
    listed_marks = ", ".join(marks(dialect, count))
    return f"SELECT {names} FROM {quote(messages.name)} WHERE id IN ({listed_marks})"


# What a lease returns of each row, in Leased's order (MessageRepo.lease).
_LEASED_COLUMNS = (
    "id",
    "sender",
    "recipient",
    "text",
    "encoding",
    "parts",
    "port_hint",
    "line",
    "attempts",
    "report_requested",
    "validity_until_ms",
    "lease_seq",
)


@functools.cache
def _lease_sql(dialect: str, lines: int) -> str:
    """:meth:`MessageRepo.lease`'s statement for ``lines`` line names, made once per shape.

    Parameters: now, limit, owner, lease until, then the line names. The states are
    literals (constants of the table, and the condition of the partial index
    ``ix_messages_due`` as written). Built and compiled through SQLAlchemy Core on every
    lease, the statement cost 4-5 % of ``simgate run``'s CPU under HTTP sends (issue 15);
    as text it is the same statement store/leases.py ``lease`` built. On PostgreSQL the
    due rows are locked ``FOR UPDATE SKIP LOCKED`` in a materialised CTE (a row another
    worker is taking is skipped, and the UPDATE cannot rescan the subquery and lease more
    than ``limit``, store/leases.py); SQLite's write transaction is already exclusive."""
    queued, submitting = int(State.QUEUED), int(State.SUBMITTING)
    returning = ", ".join(_LEASED_COLUMNS)
    if dialect == "postgresql":
        names = ", ".join(f"${i}::varchar" for i in range(5, 5 + lines))
        return (
            "WITH due AS MATERIALIZED (SELECT id FROM messages "
            f"WHERE state = {queued} AND line IN ({names}) AND next_attempt_ms <= $1::bigint "
            "ORDER BY next_attempt_ms LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
            f"UPDATE messages SET state = {submitting}, lease_owner = $3::varchar, "
            "lease_until_ms = $4::bigint, submitting_ms = $1::bigint, updated_ms = $1::bigint, "
            "lease_seq = lease_seq + 1 "
            f"WHERE id IN (SELECT id FROM due) AND state = {queued} RETURNING {returning}"
        )
    names = ", ".join(f"?{i}" for i in range(5, 5 + lines))
    return (
        f"UPDATE messages SET state = {submitting}, lease_owner = ?3, lease_until_ms = ?4, "
        "submitting_ms = ?1, updated_ms = ?1, lease_seq = lease_seq + 1 "
        f"WHERE id IN (SELECT id FROM messages WHERE state = {queued} AND line IN ({names}) "
        "AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?2) "
        f"AND state = {queued} RETURNING {returning}"
    )


def _states(states: Sequence[State]) -> list[int]:
    return [int(s) for s in states]


class MessageRepo:
    # ---- accept: store/accept_writes.py's, for the callers that hold the store --------
    async def insert(self, conn: AsyncConnection, rows: Sequence[NewMessage], now_ms: int) -> None:
        """Insert accepted messages QUEUED, charged their price per part."""
        await accept_writes.insert_many(conn, [(rows, now_ms)])

    insert_many = staticmethod(accept_writes.insert_many)
    insert_charged = staticmethod(accept_writes.insert_charged)
    insert_claimed = staticmethod(accept_writes.insert_claimed)

    # ---- the queue -------------------------------------------------------------------
    async def lease(
        self,
        conn: AsyncConnection,
        *,
        lines: Sequence[str],
        owner: str,
        now_ms: int,
        lease_until_ms: int,
        limit: int,
    ) -> list[Leased]:
        """Move up to ``limit`` due QUEUED rows on ``lines`` to SUBMITTING under ``owner``."""
        if not lines or limit <= 0:
            return []
        sql = _lease_sql(conn.dialect.name, len(lines))
        params = (now_ms, limit, owner, lease_until_ms, *lines)
        # Straight on SQLite's write connection (store/driver_sql.py): once per worker
        # batch, where SQLAlchemy's execution path cost ~50 µs of loop CPU (issue 15).
        rows: Iterable[Any] = await driver_sql.fetch(conn, sql, params)
        # Positional: the columns come in Leased's order (_LEASED_COLUMNS), and a NamedTuple
        # built by keyword costs more per message.
        leased = [
            Leased(
                mid,
                sender,
                recipient,
                text,
                _ENCODING_OF[encoding],
                parts,
                port_hint,
                line,
                attempts,
                bool(report),
                validity,
                lease_seq,
            )
            for (
                mid,
                sender,
                recipient,
                text,
                encoding,
                parts,
                port_hint,
                line,
                attempts,
                report,
                validity,
                lease_seq,
            ) in rows
        ]
        leased.sort(key=lambda m: m.id)
        return leased

    async def unknown_tries(
        self, conn: AsyncConnection, ids: Sequence[int]
    ) -> dict[int, tuple[str, int]]:
        """Those of ``ids`` that are UNKNOWN: their (line, lease_seq)."""
        out: dict[int, tuple[str, int]] = {}
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.id, messages.c.line, messages.c.lease_seq).where(
                    one_of(messages.c.id, chunk, dialect=conn.dialect),
                    messages.c.state == int(State.UNKNOWN),
                )
            )
            out.update((mid, (line, seq)) for mid, line, seq in rows)
        return out

    # What the line said (store/submit_writes.py).
    write_submits = staticmethod(submit_writes.write_submits)
    write_settled_submits = staticmethod(submit_writes.write_settled_submits)

    async def refund(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
        """Credit the charges of ``ids`` back to their accounts and clear them."""
        totals: dict[int, int] = {}
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.account_id, func.sum(messages.c.charge_micros))
                .where(messages.c.id.in_(chunk))
                .group_by(messages.c.account_id)
            )
            for account_id, amount in rows:
                totals[account_id] = totals.get(account_id, 0) + int(amount or 0)
        for account_id, amount in totals.items():
            if amount:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(balance_micros=accounts.c.balance_micros + amount)
                )
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages).where(messages.c.id.in_(chunk)).values(charge_micros=0)
            )

    # ---- reaper, validity, cancel ----------------------------------------------------
    async def lapsed_leases(self, conn: AsyncConnection, *, now_ms: int) -> list[int]:
        """SUBMITTING rows whose lease ran out: the worker died mid-submit."""
        rows = await conn.execute(
            select(messages.c.id).where(
                messages.c.state == int(State.SUBMITTING), messages.c.lease_until_ms < now_ms
            )
        )
        return [r.id for r in rows]

    async def end_leases(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        target: State,
        requeue: bool,
        now_ms: int,
    ) -> None:
        """Move lapsed leases to ``target`` (due at once when ``requeue``). An UNKNOWN row keeps
        its lease owner: that worker's journal, read when it restarts, may still show that
        the message never reached the line (dispatch/journal.py)."""
        values: dict[str, Any] = {
            "state": int(target),
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
        }
        if requeue or target is not State.UNKNOWN:
            values["lease_owner"] = None
        if requeue:
            values["next_attempt_ms"] = now_ms
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(chunk),
                    messages.c.state == int(State.SUBMITTING),
                    messages.c.lease_until_ms < now_ms,
                )
                .values(**values)
            )

    async def lease_of(
        self, conn: AsyncConnection, *, owner: str, ids: Sequence[int]
    ) -> list[IdState]:
        """What is left of ``owner``'s lease: its SUBMITTING rows, and those of ``ids`` it
        left UNKNOWN (the reaper came first)."""
        c = messages.c
        rows = list(
            await conn.execute(
                select(c.id, c.state).where(
                    c.state == int(State.SUBMITTING), c.lease_owner == owner
                )
            )
        )
        for chunk in chunks(ids, 500):
            rows += await conn.execute(
                select(c.id, c.state).where(
                    c.id.in_(chunk), c.state == int(State.UNKNOWN), c.lease_owner == owner
                )
            )
        return [IdState(id=r.id, state=STATE_OF[r.state]) for r in rows]

    async def end_lease_of(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        owner: str,
        sources: Sequence[State],
        target: State,
        now_ms: int,
    ) -> None:
        """Move ``owner``'s rows of ``ids`` still in ``sources`` to ``target``: QUEUED ones
        are due at once and free; UNKNOWN ones keep their owner (as :meth:`end_leases`)."""
        values: dict[str, Any] = {
            "state": int(target),
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
        }
        if target is State.QUEUED:
            values.update(lease_owner=None, next_attempt_ms=now_ms)
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(chunk),
                    messages.c.state.in_(_states(sources)),
                    messages.c.lease_owner == owner,
                )
                .values(**values)
            )

    async def past_validity(
        self, conn: AsyncConnection, *, states: Sequence[State], now_ms: int, limit: int
    ) -> list[IdState]:
        """Up to ``limit`` messages in ``states`` whose validity ended before ``now_ms``."""
        rows = await conn.execute(
            select(messages.c.id, messages.c.state)
            .where(messages.c.state.in_(_states(states)), messages.c.validity_until_ms < now_ms)
            .limit(limit)
        )
        return [IdState(id=r.id, state=STATE_OF[r.state]) for r in rows]

    async def states_of(
        self, conn: AsyncConnection, ids: Sequence[int], *, states: Sequence[State]
    ) -> list[IdState]:
        """Those of ``ids`` that exist and are in ``states``, with their state."""
        out: list[IdState] = []
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.id, messages.c.state).where(
                    messages.c.id.in_(chunk), messages.c.state.in_(_states(states))
                )
            )
            out.extend(IdState(id=r.id, state=STATE_OF[r.state]) for r in rows)
        return out

    async def move(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        sources: Sequence[State],
        target: State,
        now_ms: int,
        error_text: str | None = None,
        due_ms: int | None = None,
    ) -> None:
        """Set ``target`` on those of ``ids`` still in ``sources`` (and ``error_text`` if given;
        due for dispatch at ``due_ms`` if given)."""
        values: dict[str, Any] = {
            "state": int(target),
            STATE_TIME_COLUMN[target]: now_ms,
            "updated_ms": now_ms,
        }
        if error_text is not None:
            values["error_text"] = error_text
        if due_ms is not None:
            values["next_attempt_ms"] = due_ms
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(messages.c.id.in_(chunk), messages.c.state.in_(_states(sources)))
                .values(**values)
            )

    async def in_state(
        self,
        conn: AsyncConnection,
        *,
        state: State,
        since_ms: int | None = None,
        line: str | None = None,
    ) -> list[int]:
        """Ids of the messages in ``state`` (that entered it at or after ``since_ms``, on
        ``line``, when given), in id order."""
        q = select(messages.c.id).where(messages.c.state == int(state))
        if since_ms is not None:
            q = q.where(messages.c[STATE_TIME_COLUMN[state]] >= since_ms)
        if line is not None:
            q = q.where(messages.c.line == line)
        return [r.id for r in await conn.execute(q.order_by(messages.c.id))]

    # ---- queries ---------------------------------------------------------------------
    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[MessageRecord]:
        """The records of ``ids`` that exist, in id order (PostgreSQL returns an IN list in
        any order).

        Positional SQL straight to the driver: for getReport's 200 ids, building the IN
        list through Core and processing its rows took 0.33 of the call (issue 15,
        bench/itnio_query.py at 10 M rows); the record conversion is ``_record_of``'s.
        """
        out: list[MessageRecord] = []
        for chunk in chunks(ids, 500):
            sql = _records_by_ids(conn.dialect, len(chunk))
            rows = await conn.exec_driver_sql(sql, tuple(chunk))
            out.extend(_record_of(r) for r in rows)
        out.sort(key=lambda r: r.id)
        return out

    async def page(
        self,
        conn: AsyncConnection,
        *,
        account_id: int | None = None,
        app_id: int | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        states: Sequence[State] | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> list[MessageRecord]:
        q = select(*_RECORD_COLUMNS)
        if account_id is not None:
            q = q.where(messages.c.account_id == account_id)
        if app_id is not None:
            q = q.where(messages.c.app_id == app_id)
        if id_from is not None:
            q = q.where(messages.c.id >= id_from)
        if id_to is not None:
            q = q.where(messages.c.id <= id_to)
        if states:
            q = q.where(messages.c.state.in_([int(s) for s in states]))
        q = (
            q.order_by(messages.c.id.desc() if newest_first else messages.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_record_of(r) for r in await conn.execute(q)]

    async def counts_by_state(self, conn: AsyncConnection) -> dict[State, int]:
        rows = await conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state))
        return {State(s): int(n) for s, n in rows}

    async def queue_depth(self, conn: AsyncConnection) -> int:
        q = select(func.count()).select_from(messages).where(messages.c.state == int(State.QUEUED))
        return int((await conn.execute(q)).scalar_one())

    async def oldest_queued_ms(self, conn: AsyncConnection) -> int | None:
        row = (
            await conn.execute(
                select(func.min(messages.c.queued_ms)).where(messages.c.state == int(State.QUEUED))
            )
        ).scalar()
        return int(row) if row is not None else None

    async def parts_of(self, conn: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
        rows = await conn.execute(
            select(message_parts)
            .where(message_parts.c.message_id == message_id)
            .order_by(message_parts.c.seq)
        )
        return [dict(r._mapping) for r in rows]
