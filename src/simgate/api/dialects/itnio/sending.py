"""sendSms and sendSms/batch: fields, limits and the response (spec §1.3, §1.4, §1.19, §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simgate.api.dialects.itnio.auth import AuthContext
from simgate.api.dialects.itnio.envelope import ItnioError, ok_body, text_field
from simgate.api.dialects.itnio.replay import CommitAnswer
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.domain.accounts import App
from simgate.services.container import Services
from simgate.services.itnio import ReplayClaim
from simgate.services.sending import Recipient, SendOutcome, SendRequest

MAX_CONTENT = 1024  # characters (spec §1.3)
MAX_SENDER = 32  # spec §1.3
MAX_ORDER_ID = 64  # the messages.client_ref column


@dataclass(frozen=True, slots=True)
class SendItem:
    numbers: list[str]
    content: str
    sender: str
    order_ids: list[str] | None

    @classmethod
    def parse(cls, data: dict[str, Any], cfg: ItnioSettings) -> SendItem:
        # Each check in the order a client would want to hear it (spec §1.2 codes).
        content = text_field(data, "content", empty_code=-4)
        if len(content) > MAX_CONTENT:
            raise ItnioError(-5, f"content longer than {MAX_CONTENT} characters")
        if cfg.sensitive_words:  # most gateways list none: no lower-cased copy of the text
            lowered = content.lower()
            if any(w and w.lower() in lowered for w in cfg.sensitive_words):
                raise ItnioError(-3)
        if cfg.templates and not any(re.fullmatch(p, content, re.S) for p in cfg.templates):
            raise ItnioError(-6)
        raw_numbers = text_field(data, "numbers", empty_code=-8)
        numbers = [n.strip() for n in raw_numbers.split(",")]
        if not any(numbers):
            raise ItnioError(-8)
        sender = text_field(data, "senderId", empty_code=None)
        if len(sender) > MAX_SENDER:
            raise ItnioError(-22, f"senderId longer than {MAX_SENDER} characters")
        raw_orders = text_field(data, "orderId", empty_code=None)
        order_ids = None
        if raw_orders:
            order_ids = [o.strip() for o in raw_orders.split(",")]
            # §1.19 / §7: orderId is paired with numbers by position; counts must match.
            if len(order_ids) != len(numbers):
                raise ItnioError(-22, "orderId count differs from numbers count")
            if any(len(o) > MAX_ORDER_ID for o in order_ids):
                raise ItnioError(-22, f"orderId longer than {MAX_ORDER_ID} characters")
        return cls(numbers, content, sender, order_ids)


async def send_items(
    services: Services,
    ctx: AuthContext,
    app: App,
    items: list[SendItem],
    max_numbers: int,
    *,
    commit: CommitAnswer | None = None,
) -> bytes:
    """Send; ``commit`` (the replay guard's) stores the answer with the messages."""
    total = sum(len(i.numbers) for i in items)
    if total > max_numbers:
        raise ItnioError(-7, f"at most {max_numbers} numbers per request")
    recipients = [
        # Each listed occurrence is its own message, duplicates included (issue 4).
        Recipient(
            number=number,
            client_ref=(item.order_ids[pos] or None) if item.order_ids else None,
            text=item.content,
            sender=item.sender,
        )
        for item in items
        for pos, number in enumerate(item.numbers)
    ]
    rendered: list[bytes] = []

    def committed(out: SendOutcome) -> ReplayClaim:
        assert commit is not None
        # Rendered once: stored with the claim, then returned. Should a batch be written
        # again (a failed batch is split per request), the last render is the one committed.
        rendered.append(_answer(out))
        return commit(rendered[-1])

    outcome = await services.sending.send(
        SendRequest(
            account=ctx.account,
            dialect="itnio",
            text=items[0].content,
            recipients=recipients,
            app=app,
            sender=items[0].sender,
            commit_with=None if commit is None else committed,
        )
    )
    if not outcome.accepted:
        raise ItnioError(-9, "no valid number")  # §7: every number invalid
    return rendered[-1] if rendered else _answer(outcome)


def _answer(outcome: SendOutcome) -> bytes:
    return ok_body(
        success=str(len(outcome.accepted)),
        fail=str(len(outcome.invalid)),
        array=[
            {"msgId": str(a.message_id), "number": a.number, "orderId": a.client_ref or ""}
            for a in outcome.accepted
        ],
    )
