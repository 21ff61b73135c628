"""The SMPP receipt outbox: deliver_sm owed to SMPP accounts, durable until answered.

Subscribed to the event bus (services/events.py) like the push outbox, so a row exists
exactly when the change that owes it commits: a receipt for each message an SMPP account
submitted that reached a final state (it asked for one with registered_delivery), and each
incoming SMS of an account that has SMPP accounts. Rows are the encoded deliver_sm (SMPP
v3.4 §4.6.1, receipt text of Appendix B plus the receipted_message_id and message_state
TLVs of §5.3.2.12/§5.3.2.35). The listener sends them on any receiving bind of the account
and removes a row only on its deliver_sm_resp: a dropped bind or a restart redelivers
(at-least-once), a row past its validity is purged.

New rows wake the listener's deliverers (:meth:`SmppOutbox.watch`; issue 15), which
otherwise find them at their poll: the rows are mostly stored by the worker (reports,
incoming SMS), and in ``run --worker-process`` or ``serve`` beside ``worker`` that is
another process than the SMPP server's. The wake-up is told once the rows are committed
(a deliverer's look is a read: told before, it could read before the commit and miss
them): on PostgreSQL a NOTIFY inside the transaction, which PostgreSQL delivers at
commit; in this process and on SQLite (to ``run --worker-process``'s parent through the
datagram pair, dispatch/pipe_wakeup.py) from a callback the database runs once the
transaction committed (store/after_commit.py; it was a no-op write queued behind the
transaction, a job and a transaction of its own on PostgreSQL, issue 15).

Which messages and incoming SMS owe rows is decided from a cached view of the accounts that
have SMPP accounts (services/smpp_interest.py, with its staleness bound): with none, the
event bus reads no message for this outbox and the outbox reads nothing (issue 15).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.codecs import gsm7
from simgate.codecs.smpp import (
    DeliverSm,
    DeliveryReceipt,
    EsmClass,
    MessageState,
    Tlvs,
    encode,
    format_receipt,
)
from simgate.domain.events import DomainEvent, InboundReceived, MessageChanged
from simgate.domain.messages import State
from simgate.domain.pushes import EVERY, Owners
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.lease_loop import SMPP_OUT, Wakeup
from simgate.services.events import Notes
from simgate.services.smpp_gateway import (
    DIALECT,
    SMPP_STATE,
    IdBase,
    format_message_id,
    receipt_wish,
)
from simgate.services.smpp_interest import SmppAccounts
from simgate.store import Store
from simgate.store.smpp_outbox import NewDeliver, OutboxRow, SmppOutboxRepo

FINAL = frozenset({State.DELIVERED, State.FAILED, State.EXPIRED, State.REJECTED})
SHORT_MESSAGE_MAX = 254  # octets (§4.6.1); longer text goes in message_payload


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def receipt_pdu(record: MessageRecord, base: IdBase) -> DeliverSm:
    """The deliver_sm receipt of a message in a final state, one per message: the stored
    state already lets the worst part win (services/messaging.py ``_settle``)."""
    shown = format_message_id(record.id, base)
    state = SMPP_STATE[record.state]
    delivered = record.state is State.DELIVERED
    text = format_receipt(
        DeliveryReceipt(
            id=shown,
            sub=1,
            dlvrd=1 if delivered else 0,
            submit_date=_when(record.accepted_ms),
            done_date=_when(record.final_ms or record.updated_ms),
            stat=MessageState(state).stat,
            err=f"{(record.status_code or 0) % 1000:03d}",
            text=record.text[:20],
        )
    )
    return DeliverSm(
        source_addr=record.recipient,
        destination_addr=record.sender,
        esm_class=EsmClass.SMSC_DELIVERY_RECEIPT,
        short_message=text.encode("latin-1", errors="replace"),
        tlvs=Tlvs.build(receipted_message_id=shown, message_state=state),
    )


def part_states(record: MessageRecord, parts: Sequence[dict[str, Any]]) -> list[MessageRecord]:
    """The message as each of its parts ended (for receipts per part): a part the line
    reported is DELIVERED (status 0) or FAILED with its code; a part without a report ends
    as the whole message did (expired, rejected, unknown...)."""
    by_seq = {int(p["seq"]): p for p in parts}
    out: list[MessageRecord] = []
    for seq in range(1, max(record.parts, len(by_seq), 1) + 1):
        code = by_seq[seq]["status_code"] if seq in by_seq else None
        if code is None:
            out.append(record)
        elif int(code) == 0:
            out.append(dataclasses.replace(record, state=State.DELIVERED, status_code=0))
        else:
            out.append(dataclasses.replace(record, state=State.FAILED, status_code=int(code)))
    return out


def inbound_pdu(record: InboundRecord) -> DeliverSm:
    """An incoming SMS as deliver_sm: GSM-7 (one septet an octet, data_coding 0) when the
    text fits the default alphabet, else UCS-2 (8); over 254 octets in message_payload."""
    if gsm7.is_gsm7(record.text):
        body, coding = gsm7.encode_septets(record.text), 0
    else:
        body, coding = record.text.encode("utf-16-be"), 8
    long = len(body) > SHORT_MESSAGE_MAX
    return DeliverSm(
        source_addr=record.sender,
        destination_addr=record.recipient,
        data_coding=coding,
        short_message=b"" if long else body,
        tlvs=Tlvs.build(message_payload=body) if long else Tlvs(),
    )


class SmppOutbox:
    """The bus subscriber, and the listener's view of the rows."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        id_base: IdBase,
        keep_seconds: int,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._base = id_base
        self._keep_ms = keep_seconds * 1000
        self._rows = SmppOutboxRepo()
        self._accounts = SmppAccounts(clock=clock)
        self._wakeup = wakeup or Wakeup()
        self._wakeup.attach(SMPP_OUT, self)  # this process's rows, and the others' (relays)
        self._watchers: list[Callable[[], None]] = []

    # ---- wake-ups (module docstring) -------------------------------------------------
    def watch(self, woken: Callable[[], None]) -> None:
        """Call ``woken`` when new rows are committed (by any process that says so)."""
        self._watchers.append(woken)

    def wake(self) -> None:  # a Wakeable of SMPP_OUT
        for woken in self._watchers:
            woken()

    async def _announce(self, conn: AsyncConnection) -> None:
        # The other processes on PostgreSQL: delivered if and when this transaction commits.
        postgres = await self._wakeup.notify_at_commit(conn, SMPP_OUT)
        # Once per transaction however many jobs of its batch stored rows (equal callbacks).
        self._store.db.after_commit(conn, self._told if postgres else self._relayed)

    def _told(self) -> None:  # committed; the NOTIFY told the other processes
        self._wakeup.notify(SMPP_OUT, relay=False)

    def _relayed(self) -> None:  # committed; tell the other processes (SQLite's relays)
        self._wakeup.notify(SMPP_OUT, relay=True)

    async def message_interest(self, conn: AsyncConnection) -> Mapping[str, Owners]:
        """For the event bus: the SMPP dialect's messages once some account has SMPP
        accounts (only those submit it), else none (services/smpp_interest.py)."""
        return {DIALECT: EVERY} if await self._accounts.get(conn) else {}

    async def __call__(
        self, conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes
    ) -> None:
        now = self._clock.now_ms()
        expires = now + self._keep_ms
        items: list[NewDeliver] = []
        inbound = any(isinstance(e, InboundReceived) for e in events)
        smpp_accounts = await self._accounts.get(conn) if inbound else frozenset()
        for e in events:
            if isinstance(e, MessageChanged):
                r = e.record
                if r.dialect == DIALECT and r.report_requested and e.state in FINAL:
                    # The record as this unit of work left it: its state is e.state or later.
                    for pdu in await self._receipts(conn, _at_state(r, e.state)):
                        items.append(NewDeliver(r.account_id, "receipt", encode(pdu), expires))
            elif isinstance(e, InboundReceived) and e.record.account_id in smpp_accounts:
                pdu = inbound_pdu(e.record)
                items.append(NewDeliver(e.record.account_id, "inbound", encode(pdu), expires))
        if items:
            await self._rows.insert(conn, items, now_ms=now)
            await self._announce(conn)

    async def _receipts(self, conn: AsyncConnection, record: MessageRecord) -> list[DeliverSm]:
        """The receipts a final message owes: one (the worst part won the stored state), or
        one per part when the ESME asked per part; with registered_delivery 2 (SMPP v3.4
        §5.2.17) only those that report a failure."""
        failure_only, per_part = receipt_wish(record.client_ref)
        if per_part:
            parts = await self._store.messages.parts_of(conn, record.id)
            ends = part_states(record, parts)
        else:
            ends = [record]
        return [
            receipt_pdu(end, self._base)
            for end in ends
            if not (failure_only and end.state is State.DELIVERED)
        ]

    async def due(self, *, account_id: int, after_id: int, limit: int) -> list[OutboxRow]:
        async with self._store.db.read() as conn:
            return await self._rows.due(
                conn,
                account_id=account_id,
                after_id=after_id,
                now_ms=self._clock.now_ms(),
                limit=limit,
            )

    async def answered(self, ids: Collection[int]) -> None:
        """The ESME answered these deliver_sm: they are done."""
        if ids:
            await self._store.db.write(functools.partial(self._rows.remove, ids=ids))

    async def purge_expired(self) -> int:
        return await self._store.db.write(
            functools.partial(self._rows.purge_expired, now_ms=self._clock.now_ms())
        )

    async def pending(self) -> dict[int, int]:
        async with self._store.db.read() as conn:
            return await self._rows.pending_by_account(conn)


def _at_state(record: MessageRecord, state: State) -> MessageRecord:
    if record.state is state:
        return record
    return dataclasses.replace(record, state=state)
