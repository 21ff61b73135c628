"""The message lifecycle after pricing: the only way a message's state changes.

Accept (charge and queue), lease, the line's submit answers, delivery reports, cancel,
expiry and lapsed leases: each use case is one ``db.write`` job that reads the transition
table of :mod:`simgate.domain.messages` for where an event leads and from which states it
may (so the repositories' UPDATEs are guarded by them), refunds what ends before leaving
simgate, and hands the changes to :data:`~simgate.services.changes.Publish` inside that job.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import MessageChange
from simgate.domain.messages import TRANSITIONS, Event, State, is_refund, next_state, sources_of
from simgate.domain.queue import (
    Leased,
    NewPart,
    PartReport,
    PartStatus,
    ReportTally,
    SubmitRecord,
)
from simgate.domain.records import NewMessage
from simgate.lease_loop import QUEUE, Wakeup
from simgate.services.accept_writer import AcceptJob, AcceptWriter, CallerJob, OnceJob
from simgate.services.changes import Publish
from simgate.services.early_reports import Applied, EarlyReports
from simgate.store import Store
from simgate.store.submit_writes import HeldBy

_STOPPED = "stopped"  # error_text of a message cancelled by its client


def _held_by(*, owner: str, event: Event) -> HeldBy:
    """Which messages ``owner`` may record ``event`` on: those it still holds the lease of;
    and a late SUBMIT_OK also resolves an UNKNOWN message (the reaper gave up on the lease,
    the line did answer): it becomes SENT and its parts can be reported. Any answer of the
    worker whose lapsed lease the reaper made UNKNOWN (it kept the lease owner) applies too:
    that worker kept the line's answers through a database outage (issue 14 item 4). Those
    are the moves outside TRANSITIONS, allowed here (store/submit_writes.py ``HeldBy``
    writes the rule as Python and as SQL)."""
    return HeldBy(owner=owner, any_unknown=event is Event.SUBMIT_OK)


class MessagingService:
    def __init__(self, *, store: Store, publish: Publish, wakeup: Wakeup | None = None) -> None:
        # Told after each commit that queues messages, so the dispatcher need not poll.
        self._wakeup = wakeup or Wakeup()
        self._store = store
        self._db = store.db
        self._messages = store.messages
        self._reports = store.reports
        self._publish = publish
        self._accepts = AcceptWriter(store=store)

    # ---- accept ----------------------------------------------------------------------
    async def accept(
        self,
        *,
        account_id: int,
        total_micros: int,
        rows: Sequence[NewMessage],
        now_ms: int,
        also: CallerJob | OnceJob | None = None,
    ) -> bool:
        """Charge ``total_micros`` and queue ``rows`` in one transaction, with ``also`` (the
        caller's own record of it); False (and nothing queued) when the balance does not
        cover it. Concurrent accepts share that transaction (group commit,
        services/accept_writer.py). Queueing is not news for subscribers; the worker's loop is
        woken once it is committed."""
        queued = await self._accepts.accept(
            AcceptJob(
                account_id=account_id,
                total_micros=total_micros,
                rows=rows,
                now_ms=now_ms,
                also=also,
            )
        )
        if queued:
            self._wakeup.notify(QUEUE)
        return queued

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
        self,
        records: Sequence[SubmitRecord],
        *,
        owner: str,
        now_ms: int,
        reports: Sequence[PartReport] = (),
    ) -> None:
        """Apply the line's answers; a record whose lease was lost changes nothing.
        ``reports``: the line's reports for these messages that came before this record
        (dispatch/report_hold.py), applied in the same unit of work."""
        await self._db.write(
            functools.partial(
                self._record_submits, records=records, owner=owner, now_ms=now_ms, reports=reports
            )
        )

    async def _record_submits(
        self,
        conn: AsyncConnection,
        *,
        records: Sequence[SubmitRecord],
        owner: str,
        now_ms: int,
        reports: Sequence[PartReport] = (),
    ) -> None:
        changes = await self._apply_submits(
            conn, records=records, owner=owner, now_ms=now_ms, reports=reports
        )
        await self._publish(conn, changes)

    async def _apply_submits(
        self,
        conn: AsyncConnection,
        *,
        records: Sequence[SubmitRecord],
        owner: str,
        now_ms: int,
        reports: Sequence[PartReport] = (),
    ) -> list[MessageChange]:
        """Record the line's answers, and ``reports`` that came before them; the changes are
        returned for the caller to publish."""
        by_event: dict[Event, list[SubmitRecord]] = {}
        for r in records:
            by_event.setdefault(r.event, []).append(r)
        changes: list[MessageChange] = []
        applied: list[SubmitRecord] = []
        early: EarlyReports | None = None  # sorted against the SUBMIT_OK answers written
        for event, answers in by_event.items():
            target = next_state(State.SUBMITTING, event)
            # The rule goes into each UPDATE, which returns the rows it wrote: no read of
            # the holders first, and the row checked under its lock (store/submit_writes.py).
            held_by = _held_by(owner=owner, event=event)
            group: Sequence[SubmitRecord] = answers
            if event is Event.SUBMIT_OK:
                # Parts only for the results that were applied: a worker that lost its lease
                # must not add parts to a message another worker now holds.
                early = EarlyReports.sort(group, reports)
                written = await self._write_sent(conn, group, early, now_ms=now_ms, held_by=held_by)
                if len(written) < len(group):
                    # Some leases were lost: their reports go the ordinary way (orphans).
                    group = [r for r in group if r.message_id in written]
                    early = EarlyReports.sort(group, reports)
                applied = list(group)
            else:
                written = await self._messages.write_submits(
                    conn, group, target=target, now_ms=now_ms, held_by=held_by
                )
                if len(written) < len(group):
                    group = [r for r in group if r.message_id in written]
            if not group:
                continue
            ids = [r.message_id for r in group]
            if is_refund(State.SUBMITTING, event):
                await self._messages.refund(conn, ids)
            # A deferral back to the queue is not news for anyone outside.
            if target is not State.QUEUED:
                changes.extend(MessageChange(mid, target, event, now_ms) for mid in ids)
        if early is None:  # no SUBMIT_OK answers: every report the ordinary way
            early = EarlyReports.sort((), reports)
        parts = [  # positional (message_id, seq, line, port, line_ref): one per part
            NewPart(r.message_id, i, r.line or "", r.port, ref)
            for r in applied
            for i, ref in enumerate(r.part_refs)
        ]
        if parts:
            adopted = await self._reports.insert_parts_taking_orphans(
                conn, parts, reported=early.statuses
            )
            # Reports that overtook their submit result apply once the part exists, and their
            # changes come after the submits' in the one list handed on: "sent" is pushed
            # before "delivered"/"failed" (spec, Amendments: "All pushes").
            changes += [
                MessageChange(t.message_id, target, event, now_ms)
                for (event, target), group in early.settled.items()
                for t in group
            ]
            if adopted:
                changes += (await self._apply_reports(conn, reports=adopted, now_ms=now_ms)).changes
        if early.rest:  # the ordinary way: their parts (if recorded) are there now
            more = await self._apply_reports(conn, reports=early.rest, now_ms=now_ms)
            changes += more.changes
            if more.hinted:
                changes += await self._settle_hinted(conn, more.hinted, now_ms=now_ms)
        return changes

    async def _write_sent(
        self,
        conn: AsyncConnection,
        group: Sequence[SubmitRecord],
        early: EarlyReports,
        *,
        now_ms: int,
        held_by: HeldBy,
    ) -> set[int]:
        """SUBMITTING -> SENT; a message every part of which was reported already goes on
        to DELIVERED or FAILED in the same row write (the settle rule of :meth:`_settle`,
        from tallies made in memory): one UPDATE per row instead of two. Only the rows
        ``held_by`` holds are written; returns their ids."""
        write = self._messages.write_submits
        if not early.settled:
            return await write(conn, group, target=State.SENT, now_ms=now_ms, held_by=held_by)
        done = {t.message_id for ts in early.settled.values() for t in ts}
        plain = [r for r in group if r.message_id not in done]
        written: set[int] = set()
        if plain:
            written |= await write(conn, plain, target=State.SENT, now_ms=now_ms, held_by=held_by)
        by_id = {r.message_id: r for r in group}
        for (_, target), tallies in early.settled.items():
            written |= await self._messages.write_settled_submits(
                conn,
                [(by_id[t.message_id], t) for t in tallies],
                target=target,
                now_ms=now_ms,
                held_by=held_by,
            )
        return written

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
        changes = applied.changes
        if applied.hinted:
            changes += await self._settle_hinted(conn, applied.hinted, now_ms=now_ms)
        await self._publish(conn, changes)
        return applied.matched

    async def _apply_reports(
        self, conn: AsyncConnection, *, reports: Sequence[PartReport], now_ms: int
    ) -> Applied:
        """Record ``reports``; the changes they cause are returned, not handed on, so the
        caller publishes them in causal order with the rest of its unit of work."""
        if not reports:
            return Applied(matched=0, changes=[])
        latest = {(r.line, r.line_ref): r for r in reports}
        keys = list(latest)
        match = await self._reports.match_parts(conn, keys)
        # A ref whose part already has a report is a redelivery: the first report stands.
        orphans = [latest[k] for k in keys if k not in match.found and k not in match.duplicate]
        hinted = frozenset(o.hint.message_id for o in orphans if o.hint is not None)
        if orphans:
            await self._reports.keep_orphans(conn, orphans, now_ms=now_ms)
        if not match.found:
            return Applied(matched=0, changes=[], hinted=hinted)
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
        changes = await self._settle(conn, ids, now_ms)
        return Applied(matched=len(found), changes=changes, hinted=hinted)

    async def _settle_hinted(
        self, conn: AsyncConnection, ids: Iterable[int], *, now_ms: int
    ) -> list[MessageChange]:
        """UNKNOWN messages of ``ids`` whose line hinted a report for every part of the lease
        that left them UNKNOWN: the process died between the line's answer and recording it
        (README "Crash safety"). The reports are that answer: the submit is recorded from
        them (SENT, its parts keyed by the reported refs, as a late SUBMIT_OK would be) and
        they then settle the message, so "sent" comes before "delivered"/"failed" as ever.

        Sound by construction: only UNKNOWN messages (a final one is never resurrected, one in
        flight is its worker's), only reports from the message's own line, and only for its
        last lease (a report of a try before an operator's resend names an older lease)."""
        tries = await self._messages.unknown_tries(conn, sorted(set(ids)))
        if not tries:
            return []
        by_message: dict[int, dict[int, PartReport]] = {}
        for orphan in await self._reports.hinted_orphans(conn, list(tries)):
            hint = orphan.hint
            assert hint is not None
            line, lease_seq = tries[hint.message_id]
            if orphan.line == line and hint.lease_seq == lease_seq:
                by_part = by_message.setdefault(hint.message_id, {})
                for part in range(hint.part, hint.part + hint.covers):  # payload: all under one
                    by_part[part] = orphan
        records: list[SubmitRecord] = []
        for mid, by_part in sorted(by_message.items()):
            hints = [o.hint for o in by_part.values() if o.hint is not None]
            total = max(h.parts for h in hints)
            if sorted(by_part) != list(range(1, total + 1)):
                continue  # reports of other parts are still to come: they complete it
            first = by_part[1]
            records.append(
                SubmitRecord(
                    mid,
                    Event.SUBMIT_OK,
                    port=first.hint.port if first.hint else None,
                    part_refs=tuple(by_part[p].line_ref for p in range(1, total + 1)),
                    line=first.line,
                )
            )
        if not records:
            return []
        # No lease to hold: _held_by lets SUBMIT_OK resolve an UNKNOWN message for anyone.
        return await self._apply_submits(conn, records=records, owner="", now_ms=now_ms)

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
                changes = [MessageChange(mid, target, event, now_ms) for mid in ids]
                # Reports that came for them while the lease was running out (kept as
                # orphans with the line's hint) settle them now.
                changes += await self._settle_hinted(conn, ids, now_ms=now_ms)
                await self._publish(conn, changes)
            return len(ids)

        reaped = await self._db.write(job)
        if reaped and resend:
            self._wakeup.notify(QUEUE)
        return reaped

    async def recover_lease(
        self, *, owner: str, leased: Collection[int], written: Collection[int], now_ms: int
    ) -> tuple[int, int]:
        """A dead worker's lease, read back from its write journal (dispatch/journal.py): the
        messages it marked as written become UNKNOWN (they may have left, spec §7); the rest
        of its lease never reached the line and goes back to the queue, due now, UNKNOWN ones
        included if the reaper came first. Returns (unknown, requeued)."""

        async def job(conn: AsyncConnection) -> tuple[int, int]:
            rows = await self._messages.lease_of(conn, owner=owner, ids=sorted(leased))
            lost = [r.id for r in rows if r.state is State.SUBMITTING and r.id in written]
            back = [r for r in rows if r.id not in written]
            changes: list[MessageChange] = []
            if lost:
                event = Event.LEASE_EXPIRED
                target = next_state(State.SUBMITTING, event)
                await self._messages.end_lease_of(
                    conn,
                    lost,
                    owner=owner,
                    sources=(State.SUBMITTING,),
                    target=target,
                    now_ms=now_ms,
                )
                changes += [MessageChange(mid, target, event, now_ms) for mid in lost]
                changes += await self._settle_hinted(conn, lost, now_ms=now_ms)
            if back:
                await self._messages.end_lease_of(
                    conn,
                    [r.id for r in back],
                    owner=owner,
                    sources=(State.SUBMITTING, State.UNKNOWN),
                    target=State.QUEUED,
                    now_ms=now_ms,
                )
                # Back from SUBMITTING is not news (as a deferral); from UNKNOWN it is (as a
                # resend): subscribers were told UNKNOWN.
                event = Event.RESEND
                changes += [
                    MessageChange(r.id, State.QUEUED, event, now_ms)
                    for r in back
                    if r.state is State.UNKNOWN
                ]
            await self._publish(conn, changes)
            return len(lost), len(back)

        unknown, requeued = await self._db.write(job)
        if requeued:
            self._wakeup.notify(QUEUE)
        return unknown, requeued

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

        resent = await self._db.write(job)
        if resent:
            self._wakeup.notify(QUEUE)
        return resent

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
