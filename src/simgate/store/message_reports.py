"""Delivery reports: part reports, the settle rule, and orphans that overtook their submit.

Split from :mod:`simgate.store.messages` (which mixes this in to ``MessageRepo``): reports are
the one flow that arrives from the lines rather than from the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change, MessageChange
from simgate.domain.messages import STATE_TIME_COLUMN, Event, State, next_state, sources_of
from simgate.store.sqltext import chunks
from simgate.store.tables import message_parts, messages, orphan_reports

EventHook = Callable[[AsyncConnection, Sequence[Change]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PartReport:
    line: str
    line_ref: str
    status_code: int  # 0 delivered, else the line's failure code
    done_ms: int


class ReportBook:
    """Report handling of the message repository (needs ``_emit`` from it)."""

    _emit: EventHook

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
        events: list[Change] = []
        for chunk in chunks(ids, 500):
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
                events.append(MessageChange(mid, target, event, now_ms))
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
        for chunk in chunks(refs, size)
    ]
