"""The Dinstar push planner (spec §2.9, §7): domain events → JSON POSTs to the push URL.

One event type per request (``{"sn": ..., "<type>": [...]}``, no error_code), items of one
transaction batched together. ``sms_result`` is pushed when a message is sent, delivered or
fails; ``sms_deliver_status`` once per message, when every part has a report (worst part
wins, spec §7). The target comes from ``simgate gateway push`` (stored in the database)
or else from ``[dinstar] push_url``/``push_types``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.dinstar import render
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.domain.events import (
    DomainEvent,
    InboundStored,
    MessageChange,
    PortChanged,
    UssdReplied,
)
from simgate.domain.messages import Event, State
from simgate.domain.records import MessageRecord
from simgate.push.base import PlannedPush, PushRequest
from simgate.services.container import Services
from simgate.services.dinstar import DIALECT, PUSH_DOC, number_inbound

CHUNK = 100
RESULT_STATES = frozenset(
    {State.SENT, State.DELIVERED, State.FAILED, State.EXPIRED, State.REJECTED}
)
REPORT_EVENTS = frozenset({Event.REPORT_DELIVERED, Event.REPORT_FAILED})
# Message pushes share one order key, so a DELIVERED never overtakes its SENT_OK.
ORDER = {
    "sms_result": "dinstar:sms-status",
    "sms_deliver_status": "dinstar:sms-status",
    "sms": "dinstar:sms",
    "ussd": "dinstar:ussd",
    "register": "dinstar:register",
}


def body(sn: str, kind: str, items: Sequence[dict[str, Any]]) -> bytes:
    """The push body: ``sn`` and one array-valued event type (spec §2.9)."""
    return orjson.dumps({"sn": sn, kind: list(items)})


def requests(sn: str, url: str, kind: str, items: Sequence[dict[str, Any]]) -> list[PlannedPush]:
    return [
        PlannedPush(
            request=PushRequest(
                method="POST",
                url=url,
                headers={"Content-Type": "application/json"},
                body=body(sn, kind, items[i : i + CHUNK]),
            ),
            order_key=ORDER[kind],
            kind=f"dinstar.{kind}",
        )
        for i in range(0, len(items), CHUNK)
    ]


class DinstarPlanner:
    def __init__(self, services: Services, cfg: DinstarSettings | None = None) -> None:
        self._store = services.store
        self._cfg = cfg or DinstarSettings.model_validate(services.settings.dinstar)
        self._ports = PortMap(services.lines, self._cfg.lines)

    async def target(self, conn: AsyncConnection) -> tuple[str, frozenset[str]] | None:
        doc = await self._store.accounts.get_doc(conn, PUSH_DOC)
        if doc is not None:
            url, types = doc.get("url"), doc.get("types")
        else:
            url, types = self._cfg.push_url, self._cfg.push_types
        if not isinstance(url, str) or not url or not isinstance(types, list | tuple):
            return None
        return url, frozenset(str(t) for t in types)

    async def plan(self, conn: AsyncConnection, events: Sequence[DomainEvent]) -> list[PlannedPush]:
        inbound = [e.inbound_id for e in events if isinstance(e, InboundStored)]
        # incoming_sms_id is handed out in the transaction that stores the SMS, pushes or not,
        # so polling clients see the numbers in commit order (query_incoming_sms, spec §2.5).
        seqs = await number_inbound(conn, inbound) if inbound else {}
        target = await self.target(conn)
        if target is None:
            return []
        url, types = target
        out: dict[str, list[dict[str, Any]]] = {k: [] for k in ORDER}
        changes = [e for e in events if isinstance(e, MessageChange)]
        if changes and types & {"sms_result", "sms_deliver_status"}:
            await self._messages(conn, changes, out)
        if inbound and "sms" in types:
            await self._incoming(conn, inbound, seqs, out)
        for e in events:
            if isinstance(e, PortChanged) and "register" in types:
                self._register(e, out)
            elif isinstance(e, UssdReplied) and "ussd" in types:
                port = self._ports.number_of(e.line, e.port)
                if port is not None:
                    out["ussd"].append({"port": port, "text": e.text})
        sn = self._cfg.sn
        return [p for kind in ORDER if kind in types for p in requests(sn, url, kind, out[kind])]

    async def _messages(
        self,
        conn: AsyncConnection,
        changes: Sequence[MessageChange],
        out: dict[str, list[dict[str, Any]]],
    ) -> None:
        wanted = [e for e in changes if e.state in RESULT_STATES]
        if not wanted:
            return
        records = {
            m.id: m
            for m in await self._store.messages.get(conn, sorted({e.message_id for e in wanted}))
            if m.dialect == DIALECT
        }
        zones = await self._zones(conn, records.values())
        for e in wanted:
            m = records.get(e.message_id)
            if m is None:
                continue
            port = self._ports.number_of(m.line, m.port)
            imsi = self._ports.imsi(m.line, m.port)
            tz = zones.get(m.account_id, "UTC")
            as_then = dataclasses.replace(m, state=e.state)
            out["sms_result"].append(render.sms_result(as_then, port=port, imsi=imsi, tz=tz))
            if e.event in REPORT_EVENTS and render.has_delivery_status(m):
                out["sms_deliver_status"].append(
                    render.deliver_status(m, port=port, imsi=imsi, tz=tz)
                )

    async def _zones(
        self, conn: AsyncConnection, records: Iterable[MessageRecord]
    ) -> dict[int, str]:
        zones: dict[int, str] = {}
        for account_id in {m.account_id for m in records}:
            account = await self._store.accounts.get_account(conn, account_id)
            zones[account_id] = account.timezone if account is not None else "UTC"
        return zones

    async def _incoming(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        seqs: dict[int, int],
        out: dict[str, list[dict[str, Any]]],
    ) -> None:
        rows = [
            r
            for r in await self._store.inbound.get(conn, ids)
            if self._ports.number_of(r.line, r.port) is not None
        ]
        if not rows:
            return
        tz: dict[int, str] = {}
        for account_id in {r.account_id for r in rows}:
            account = await self._store.accounts.get_account(conn, account_id)
            tz[account_id] = account.timezone if account is not None else "UTC"
        for r in rows:
            port = self._ports.number_of(r.line, r.port)
            assert port is not None
            item = render.incoming_sms(r, seq=seqs[r.id], port=port, tz=tz[r.account_id])
            out["sms"].append(item)

    def _register(self, e: PortChanged, out: dict[str, list[dict[str, Any]]]) -> None:
        number = self._ports.number_of(e.line, e.port)
        gp = self._ports.get(number) if number is not None else None
        info = self._ports.info(gp) if gp is not None else None
        if number is None or info is None:
            return
        out["register"].append(
            render.register(
                port=number,
                up=e.up,
                iccid=info.iccid,
                imsi=info.imsi,
                number=info.number,
                sequence=(e.at_ms // 1000) % 2**31,
            )
        )
