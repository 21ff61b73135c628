"""Pushes of the itniotech dialect: pushSmsReport, pushMoSmsReport, pushVoiceReport (spec §1.9,
§1.10, §1.16, §7).

:class:`ItnioPush` is the dialect's push format (push/base.py): pure, it builds the requests
from the domain events, which carry the record, the account and the app. URLs come from the
app: ``push["report_url"]`` (delivery reports of messages sent through that SMS app) and
``push["mo_url"]`` (incoming SMS of the app's account; every SMS app of the account with an
``mo_url`` gets one). Voice reports (§1.16) are built in voice_push.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from simgate.api.dialects.itnio import render
from simgate.api.dialects.itnio.voice_push import plan_for
from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.events import CallFinished, DomainEvent, InboundReceived, MessageChanged
from simgate.domain.messages import FINAL, State
from simgate.domain.pushes import Interest, Owners
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.push.base import PlannedPush, PushContext, PushRequest

DIALECT = "itnio"
HEADERS = {"Content-Type": "application/json;charset=UTF-8"}


# ---- pure formats -------------------------------------------------------------------------
def report_body(m: MessageRecord, app_id: str) -> dict[str, Any]:
    """pushSmsReport: lower-case ``msgid``, Int ``status``, epoch-ms ``timestamp`` (§1.9)."""
    delivered = m.state is State.DELIVERED
    body: dict[str, Any] = {"appId": app_id}
    if m.client_ref:
        body["orderId"] = m.client_ref  # §7: included when the client gave one
    body.update(
        msgid=str(m.id),
        mobile=m.recipient,
        status=0 if delivered else (m.status_code or 1),
        reason="0" if delivered else (m.error_text or m.state.name.lower()),
        timestamp=m.final_ms if m.final_ms is not None else m.updated_ms,
        # The destination's country (the sample's "404" for India, spec "Amendments"); its
        # network is not known to a SIM gateway: "-1" as the vendor's sample.
        mcc=render.destination_mcc(m.recipient),
        mnc="-1",
        pricedetail=render.price_detail(
            charge=m.charge_micros, parts=m.parts, price=m.price_micros, currency=m.currency
        ),
    )
    return body


def mo_body(r: InboundRecord, account: Account) -> dict[str, Any]:
    """pushMoSmsReport: snake_case ``reply_time`` as ``yyyy-MM-dd HH:mm:ss`` (§1.10)."""
    mcc, mnc = render.mcc_mnc(r.imsi)
    return {
        "msgid": str(r.id),
        "mobile": r.sender,
        "reply_time": render.plain_time(r.received_ms, account.timezone),
        "content": r.text,
        "sendid": r.recipient,
        "mcc": mcc,
        "mnc": mnc,  # the vendor's sample misspells it "mcn"; §1.10 decides "mnc"
        "operator": render.operator_of(r.sender),
        "pricedetail": render.price_detail(
            charge=0, parts=r.parts, price=0, currency=account.currency
        ),
    }


def report_push(m: MessageRecord, app: App) -> PlannedPush:
    return PlannedPush(
        request=PushRequest(
            "POST", app.push["report_url"], dict(HEADERS), _json(report_body(m, app.app_id))
        ),
        order_key=f"msg:{m.id}",
        # Opt-in Standard Webhooks signature (simgate apps update --signing-secret).
        signing_secret=app.push.get("signing_secret") or None,
        kind="itnio.report",
    )


def mo_push(r: InboundRecord, account: Account, app: App) -> PlannedPush:
    return PlannedPush(
        request=PushRequest("POST", app.push["mo_url"], dict(HEADERS), _json(mo_body(r, account))),
        order_key=f"msg:{r.id}",
        signing_secret=app.push.get("signing_secret") or None,
        kind="itnio.mo",
    )


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


# ---- the format ---------------------------------------------------------------------------
class ItnioPush:
    """The itniotech push format: SMS reports, incoming SMS and voice reports."""

    name = DIALECT
    kinds: frozenset[type[DomainEvent]] = frozenset({MessageChanged, InboundReceived, CallFinished})
    message_dialects = frozenset({DIALECT})  # reports: only its own messages push

    interest_docs: tuple[str, ...] = ()  # every target is on an app

    def interest(self, docs: Mapping[str, Mapping[str, Any]], apps: Sequence[App]) -> Interest:
        """The SMS apps with a ``report_url``: only their messages of this dialect push
        (:func:`reports`)."""
        mine = frozenset(a.id for a in apps if a.push.get("report_url"))
        return {DIALECT: Owners(apps=mine)} if mine else {}

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return set()  # every target is on the app the event carries

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        return [*reports(events), *mo_pushes(events), *voice_pushes(events)]


def reports(events: Sequence[DomainEvent]) -> list[PlannedPush]:
    """pushSmsReport for messages of this dialect that reached a final state (§1.9)."""
    out: list[PlannedPush] = []
    seen: set[int] = set()
    for e in events:
        if not isinstance(e, MessageChanged) or e.state not in FINAL or e.message_id in seen:
            continue
        seen.add(e.message_id)
        m, app = e.record, e.app
        if m.dialect != DIALECT or m.app_id is None or m.state not in FINAL:
            continue
        if app is not None and app.push.get("report_url"):
            out.append(report_push(m, app))
    out.sort(key=lambda p: p.order_key or "")
    return out


def mo_pushes(events: Sequence[DomainEvent]) -> list[PlannedPush]:
    """pushMoSmsReport to every SMS app of the account with an ``mo_url`` (§1.10)."""
    received = {e.record.id: e for e in events if isinstance(e, InboundReceived)}
    out: list[PlannedPush] = []
    for _, e in sorted(received.items()):
        hooks = [a for a in e.apps if a.kind is AppKind.SMS and a.push.get("mo_url")]
        out.extend(mo_push(e.record, e.account, app) for app in hooks)
    return out


def voice_pushes(events: Sequence[DomainEvent]) -> list[PlannedPush]:
    """pushVoiceReport for finished calls (§1.16), see voice_push.py."""
    finished = {e.record.id: e for e in events if isinstance(e, CallFinished)}
    records = [e.record for _, e in sorted(finished.items())]
    apps = {e.record.app_id: e.app for e in finished.values()}
    return plan_for(records, apps)
