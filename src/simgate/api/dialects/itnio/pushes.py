"""Pushes of the itniotech dialect: pushSmsReport and pushMoSmsReport (spec §1.9, §1.10, §7).

The push engine calls :meth:`ItnioPushPlanner.plan` inside the transaction of the change;
the planner reads the records through that connection and builds the requests with the pure
functions below. URLs come from the app: ``push["report_url"]`` (delivery reports of
messages sent through that SMS app) and ``push["mo_url"]`` (incoming SMS of the app's
account; every SMS app of the account with an ``mo_url`` gets one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.itnio import render
from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.events import DomainEvent, InboundStored, MessageChange
from simgate.domain.messages import FINAL, State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.push.base import PlannedPush, PushRequest
from simgate.store import Store

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
        # The destination network is not known to a SIM gateway: "-1" as the vendor's sample.
        mcc="-1",
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


# ---- the planner --------------------------------------------------------------------------
class ItnioPushPlanner:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def plan(self, conn: AsyncConnection, events: Sequence[DomainEvent]) -> list[PlannedPush]:
        finals = [e.message_id for e in events if isinstance(e, MessageChange) and e.state in FINAL]
        incoming = [e.inbound_id for e in events if isinstance(e, InboundStored)]
        out: list[PlannedPush] = []
        if finals:
            out.extend(await self._reports(conn, finals))
        if incoming:
            out.extend(await self._mo(conn, incoming))
        return out

    async def _reports(self, conn: AsyncConnection, ids: list[int]) -> list[PlannedPush]:
        apps: dict[int, App | None] = {}
        out: list[PlannedPush] = []
        for m in await self._store.messages.get(conn, ids):
            if m.dialect != "itnio" or m.app_id is None or m.state not in FINAL:
                continue
            if m.app_id not in apps:
                apps[m.app_id] = await self._store.accounts.get_app_by_pk(conn, m.app_id)
            app = apps[m.app_id]
            if app is not None and app.push.get("report_url"):
                out.append(report_push(m, app))
        out.sort(key=lambda p: p.order_key or "")
        return out

    async def _mo(self, conn: AsyncConnection, ids: list[int]) -> list[PlannedPush]:
        targets: dict[int, tuple[Account | None, list[App]]] = {}
        out: list[PlannedPush] = []
        for r in await self._store.inbound.get(conn, ids):
            if r.account_id not in targets:
                account = await self._store.accounts.get_account(conn, r.account_id)
                apps = await self._store.accounts.list_apps(conn, r.account_id)
                hooks = [a for a in apps if a.kind is AppKind.SMS and a.push.get("mo_url")]
                targets[r.account_id] = (account, hooks)
            account, hooks = targets[r.account_id]
            if account is not None:
                out.extend(mo_push(r, account, app) for app in hooks)
        return out
