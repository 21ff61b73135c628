"""The message lifecycle after pricing: the only way a message's state changes.

Accept (charge and queue), lease, the line's submit answers, delivery reports, cancel,
expiry and lapsed leases: each use case is one ``db.write`` job that reads the transition
table of :mod:`simgate.domain.messages` for where an event leads and from which states it
may (so the repositories' UPDATEs are guarded by them), refunds what ends before leaving
simgate, and hands the changes to :data:`~simgate.services.changes.Publish` inside that job.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import MessageChange
from simgate.domain.messages import TRANSITIONS, Event, State, is_refund, next_state, sources_of
from simgate.domain.queue import (
    Leased,
    LeaseHolder,
    NewPart,
    PartReport,
    PartStatus,
    ReportTally,
    SubmitRecord,
)
from simgate.domain.records import NewMessage
from simgate.services.changes import Publish
from simgate.store import Store

_STOPPED = "stopped"  # error_text of a message cancelled by its client


@dataclass(frozen=True, slots=True)
class _Applied:
    """What applying delivery reports did: how many matched a part, and the changes."""

    matched: int
    changes: list[MessageChange]


def _holds(h: LeaseHolder, *, owner: str, event: Event) -> bool:
    """May ``owner`` record ``event`` on this message? While it still holds the lease; and a
    late SUBMIT_OK also resolves an UNKNOWN message (the reaper gave up on the lease, the
    line did answer): it becomes SENT and its parts can be reported. That is the one move
    outside TRANSITIONS, allowed here."""
    if h.state is State.SUBMITTING:
        return h.lease_owner == owner
    return event is Event.SUBMIT_OK and h.state is State.UNKNOWN


class MessagingService:
    def __init__(self, *, store: Store, publish: Publish) -> None:
        self._store = store
        self._db = store.db
        self._messages = store.messages
        self._reports = store.reports
        self._publish = publish

    # ---- accept ----------------------------------------------------------------------
    async def accept(
        self, *, account_id: int, total_micros: int, rows: Sequence[NewMessage], now_ms: int
    ) -> bool:
        """Charge ``total_micros`` and queue ``rows`` in one transaction; False (and nothing
        queued) when the balance does not cover it. Queueing is not news for subscribers."""

        async def job(conn: AsyncConnection) -> bool:
            if not await self._store.accounts.charge(conn, account_id, total_micros):
                return False
            await self._messages.insert(conn, rows, now_ms)
            return True

        return await self._db.write(job)

    # ---- the queue -------------------------------------------------------------------
    async def lease(
        self, *, lines: Sequence[str], owner: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[Leased]:
        """Claim due QUEUED messages on ``lines`` (QUEUED → SUBMITTING, not news)."""
        job = functools.partial(
            self._messages.lease,
            lines=lines,
            owner=owner,
            now_ms=now_ms,
            lease_until_ms=lease_until_ms,
            limit=limit,
        )
        return await self._db.write(job)

    async def record_submits(
        self, records: Sequence[SubmitRecord], *, owner: str, now_ms: int
    ) -> None:
        """Apply the line's answers; a record whose lease was lost changes nothing."""
        await self._db.write(
            functools.partial(self._record_submits, records=records, owner=owner, now_ms=now_ms)
        )

    async def _record_submits(
        self, conn: AsyncConnection, *, records: Sequence[SubmitRecord], owner: str, now_ms: int
    ) -> None:
        by_event: dict[Event, list[SubmitRecord]] = {}
        for r in records:
            by_event.setdefault(r.event, []).append(r)
        changes: list[MessageChange] = []
        sent: set[int] = set()
        for event, answers in by_event.items():
            target = next_state(State.SUBMITTING, event)
            holders = await self._messages.holders(conn, [r.message_id for r in answers])
            held = {h.id for h in holders if _holds(h, owner=owner, event=event)}
            group = [r for r in answers if r.message_id in held]
            if not group:
                continue
            await self._messages.write_submits(conn, group, target=target, now_ms=now_ms)
            ids = [r.message_id for r in group]
            if is_refund(State.SUBMITTING, event):
                await self._messages.refund(conn, ids)
            # A deferral back to the queue is not news for anyone outside.
            if target is not State.QUEUED:
                changes.extend(MessageChange(mid, target, event, now_ms) for mid in ids)
            if event is Event.SUBMIT_OK:
                sent.update(ids)
        # Parts only for the results that were applied: a worker that lost its lease must not
        # add parts to a message another worker now holds.
        parts = [
            NewPart(message_id=r.message_id, seq=i, line=r.line or "", port=r.port, line_ref=ref)
            for r in by_event.get(Event.SUBMIT_OK, [])
            if r.message_id in sent
            for i, ref in enumerate(r.part_refs)
        ]
        if parts:
            await self._reports.insert_parts(conn, parts)
            # Reports that overtook their submit result apply once the part exists, and their
            # changes come after the submits' in the one list handed on: "sent" is pushed
            # before "delivered"/"failed" (spec, Amendments: "All pushes").
            adopted = await self._reports.take_orphans(conn, [(p.line, p.line_ref) for p in parts])
            if adopted:
                changes += (await self._apply_reports(conn, reports=adopted, now_ms=now_ms)).changes
        await self._publish(conn, changes)

    # ---- delivery reports ------------------------------------------------------------
    async def record_reports(self, reports: Sequence[PartReport], *, now_ms: int) -> int:
        """Apply part reports; those whose part is not recorded yet are kept as orphans.

        Returns how many matched a part. The message ends when every part has a report:
        DELIVERED if all are 0, else FAILED with the worst part's code (spec §7, Dinstar).
        """
        return await self._db.write(
            functools.partial(self._record_reports, reports=reports, now_ms=now_ms)
        )

    async def _record_reports(
        self, conn: AsyncConnection, *, reports: Sequence[PartReport], now_ms: int
    ) -> int:
        applied = await self._apply_reports(conn, reports=reports, now_ms=now_ms)
        await self._publish(conn, applied.changes)
        return applied.matched

    async def _apply_reports(
        self, conn: AsyncConnection, *, reports: Sequence[PartReport], now_ms: int
    ) -> _Applied:
        """Record ``reports``; the changes they cause are returned, not handed on, so the
        caller publishes them in causal order with the rest of its unit of work."""
        if not reports:
            return _Applied(matched=0, changes=[])
        latest = {(r.line, r.line_ref): r for r in reports}
        keys = list(latest)
        match = await self._reports.match_parts(conn, keys)
        # A ref whose part already has a report is a redelivery: the first report stands.
        orphans = [latest[k] for k in keys if k not in match.found and k not in match.duplicate]
        if orphans:
            await self._reports.keep_orphans(conn, orphans, now_ms=now_ms)
        if not match.found:
            return _Applied(matched=0, changes=[])
        found = [*match.found.items(), *match.more]  # more: parts sharing a ref (payload)
        await self._reports.mark_parts(
            conn,
            [
                PartStatus(
                    message_id=part.message_id,
                    seq=part.seq,
                    status_code=latest[k].status_code,
                    done_ms=latest[k].done_ms,
                )
                for k, part in found
            ],
        )
        ids = sorted({p.message_id for p in match.found.values()})
        return _Applied(matched=len(found), changes=await self._settle(conn, ids, now_ms))

    async def _settle(
        self, conn: AsyncConnection, ids: Sequence[int], now_ms: int
    ) -> list[MessageChange]:
        """Move messages whose parts are all reported to DELIVERED or FAILED; returns the
        changes (for the caller to publish)."""
        tallies = await self._reports.tallies(conn, ids)
        partial: list[ReportTally] = []
        done: dict[tuple[Event, State], list[ReportTally]] = {}
        changes: list[MessageChange] = []
        for t in tallies:
            if t.reported < t.recorded:
                partial.append(t)
                continue
            event = Event.REPORT_DELIVERED if not t.worst else Event.REPORT_FAILED
            target = TRANSITIONS.get((t.state, event))
            if target is None:  # already final (or never sent): the report changes nothing
                continue
            done.setdefault((event, target), []).append(t)
            changes.append(MessageChange(t.message_id, target, event, now_ms))
        if partial:
            await self._reports.count_reported(conn, partial)
        for (event, target), group in done.items():
            await self._reports.settle(
                conn, group, sources=sources_of(event), target=target, now_ms=now_ms
            )
        return changes

    async def purge_orphans(self, *, older_than_ms: int) -> int:
        """Forget orphan reports whose part never came (kept since before ``older_than_ms``)."""
        return await self._db.write(
            functools.partial(self._reports.purge_orphans, older_than_ms=older_than_ms)
        )

    # ---- housekeeping and the client -------------------------------------------------
    async def reap(self, *, now_ms: int, resend: bool) -> int:
        """Leases past their time: the worker died mid-submit. UNKNOWN (news), or QUEUED
        again when the operator's policy is to ``resend``. Returns how many."""
        event = Event.RESEND if resend else Event.LEASE_EXPIRED
        target = next_state(State.SUBMITTING, event)

        async def job(conn: AsyncConnection) -> int:
            ids = await self._messages.lapsed_leases(conn, now_ms=now_ms)
            if not ids:
                return 0
            await self._messages.end_leases(
                conn, ids, target=target, requeue=target is State.QUEUED, now_ms=now_ms
            )
            if target is not State.QUEUED:
                await self._publish(
                    conn, [MessageChange(mid, target, event, now_ms) for mid in ids]
                )
            return len(ids)

        return await self._db.write(job)

    async def expire(self, *, now_ms: int, limit: int = 5000) -> int:
        """Messages past validity end EXPIRED; those still queued are refunded."""
        event = Event.EXPIRE
        sources = sources_of(event)

        async def job(conn: AsyncConnection) -> int:
            rows = await self._messages.past_validity(
                conn, states=sources, now_ms=now_ms, limit=limit
            )
            if not rows:
                return 0
            (target,) = {next_state(r.state, event) for r in rows}  # EXPIRED from each
            ids = [r.id for r in rows]
            await self._messages.move(conn, ids, sources=sources, target=target, now_ms=now_ms)
            await self._messages.refund(conn, [r.id for r in rows if is_refund(r.state, event)])
            await self._publish(conn, [MessageChange(mid, target, event, now_ms) for mid in ids])
            return len(ids)

        return await self._db.write(job)

    async def resend_unknown(
        self, *, now_ms: int, since_ms: int | None = None, line: str | None = None
    ) -> list[int]:
        """The operator checked the line: UNKNOWN messages (since ``since_ms``, on ``line``)
        go back to the queue, due now, in one unit of work; returns their ids. Nothing in
        another state moves; the charge stays (the message is still to be sent)."""
        state, event = State.UNKNOWN, Event.RESEND
        target = next_state(state, event)  # QUEUED

        async def job(conn: AsyncConnection) -> list[int]:
            ids = await self._messages.in_state(conn, state=state, since_ms=since_ms, line=line)
            if not ids:
                return []
            # Guarded by the one source state, not sources_of(RESEND): that also holds
            # SUBMITTING (the reaper's resend policy), and a message in flight must stay put.
            await self._messages.move(
                conn, ids, sources=(state,), target=target, now_ms=now_ms, due_ms=now_ms
            )
            await self._publish(conn, [MessageChange(mid, target, event, now_ms) for mid in ids])
            return ids

        return await self._db.write(job)

    async def unknown(self, *, since_ms: int | None = None, line: str | None = None) -> list[int]:
        """What :meth:`resend_unknown` would resend now (a dry run), in id order."""
        async with self._db.read() as conn:
            return await self._messages.in_state(
                conn, state=State.UNKNOWN, since_ms=since_ms, line=line
            )

    async def cancel(self, ids: Sequence[int], *, now_ms: int) -> list[int]:
        """Stop messages that have not left yet (queued) and refund them; returns those
        stopped."""
        return await self._db.write(functools.partial(self.cancel_in, ids=ids, now_ms=now_ms))

    async def cancel_in(
        self, conn: AsyncConnection, *, ids: Sequence[int], now_ms: int
    ) -> list[int]:
        """:meth:`cancel` inside the caller's unit of work (which chose the ids in it)."""
        event = Event.CANCEL
        sources = sources_of(event)
        rows = await self._messages.states_of(conn, ids, states=sources)
        if not rows:
            return []
        (target,) = {next_state(r.state, event) for r in rows}  # REJECTED from each
        stopped = [r.id for r in rows]
        await self._messages.move(
            conn, stopped, sources=sources, target=target, now_ms=now_ms, error_text=_STOPPED
        )
        await self._messages.refund(conn, [r.id for r in rows if is_refund(r.state, event)])
        await self._publish(conn, [MessageChange(mid, target, event, now_ms) for mid in stopped])
        return stopped
