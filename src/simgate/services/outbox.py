"""The push outbox: the bus subscriber that turns domain events into stored pushes.

Subscribed to the event bus (services/events.py) by the runtime, so a push row exists
exactly when the state change that caused it is committed (the outbox pattern). Each
dialect's :class:`~simgate.push.base.PushFormat` chooses endpoints and builds requests from
the events alone; this module loads the stored documents the formats ask for, hands them the
context and inserts what they plan, in format order. It knows no format itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import DomainEvent
from simgate.domain.pushes import Owners
from simgate.lease_loop import PUSHES, Wakeup
from simgate.push.base import PlannedPush, PushContext, PushFormat
from simgate.services.events import Notes, message_dialects
from simgate.services.push_interest import Epoch, PushInterest
from simgate.services.pushes import insert_planned
from simgate.store import Store
from simgate.store.event_reads import docs as stored_docs


class PushOutbox:
    def __init__(
        self,
        *,
        store: Store,
        formats: Sequence[PushFormat],
        clock: Clock,
        wakeup: Wakeup | None = None,
        epoch: Epoch | None = None,
    ) -> None:
        self._wakeup = wakeup or Wakeup()
        self._store = store
        self.formats = list(formats)
        self._clock = clock
        # Whose messages may owe a push (cached; the bus reads only those, issue 15).
        self.interest = PushInterest(self.formats, clock=clock, epoch=epoch)

    async def message_interest(self, conn: AsyncConnection) -> Mapping[str, Owners] | None:
        """By dialect, whose messages some format may push for now (None: every message):
        the event bus builds no record for the others (services/events.py)."""
        return await self.interest.get(conn)

    @property
    def message_dialects(self) -> frozenset[str] | None:
        """The dialects of the messages some format reads (None: every message): the event
        bus builds no record for the others (services/events.py)."""
        out: frozenset[str] = frozenset()
        for fmt in self.formats:
            mine = message_dialects(fmt)
            if mine is None:
                return None
            out |= mine
        return out

    async def __call__(
        self, conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes
    ) -> None:
        planned = await self.plan(conn, events, notes)
        if planned:
            await insert_planned(conn, planned, now_ms=self._clock.now_ms(), events=events)
            await self._announce(conn)

    async def _announce(self, conn: AsyncConnection) -> None:
        """Wake the push senders (issue 15). In this process at once: their claim is a write,
        run after this transaction commits. Other processes on PostgreSQL hear a NOTIFY sent
        in this transaction, which PostgreSQL delivers only if and when it commits (so the
        relays, which would NOTIFY before the commit, are skipped there).

        On SQLite the relays are told now: ``run --worker-process``'s datagram to its worker
        child (dispatch/pipe_wakeup.py), else the child finds the push only at its poll (up
        to ``idle_max_seconds``). Told before the commit, and still safe: the child's claim
        is a write transaction, whose BEGIN IMMEDIATE waits for SQLite's one write lock,
        held by this transaction from its own BEGIN IMMEDIATE until it commits (store/
        database.py). A rollback wakes the child for nothing, and the re-run announces again.
        """
        told = await self._wakeup.notify_at_commit(conn, PUSHES)
        self._wakeup.notify(PUSHES, relay=not told)

    async def plan(
        self, conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes
    ) -> list[PlannedPush]:
        """What every format plans for ``events``, in format order (no rows written)."""
        if not self.formats or not events:
            return []
        present = {type(e) for e in events}
        mine: list[tuple[PushFormat, Sequence[DomainEvent]]] = []
        for fmt in self.formats:
            wanted = fmt.kinds & present
            if wanted:  # each format sees its own kinds, in the order they happened
                mine.append((fmt, events if wanted == present else _only(events, wanted)))
        keys: set[str] = set()
        for fmt, its in mine:
            keys |= fmt.docs(its)
        docs = await stored_docs(conn, keys)  # one statement for all (issue 15)
        ctx = PushContext(now_ms=self._clock.now_ms(), docs=docs, notes=notes)
        planned: list[PlannedPush] = []
        for fmt, its in mine:
            # A format's error aborts the transaction of the change, on purpose: a state
            # change must never commit without the pushes it owes (at-least-once).
            planned.extend(fmt.plan(its, ctx))
        return planned


def _only(events: Sequence[DomainEvent], kinds: frozenset[type[DomainEvent]]) -> list[DomainEvent]:
    return [e for e in events if type(e) in kinds]
