"""What the SMPP server asks of simgate (issue 18): accept, query and cancel messages.

A submit_sm goes through :class:`~simgate.services.sending.SendService` like an HTTP
dialect's send, so it is charged, routed, stored, queried and pushed the same way; the
dialect name stored on the message is ``smpp``, which is how the receipt outbox knows the
receipts it owes. Message ids go out in the base the operator chose (``[smpp_server]
message_id_base``): the 19-digit decimal id, or the same number in hex.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from simgate.clock import Clock
from simgate.codecs.segments import Encoding
from simgate.domain.accounts import Account
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.services.messaging import MessagingService
from simgate.services.sending import Recipient, SendRequest, SendService
from simgate.store import Store

DIALECT = "smpp"
IdBase = Literal["hex", "decimal"]
# What an ESME asked of its receipts beyond "one per message", kept on the message without a
# column of its own: SMPP messages have no client reference, so their client_ref carries a
# mark (read by services/smpp_outbox.py): registered_delivery 2 (SMPP v3.4 §5.2.17, a
# receipt on failure only) and/or a receipt per part (see :class:`Delivery`).
FAILURE_ONLY_MARK = "smpp:receipt-on-failure"
PER_PART_MARK = "smpp:receipt-per-part"
PER_PART_FAILURE_ONLY_MARK = "smpp:receipt-per-part-on-failure"


def receipt_mark(*, failure_only: bool, per_part: bool) -> str | None:
    if per_part:
        return PER_PART_FAILURE_ONLY_MARK if failure_only else PER_PART_MARK
    return FAILURE_ONLY_MARK if failure_only else None


def receipt_wish(client_ref: str | None) -> tuple[bool, bool]:
    """(failure_only, per_part) of a stored SMPP message."""
    return (
        client_ref in (FAILURE_ONLY_MARK, PER_PART_FAILURE_ONLY_MARK),
        client_ref in (PER_PART_MARK, PER_PART_FAILURE_ONLY_MARK),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an ESME asked of a submit besides its text (SMPP v3.4 §4.4.1)."""

    report: bool = False  # registered_delivery 1 or 2
    failure_only: bool = False  # registered_delivery 2
    not_before_ms: int | None = None  # schedule_delivery_time
    valid_until_ms: int | None = None  # validity_period
    # One receipt per part: the ESME sent a long message as several submit_sm and asked for
    # a receipt on more than one of them (SMPP v3.4 has no flag for it, §5.2.17; this is
    # what it gets from Jasmin, which relays each part as a message of its own, and what
    # Kannel expects, keeping a receipt entry per part it sent).
    per_part: bool = False


def format_message_id(message_id: int, base: IdBase) -> str:
    return format(message_id, "x") if base == "hex" else str(message_id)


def parse_message_id(text: str, base: IdBase) -> int | None:
    """The id an ESME quotes back (query_sm, cancel_sm); None when it is not one of ours."""
    raw = text.strip().strip("\x00")
    try:
        value = int(raw, 16 if base == "hex" else 10)
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


@dataclass(frozen=True, slots=True)
class Submitted:
    message_id: int
    parts: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of :meth:`SmppGateway.submit_many`."""

    sender: str
    to: str
    text: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The destination is not a number simgate can send to (ESME_RINVDSTADR)."""

    number: str


class SmppGateway:
    def __init__(
        self, *, sending: SendService, messaging: MessagingService, store: Store, clock: Clock
    ) -> None:
        self._sending = sending
        self._messaging = messaging
        self._store = store
        self._clock = clock

    async def submit(
        self,
        *,
        account: Account,
        sender: str,
        to: str,
        text: str,
        encoding: Encoding | None,
        report: bool,
    ) -> Submitted | Rejected:
        """Charge and queue one message; returns after the commit. Raises the service
        errors (InsufficientBalance, NoRoute, NoPricing, AccountLocked, StorageFull...)."""
        outcome = await self._sending.send(
            SendRequest(
                account=account,
                dialect=DIALECT,
                text=text,
                recipients=[Recipient(to)],
                sender=sender,
                encoding=encoding,
                report_requested=report,
            )
        )
        if not outcome.accepted:
            return Rejected(to)
        first = outcome.accepted[0]
        return Submitted(first.message_id, first.parts)

    async def submit_many(
        self,
        *,
        account: Account,
        items: Sequence[Outgoing],
        encoding: Encoding | None,
        report: bool,
        delivery: Delivery | None = None,
    ) -> list[Submitted | Rejected]:
        """Several messages of one account in one send (one charge, one insert, one commit):
        the answers in ``items`` order. Raises like :meth:`submit` for the whole lot.
        ``delivery`` (when given) says the receipt wish, schedule and validity of them all."""
        d = delivery or Delivery(report=report)
        mark = receipt_mark(failure_only=d.failure_only, per_part=d.per_part) if d.report else None
        outcome = await self._sending.send(
            SendRequest(
                account=account,
                dialect=DIALECT,
                text="",
                recipients=[
                    Recipient(i.to, client_ref=mark, text=i.text, sender=i.sender) for i in items
                ],
                encoding=encoding,
                report_requested=d.report,
                not_before_ms=d.not_before_ms,
                validity_until_ms=d.valid_until_ms,
            )
        )
        # SendService keeps the recipients' order in ``accepted`` and names the numbers it
        # could not use in ``invalid`` (a number is always valid or always not).
        invalid = set(outcome.invalid)
        accepted = iter(outcome.accepted)
        out: list[Submitted | Rejected] = []
        for item in items:
            if item.to in invalid:
                out.append(Rejected(item.to))
            else:
                a = next(accepted)
                out.append(Submitted(a.message_id, a.parts))
        return out

    def now_ms(self) -> int:
        return self._clock.now_ms()

    async def find(self, *, account_id: int, message_id: int) -> MessageRecord | None:
        """The account's message (query_sm); another account's id is not found."""
        async with self._store.db.read() as conn:
            rows = await self._store.messages.get(conn, [message_id])
        return rows[0] if rows and rows[0].account_id == account_id else None

    async def cancel(self, *, account_id: int, message_id: int) -> bool:
        """Stop a message that has not left (cancel_sm); False when it is not the account's
        or already on its way."""
        if await self.find(account_id=account_id, message_id=message_id) is None:
            return False
        stopped = await self._messaging.cancel([message_id], now_ms=self._clock.now_ms())
        return message_id in stopped


# message_state (v3.4 §5.2.28) of each stored state, for query_sm and receipts.
SMPP_STATE: dict[State, int] = {
    State.ACCEPTED: 1,  # ENROUTE
    State.QUEUED: 1,
    State.SUBMITTING: 1,
    State.SENT: 1,
    State.DELIVERED: 2,
    State.EXPIRED: 3,
    State.FAILED: 5,  # UNDELIVERABLE
    State.REJECTED: 8,
    State.UNKNOWN: 7,
}
