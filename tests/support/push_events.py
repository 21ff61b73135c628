"""Values for the push format tests: records, accounts and apps as the event bus carries them.

The formats are pure (push/base.py), so their tests build the domain events by hand; no
database, no runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from simgate.codecs.segments import Encoding
from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.events import InboundReceived, MessageChanged
from simgate.domain.messages import Event, State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.push.base import PushContext

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
ACCOUNT = Account(1, "acme", "USD", "Asia/Shanghai", 0, 0, 0, False)


def message(**changes: Any) -> MessageRecord:
    """A message sent on port 1 of line ``sim`` and delivered, unless ``changes`` say else."""
    base = MessageRecord(
        id=2601010000000000001,
        account_id=ACCOUNT.id,
        app_id=None,
        dialect="itnio",
        client_ref=None,
        task_id=None,
        sender="",
        recipient="8613800138000",
        text="hello",
        encoding=Encoding(0),
        parts=1,
        port_hint=None,
        line="sim",
        port=1,
        state=State.DELIVERED,
        attempts=1,
        report_requested=True,
        price_micros=10_000,
        charge_micros=10_000,
        currency="USD",
        first_ref=17,
        parts_ok=1,
        parts_reported=1,
        status_code=0,
        error_text=None,
        accepted_ms=T0,
        queued_ms=T0,
        submitting_ms=T0 + 1_000,
        sent_ms=T0 + 2_000,
        delivered_ms=T0 + 5_000,
        failed_ms=None,
        expired_ms=None,
        rejected_ms=None,
        unknown_ms=None,
        updated_ms=T0 + 5_000,
    )
    return dataclasses.replace(base, **changes)


def inbound(**changes: Any) -> InboundRecord:
    base = InboundRecord(
        id=2601010000000000100,
        account_id=ACCOUNT.id,
        line="sim",
        port=2,
        sender="+8613900000001",
        recipient="8613800138000",
        text="héllo",
        smsc="+8613800757511",
        imsi="460001234567890",
        parts=1,
        received_ms=T0 + 3_000,
        read=False,
    )
    return dataclasses.replace(base, **changes)


def changed(
    m: MessageRecord,
    event: Event,
    *,
    state: State | None = None,
    at_ms: int | None = None,
    app: App | None = None,
    account: Account = ACCOUNT,
) -> MessageChanged:
    return MessageChanged(
        record=m,
        state=m.state if state is None else state,
        event=event,
        at_ms=m.updated_ms if at_ms is None else at_ms,
        account=account,
        app=app,
    )


def received(
    r: InboundRecord, *, apps: tuple[App, ...] = (), account: Account = ACCOUNT
) -> InboundReceived:
    return InboundReceived(record=r, at_ms=r.received_ms, account=account, apps=apps)


def sms_app(pk: int, push: dict[str, str], kind: AppKind = AppKind.SMS) -> App:
    return App(pk, f"app{pk:05d}", ACCOUNT.id, kind, f"app {pk}", push)


def context(
    docs: Mapping[str, Mapping[str, Any] | None] | None = None,
    notes: Mapping[str, Mapping[int, int]] | None = None,
) -> PushContext:
    return PushContext(now_ms=T0 + 10_000, docs=docs or {}, notes=notes or {})
