"""Outbound messages: accept, the lease-based queue, submit results, reports, queries.

The database is the queue (design principle 3). A message row is inserted QUEUED and
charged in the same transaction; workers claim due rows by moving them to SUBMITTING with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction is already
exclusive), and record what the line said. Every UPDATE is guarded by the states the
transition table allows for its event, so a late or duplicate writer changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import DomainEvent, MessageChanged
from simgate.domain.messages import (
    STATE_TIME_COLUMN,
    Event,
    State,
    is_refund,
    next_state,
    sources_of,
)
from simgate.domain.records import MessageRecord, NewMessage
from simgate.store.tables import accounts, message_parts, messages, orphan_reports

EventHook = Callable[[AsyncConnection, Sequence[DomainEvent]], Awaitable[None]]


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


@dataclass(frozen=True, slots=True)
class PartReport:
    line: str
    line_ref: str
    status_code: int  # 0 delivered, else the line's failure code
    done_ms: int


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


@functools.cache
def _insert_sql(dialect: Dialect) -> str:
    """The INSERT of a new message with positional parameters in _INSERT_COLUMNS order."""
    quote = dialect.identifier_preparer.quote
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        marks = [f"${i + 1}" for i in range(len(_INSERT_COLUMNS))]
    else:
        assert dialect.paramstyle == "qmark", dialect.paramstyle
        marks = ["?"] * len(_INSERT_COLUMNS)
    names = ", ".join(quote(name) for name in _INSERT_COLUMNS)
    return f"INSERT INTO {quote(messages.name)} ({names}) VALUES ({', '.join(marks)})"


def _record(row: Any) -> MessageRecord:
    """From any row holding the record's columns by name (e.g. ``select(messages)``)."""
    data = row._mapping
    values = [data[name] for name in MessageRecord.__slots__]
    values[_STATE_AT] = State(values[_STATE_AT])
    values[_REPORT_AT] = bool(values[_REPORT_AT])
    return MessageRecord(*values)


def _record_of(row: Any) -> MessageRecord:
    """From a row of ``select(*_RECORD_COLUMNS)``: positional, no mapping per row."""
    values = list(row)
    values[_STATE_AT] = State(values[_STATE_AT])
    values[_REPORT_AT] = bool(values[_REPORT_AT])
    return MessageRecord(*values)


