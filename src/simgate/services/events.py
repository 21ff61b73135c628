"""The event bus: changes in, domain events out, to the subscribers, in the unit of work.

A service that changes state records what it changed as *changes* (ids only,
domain/events.py) and calls :meth:`EventBus.publish` inside the same write transaction. The
bus loads, through that transaction, what the subscribers need (the records as this unit of
work left them, their accounts and apps), builds the *domain events* and calls each
subscriber in the order subscribed. A subscriber's error aborts the transaction on purpose: a
state change never commits without the pushes it owes (at-least-once).

Subscribers may leave numbers for the ones after them in ``notes`` (e.g. the Dinstar
``incoming_sms_id`` of each stored SMS, which the Dinstar push format reads).

A subscriber may say which messages it reads by their dialect (a ``message_dialects``
attribute, see :func:`reads_messages_of`): when every subscriber says so, the bus reads and
builds records and events only for the messages some subscriber reads (the dialect is a
condition of the read). Building the ~35-column records was most of the bus's cost per
message (issue 15), and most messages (a dialect without a push configured, the worker's
bench) owe nothing. A subscriber without the attribute reads every message.

A subscriber may instead say it at each batch, by owner (a ``message_interest`` coroutine
method, given the transaction, returning by dialect whose messages it reads, push/base.py
``Owners``; None: every message): the push outbox answers from its cached view of the push
settings (services/push_interest.py), so a batch whose messages nobody will be pushed for
reads no record at all, and one where some are reads only theirs (issue 15); the SMPP
outbox from its cached view of the accounts that have SMPP accounts (services/
smpp_interest.py): none, no SMPP message to read.

The changed messages are read with their accounts and apps in one statement
(store/event_reads.py): on PostgreSQL the reads were round trips of their own, four per
recorded batch (issue 15).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, App
from simgate.domain.calls import CallRecord
from simgate.domain.events import (
    CallDone,
    CallFinished,
    Change,
    DomainEvent,
    InboundReceived,
    InboundStored,
    MessageChange,
    MessageChanged,
    PortChanged,
    UssdReplied,
)
from simgate.domain.pushes import EVERY, Interest, Owners, combine
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.store import Store
from simgate.store.event_reads import MessageOwners, messages_of_owners, messages_with_owners
from simgate.store.sqltext import chunks

# Numbers handed out in this unit of work, by note name: {"dinstar.inbound_seq": {id: seq}}.
Notes = dict[str, dict[int, int]]
Subscriber = Callable[[AsyncConnection, Sequence[DomainEvent], Notes], Awaitable[None]]
# A subscriber's ``message_interest``: by dialect, whose messages it reads; None: every one.
InterestOf = Callable[[AsyncConnection], Awaitable[Mapping[str, Owners] | None]]

CHUNK = 500  # ids per query

T = TypeVar("T")


def reads_messages_of(*dialects: str) -> Callable[[T], T]:
    """Mark a subscriber function as reading only the messages of ``dialects`` (none: it
    reads no message events at all); a class says it with a ``message_dialects`` attribute."""

    def mark(subscriber: T) -> T:
        subscriber.message_dialects = frozenset(dialects)  # type: ignore[attr-defined]
        return subscriber

    return mark


def message_dialects(subscriber: object) -> frozenset[str] | None:
    """The dialects of the messages ``subscriber`` reads; None: every message."""
    named = getattr(subscriber, "message_dialects", None)
    return None if named is None else frozenset(named)


class EventBus:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscribers: list[Subscriber] = []
        # The dialects of the messages the subscribers without a ``message_interest`` read;
        # None: every message (also with no subscriber yet: :meth:`events` alone builds
        # every message's event).
        self._dialects: frozenset[str] | None = None
        self._interests: list[InterestOf] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber; subscribers run in the order they were added."""
        interest = getattr(subscriber, "message_interest", None)
        mine: frozenset[str] | None = frozenset()
        if interest is not None:
            self._interests.append(interest)
        else:
            mine = message_dialects(subscriber)
        if not self._subscribers:
            self._dialects = mine
        elif self._dialects is not None:
            self._dialects = None if mine is None else self._dialects | mine
        self._subscribers.append(subscriber)

    async def publish(self, conn: AsyncConnection, changes: Sequence[Change]) -> None:
        """Inside the caller's write transaction: enrich ``changes`` and hand the events to
        every subscriber in order (an exception propagates and rolls the change back)."""
        if not changes or not self._subscribers:
            return
        events = await self.events(conn, changes)
        if not events:  # e.g. no message anybody will be pushed for: nothing to hand on
            return
        notes: Notes = {}
        for subscriber in self._subscribers:
            await subscriber(conn, events, notes)

    async def events(self, conn: AsyncConnection, changes: Sequence[Change]) -> list[DomainEvent]:
        """The domain events of ``changes``, in their order. A change whose row (or account)
        no longer exists carries nothing and is left out."""
        store = self._store
        message_ids = [c.message_id for c in changes if isinstance(c, MessageChange)]
        inbound_ids = [c.inbound_id for c in changes if isinstance(c, InboundStored)]
        call_ids = [c.call_id for c in changes if isinstance(c, CallDone)]
        # The messages come with their accounts and apps, in one statement
        # (store/event_reads.py); inbound SMS and calls read theirs after.
        read = await self._messages(conn, message_ids)
        messages, accounts, apps = read.records, read.accounts, read.apps
        inbound = await _inbound(store, conn, inbound_ids)
        calls = await _calls(store, conn, call_ids)
        owners = [r.account_id for r in inbound.values() if r.account_id not in accounts]
        owners += [r.account_id for r in calls.values() if r.account_id not in accounts]
        if owners:
            accounts.update(await store.accounts.get_accounts(conn, owners))
        app_pks = [r.app_id for r in calls.values() if r.app_id not in apps]
        if app_pks:
            apps.update(await store.accounts.get_apps_by_pk(conn, app_pks))
        mo_owners = [r.account_id for r in inbound.values()]
        account_apps = await store.accounts.apps_of_accounts(conn, mo_owners) if mo_owners else {}
        # What each message's events carry, looked up once per message: a batch's changes
        # often name each message twice (sent, then delivered, in one unit of work).
        about: dict[int, tuple[MessageRecord, Account, App | None] | None] = {}
        out: list[DomainEvent] = []
        for c in changes:
            if isinstance(c, MessageChange):
                mid = c.message_id
                if mid in about:
                    known = about[mid]
                else:
                    known = about[mid] = _about(messages.get(mid), accounts, apps)
                if known is not None:
                    out.append(MessageChanged(known[0], c.state, c.event, c.at_ms, *known[1:]))
            elif isinstance(c, InboundStored):
                r = inbound.get(c.inbound_id)
                account = accounts.get(r.account_id) if r is not None else None
                if r is not None and account is not None:
                    out.append(InboundReceived(r, c.at_ms, account, account_apps[r.account_id]))
            elif isinstance(c, CallDone):
                call = calls.get(c.call_id)
                account = accounts.get(call.account_id) if call is not None else None
                if call is not None and account is not None:
                    out.append(CallFinished(call, c.at_ms, account, apps.get(call.app_id)))
            else:
                out.append(_as_event(c))
        return out

    async def _messages(self, conn: AsyncConnection, ids: list[int]) -> MessageOwners:
        """The records of the messages ``ids`` that some subscriber reads, with their
        accounts and apps (a message left out carries no event, as one that no longer
        exists); no record is built for a message nobody reads."""
        if not ids:
            return MessageOwners()
        wanted = sorted(set(ids))
        if not self._interests or self._dialects is None:
            return await messages_with_owners(conn, wanted, self._dialects)
        parts: list[Interest] = [dict.fromkeys(self._dialects, EVERY)]
        for interest_of in self._interests:
            theirs = await interest_of(conn)
            if theirs is None:
                return await messages_with_owners(conn, wanted, None)
            parts.append(theirs)
        return await messages_of_owners(conn, wanted, combine(parts))


def _about(
    m: MessageRecord | None, accounts: Mapping[int, Account], apps: Mapping[int, App]
) -> tuple[MessageRecord, Account, App | None] | None:
    """A message's record, account and app, or None when the message or its account is gone."""
    if m is None:
        return None
    account = accounts.get(m.account_id)
    if account is None:
        return None
    return m, account, apps.get(m.app_id) if m.app_id is not None else None


def _as_event(c: PortChanged | UssdReplied) -> DomainEvent:
    """Port and USSD changes carry all they need already: they are domain events too."""
    return c


async def _inbound(store: Store, conn: AsyncConnection, ids: list[int]) -> dict[int, InboundRecord]:
    out: dict[int, InboundRecord] = {}
    for chunk in chunks(sorted(set(ids)), CHUNK):
        out.update((r.id, r) for r in await store.inbound.get(conn, chunk))
    return out


async def _calls(store: Store, conn: AsyncConnection, ids: list[int]) -> dict[int, CallRecord]:
    if not ids:
        return {}
    return {r.id: r for r in await store.calls.get(conn, ids)}


__all__ = ["EventBus", "Notes", "Subscriber", "message_dialects", "reads_messages_of"]
