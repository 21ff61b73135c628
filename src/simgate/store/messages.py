"""Outbound messages: accept, the lease-based queue, submit results, reports, queries.

The database is the queue (design principle 3). A message row is inserted QUEUED and
charged in the same transaction; workers claim due rows by moving them to SUBMITTING with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction is already
exclusive), and record what the line said. Every UPDATE is guarded by the states the
transition table allows for its event, so a late or duplicate writer changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change, MessageChange
from simgate.domain.messages import (
    STATE_TIME_COLUMN,
    Event,
    State,
    is_refund,
    sources_of,
)
from simgate.domain.records import MessageRecord, NewMessage
from simgate.store.message_reports import (
    TARGET,
    EventHook,
    PartReport,
    ReportBook,
)
from simgate.store.sqltext import chunks, positional_insert
from simgate.store.tables import accounts, message_parts, messages

__all__ = ["EventHook", "Leased", "MessageRepo", "PartReport", "SubmitRecord"]


@dataclass(frozen=True, slots=True)
class Leased:
    """What a worker needs to submit a claimed message."""

    id: int
    sender: str
    recipient: str
    text: str
    encoding: int
    parts: int
    port_hint: str | None
    line: str
    attempts: int
    report_requested: bool
    validity_until_ms: int


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """The line's answer for one leased message."""

    message_id: int
    event: Event  # SUBMIT_OK | SUBMIT_RETRY | SUBMIT_REJECTED | SUBMIT_FAILED
    port: int | None = None
    part_refs: tuple[str, ...] = ()
    first_ref: int | None = None
    retry_at_ms: int = 0
    count_attempt: bool = True  # False when the worker merely deferred it (port busy)
    line: str | None = None  # set when failing over to another line
    status_code: int | None = None
    error_text: str | None = None


_NEW_FIELDS = tuple(f.name for f in fields(NewMessage))


# The columns of a MessageRecord in field order, so a row converts positionally: building a
# dict per row (row._mapping) cost more than the query for a 500-id get.
_RECORD_COLUMNS = tuple(messages.c[name] for name in MessageRecord.__slots__)
_STATE_AT = MessageRecord.__slots__.index("state")
_REPORT_AT = MessageRecord.__slots__.index("report_requested")


_INSERT_COLUMNS = (
    *_NEW_FIELDS,
    "state",
    "attempts",
    "next_attempt_ms",
    "charge_micros",
    "accepted_ms",
    "queued_ms",
    "updated_ms",
)


def _record(row: Any) -> MessageRecord:
    """From any row holding the record's columns by name (e.g. ``select(messages)``)."""
    data = row._mapping
    return _record_of([data[name] for name in MessageRecord.__slots__])


def _record_of(row: Any) -> MessageRecord:
    """From a row of ``select(*_RECORD_COLUMNS)``: positional, no mapping per row."""
    values = list(row)
    values[_STATE_AT] = State(values[_STATE_AT])
    values[_REPORT_AT] = bool(values[_REPORT_AT])
    return MessageRecord(*values)