class MessageRepo:
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
        await conn.exec_driver_sql(_insert_sql(conn.dialect), params)

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
        events: list[DomainEvent] = []
        sent: set[int] = set()
        for event, group in by_event.items():
            changed = await self._apply_submit(conn, event, group, owner=owner, now_ms=now_ms)
            events.extend(MessageChanged(mid, state, event, now_ms) for mid, state in changed)
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
        for chunk in _chunks(ids, 500):
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
        for chunk in _chunks(ids, 500):
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
        for chunk in _chunks(ids, 500):
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
        for chunk in _chunks(ids, 500):
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
            await self._emit(conn, [MessageChanged(mid, target, event, now_ms) for mid in ids])
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
        for chunk in _chunks(ids, 500):
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
            conn, [MessageChanged(mid, State.EXPIRED, Event.EXPIRE, now_ms) for mid in ids]
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
                conn, [MessageChanged(mid, State.REJECTED, Event.CANCEL, now_ms) for mid in stopped]
            )
        return stopped

    # ---- delivery reports ------------------------------------------------------------
    async def record_reports(
        self, conn: AsyncConnection, reports: Sequence[PartReport], *, now_ms: int
    ) -> int:
        """Apply part reports; those whose part is not recorded yet are kept as orphans.

        Returns how many matched a part. The message ends when every part has a report:
        DELIVERED if all are 0, else FAILED with the worst part's code (spec §7, Dinstar).
        """
        if not reports:
            return 0
        latest = {(r.line, r.line_ref): r for r in reports}
        found: dict[tuple[str, str], tuple[int, int]] = {}
        duplicate: set[tuple[str, str]] = set()
        keys = list(latest)
        for where in _ref_chunks(message_parts, keys):
            rows = await conn.execute(
                select(
                    message_parts.c.line,
                    message_parts.c.line_ref,
                    message_parts.c.message_id,
                    message_parts.c.seq,
                    message_parts.c.status_code,
                ).where(where)
            )
            for line, ref, mid, seq, code in rows:
                if code is None:
                    found[(line, ref)] = (mid, seq)
                else:
                    duplicate.add((line, ref))  # already reported: a redelivery, ignore
        orphans = [latest[k] for k in keys if k not in found and k not in duplicate]
        if orphans:
            await self._keep_orphans(conn, orphans, now_ms)
        if not found:
            return 0
        await conn.execute(
            update(message_parts)
            .where(
                message_parts.c.message_id == bindparam("b_mid"),
                message_parts.c.seq == bindparam("b_seq"),
            )
            .values(status_code=bindparam("b_code"), reported_ms=bindparam("b_done")),
            [
                {
                    "b_mid": mid,
                    "b_seq": seq,
                    "b_code": latest[k].status_code,
                    "b_done": latest[k].done_ms,
                }
                for k, (mid, seq) in found.items()
            ],
        )
        await self._settle(conn, sorted({mid for mid, _ in found.values()}), now_ms)
        return len(found)

    async def _settle(self, conn: AsyncConnection, ids: Sequence[int], now_ms: int) -> None:
        """Move messages whose parts are all reported to DELIVERED or FAILED."""
        events: list[DomainEvent] = []
        for chunk in _chunks(ids, 500):
            rows = await conn.execute(
                select(
                    messages.c.id,
                    # Every part the line gave a ref for, not messages.parts: a line may take
                    # a long text as one payload with one ref (SMPP message_payload).
                    func.count(message_parts.c.seq).label("recorded"),
                    messages.c.state,
                    func.count(message_parts.c.status_code).label("reported"),
                    func.max(message_parts.c.status_code).label("worst"),
                )
                .join(message_parts, message_parts.c.message_id == messages.c.id)
                .where(messages.c.id.in_(chunk))
                .group_by(messages.c.id, messages.c.state)
            )
            done: list[dict[str, Any]] = []
            partial: list[dict[str, Any]] = []
            for mid, recorded, state, reported, worst in rows:
                if reported < recorded:
                    partial.append({"b_id": mid, "b_n": reported})
                    continue
                event = Event.REPORT_DELIVERED if not worst else Event.REPORT_FAILED
                if (State(state), event) not in _REPORT_OK:
                    continue
                target = TARGET[event]
                done.append(
                    {"b_id": mid, "b_n": reported, "b_state": int(target), "b_code": worst or 0}
                )
                events.append(MessageChanged(mid, target, event, now_ms))
            if partial:
                await conn.execute(
                    update(messages)
                    .where(messages.c.id == bindparam("b_id"))
                    .values(parts_reported=bindparam("b_n")),
                    partial,
                )
            for target in (State.DELIVERED, State.FAILED):
                group = [d for d in done if d["b_state"] == int(target)]
                if not group:
                    continue
                event = Event.REPORT_DELIVERED if target is State.DELIVERED else Event.REPORT_FAILED
                await conn.execute(
                    update(messages)
                    .where(
                        messages.c.id == bindparam("b_id"),
                        _state_in(sources_of(event)),
                    )
                    .values(
                        state=int(target),
                        parts_reported=bindparam("b_n"),
                        status_code=bindparam("b_code"),
                        updated_ms=now_ms,
                        lease_owner=None,
                        lease_until_ms=None,
                        **{STATE_TIME_COLUMN[target]: now_ms},
                    ),
                    [{k: v for k, v in d.items() if k != "b_state"} for d in group],
                )
        if events:
            await self._emit(conn, events)

    async def _keep_orphans(
        self, conn: AsyncConnection, orphans: Sequence[PartReport], now_ms: int
    ) -> None:
        keys = [(o.line, o.line_ref) for o in orphans]
        for where in _ref_chunks(orphan_reports, keys):
            await conn.execute(delete(orphan_reports).where(where))
        await conn.execute(
            insert(orphan_reports),
            [
                {
                    "line": o.line,
                    "line_ref": o.line_ref,
                    "status_code": o.status_code,
                    "done_ms": o.done_ms,
                    "received_ms": now_ms,
                }
                for o in orphans
            ],
        )

    async def _adopt_orphans(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]], now_ms: int
    ) -> None:
        """Reports that overtook their submit result are applied once the part exists."""
        found: list[PartReport] = []
        for where in _ref_chunks(orphan_reports, keys):
            rows = await conn.execute(select(orphan_reports).where(where))
            found.extend(PartReport(r.line, r.line_ref, r.status_code, r.done_ms) for r in rows)
        if found:
            for where in _ref_chunks(orphan_reports, [(f.line, f.line_ref) for f in found]):
                await conn.execute(delete(orphan_reports).where(where))
            await self.record_reports(conn, found, now_ms=now_ms)

    async def purge_orphans(self, conn: AsyncConnection, *, older_than_ms: int) -> int:
        result = await conn.execute(
            delete(orphan_reports).where(orphan_reports.c.received_ms < older_than_ms)
        )
        return int(result.rowcount or 0)

    # ---- queries ---------------------------------------------------------------------
    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[MessageRecord]:
        """The records of ``ids`` that exist, in id order (PostgreSQL returns an IN list in
        any order)."""
        out: list[MessageRecord] = []
        for chunk in _chunks(ids, 500):
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


# Where each worker-side event leads from SUBMITTING, read off the transition table.
TARGET: dict[Event, State] = {
    e: next_state(State.SUBMITTING, e)
    for e in (
        Event.SUBMIT_OK,
        Event.SUBMIT_RETRY,
        Event.SUBMIT_REJECTED,
        Event.SUBMIT_FAILED,
        Event.LEASE_EXPIRED,
        Event.RESEND,
        Event.REPORT_DELIVERED,
        Event.REPORT_FAILED,
    )
}
_REPORT_OK = {(s, e) for e in (Event.REPORT_DELIVERED, Event.REPORT_FAILED) for s in sources_of(e)}


def _state_in(states: Sequence[State]) -> ColumnElement[bool]:
    """``state IN (...)`` spelled as ORs: expanding IN cannot be used with executemany."""
    return or_(*(messages.c.state == int(s) for s in states))


def _ref_chunks(
    table: Table, keys: Sequence[tuple[str, str]], size: int = 500
) -> list[ColumnElement[bool]]:
    """``line = ? AND line_ref IN (...)`` per line and chunk.

    Not ``(line, line_ref) IN ((?, ?), ...)``: SQLite answers a row-value IN list with a
    full scan, which made every report batch cost a scan of message_parts.
    """
    by_line: dict[str, list[str]] = {}
    for line, ref in keys:
        by_line.setdefault(line, []).append(ref)
    return [
        and_(table.c.line == line, table.c.line_ref.in_(chunk))
        for line, refs in by_line.items()
        for chunk in _chunks(refs, size)
    ]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
