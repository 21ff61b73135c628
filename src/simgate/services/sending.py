"""Accepting messages: validate and price here, then charge and queue in one transaction
(:meth:`MessagingService.accept`).

The order of checks follows what a client would want to hear first: a locked account, then
empty content, then numbers, then pricing, then balance (itniotech -13, -4, -9, -19, -10).
Nothing is queued unless the whole request is charged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.codecs.segments import Encoding, choose_encoding, part_count
from simgate.domain import numbers
from simgate.domain.accounts import Account, App
from simgate.domain.billing import Rate
from simgate.domain.messages import State
from simgate.domain.money import parse_amount
from simgate.domain.records import NewMessage
from simgate.domain.routing import route_for
from simgate.domain.values import value_type
from simgate.errors import AccountLocked, ContentEmpty, InsufficientBalance, NoPricing, NoRoute
from simgate.metrics import Metrics
from simgate.services.accept_writer import OnceJob
from simgate.services.messaging import MessagingService
from simgate.services.rates import RateCache
from simgate.settings import Settings
from simgate.store import Store

# The field order the rows of :meth:`SendService.send` are built in (positionally): a change
# of NewMessage's fields fails here, at import, instead of shifting values into other fields.
_NEW_MESSAGE_ORDER = (
    "id",
    "account_id",
    "app_id",
    "dialect",
    "client_ref",
    "task_id",
    "sender",
    "recipient",
    "text",
    "encoding",
    "parts",
    "port_hint",
    "line",
    "price_micros",
    "currency",
    "report_requested",
    "validity_until_ms",
)
if tuple(f.name for f in fields(NewMessage)) != _NEW_MESSAGE_ORDER:  # pragma: no cover
    raise ImportError("NewMessage's fields changed: update services/sending.py")

# Database work run inside the caller's transaction.
Job = Callable[[AsyncConnection], Awaitable[None]]


# Built on every send: frozen for the type checker, cheap to build (domain/values.py).
@value_type
class Recipient:
    number: str
    client_ref: str | None = None
    text: str | None = None  # overrides the request text (templated per recipient)
    sender: str | None = None  # overrides the request sender (itnio batch items, spec §1.4)


@value_type
class SendRequest:
    account: Account
    dialect: str
    text: str
    recipients: Sequence[Recipient]
    app: App | None = None
    sender: str = ""
    port_hint: str | None = None
    encoding: Encoding | None = None
    report_requested: bool = True
    task_id: int | None = None
    # Send on this line instead of the route's first line (a GSM gateway's port[] names the
    # SIM, hence the line: Dinstar, spec §2.2).
    line: str | None = None
    # Dial numbers as given (digits, optional leading +, up to 24): a SIM-based gateway sends
    # national numbers and short codes like "10086" (Dinstar samples, spec §2.2).
    dial_as_given: bool = False
    # Database work committed with the messages, given the outcome (which is known before
    # the commit): the itniotech replay guard claims the request with its answer there
    # (issue 14 item 14; a OnceJob, services/accept_writer.py: a repeat raises Repeated).
    commit_with: Callable[[SendOutcome], Job | OnceJob] | None = None
    # Send no earlier than this (epoch ms; SMPP schedule_delivery_time, issue 18): the rows
    # are queued due then, so the dispatcher's lease skips them until it comes.
    not_before_ms: int | None = None
    # Expire at this instant instead of [worker] validity_seconds from now (SMPP
    # validity_period, issue 18); without it a scheduled message's validity counts from its
    # schedule.
    validity_until_ms: int | None = None


@value_type
class Accepted:
    message_id: int
    number: str
    client_ref: str | None
    parts: int
    price_micros: int


@value_type
class SendOutcome:
    accepted: list[Accepted]
    invalid: list[str]
    charge_micros: int


class SendService:
    def __init__(
        self,
        *,
        store: Store,
        messaging: MessagingService,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        rates: RateCache,
    ) -> None:
        self._store = store
        self._messaging = messaging
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        # The accepted counter's child per dialect: labels() takes a lock and builds a key
        # on every call (issue 15: a few microseconds of each send).
        self._accepted: dict[str, Any] = {}
        self._routes = settings.routes
        # The catch-all price when no rate row matches (settings validated the amount at start).
        price = settings.billing.default_sms_price
        self._default_rate = (
            None
            if price is None
            else Rate("sms", "", parse_amount(price), settings.billing.currency)
        )
        self._rates = rates

    async def send(self, req: SendRequest) -> SendOutcome:
        account = req.account
        if account.locked:
            raise AccountLocked("account is locked")
        if not req.text and not any(r.text for r in req.recipients):
            raise ContentEmpty("content is empty")
        rates = await self._rates.table()
        default_rate = self._default_rate
        now = self._clock.now_ms()
        prepared: list[tuple[Recipient, str, str, int, Encoding, int, str]] = []
        invalid: list[str] = []
        parts_cache: dict[str, tuple[Encoding, int]] = {}
        for rcpt in req.recipients:
            if req.dial_as_given:
                number = _as_dialled(rcpt.number)
            else:
                number = numbers.normalize(rcpt.number)
            if number is None or (not req.dial_as_given and not numbers.is_valid(number)):
                invalid.append(rcpt.number)
                continue
            text = rcpt.text if rcpt.text is not None else req.text
            if not text:
                raise ContentEmpty("content is empty")
            seg = parts_cache.get(text)
            if seg is None:
                enc = choose_encoding(text, prefer=req.encoding)
                seg = parts_cache[text] = (enc, part_count(text, enc))
            route = route_for(self._routes, number)
            if route is None and req.line is None:
                raise NoRoute(f"no route for {number}")
            line = req.line or (route.lines[0] if route is not None else "")
            rate = rates.lookup("sms", number) or default_rate
            if rate is None or rate.currency != account.currency:
                raise NoPricing(f"no SMS price for {number} in {account.currency}")
            prepared.append((rcpt, number, text, rate.price_micros, seg[0], seg[1], line))
        if not prepared:
            return SendOutcome([], invalid, 0)
        total = sum(price * parts for _, _, _, price, _, parts, _ in prepared)
        ids = await self._store.new_ids(len(prepared), now)
        start = max(now, req.not_before_ms or now)
        validity = req.validity_until_ms or start + self._settings.worker.validity_seconds * 1000
        app_id = req.app.id if req.app else None
        # Positional, in _NEW_MESSAGE_ORDER: keyword arguments cost twice as much to bind,
        # the larger part of building a 1,000-number request's rows (bench accept).
        rows = [
            NewMessage(
                mid,
                account.id,
                app_id,
                req.dialect,
                rcpt.client_ref,
                req.task_id,
                rcpt.sender if rcpt.sender is not None else req.sender,
                number,
                text,
                enc,
                parts,
                req.port_hint,
                line,
                price,
                account.currency,
                req.report_requested,
                validity,
            )
            for mid, (rcpt, number, text, price, enc, parts, line) in zip(
                ids, prepared, strict=True
            )
        ]
        accepted = [
            Accepted(r.id, r.recipient, r.client_ref, r.parts, r.price_micros) for r in rows
        ]
        outcome = SendOutcome(accepted, invalid, total)
        also = req.commit_with(outcome) if req.commit_with is not None else None
        if start > now:
            if isinstance(also, OnceJob):  # its claim must run before the charge, alone
                raise ValueError("a send made at most once cannot be scheduled (none is)")
            also = self._scheduled([r.id for r in rows], due_ms=start, now_ms=now, then=also)
        if not await self._messaging.accept(
            account_id=account.id, total_micros=total, rows=rows, now_ms=now, also=also
        ):
            raise InsufficientBalance("insufficient balance")
        counter = self._accepted.get(req.dialect)
        if counter is None:
            counter = self._accepted[req.dialect] = self._metrics.accepted.labels(req.dialect)
        counter.inc(len(rows))
        return outcome

    def _scheduled(self, ids: Sequence[int], *, due_ms: int, now_ms: int, then: Job | None) -> Job:
        """Committed with the insert: the new rows become due at ``due_ms`` (the insert
        makes them due at once)."""

        async def job(conn: AsyncConnection) -> None:
            await self._store.messages.move(
                conn,
                ids,
                sources=(State.QUEUED,),
                target=State.QUEUED,
                now_ms=now_ms,
                due_ms=due_ms,
            )
            if then is not None:
                await then(conn)

        return job


def _as_dialled(raw: str) -> str | None:
    """A dial string kept as given: optional ``+`` then 1..24 digits; None otherwise."""
    text = raw.strip()
    digits = text[1:] if text.startswith("+") else text
    if not digits or len(text) > 24 or not digits.isascii() or not digits.isdigit():
        return None
    return text