class MessageRepo(ReportBook):
    def __init__(self, emit: EventHook) -> None:
        self._emit = emit

    # ---- accept ----------------------------------------------------------------------
    async def insert(self, conn: AsyncConnection, rows: Sequence[NewMessage], now_ms: int) -> None:
        if not rows:
            return
        # Tuples straight to the driver's executemany: building and processing a dict of
        # 24 bind values per row through Core tripled the cost of the insert (bench/).
        queued = int(State.QUEUED)
        params = [
            (
                *(getattr(m, name) for name in _NEW_FIELDS),
                queued,
                0,
                now_ms,
                m.price_micros * m.parts,
                now_ms,
                now_ms,
                now_ms,
            )
            for m in rows
        ]
        await conn.exec_driver_sql(
            positional_insert(conn.dialect, messages.name, _INSERT_COLUMNS), params
        )

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
        due = (
            select(messages.c.id)
            .where(
                messages.c.state == int(State.QUEUED),
                messages.c.line.in_(lines),
                messages.c.next_attempt_ms <= now_ms,
            )
            .order_by(messages.c.next_attempt_ms)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            # A materialised CTE runs the locking SELECT once. As an IN (subquery), PostgreSQL
            # may rescan it, skip the rows this very UPDATE already changed, and so lease more
            # than ``limit`` rows (seen in tests/store/test_queue.py).
            cte = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            picked: Any = messages.c.id.in_(select(cte.c.id))
        else:
            picked = messages.c.id.in_(due.scalar_subquery())
        result = await conn.execute(
            update(messages)
            .where(picked, messages.c.state == int(State.QUEUED))
            .values(
                state=int(State.SUBMITTING),
                lease_owner=owner,
                lease_until_ms=lease_until_ms,
                submitting_ms=now_ms,
                updated_ms=now_ms,
            )
            .returning(
                messages.c.id,
                messages.c.sender,
                messages.c.recipient,
                messages.c.text,
                messages.c.encoding,
                messages.c.parts,
                messages.c.port_hint,
                messages.c.line,
                messages.c.attempts,
                messages.c.report_requested,
                messages.c.validity_until_ms,
            )
        )
        leased = [Leased(*row) for row in result]
        leased.sort(key=lambda m: m.id)
        return leased

    async def record_submits(
        self, conn: AsyncConnection, records: Sequence[SubmitRecord], *, owner: str, now_ms: int
    ) -> None:
        """Apply the line's answers; a record whose lease was lost changes nothing."""
        by_event: dict[Event, list[SubmitRecord]] = {}
        for r in records:
            by_event.setdefault(r.event, []).append(r)
        events: list[Change] = []
        sent: set[int] = set()
        for event, group in by_event.items():
            changed = await self._apply_submit(conn, event, group, owner=owner, now_ms=now_ms)
            events.extend(MessageChange(mid, state, event, now_ms) for mid, state in changed)
            if event is Event.SUBMIT_OK:
                sent.update(mid for mid, _ in changed)
        # Parts only for the results that were applied: a worker that lost its lease must not
        # add parts to a message another worker now holds.
        parts = [
            {
                "message_id": r.message_id,
                "seq": i,
                "line": r.line or "",
                "port": r.port,
                "line_ref": ref,
            }
            for r in by_event.get(Event.SUBMIT_OK, [])
            if r.message_id in sent
            for i, ref in enumerate(r.part_refs)
        ]
        if parts:
            await conn.execute(insert(message_parts), parts)
            keys = [(str(p["line"]), str(p["line_ref"])) for p in parts]
            await self._adopt_orphans(conn, keys, now_ms)
        if events:
            await self._emit(conn, events)

    async def _apply_submit(
        self,
        conn: AsyncConnection,
        event: Event,
        group: list[SubmitRecord],
        *,
        owner: str,
        now_ms: int,
    ) -> list[tuple[int, State]]:
        """Update the rows this worker still holds; returns (id, new state) of news-worthy ones."""
        c = messages.c
        target = TARGET[event]
        eligible = await self._held(
            conn, [r.message_id for r in group], owner=owner, late_ok=event is Event.SUBMIT_OK
        )
        group = [r for r in group if r.message_id in eligible]
        if not group:
            return []
        values: dict[str, Any] = {
            "state": int(target),
            "lease_owner": None,
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
            "error_text": bindparam("b_error"),
            "status_code": bindparam("b_status"),
            "port": func.coalesce(bindparam("b_port"), c.port),
        }
        if event is Event.SUBMIT_OK:
            values.update(first_ref=bindparam("b_ref"), parts_ok=bindparam("b_ok"))
        elif event is Event.SUBMIT_RETRY:
            values.update(
                next_attempt_ms=bindparam("b_due"),
                attempts=c.attempts + bindparam("b_inc"),
                line=func.coalesce(bindparam("b_line"), c.line),
            )
        params = [
            {
                "b_id": r.message_id,
                "b_error": r.error_text,
                "b_status": r.status_code,
                "b_port": r.port,
                "b_ref": r.first_ref,
                "b_ok": len(r.part_refs),
                "b_due": r.retry_at_ms,
                "b_inc": 1 if r.count_attempt else 0,
                "b_line": r.line,
            }
            for r in group
        ]
        await conn.execute(
            update(messages).where(c.id == bindparam("b_id")).values(**values), params
        )
        ids = [r.message_id for r in group]
        if event is Event.SUBMIT_REJECTED:
            await self._refund(conn, ids)
        # A deferral back to the queue is not news for anyone outside.
        return [] if target is State.QUEUED else [(mid, target) for mid in ids]

    async def _held(
        self, conn: AsyncConnection, ids: Sequence[int], *, owner: str, late_ok: bool
    ) -> set[int]:
        """Ids still leased by ``owner`` (plus UNKNOWN ones when a late success may resolve them).

        Runs inside the write transaction that updates them, so nothing can change in between.
        """
        held: set[int] = set()
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.id, messages.c.state, messages.c.lease_owner).where(
                    messages.c.id.in_(chunk)
                )
            )
            for mid, state, lease_owner in rows:
                if (state == State.SUBMITTING and lease_owner == owner) or (
                    late_ok and state == State.UNKNOWN
                ):
                    held.add(mid)
        return held

    async def _refund(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
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

    # ---- reaper and validity ---------------------------------------------------------
    async def reap_leases(self, conn: AsyncConnection, *, now_ms: int, resend: bool) -> int:
        """Leases past their time: the worker died mid-submit. UNKNOWN, or QUEUED by policy."""
        event = Event.RESEND if resend else Event.LEASE_EXPIRED
        target = TARGET[event]
        rows = await conn.execute(
            select(messages.c.id).where(
                messages.c.state == int(State.SUBMITTING), messages.c.lease_until_ms < now_ms
            )
        )
        ids = [r.id for r in rows]
        if not ids:
            return 0
        values: dict[str, Any] = {
            "state": int(target),
            "lease_owner": None,
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
        }
        if resend:
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
        if not resend:
            await self._emit(conn, [MessageChange(mid, target, event, now_ms) for mid in ids])
        return len(ids)

    async def expire(self, conn: AsyncConnection, *, now_ms: int, limit: int = 5000) -> int:
        """Messages past validity end EXPIRED; those still queued are refunded."""
        rows = (
            await conn.execute(
                select(messages.c.id, messages.c.state)
                .where(
                    messages.c.state.in_([int(s) for s in sources_of(Event.EXPIRE)]),
                    messages.c.validity_until_ms < now_ms,
                )
                .limit(limit)
            )
        ).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        refund = [r.id for r in rows if is_refund(State(r.state), Event.EXPIRE)]
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(chunk),
                    messages.c.state.in_([int(s) for s in sources_of(Event.EXPIRE)]),
                )
                .values(state=int(State.EXPIRED), expired_ms=now_ms, updated_ms=now_ms)
            )
        await self._refund(conn, refund)
        await self._emit(
            conn, [MessageChange(mid, State.EXPIRED, Event.EXPIRE, now_ms) for mid in ids]
        )
        return len(ids)

    async def cancel(self, conn: AsyncConnection, ids: Sequence[int], *, now_ms: int) -> list[int]:
        """Stop messages that have not left yet (queued); returns those stopped."""
        rows = await conn.execute(
            select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.state == int(State.QUEUED)
            )
        )
        stopped = [r.id for r in rows]
        if stopped:
            await conn.execute(
                update(messages)
                .where(messages.c.id.in_(stopped), messages.c.state == int(State.QUEUED))
                .values(
                    state=int(State.REJECTED),
                    rejected_ms=now_ms,
                    updated_ms=now_ms,
                    error_text="stopped",
                )
            )
            await self._refund(conn, stopped)
            await self._emit(
                conn, [MessageChange(mid, State.REJECTED, Event.CANCEL, now_ms) for mid in stopped]
            )
        return stopped

    # ---- delivery reports ------------------------------------------------------------
    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[MessageRecord]:
        """The records of ``ids`` that exist, in id order (PostgreSQL returns an IN list in
        any order)."""
        out: list[MessageRecord] = []
        for chunk in chunks(ids, 500):
            rows = await conn.execute(select(*_RECORD_COLUMNS).where(messages.c.id.in_(chunk)))
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
